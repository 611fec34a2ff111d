"""From a lecture's face stories to its bins: face time per state, emotion and blink, per device and bin,
and which devices may count in each bin under ``min_faces``.

Everything is computed as arrays (device x bin), each interval spread over the bins it covers at
once (``spread``), so a timeline costs its segments plus its bins, in numpy, not a Python step per
segment and bin; the room's bins and each device's own are read off the same arrays.

``min_faces`` > 1 applies per device: a device with fewer faces present at some moment of a bin adds
its faces to ``faces`` but nothing to any share, blink rate or emotion of that bin, so no difference
of two views that are shown (the room less one kiosk, one lecture less another over the same time)
can single out fewer than ``min_faces`` faces: each share is of whole devices that each had
``min_faces`` or more. "Had" means at every moment of the bin, not on average (``least_faces``): a
view that is shown holds a device only over stretches where it never had fewer, so no difference of
shown views (two bin lengths, two lectures over the same time whose bins start a few seconds apart)
is a slice of time in which fewer faces were there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emocast.contract.events import ATTENTIVE, PRESENT_STATES

from .stories import Stories, face_key, searchsorted_by_key

NICE_BINS_S = (5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)


@dataclass(frozen=True)
class Grid:
    """Bins of ``bin_s`` from ``start`` to ``end`` (the last one cut at ``end``)."""

    start: float
    end: float
    bin_s: float

    @property
    def n(self) -> int:
        return max(1, int(-(-(self.end - self.start) // self.bin_s)))

    def bounds(self, i: int) -> tuple[float, float]:
        b0 = self.start + i * self.bin_s
        return b0, min(self.end, b0 + self.bin_s)

    def lengths(self) -> np.ndarray:
        left = self.start + np.arange(self.n) * self.bin_s
        return np.minimum(self.end, left + self.bin_s) - left


def spread(grid: Grid, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray, n_rows: int,
           weights: np.ndarray | None = None) -> np.ndarray:
    """``[n_rows, grid.n]``: the seconds of each interval [starts, ends) inside each bin (times its
    weight), summed per row (``rows``: each interval's row index). An interval's first and last bin
    get their parts; the whole bins between get ``bin_s`` each through a running sum of +/- marks, so
    an hour-long face costs as much as a second-long one."""
    n = grid.n
    a0, a1 = np.maximum(starts, grid.start), np.minimum(ends, grid.end)
    keep = a1 > a0
    a0, a1, rows = a0[keep], a1[keep], rows[keep]
    w = np.ones(len(a0)) if weights is None else weights[keep]
    first = np.clip(((a0 - grid.start) // grid.bin_s).astype(np.int64), 0, n - 1)
    last = np.clip(((a1 - grid.start) // grid.bin_s).astype(np.int64), 0, n - 1)
    one = first == last
    head = np.where(one, a1 - a0, grid.start + (first + 1) * grid.bin_s - a0)
    tail = np.where(one, 0.0, a1 - (grid.start + last * grid.bin_s))
    size = n_rows * n
    out = np.bincount(rows * n + first, head * w, size) + np.bincount(rows * n + last, tail * w, size)
    whole = last > first + 1
    if whole.any():  # open weight per bin: +w where an interval's whole bins begin, -w after they end
        r, f, la = rows[whole], first[whole], last[whole]
        size = n_rows * (n + 1)
        if weights is None:  # counts, exactly
            marks = np.bincount(r * (n + 1) + f + 1, minlength=size) - np.bincount(r * (n + 1) + la, minlength=size)
        else:
            ww = w[whole]
            marks = np.bincount(r * (n + 1) + f + 1, ww, size) - np.bincount(r * (n + 1) + la, ww, size)
        open_weight = np.cumsum(marks.reshape(n_rows, n + 1), axis=1)[:, :n]
        if weights is not None:  # a run of +w and -w leaves a rounding residue, not a weight
            open_weight[np.abs(open_weight) < 1e-9] = 0.0
        out += (open_weight * grid.bin_s).reshape(-1)
    return out.reshape(n_rows, n)


def least_faces(grid: Grid, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """``[n_rows, grid.n]``: the fewest intervals (faces) of each row open at any moment of each bin.

    Each row's count steps +1 at an interval's start and -1 at its end; sorted by row and time, the
    running sum returns to 0 after each row's last step (every interval ends). A bin's fewest is the
    smaller of its count at the bin's start and after each step inside it."""
    out = np.zeros((n_rows, grid.n), np.int64)
    if not len(starts):
        return out
    t = np.concatenate([starts, ends])
    row = np.concatenate([rows, rows])
    order = np.lexsort((t, row))
    t, row = t[order], row[order]
    count = np.cumsum(np.concatenate([np.ones(len(starts), np.int64), -np.ones(len(ends), np.int64)])[order])
    last = np.ones(len(t), bool)  # the count after all steps at one time
    last[:-1] = (row[1:] != row[:-1]) | (t[1:] != t[:-1])
    t, row, count = t[last], row[last], count[last]
    # at each bin's start: the count after the row's last step at or before it
    left = grid.start + np.arange(grid.n) * grid.bin_s
    q_row = np.repeat(np.arange(n_rows), grid.n)
    at = searchsorted_by_key(row, t, q_row, np.tile(left, n_rows), "right") - 1
    valid = (at >= 0) & (row[np.clip(at, 0, len(row) - 1)] == q_row)
    out[:] = np.where(valid, count[np.clip(at, 0, len(row) - 1)], 0).reshape(n_rows, grid.n)
    # after each step inside a bin
    k = ((t - grid.start) // grid.bin_s).astype(np.int64)
    inside = (t > grid.start) & (t < grid.end) & (k >= 0) & (k < grid.n)
    inside &= t > left[np.clip(k, 0, grid.n - 1)]
    np.minimum.at(out, (row[inside], k[inside]), count[inside])
    return out


def overlaps(a_key: np.ndarray, a_start: np.ndarray, a_end: np.ndarray, b_key: np.ndarray, b_start: np.ndarray,
             b_end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where intervals of ``a`` and ``b`` with the same key overlap: (index into ``b``, start, end) of
    each overlap. Within a key, ``a``'s intervals must not overlap each other (a face's attention
    segments follow one another), so they are sorted by start and by end alike and the ones that meet
    one ``b`` interval are a contiguous run found by two searches."""
    order = np.lexsort((a_start, a_key))
    key, s, e = a_key[order], a_start[order], a_end[order]
    lo = searchsorted_by_key(key, e, b_key, b_start, "right")  # the first a ending after b starts
    hi = searchsorted_by_key(key, s, b_key, b_end, "left")  # the first a starting at or after b's end
    count = np.maximum(0, hi - lo)
    which = np.repeat(np.arange(len(b_key)), count)
    offsets = np.cumsum(count) - count
    idx = lo[which] + (np.arange(len(which)) - offsets[which])
    lo_t, hi_t = np.maximum(b_start[which], s[idx]), np.minimum(b_end[which], e[idx])
    keep = hi_t > lo_t
    return which[keep], lo_t[keep], hi_t[keep]


@dataclass
class Tally:
    """A lecture's face time on one grid, per device (``devices``: its row order): ``states``
    [device, state, bin] in ``PRESENT_STATES`` order, ``emotions`` [device, label, bin] (attentive
    time with that emotion), ``blinks`` and ``blink_face_s`` [device, bin] from the summaries, and
    ``least`` [device, bin]: the fewest faces the device had at any moment of the bin."""

    grid: Grid
    devices: list[str]
    labels: list[str]
    states: np.ndarray
    emotions: np.ndarray
    blinks: np.ndarray
    blink_face_s: np.ndarray
    least: np.ndarray

    @classmethod
    def of(cls, stories: Stories, grid: Grid) -> Tally:
        att, emo, summ = stories.attention, stories.emotion, stories.summaries
        devices = sorted(set(att.devices) | set(emo.devices) | set(summ.devices))
        n_dev, n_states = len(devices), len(PRESENT_STATES)
        dev_a = att.device_codes(devices)
        state = att.value_codes(PRESENT_STATES)
        present = state >= 0
        states = spread(grid, att.start[present], att.end[present], (dev_a * n_states + state)[present],
                        n_dev * n_states).reshape(n_dev, n_states, grid.n)
        # attentive time with an emotion: per face, its emotion segments against its attentive ones
        labels = sorted({emo.values[c] for c in np.unique(emo.value).tolist()})
        n_labels = max(1, len(labels))
        attentive = state == PRESENT_STATES.index(ATTENTIVE)
        dev_e = emo.device_codes(devices)
        which, lo, hi = overlaps(face_key(dev_a, att.track)[attentive], att.start[attentive], att.end[attentive],
                                 face_key(dev_e, emo.track), emo.start, emo.end)
        label = emo.value_codes(labels)[which]
        emotions = spread(grid, lo, hi, dev_e[which] * n_labels + label, n_dev * n_labels).reshape(n_dev, n_labels,
                                                                                                 grid.n)
        dev_s = summ.device_codes(devices)
        window = summ.window_s
        ok = window > 0
        per_s = np.divide(1.0, window, out=np.zeros_like(window), where=ok)
        blinks = spread(grid, (summ.ts - window)[ok], summ.ts[ok], dev_s[ok], n_dev, (summ.blinks * per_s)[ok])
        blink_face_s = spread(grid, (summ.ts - window)[ok], summ.ts[ok], dev_s[ok], n_dev,
                              (summ.face_time_s * per_s)[ok])
        least = least_faces(grid, att.start[present], att.end[present], dev_a[present], n_dev)
        return cls(grid, devices, labels, states, emotions, blinks, blink_face_s, least)

    def counted(self, rows: np.ndarray, min_faces: int, pool_small: bool) -> np.ndarray:
        """[device, bin] for the devices ``rows`` viewed together: which may count in each bin (present,
        with ``min_faces`` or more faces at every moment of it; with ``pool_small``, the smaller devices
        together where together they always had that many)."""
        return countable(self.states[rows].sum(axis=1) > 0, self.least[rows], min_faces, pool_small)


def countable(present: np.ndarray, least: np.ndarray, min_faces: int, pool_small: bool) -> np.ndarray:
    """[device, bin]: the present devices whose faces may count in each bin: those that never had
    fewer than ``min_faces`` faces in it, and (``pool_small``) the others too where together they never
    had fewer (the sum of each one's fewest: a bound from below, never an overcount)."""
    if min_faces <= 1:
        return present
    big = present & (least >= min_faces)
    if not pool_small:
        return big
    small = np.where(present & ~big, least, 0).sum(axis=0)
    return big | (present & (small >= min_faces))


def tally_bins(tally: Tally, rows: Sequence[int], video_offset_s: float, min_faces: int,
               pool_small: bool) -> list[dict[str, Any]]:
    """The bins of the devices ``rows`` of ``tally`` viewed together (the room, or one device)."""
    rows = np.asarray(rows, np.int64)
    grid = tally.grid
    states = tally.states[rows]  # [device, state, bin]
    face_s = states.sum(axis=1)  # [device, bin]
    counted = tally.counted(rows, min_faces, pool_small)
    shown = (states * counted[:, None, :]).sum(axis=0)  # [state, bin]
    emotions = (tally.emotions[rows] * counted[:, None, :]).sum(axis=0)  # [label, bin]
    blinks = (tally.blinks[rows] * counted).sum(axis=0)
    blink_face_s = (tally.blink_face_s[rows] * counted).sum(axis=0)
    present = (face_s > 0).sum(axis=0)
    withheld = present - counted.sum(axis=0)
    all_face_s = face_s.sum(axis=0)
    out = []
    for i in range(grid.n):
        shared = {k: float(shown[j, i]) for j, k in enumerate(PRESENT_STATES)}
        read = {label: float(emotions[j, i]) for j, label in enumerate(tally.labels) if emotions[j, i] > 0}
        b = _bin(grid, i, shared, read, float(blinks[i]), float(blink_face_s[i]), int(present[i]), video_offset_s,
                 float(all_face_s[i]))
        b["devices_withheld"] = int(withheld[i])
        out.append(b)
    peak = max((b["faces"] for b in out), default=0.0)
    for b in out:
        b["absent_share"] = round(1.0 - b["faces"] / peak, 4) if peak > 0 else None
    return out


def _bin(grid: Grid, i: int, state_time: dict[str, float], emotion_time: dict[str, float], blinks: float,
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
