"""Which faces to read on this frame: by staleness, toward a per-face rate, inside a frame's budget.

A kiosk has time to read each of its one to three faces at every detection; a classroom camera with
30 faces does not. Reading every face on every frame that detects makes the frame as slow as its
room (30 faces x 8 ms: a quarter of a second), so detection, tracking and absence all slow with it.
Instead each face has a target (``[attention] read_hz`` readings a second, ``[emotion] emotion_hz``),
and each frame reads, most overdue first, what fits in the time it leaves: a face never read comes
first, then the face read longest ago relative to its target. When the room is too big for the
targets, the faces take turns, so every face's rate falls by the same factor and none starves.

Offline (``emocast analyze``: media time, no deadline) there is no budget, so a recording gives the
same records at any speed and on any number of workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

AS_FAST_AS_IT_CAN_HZ = 1000.0  # read_hz = 0: every face is always due; its staleness still orders the turns
DUE_SLACK = 0.999  # a face read 1/hz ago on a frame clock of rounded timestamps is due


@dataclass(frozen=True)
class Candidate:
    """A face that may be read now: its track, when it was last read (None: never), its target rate;
    ``now``: due whatever its rate (a face the detector has just found again)."""

    key: int
    last_t: float | None
    hz: float
    now: bool = False

    def due(self, t: float) -> bool:
        if self.last_t is None or self.now:
            return True
        hz = self.hz if self.hz > 0 else AS_FAST_AS_IT_CAN_HZ
        return t - self.last_t >= DUE_SLACK / hz

    def lateness(self, t: float) -> float:
        """How many target intervals ago it was last read (infinite when never)."""
        if self.last_t is None:
            return math.inf
        hz = self.hz if self.hz > 0 else AS_FAST_AS_IT_CAN_HZ
        return (t - self.last_t) * hz


class CostEstimate:
    """A running estimate of what one reading costs (ms of one worker), for the budget."""

    def __init__(self, initial_ms: float, weight: float = 0.1) -> None:
        self.ms = initial_ms
        self.weight = weight

    def add(self, ms: float) -> None:
        self.ms += self.weight * (ms - self.ms)


class Credit:
    """Worker time a stage may spend, granted each frame and carried over (up to a cap). A stage whose
    share of a frame is smaller than one reading (emotion beside 30 faces' attention) still gets its
    turn every few frames, without a one-a-frame floor that would let it crowd out the other."""

    def __init__(self) -> None:
        self.ms = 0.0

    def grant(self, ms: float, cap_ms: float) -> None:
        self.ms = min(cap_ms, self.ms + ms)

    def spend(self, n: int, cost_ms: float) -> None:
        self.ms -= n * cost_ms


def pick(candidates: list[Candidate], t: float, budget_ms: float | None, cost_ms: float,
         minimum: int = 1) -> list[Candidate]:
    """The due candidates to read now, most overdue first (never-read first, ties by key: the older
    track), as many as ``budget_ms`` affords at ``cost_ms`` each, and at least ``minimum`` when any is
    due. ``budget_ms`` None: every due candidate."""
    due = [c for c in candidates if c.due(t)]
    due.sort(key=lambda c: (-c.lateness(t), c.key))
    if budget_ms is None:
        return due
    n = max(minimum, int(max(0.0, budget_ms) // max(cost_ms, 1e-3)))
    return due[:n]


def pick_with(credit: Credit, candidates: list[Candidate], t: float, grant_ms: float | None, cap_ms: float,
              cost_ms: float) -> list[Candidate]:
    """``pick`` paid from ``credit``: this frame's ``grant_ms`` added (None: no limit at all)."""
    if grant_ms is None:
        return pick(candidates, t, None, cost_ms)
    credit.grant(grant_ms, cap_ms)
    chosen = pick(candidates, t, credit.ms, cost_ms, minimum=0)
    credit.spend(len(chosen), cost_ms)
    return chosen
