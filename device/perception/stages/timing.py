"""What a stage reports of itself: latency percentiles, and per-face rates over a metrics window."""

from __future__ import annotations

import statistics
from collections import deque

import numpy as np


class StageTimer:
    """Recent latencies of one stage, for p50/p95 in metrics and benchmarks."""

    def __init__(self, size: int = 512) -> None:
        self.samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, ms: float) -> None:
        self.samples.append(ms)
        self.count += 1

    def percentiles(self) -> dict[str, float]:
        if not self.samples:
            return {"p50": 0.0, "p95": 0.0, "n": 0}
        arr = np.fromiter(self.samples, dtype=np.float64)
        return {"p50": round(float(np.percentile(arr, 50)), 3), "p95": round(float(np.percentile(arr, 95)), 3),
                "n": self.count}


MIN_PRESENT_S = 2.0  # a face seen for less of a window says little about its rate (one read more or less)
MAX_GAP_S = 0.5  # frames further apart than this for one face: it was away in between, not waiting


class RateWindow:
    """Readings per face per second of media time since the window opened: a face's rate is its
    readings over the time it was there to be read (the frames it was present on), so a face that
    arrived mid-window or was hidden for a while is not counted as slow."""

    def __init__(self, start_t: float) -> None:
        self.start_t = start_t
        self.reads: dict[int, int] = {}
        self.time: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def present(self, key: int, t: float) -> None:
        last = self.last.get(key)
        if last is not None and 0.0 < t - last <= MAX_GAP_S:
            self.time[key] = self.time.get(key, 0.0) + (t - last)
        else:
            self.time.setdefault(key, 0.0)
        self.last[key] = t

    def read(self, key: int) -> None:
        self.reads[key] = self.reads.get(key, 0) + 1

    def rates(self) -> list[float]:
        return [self.reads.get(key, 0) / span for key, span in self.time.items() if span >= MIN_PRESENT_S]

    def median(self) -> float | None:
        rates = self.rates()
        return round(statistics.median(rates), 3) if rates else None


class Rates:
    """A stage's per-face rates, over the current metrics window and over the whole run (for the
    service's closing line)."""

    def __init__(self) -> None:
        self.window: RateWindow | None = None  # since the last metrics
        self.run: RateWindow | None = None  # since the start

    def present(self, key: int, t: float) -> None:
        if self.window is None:
            self.window = RateWindow(t)
        if self.run is None:
            self.run = RateWindow(t)
        self.window.present(key, t)
        self.run.present(key, t)

    def read(self, key: int) -> None:
        for window in (self.window, self.run):
            if window is not None:
                window.read(key)

    def take(self, t: float, run: bool = False) -> float | None:
        """The median rate since the last call, which opens the next window (``run``: since the start,
        nothing reset)."""
        window = self.run if run else self.window
        rate = window.median() if window is not None else None
        if not run:
            self.window = RateWindow(t)
        return rate
