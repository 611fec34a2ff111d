"""Moments: the bins where a lecture's attention fell or recovered most, and where its emotions swung
most, with the rule that makes a change count stated beside them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MIN_FACE_TIME_FOR_MOMENT_S = 5.0  # a bin with less face time than this is never compared
MIN_MOMENT_CHANGE = 0.15  # a moment moves a share by at least this much (15 points)...
MIN_MOMENT_FACE_S = 15.0  # ...and that move is at least this many seconds of face time


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
