"""Each face's story, rebuilt from a lecture's stored events: when it was in which attention state, and
which emotion it showed.

The device publishes state changes, not samples, so per (device, track) an attention state holds from
its event until the track's next attention event (``absent`` ends the track: the device forgets a
face once it has been unseen for its ``absent_s``, and that event's ``previous_duration_s`` trims the
unseen tail), and an emotion holds from its event until the next emotion event or the end of the face
it belongs to. A face still present when the data stops is held until its device's horizon
(``heard_until``): when it was last heard from, or, while it is online, until now or the lecture's end.

The rows arrive as columns (``Rows``) and the stories are built as arrays: a lecture of a million
events is never a million Python objects.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emocast.contract.events import ABSENT, PRESENT_STATES

# A kiosk publishes metrics every 10 s by default: one silent this long is not holding faces, whatever
# its retained status says.
ONLINE_SILENCE_S = 300.0
KINDS = ("attention", "emotion", "summary")
NO_TRACK = -1


def _codes(column: Iterable[Any], seen: dict[Any, int] | None = None) -> tuple[list[Any], np.ndarray]:
    """Distinct values in first-seen order, and each entry's index among them (``seen``: the codes
    given so far, extended, when a column arrives in parts)."""
    seen = {} if seen is None else seen
    codes = np.fromiter((seen.setdefault(v, len(seen)) for v in column), np.int64)
    return list(seen), codes


def _recode(names: Sequence[Any], codes: np.ndarray, vocabulary: Sequence[Any]) -> np.ndarray:
    """``codes`` (indices into ``names``) as indices into ``vocabulary`` (-1 where a name is not there)."""
    lookup = np.array([vocabulary.index(v) if v in vocabulary else -1 for v in names] or [-1], np.int64)
    return lookup[codes]


def face_key(device: np.ndarray, track: np.ndarray) -> np.ndarray:
    """One number per face (a device's code and a track number, an int32), to sort and search faces by."""
    return (device.astype(np.int64) << 32) | track


@dataclass
class Rows:
    """Stored messages as the timeline reads them, as columns in time order: the columns, and the few
    payload fields it needs, extracted by the database (``Store.timeline_rows``). ``first``: an
    attention event that is its face's first state (``previous`` null); ``number``: an attention's
    ``previous_duration_s``, a summary's ``window_s``; ``blinks``, ``face_s``: a summary's."""

    devices: list[str]
    device: np.ndarray  # index into devices
    kind: np.ndarray  # index into KINDS
    ts: np.ndarray
    track: np.ndarray  # NO_TRACK where none
    values: list[str | None]
    value: np.ndarray  # index into values
    first: np.ndarray
    number: np.ndarray
    blinks: np.ndarray
    face_s: np.ndarray

    @classmethod
    def of(cls, raw: Iterable[Sequence[Any]], page: int = 20_000) -> Rows:
        """From ``Store.timeline_rows``' tuples (device, kind, ts, track, value, first, number, blinks,
        face time), in time order, read ``page`` rows at a time: only a page of them is ever Python
        tuples at once."""
        seen: tuple[dict[Any, int], ...] = ({}, {}, {})  # device, kind, value -> code
        parts: list[list[np.ndarray]] = [[] for _ in range(9)]
        rows = iter(raw)
        while chunk := list(itertools.islice(rows, page)):
            cols = list(zip(*chunk, strict=True))
            for i, table in zip((0, 1, 4), seen, strict=True):
                parts[i].append(_codes(cols[i], table)[1])
            for i in (2, 3, 6, 7, 8):  # NULL -> NaN (numpy reads None so)
                parts[i].append(np.array(cols[i], float))
            parts[5].append(np.array(cols[5], bool))
        col = [np.concatenate(p) if p else np.zeros(0, bool if i == 5 else float) for i, p in enumerate(parts)]
        kinds = np.array([KINDS.index(k) for k in seen[1]] or [0], np.int64)
        track = col[3]  # tracks are int32: exact as floats; NULL is NO_TRACK
        return cls(list(seen[0]), col[0].astype(np.int64), kinds[col[1].astype(np.int64)], col[2],
                   np.where(np.isnan(track), NO_TRACK, track).astype(np.int64), list(seen[2]),
                   col[4].astype(np.int64), col[5], *(np.nan_to_num(col[i], nan=0.0) for i in (6, 7, 8)))

    def value_codes(self, vocabulary: Sequence[str]) -> np.ndarray:
        """Each row's value as its index in ``vocabulary`` (-1 where it is not there)."""
        return _recode(self.values, self.value, vocabulary)


@dataclass
class Segments:
    """Stretches of one kind of state (attention, or emotion) per face, as columns."""

    devices: list[str]
    device: np.ndarray  # index into devices
    track: np.ndarray
    values: list[str]
    value: np.ndarray  # index into values
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def device_codes(self, devices: Sequence[str]) -> np.ndarray:
        """Each segment's device as its index in ``devices``."""
        return _recode(self.devices, self.device, devices)

    def value_codes(self, vocabulary: Sequence[str]) -> np.ndarray:
        """Each segment's value as its index in ``vocabulary`` (-1 where it is not there)."""
        return _recode(self.values, self.value, vocabulary)


@dataclass
class Summaries:
    """The devices' summaries the timeline reads (blinks and face time over each summary's window)."""

    devices: list[str]
    device: np.ndarray
    ts: np.ndarray
    window_s: np.ndarray
    blinks: np.ndarray
    face_time_s: np.ndarray

    def device_codes(self, devices: Sequence[str]) -> np.ndarray:
        """Each summary's device as its index in ``devices``."""
        return _recode(self.devices, self.device, devices)


@dataclass
class Stories:
    attention: Segments
    emotion: Segments
    summaries: Summaries


def heard_until(presence: dict[str, Any], end: float) -> dict[str, float]:
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


def _restarts(device: np.ndarray, start: np.ndarray, track: np.ndarray) -> dict[int, list[float]]:
    """When each device restarted, as its faces' lives tell (device, start, track of each life): within
    one run a tracker gives each face a new number, so a number that starts a second life means the
    kiosk started again and counts from 1."""
    out: dict[int, list[float]] = {}
    last_device, seen = None, set()
    for i in np.lexsort((track, start, device)).tolist():
        d, t, tr = int(device[i]), float(start[i]), int(track[i])
        if d != last_device:
            last_device, seen = d, set()
        if tr in seen:
            out.setdefault(d, []).append(t)
            seen = set()
        seen.add(tr)
    return out


def _horizon_of(rows: Rows, horizon: dict[str, float]) -> np.ndarray:
    """Each device's horizon by its code (NaN where none is known)."""
    return np.array([horizon.get(d, np.nan) for d in rows.devices] or [np.nan])


def searchsorted_by_key(keys: np.ndarray, values: np.ndarray, q_keys: np.ndarray, q_values: np.ndarray,
                         side: str) -> np.ndarray:
    """``np.searchsorted`` on (key, value) pairs sorted by key then value: for each query, how many
    pairs come before it (``side`` "left": pairs < the query; "right": pairs <= it)."""
    n = len(keys)
    is_query = np.concatenate([np.zeros(n, bool), np.ones(len(q_keys), bool)])
    ties = is_query if side == "right" else ~is_query  # "right": pairs equal to a query sort before it
    order = np.lexsort((ties, np.concatenate([values, q_values]), np.concatenate([keys, q_keys])))
    pairs_so_far = np.cumsum(~is_query[order])
    out = np.empty(len(q_keys), np.int64)
    at = is_query[order]
    out[order[at] - n] = pairs_so_far[at]
    return out


@dataclass
class _Lives:
    """The faces (lives of a track number) of a device's attention events, as columns: a kiosk that
    restarts numbers its faces from 1 again, so a track's first state (``previous`` null) starts a new
    face, as does any event after an ``absent``."""

    key: np.ndarray  # face_key
    start: np.ndarray
    end: np.ndarray  # its ``absent``, or when its last state ended


def _attention(rows: Rows, horizon: dict[str, float]) -> tuple[Segments, _Lives]:
    """Every face's attention segments, and its lives."""
    pick = np.nonzero((rows.kind == KINDS.index("attention")) & (rows.track != NO_TRACK))[0]
    pick = pick[np.lexsort((pick, rows.track[pick], rows.device[pick]))]  # by face, then time
    dev, track, ts = rows.device[pick], rows.track[pick], rows.ts[pick]
    absent = rows.value_codes([ABSENT])[pick] == 0
    n = len(pick)
    new_life = np.ones(n, bool)
    if n > 1:
        new_life[1:] = (dev[1:] != dev[:-1]) | (track[1:] != track[:-1]) | rows.first[pick][1:] | absent[:-1]
    life = np.cumsum(new_life) - 1
    first = np.nonzero(new_life)[0]
    last = np.append(first[1:] - 1, n - 1) if n else first
    life_dev, life_t0, life_t1 = dev[first], ts[first], ts[last]
    # until when a life's open state holds: its device's horizon, or before the device restarted
    hz = _horizon_of(rows, horizon)[life_dev] if n else np.zeros(0)
    until = np.where(np.isnan(hz), life_t1, hz)
    for d, times in _restarts(life_dev, life_t0, track[first]).items():
        mine = np.nonzero(life_dev == d)[0]
        j = np.searchsorted(times, life_t0[mine], side="right")
        later = j < len(times)
        heard = rows.ts[rows.device == d]  # in time order
        for i, r in zip(mine[later].tolist(), np.asarray(times)[j[later]].tolist(), strict=True):
            k = bisect.bisect_left(heard, r)
            before = float(heard[k - 1]) if k else r
            until[i] = min(until[i], max(life_t1[i], before))
    # each state ends at the face's next event (an ``absent`` trims the unseen tail), the last at ``until``
    same_next = np.zeros(n, bool)
    same_next[:-1] = life[1:] == life[:-1]
    nxt = np.minimum(np.arange(n) + 1, max(0, n - 1))
    trim = same_next & absent[nxt] & (rows.number[pick][nxt] > 0)
    end = np.where(same_next, np.where(trim, np.minimum(ts[nxt], ts + rows.number[pick][nxt]), ts[nxt]),
                   np.maximum(ts, until[life] if n else ts))
    life_end = np.where(absent[last], life_t1, np.maximum(life_t1, until)) if n else np.zeros(0)
    keep = (rows.value_codes(PRESENT_STATES)[pick] >= 0) & (end > ts)
    segments = Segments(rows.devices, dev[keep], track[keep], rows.values, rows.value[pick][keep], ts[keep], end[keep])
    return segments, _Lives(face_key(life_dev, track[first]), life_t0, life_end)


def _emotion(rows: Rows, lives: _Lives, horizon: dict[str, float]) -> Segments:
    """Every face's emotion segments: each holds until the face's next emotion or the end of the life
    it falls in (the face's first life where it comes before any; a face with no attention events:
    until its device's horizon)."""
    pick = np.nonzero((rows.kind == KINDS.index("emotion")) & (rows.track != NO_TRACK))[0]
    pick = pick[np.lexsort((pick, rows.track[pick], rows.device[pick]))]
    dev, track, ts = rows.device[pick], rows.track[pick], rows.ts[pick]
    key = face_key(dev, track)
    n = len(pick)
    if not n:
        return Segments(rows.devices, dev, track, rows.values, rows.value[pick], ts, ts)
    at = searchsorted_by_key(lives.key, lives.start, key, ts, "right") - 1  # the last life begun by then
    first = searchsorted_by_key(lives.key, lives.start, key, np.full(n, -np.inf), "left")  # the face's first
    m = len(lives.key)
    in_life = (at >= 0) & (lives.key[np.clip(at, 0, max(0, m - 1))] == key) if m else np.zeros(n, bool)
    has_first = (first < m) & (lives.key[np.clip(first, 0, max(0, m - 1))] == key) if m else np.zeros(n, bool)
    # no life at all: from the face's first emotion until its device's horizon (or its last emotion)
    group_last = np.ones(n, bool)
    group_last[:-1] = key[1:] != key[:-1]
    last_of_group = np.flip(np.minimum.accumulate(np.flip(np.where(group_last, np.arange(n), n))))
    hz = _horizon_of(rows, horizon)[dev]
    stop = np.where(np.isnan(hz), ts[last_of_group], hz)
    if m:
        stop = np.where(has_first, lives.end[np.clip(first, 0, m - 1)], stop)
        stop = np.where(in_life, lives.end[np.clip(at, 0, m - 1)], stop)
    nxt = np.minimum(np.arange(n) + 1, n - 1)
    end = np.where(group_last, stop, np.minimum(ts[nxt], stop))
    blank = np.array([not v for v in rows.values] or [True])[rows.value[pick]]
    keep = (end > ts) & ~blank
    return Segments(rows.devices, dev[keep], track[keep], rows.values, rows.value[pick][keep], ts[keep], end[keep])


def build_stories(rows: Rows, horizon: dict[str, float]) -> Stories:
    """Segments per face from time-ordered rows; ``horizon[device]`` ends what is still open. A face
    is a (device, track) and the stretch of that track number's life (``_Lives``); a face still open
    when its kiosk restarted (``_restarts``) ends when the kiosk was last heard from before it. Its
    emotions hold until the next emotion or the end of the life they fall in."""
    attention, lives = _attention(rows, horizon)
    emotion = _emotion(rows, lives, horizon)
    s = rows.kind == KINDS.index("summary")
    summaries = Summaries(rows.devices, rows.device[s], rows.ts[s], rows.number[s], rows.blinks[s], rows.face_s[s])
    return Stories(attention, emotion, summaries)
