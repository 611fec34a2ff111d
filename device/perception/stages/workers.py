"""A pool of workers for per-face work, each with its own models.

A TFLite interpreter is not safe to share between threads, and LiteRT's ``invoke`` releases the GIL,
so per-face readings scale with cores when each worker owns its interpreters: the pool holds one kit
of models per worker and lends a kit to each job. Results come back in the order the jobs were given,
so the stage that merges them sees the same sequence whatever the number of workers. With one worker
the jobs run on the caller's thread, with no pool at all.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

K = TypeVar("K")  # a worker's kit of models
J = TypeVar("J")
R = TypeVar("R")


class Pending(Generic[R]):
    """Results on their way from the workers, in the order their jobs were given, each with the time its
    worker spent on it (what the scheduler's cost estimates learn from)."""

    def __init__(self, done: list[tuple[R, float]] | None = None,
                 futures: list[Future[tuple[R, float]]] | None = None) -> None:
        self._done = done
        self._futures = futures or []

    def timed(self) -> list[tuple[R, float]]:
        """(result, ms) for every job, waiting for the ones still running."""
        if self._done is None:
            self._done = [f.result() for f in self._futures]
        return self._done

    def result(self) -> list[R]:
        return [r for r, _ in self.timed()]


class WorkerPool(Generic[K]):
    def __init__(self, kits: list[K]) -> None:
        if not kits:
            raise ValueError("a worker pool needs at least one kit of models")
        self.kits = kits
        self._free: queue.SimpleQueue[K] = queue.SimpleQueue()
        for kit in kits:
            self._free.put(kit)
        self._executor = ThreadPoolExecutor(len(kits), thread_name_prefix="reader") if len(kits) > 1 else None

    @property
    def size(self) -> int:
        return len(self.kits)

    def map(self, fn: Callable[[K, J], R], jobs: list[J]) -> list[R]:
        """``fn(kit, job)`` for every job, in the jobs' order."""
        return self.submit(fn, jobs).result()

    def submit(self, fn: Callable[[K, J], R], jobs: list[J]) -> Pending[R]:
        """Start ``fn(kit, job)`` for every job and return at once (with one worker: run them now);
        the results come in the jobs' order."""
        def timed(kit: K, job: J) -> tuple[R, float]:
            t0 = time.perf_counter()
            result = fn(kit, job)
            return result, (time.perf_counter() - t0) * 1000

        if self._executor is None:
            return Pending(done=[timed(self.kits[0], job) for job in jobs])

        def run(job: J) -> tuple[R, float]:
            kit = self._free.get()
            try:
                return timed(kit, job)
            finally:
                self._free.put(kit)

        return Pending(futures=[self._executor.submit(run, job) for job in jobs])

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
