"""What ingest stored, told to live pages' streams without a query each.

A live lecture's page keeps one Server-Sent Events stream open; a school may have a few hundred open
at once. Ingest, in the same process, counts what it commits per device here; each stream compares its
devices' counts in memory twice a second and says ``changed`` when they moved. The database is asked
only every ``DB_CHECK_S`` (another hub of a share group, or an import, may have written; a lecture
stopped from the command line has ended). Streams are capped (``[web] max_streams``): one more is
refused with 503 instead of slowing every other request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class ChangeFeed:
    def __init__(self, max_streams: int = 100) -> None:
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self._stored: dict[str, int] = {}  # device -> events committed by this process's ingest
        self._ended: set[str] = set()  # lectures stopped through this process's API
        self.streams = 0

    def stored(self, devices: Iterable[str]) -> None:
        """Ingest committed events of ``devices`` (the writer thread)."""
        with self._lock:
            for device in devices:
                self._stored[device] = self._stored.get(device, 0) + 1

    def mark(self, devices: Iterable[str]) -> int:
        """A number that moves whenever ingest commits an event of one of ``devices``."""
        with self._lock:
            return sum(self._stored.get(d, 0) for d in devices)

    def end(self, lecture_id: str) -> None:
        with self._lock:
            self._ended.add(lecture_id)

    def ended(self, lecture_id: str) -> bool:
        with self._lock:
            return lecture_id in self._ended

    def open(self) -> bool:
        """Take a stream's place; False when ``max_streams`` are open."""
        with self._lock:
            if self.streams >= self.max_streams:
                return False
            self.streams += 1
            return True

    def close(self) -> None:
        with self._lock:
            self.streams = max(0, self.streams - 1)
