"""A frame's time for per-face work: how much each stage may spend on this frame, live.

Offline (``emocast analyze``) there is no deadline: every stage reads what it is due. Live, a frame's
interval is what the board has before the next frame arrives; per-face work gets what detection and
the rest leave, split between the stages by what each would spend at its targets, so a room too big
for the board slows every stage by the same factor instead of starving one.
"""

from __future__ import annotations

import time

BUDGET_SHARE = 0.9  # of a frame's interval, on each worker, for per-face work (the rest: capture, delivery)
MIN_SHARE = 0.1  # of a frame's interval granted to per-face work however long the frame's detection took


class FrameBudget:
    """The frame interval (``frame_ms``, None offline) over ``workers`` per-face workers."""

    def __init__(self, frame_ms: float | None, workers: int) -> None:
        self.frame_ms = frame_ms
        self.workers = workers

    @property
    def live(self) -> bool:
        return self.frame_ms is not None

    @property
    def overlapped(self) -> bool:
        """Live on several workers, a frame's readings run while the next frame is detected (offline they
        are folded in on their own frame, so the records never depend on timing)."""
        return self.frame_ms is not None and self.workers > 1

    def grants(self, t0: float, demands: list[float]) -> list[float | None]:
        """The worker time this frame grants to each stage, in the order of ``demands`` (what each would
        spend at its target rate: rate x cost a face); None each offline.

        What the frame leaves: with one worker, its interval's share less this frame's own work since
        ``t0`` (detection), never less than ``MIN_SHARE`` of the interval, so a board whose detection
        overruns its frames still reads faces; with several, whose readings overlap the next frame's
        detection, every worker's share of the interval (a batch still running when the next frame is
        done makes that frame wait for it: the room is read as fast as the cores allow, no faster).
        Split by the demands, so when the room is too big every stage falls by the same factor."""
        if self.frame_ms is None:
            return [None] * len(demands)
        if self.overlapped:  # the analysis thread's own work runs beside the workers'
            total = BUDGET_SHARE * self.frame_ms * self.workers
        else:
            spent = (time.perf_counter() - t0) * 1000
            total = max(MIN_SHARE * self.frame_ms, BUDGET_SHARE * self.frame_ms - spent)
        whole = sum(demands)
        if whole <= 0:
            return [total] + [0.0] * (len(demands) - 1)
        return [total * d / whole for d in demands]

    def cap_ms(self) -> float:
        """How much granted time a stage may carry over: two frames' worth of every worker."""
        return 2.0 * (self.frame_ms or 0.0) * self.workers
