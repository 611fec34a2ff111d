"""A lecture's timeline: from the stored events of its devices to bins of "how the room was".

The device publishes state changes, not samples, so the hub rebuilds each face's story first:
per (device, track), an attention state holds from its event until the track's next attention
event (``absent`` ends the track: the device forgets a face once it has been unseen for its
``absent_s``, and that event's ``previous_duration_s`` trims the unseen tail), and an emotion holds
from its event until the next emotion event or the track's end. A face still present when the
data stops is held until the device was last heard from, or while the device is online (its
retained status; the broker's last will turns it offline) until now or the lecture's end.

Per bin (``bin_s``, from the lecture's start) that gives:
- ``faces``: mean faces present (present face time / bin length);
- ``attentive_share``, ``looking_away_share``, ``eyes_closed_share``: shares of present face time;
- ``absent_share``: the share of the lecture's peak attendance not present in the bin (faces that
  left the room, counted without identities: per-session track numbers come and go);
- ``emotion_shares``: shares of attentive face time with a smoothed emotion, per label;
- ``blinks_per_min``: blinks per face-minute, from the devices' summaries (spread over each
  summary's window);
- ``devices``: how many devices had a face present in the bin.
A bin with no face time has null shares. "Moments" pick the bins where the attentive share fell or
rose most from the bin before, and where the emotion mix changed most; a change counts only when it
is large (``MIN_MOMENT_CHANGE`` of the share) and carried by enough face time (``MIN_MOMENT_FACE_S``
seconds of faces that changed), so a few percent of one face is never called a moment.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emocast.contract.events import ABSENT, ATTENTIVE, PRESENT_STATES

LOOKBACK_S = 1800.0  # events this long before a lecture's start give the state its faces start in
MIN_FACE_TIME_FOR_MOMENT_S = 5.0  # a bin with less face time than this is never compared
MIN_MOMENT_CHANGE = 0.15  # a moment moves a share by at least this much (15 points)...
MIN_MOMENT_FACE_S = 15.0  # ...and that move is at least this many seconds of face time
MAX_LECTURE_S = 7 * 86400.0  # a lecture's timeline covers at most a week from its start
# A kiosk publishes metrics every 10 s by default: one silent this long is not holding faces, whatever
# its retained status says.
ONLINE_SILENCE_S = 300.0


@dataclass(frozen=True, slots=True)
class Row:
    """One stored message as the timeline reads it: the columns, and the few payload fields it needs,
    extracted by the database (``Store.timeline_rows``): a lecture of a million events is read without
    a million parsed payloads in memory."""

    device: str
    kind: str
    ts: float
    track: int | None
    value: str | None
    first: bool = False  # attention: the face's first state (``previous`` null)
    duration_s: float = 0.0  # attention: ``previous_duration_s``
    window_s: float = 0.0  # summary
    blinks: float = 0.0  # summary
    face_time_s: float = 0.0  # summary

    @classmethod
    def of(cls, device: str, kind: str, ts: float, track: int | None, value: str | None,
           payload: dict[str, Any]) -> Row:
        """The row a parsed payload gives (what ``Store.timeline_rows`` extracts in the database)."""
        if kind == "summary":
            return cls(device, kind, ts, track, value, window_s=float(payload.get("window_s") or 0.0),
                       blinks=float(payload.get("blinks") or 0.0), face_time_s=float(payload.get("face_time_s") or 0.0))
        return cls(device, kind, ts, track, value, kind == "attention" and payload.get("previous") is None,
                   float(payload.get("previous_duration_s") or 0.0))


@dataclass(slots=True)
class Segment:
    device: str
    track: int
    value: str
    start: float
    end: float


@dataclass
class Stories:
    attention: list[Segment] = field(default_factory=list)
    emotion: list[Segment] = field(default_factory=list)
    summaries: list[Row] = field(default_factory=list)


def rows_from_store(raw: Iterable[tuple]) -> list[Row]:
    """Rows from ``Store.timeline_rows``' tuples (device, kind, ts, track, value, first, a number that is
    ``previous_duration_s`` or a summary's ``window_s``, blinks, face time), consumed as they come."""
    out = []
    append = out.append
    for d, k, ts, tr, v, first, number, blinks, face_s in raw:
        if k == "summary":
            append(Row(d, k, ts, tr, v, False, 0.0, float(number or 0.0), float(blinks or 0.0), float(face_s or 0.0)))
        else:
            append(Row(d, k, ts, tr, v, bool(first), float(number or 0.0)))
    return out


def _lives(events: list[Row]) -> list[list[Row]]:
    """One track number's attention events, in time order, cut into the faces that carried it: a
    kiosk that restarts numbers its faces from 1 again, so a track's first state (``previous`` null)
    starts a new face, as does any event after an ``absent``."""
    lives: list[list[Row]] = []
    for ev in events:
        new_face = not lives or ev.first or lives[-1][-1].value == ABSENT
        if new_face:
            lives.append([ev])
        else:
            lives[-1].append(ev)
    return lives


def _attention_segments(device: str, track: int, events: list[Row], horizon: float) -> tuple[list[Segment], float]:
    """One face's attention segments and when its story ends (its ``absent``, trimmed by the unseen
    tail, or the device's horizon)."""
    out = []
    end_of_track = horizon
    for i, ev in enumerate(events):
        if ev.value == ABSENT:
            return out, ev.ts
        if i + 1 < len(events):
            nxt = events[i + 1]
            end = nxt.ts
            dur = nxt.duration_s
            if nxt.value == ABSENT and dur > 0:
                end = min(end, ev.ts + dur)
        else:
            end = max(ev.ts, horizon)
        if ev.value in PRESENT_STATES and end > ev.ts:
            out.append(Segment(device, track, ev.value, ev.ts, end))
        end_of_track = end
    return out, end_of_track


def _restarts(lives: dict[str, list[tuple[float, int]]]) -> dict[str, list[float]]:
    """When each device restarted, as its events tell: within one run a tracker gives each face a new
    number, so a number that starts a second life means the kiosk started again and counts from 1."""
    out: dict[str, list[float]] = {}
    for device, starts in lives.items():
        seen: set[int] = set()
        for t, track in sorted(starts):
            if track in seen:
                out.setdefault(device, []).append(t)
                seen = set()
            seen.add(track)
    return out


def _heard_before(times: list[float], t: float) -> float:
    """The latest of a device's message times before ``t`` (``t`` itself when there is none)."""
    i = bisect.bisect_left(times, t)
    return times[i - 1] if i else t


def horizons(presence: dict[str, Any], end: float) -> dict[str, float]:
    """Until when each device's open face states hold (``presence``: ``Store.presence``): ``end`` while
    it is online (its last will has not fired) and was heard within ``ONLINE_SILENCE_S`` of ``end``;
    else the latest time it was heard from or stored an event, plus that grace if its retained status
    still says online (a forged or stale ``online`` cannot hold a face present for a whole lecture)."""
    out = {}
    for d, p in presence.items():
        if p.online and p.last_seen is not None and p.last_seen >= end - ONLINE_SILENCE_S:
            out[d] = end
            continue
        heard = [v for v in (p.last_seen, p.latest_event) if v is not None]
        if heard:
            out[d] = min(end, max(heard) + (ONLINE_SILENCE_S if p.online else 0.0))
        elif p.online:
            out[d] = end
    return out


def build_stories(rows: Sequence[Row], horizon: dict[str, float]) -> Stories:
    """Segments per face from time-ordered rows; ``horizon[device]`` ends what is still open. A face
    is a (device, track) and the stretch of that track number's life (``_lives``); a face still open
    when its kiosk restarted (``_restarts``) ends when the kiosk was last heard from before it. Its
    emotions hold until the next emotion or the end of the life they fall in."""
    out = Stories()
    by_track: dict[tuple[str, int], list[Row]] = defaultdict(list)
    emotions: dict[tuple[str, int], list[Row]] = defaultdict(list)
    heard: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        heard[r.device].append(r.ts)
        if r.kind == "summary":
            out.summaries.append(r)
        elif r.kind == "attention" and r.track is not None:
            by_track[(r.device, r.track)].append(r)
        elif r.kind == "emotion" and r.track is not None:
            emotions[(r.device, r.track)].append(r)
    # the rows come in time order (the store sorts them), so every list made from them is in order too
    split = {key: _lives(events) for key, events in by_track.items()}
    starts: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for (device, track), lives_of in split.items():
        starts[device].extend((life[0].ts, track) for life in lives_of)
    restarts = _restarts(starts)
    spans: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)  # (start, end) per life
    for (device, track), lives_of in split.items():
        for life in lives_of:
            until = horizon.get(device, life[-1].ts)
            restart = next((t for t in restarts.get(device, ()) if t > life[0].ts), None)
            if restart is not None:
                until = min(until, max(life[-1].ts, _heard_before(heard[device], restart)))
            segments, end = _attention_segments(device, track, life, until)
            out.attention.extend(segments)
            spans[(device, track)].append((life[0].ts, end))
    for (device, track), events in emotions.items():
        lives_of = spans.get((device, track)) or [(events[0].ts, horizon.get(device, events[-1].ts))]
        for i, ev in enumerate(events):
            stop = next((e for s0, e in reversed(lives_of) if s0 <= ev.ts), lives_of[0][1])
            end = min(events[i + 1].ts, stop) if i + 1 < len(events) else stop
            if end > ev.ts and ev.value:
                out.emotion.append(Segment(device, track, ev.value, ev.ts, end))
    return out


@dataclass
class _Grid:
    """Bins of ``bin_s`` from ``start`` to ``end``; ``spread`` walks only the bins an interval covers,
    so a timeline costs segments plus bins, not segments times bins."""

    start: float
    end: float
    bin_s: float
    n: int = 0  # bins (computed)

    def __post_init__(self) -> None:
        self.n = max(1, int(-(-(self.end - self.start) // self.bin_s)))

    def bounds(self, i: int) -> tuple[float, float]:
        b0 = self.start + i * self.bin_s
        return b0, min(self.end, b0 + self.bin_s)

    def spread(self, a0: float, a1: float) -> list[tuple[int, float]]:
        """(bin index, seconds of [a0, a1] in it) for every bin the interval overlaps (most intervals
        fall in one bin: that case costs no loop)."""
        a0, a1 = max(a0, self.start), min(a1, self.end)
        if a1 <= a0:
            return []
        n = self.n
        first = max(0, int((a0 - self.start) // self.bin_s))
        last = min(n - 1, int((a1 - self.start) // self.bin_s))
        if first == last:
            return [(first, a1 - a0)]
        start, size = self.start, self.bin_s
        out = [(first, start + (first + 1) * size - a0)]
        out.extend((i, size) for i in range(first + 1, last))
        tail = a1 - (start + last * size)
        if tail > 0:
            out.append((last, tail))
        return out


GRAIN_S = 5.0  # the finest time a share is decided on: every bin length is a multiple of it
MAX_GRAINS = 20_000  # a lecture longer than 20,000 grains (~28 h) is decided on a coarser round grain


def grain_s(span_s: float) -> float:
    """The grain a lecture's shares are decided on (``GRAIN_S``, coarser for a lecture of days): a
    bin is made of whole grains, and a device counts in a bin only where it counts in each of them, so
    two views of one lecture at different bin lengths differ by whole grains of ``min_faces`` or more
    faces, never by the seconds in which one person was alone."""
    return next((b for b in NICE_BINS_S if b >= GRAIN_S and span_s / b <= MAX_GRAINS), NICE_BINS_S[-1])


def grains_in(bin_s: float, grain: float) -> int | None:
    """How many whole grains a bin of ``bin_s`` is, or None where it is not a whole number of them."""
    n = round(bin_s / grain)
    return n if n >= 1 and abs(n * grain - bin_s) <= 1e-6 else None


def _face_seconds(segments: Sequence[Segment], grid: _Grid) -> list[dict[str, float]]:
    """Per cell of ``grid``, each device's face-seconds, from the integral of its face count: for each
    device, F(x) = sum over its segments of their length before x (sorted starts and ends with prefix
    sums, read by bisection at each cell edge), so a cell's seconds are F(right) - F(left). It costs
    segments log segments plus cells, not segments times the cells each spans (a face present for an
    hour spans 720 grains of 5 s). Times are taken from the grid's start, so the sums stay exact."""
    by_device: dict[str, tuple[list[float], list[float]]] = {}
    for seg in segments:
        starts, ends = by_device.setdefault(seg.device, ([], []))
        starts.append(seg.start - grid.start)
        ends.append(seg.end - grid.start)
    edges = [min(grid.end, grid.start + k * grid.bin_s) - grid.start for k in range(grid.n + 1)]
    out: list[dict[str, float]] = [{} for _ in range(grid.n)]
    for device, (starts, ends) in by_device.items():
        count = _FaceCount(starts, ends)
        before = count.integral(edges[0])
        for k in range(grid.n):
            after = count.integral(edges[k + 1])
            if after - before > 1e-9:
                out[k][device] = after - before
            before = after
    return out


class _FaceCount:
    """One device's number of faces present over time, as the integral ``_face_seconds`` reads."""

    def __init__(self, starts: list[float], ends: list[float]) -> None:
        self.starts, self.ends = sorted(starts), sorted(ends)
        self.start_sums, self.end_sums = [0.0], [0.0]
        for a in self.starts:
            self.start_sums.append(self.start_sums[-1] + a)
        for b in self.ends:
            self.end_sums.append(self.end_sums[-1] + b)

    def integral(self, x: float) -> float:
        """Face-seconds before ``x``: every segment begun by then, less what of each had ended."""
        i, j = bisect.bisect_left(self.starts, x), bisect.bisect_left(self.ends, x)
        return (x * i - self.start_sums[i]) - (x * j - self.end_sums[j])


def _countable(face_s: dict[str, float], bounds: tuple[float, float], min_faces: int, pool_small: bool) -> set[str]:
    """The devices whose faces may count in a stretch of time: those with ``min_faces`` or more faces
    present on average over it, and (``pool_small``) the smaller ones together where together they
    have that many."""
    length = max(1e-9, bounds[1] - bounds[0])
    faces = {d: s / length for d, s in face_s.items()}
    big = {d for d, f in faces.items() if min_faces <= 1 or f + 1e-6 >= min_faces}
    small = sum(f for d, f in faces.items() if d not in big)
    return set(faces) if pool_small and small + 1e-6 >= min_faces else big


def _attentive_emotions(stories: Stories) -> Iterable[tuple[str, str, float, float]]:
    """(device, label, start, end) of each stretch where a face was attentive with an emotion: per
    face, its emotion and attentive segments (each in time order, none overlapping) merged in one pass."""
    attentive: dict[tuple[str, int], list[Segment]] = defaultdict(list)
    for a in stories.attention:
        if a.value == ATTENTIVE:
            attentive[(a.device, a.track)].append(a)
    emotions: dict[tuple[str, int], list[Segment]] = defaultdict(list)
    for e in stories.emotion:
        emotions[(e.device, e.track)].append(e)
    for key, es in emotions.items():
        att = sorted(attentive.get(key, ()), key=lambda x: x.start)
        es.sort(key=lambda x: x.start)
        i = j = 0
        while i < len(es) and j < len(att):
            e, a = es[i], att[j]
            lo, hi = max(e.start, a.start), min(e.end, a.end)
            if hi > lo:
                yield key[0], e.value, lo, hi
            if e.end < a.end:
                i += 1
            else:
                j += 1


def bins(stories: Stories, start: float, end: float, bin_s: float, video_offset_s: float = 0.0,
         min_faces: int = 1, pool_small: bool = False) -> list[dict[str, Any]]:
    """The timeline's bins between ``start`` and ``end`` (epoch seconds).

    ``min_faces`` > 1 applies per device: a device with fewer faces present in a bin (their mean)
    adds its faces to ``faces`` but nothing to any share, blink rate or emotion of that bin, so no
    difference of two views that are shown (the room less one kiosk, one lecture less another over the
    same time) can single out fewer than ``min_faces`` faces: each share is of whole devices that
    each had ``min_faces`` or more. ``devices_withheld`` counts the devices left out so.

    ``pool_small``: a recorded lecture, whose recordings are each one student's (one face each) and
    belong to it alone (no other lecture holds them: the import refuses a file held elsewhere). Its
    devices with fewer faces count together, when together they have ``min_faces`` or more: the only
    other views of them are their own, each withheld, so the room less every shown device is a group
    of ``min_faces`` or more, never one person.

    Both rules hold in every grain of a bin too (``grain_s``: 5 s), so a bin of 60 s is never shown where
    one of its 30 s halves is withheld: the 60 s figure less the shown half would be the withheld one."""
    grid = _Grid(start, end, bin_s)
    state_time: list[dict[str, dict[str, float]]] = [{} for _ in range(grid.n)]  # bin -> device -> state -> s
    for seg in stories.attention:
        for i, ov in grid.spread(seg.start, seg.end):
            per = state_time[i].setdefault(seg.device, dict.fromkeys(PRESENT_STATES, 0.0))
            per[seg.value] += ov
    face_s = [{d: sum(st.values()) for d, st in per_bin.items()} for per_bin in state_time]
    counted = [_countable(face_s[i], grid.bounds(i), min_faces, pool_small) for i in range(grid.n)]
    if min_faces > 1:  # and in every grain of the bin: no two bin lengths differ by a few faces' seconds
        grain = grain_s(end - start)
        per_bin = grains_in(bin_s, grain)
        if per_bin is None:
            raise ValueError(f"bin_s {bin_s:g} is not a multiple of {grain:g} s")
        grains = _Grid(start, end, grain)
        grain_face_s = _face_seconds(stories.attention, grains)
        for i in range(grid.n):
            for j in range(i * per_bin, min(grains.n, (i + 1) * per_bin)):
                here = grain_face_s[j]
                counted[i] -= set(here) - _countable(here, grains.bounds(j), min_faces, pool_small)
    emotion_time: list[dict[str, float]] = [defaultdict(float) for _ in range(grid.n)]
    for device, label, lo, hi in _attentive_emotions(stories):
        for i, ov in grid.spread(lo, hi):
            if device in counted[i]:
                emotion_time[i][label] += ov
    blinks, blink_face_s = [0.0] * grid.n, [0.0] * grid.n
    for r in stories.summaries:
        window = r.window_s
        if window <= 0:
            continue
        for i, ov in grid.spread(r.ts - window, r.ts):
            if r.device in counted[i]:
                blinks[i] += ov / window * r.blinks
                blink_face_s[i] += ov / window * r.face_time_s
    out = []
    for i in range(grid.n):
        shared = dict.fromkeys(PRESENT_STATES, 0.0)
        for device in counted[i]:
            for k, v in state_time[i][device].items():
                shared[k] += v
        b = _bin(grid, i, shared, emotion_time[i], blinks[i], blink_face_s[i], len(state_time[i]), video_offset_s,
                 sum(face_s[i].values()))
        b["devices_withheld"] = len(state_time[i]) - len(counted[i])
        out.append(b)
    peak = max((b["faces"] for b in out), default=0.0)
    for b in out:
        b["absent_share"] = round(1.0 - b["faces"] / peak, 4) if peak > 0 else None
    return out


def _bin(grid: _Grid, i: int, state_time: dict[str, float], emotion_time: dict[str, float], blinks: float,
         face_s: float, devices: int, video_offset_s: float, all_face_time: float) -> dict[str, Any]:
    """One bin: ``state_time`` is the face time its shares are of; ``all_face_time`` every face's, for
    ``faces``."""
    b0, b1 = grid.bounds(i)
    face_time = sum(state_time.values())
    read = sum(emotion_time.values())
    return {
        "t": round(b0 - grid.start + video_offset_s, 3),
        "start": b0,
        "length_s": round(b1 - b0, 3),
        "faces": round(all_face_time / max(1e-9, b1 - b0), 3),
        "face_time_s": round(face_time, 3),
        **{f"{k}_share": (round(v / face_time, 4) if face_time > 0 else None) for k, v in state_time.items()},
        "emotion_shares": {k: round(v / read, 4) for k, v in sorted(emotion_time.items())} if read > 0 else {},
        "emotion_face_time_s": round(read, 3),
        "blinks_per_min": round(blinks / (face_s / 60.0), 2) if face_s > 0 else None,
        "devices": devices,
    }


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    h, m, r = s // 3600, s % 3600 // 60, s % 60
    return f"{h}:{m:02d}:{r:02d}" if h else f"{m}:{r:02d}"


@dataclass
class _Change:
    """One move between neighbouring bins that was big enough or carried enough, or neither."""

    delta: float  # the share's move (-1..1)
    moved: float  # face time it carried, seconds
    bin: dict[str, Any]
    toward: str | None = None

    def qualifies(self, min_change: float, min_face_s: float) -> bool:
        return abs(self.delta) >= min_change and self.moved >= min_face_s

    def as_moment(self) -> dict[str, Any]:
        b = self.bin
        out = {"t": b["t"], "start": b["start"], "change": round(self.delta, 4), "points": round(self.delta * 100, 1),
               "faces": b["faces"], "face_time_moved_s": round(self.moved, 1)}
        if self.toward is not None:
            out["toward"] = self.toward
        return out


def _none_because(found: list[_Change], verb: str, min_change: float, min_face_s: float, compared: int) -> str:
    """Why no move of one kind counts as a moment, in the teacher's words."""
    if compared < 2:
        return (f"fewer than two bins had {MIN_FACE_TIME_FOR_MOMENT_S:g} s of faces' time with shares shown "
                "(the others were empty or withheld)")
    if not found:
        return f"it never {verb} between neighbouring bins"
    biggest = max(found, key=lambda c: abs(c.delta))
    points = abs(biggest.delta) * 100
    if abs(biggest.delta) < min_change:
        return f"the largest move was {points:.0f} points at {_clock(biggest.bin['t'])}; a moment needs " \
               f"{min_change * 100:.0f}"
    return f"{points:.0f} points at {_clock(biggest.bin['t'])} were carried by {biggest.moved:.0f} s of faces' " \
           f"time; a moment needs {min_face_s:g} s"


@dataclass
class _Moves:
    """Every move between neighbouring comparable bins, by kind, and how many bins and pairs there were."""

    falls: list[_Change] = field(default_factory=list)
    rises: list[_Change] = field(default_factory=list)
    swings: list[_Change] = field(default_factory=list)
    compared: int = 0  # bins with enough face time and shares shown
    read_pairs: int = 0  # neighbouring pairs of them that both had expressions read


def _moves(timeline: Sequence[dict[str, Any]]) -> _Moves:
    """The changes between each bin worth comparing (``MIN_FACE_TIME_FOR_MOMENT_S`` of faces, shares
    shown) and the one before it: the attentive share's, and the emotion mix's (half the summed moves)."""
    out = _Moves()
    prev = None

    def carried(delta: float, now_s: float, before_s: float) -> float:
        return abs(delta) * min(now_s, before_s)

    for b in timeline:
        if b["face_time_s"] < MIN_FACE_TIME_FOR_MOMENT_S or b["attentive_share"] is None:
            continue
        out.compared += 1
        if prev is not None:
            d = b["attentive_share"] - prev["attentive_share"]
            change = _Change(d, carried(d, b["face_time_s"], prev["face_time_s"]), b)
            if d:
                (out.falls if d < 0 else out.rises).append(change)
            now, before = b.get("emotion_shares") or {}, prev.get("emotion_shares") or {}
            if now and before:
                out.read_pairs += 1
                labels = set(now) | set(before)
                swing = sum(abs(now.get(k, 0.0) - before.get(k, 0.0)) for k in labels) / 2
                grew = max(sorted(labels), key=lambda k: now.get(k, 0.0) - before.get(k, 0.0))
                moved = carried(swing, b.get("emotion_face_time_s", 0.0), prev.get("emotion_face_time_s", 0.0))
                if swing > 0:
                    out.swings.append(_Change(swing, moved, b, grew))
        prev = b
    return out


def moments(timeline: Sequence[dict[str, Any]], top: int = 3, min_change: float = MIN_MOMENT_CHANGE,
            min_face_s: float = MIN_MOMENT_FACE_S) -> dict[str, Any]:
    """The bins where the room's attention fell or recovered most, and where emotions swung most.

    A change between two bins counts when it moves the share by at least ``min_change`` (15 points)
    and the face time that moved (the change times the smaller of the two bins' face time) is at least
    ``min_face_s``: a 5-point move of one face is noise, half of a room looking away for a minute is
    not. A rise is a recovery only after a drop that counted (the room settling at the start is not
    one). Each moment says its change in points, how many faces (mean present) and how much face time
    carried it; ``rules`` states the thresholds, and ``none_because`` says, for a kind with no moment,
    why (no two bins to compare, the largest move and what it lacked, or a rise with no drop before)."""
    moves = _moves(timeline)

    def counted(changes: list[_Change]) -> list[_Change]:
        return [c for c in changes if c.qualifies(min_change, min_face_s)]

    drops, big_rises, moved_mix = counted(moves.falls), counted(moves.rises), counted(moves.swings)
    first_drop = min((c.bin["t"] for c in drops), default=None)
    recoveries = [c for c in big_rises if first_drop is not None and c.bin["t"] > first_drop]
    because: dict[str, str] = {}
    if not drops:
        because["attention_drops"] = _none_because(moves.falls, "fell", min_change, min_face_s, moves.compared)
    if not recoveries and big_rises and not drops:
        r = max(big_rises, key=lambda c: c.delta)
        because["attention_recoveries"] = (f"attention rose by {r.delta * 100:.0f} points at {_clock(r.bin['t'])}, "
                                           "but had not dropped before it: a recovery follows a drop")
    elif not recoveries:
        because["attention_recoveries"] = "no rise that counts came after the first drop" if big_rises else \
            _none_because(moves.rises, "rose", min_change, min_face_s, moves.compared)
    if not moved_mix:
        because["emotion_swings"] = \
            _none_because(moves.swings, "changed", min_change, min_face_s, moves.compared) \
            if moves.read_pairs or moves.compared < 2 else "no two neighbouring bins both had expressions read"
    return {
        "attention_drops": [c.as_moment() for c in sorted(drops, key=lambda c: c.delta)[:top]],
        "attention_recoveries": [c.as_moment() for c in sorted(recoveries, key=lambda c: -c.delta)[:top]],
        "emotion_swings": [c.as_moment() for c in sorted(moved_mix, key=lambda c: -c.delta)[:top]],
        "rules": {"min_change_points": round(min_change * 100, 1), "min_face_time_s": min_face_s},
        "none_because": because,
    }


NICE_BINS_S = (5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
TARGET_BINS = 40  # about this many columns: a 15-second recording is not one 60 s bin, a day not 1,440


def auto_bin_s(span_s: float) -> float:
    """The shortest round bin that gives a lecture of ``span_s`` seconds no more than ``TARGET_BINS``."""
    return next((b for b in NICE_BINS_S if span_s / b <= TARGET_BINS), NICE_BINS_S[-1])


def private(timeline: list[dict[str, Any]], emotion: bool, min_faces: int) -> list[dict[str, Any]]:
    """The bins as the hub may show them (``[privacy]``): a bin where fewer than ``min_faces`` faces
    were present (their mean over the bin: two faces glimpsed beside one that stays are that one's
    record) keeps its face count and says why, but shows no share, so no one's own minute-by-minute
    record appears (nor, ``bins`` sees to it, from a difference of two shown views); ``min_faces = 1``
    withholds nothing. With ``emotion`` off no bin carries an emotion key."""
    shares = [f"{k}_share" for k in PRESENT_STATES]
    for b in timeline:
        few = b["faces"] + 1e-6 < min_faces
        left_out = b["faces"] > 0 and b["face_time_s"] <= 0  # every device had too few faces
        if min_faces > 1 and (left_out or (few and b["face_time_s"] > 0)):
            b.update(dict.fromkeys(shares), blinks_per_min=None, emotion_shares={}, emotion_face_time_s=0.0,
                     withheld=f"fewer than {min_faces} faces present" + ("" if few else " at any one device"))
        if not emotion:
            b.pop("emotion_shares", None)
            b.pop("emotion_face_time_s", None)
    return timeline


def lecture_timeline(store, lecture: dict[str, Any], bin_s: float, now: float, per_device: bool = False,
                     emotion: bool = True, min_faces: int = 1) -> dict[str, Any]:
    """The whole answer for one lecture: its bins (and each device's, if asked) and its moments, as
    ``[privacy]`` lets them be shown (``private``)."""
    start = float(lecture["start"])
    end = float(lecture["end"]) if lecture["end"] is not None else max(start, now)
    end = min(end, start + MAX_LECTURE_S)  # a lecture left live (or dated 1970) is not years of bins
    devices = list(lecture["devices"])
    kinds = ("attention", "emotion", "summary") if emotion else ("attention", "summary")
    rows = rows_from_store(store.timeline_rows(devices, start - LOOKBACK_S, end, kinds, lecture["id"]))
    horizon = horizons(store.presence(devices, lecture["id"]), end)
    stories = build_stories(rows, horizon)
    offset = float(lecture.get("video_offset_s") or 0.0)
    pool = bool(lecture.get("recorded"))
    timeline = private(bins(stories, start, end, bin_s, offset, min_faces, pool), emotion, min_faces)
    # moments are found at the lecture's own bin length, whatever bins the page shows: a teacher who
    # changes the bin length sees the same moments
    moment_bin_s = auto_bin_s(end - start)
    at_moment_bins = timeline if moment_bin_s == bin_s else private(
        bins(stories, start, end, moment_bin_s, offset, min_faces, pool), emotion, min_faces)
    found = moments(at_moment_bins)
    found["rules"]["bin_s"] = moment_bin_s
    if not emotion:
        found.pop("emotion_swings")
        found["none_because"].pop("emotion_swings", None)
    out: dict[str, Any] = {"lecture": lecture, "bin_s": bin_s, "start": start, "end": end, "bins": timeline,
                           "moments": found, "privacy": {"emotion": emotion, "min_faces": min_faces}}
    if per_device:
        out["per_device"] = {
            d: private(bins(Stories([s for s in stories.attention if s.device == d],
                                    [s for s in stories.emotion if s.device == d],
                                    [r for r in stories.summaries if r.device == d]), start, end, bin_s, offset,
                            min_faces),
                       emotion, min_faces)
            for d in devices}
    return out
