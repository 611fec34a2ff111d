"""The durable outbox: every event is committed to SQLite before it is published, and deleted only
when the broker has acknowledged it.

``seq`` is allocated in the same transaction that stores the event, so it is gap-free, monotonic and
survives restarts and ``kill -9``. WAL with ``synchronous=FULL`` makes each commit durable across a
power cut too; at a few events a second the fsync costs nothing that matters. When the cap is hit the
oldest events are dropped and counted, never silently.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .events import Topics, encode, envelope

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    created REAL NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1), ('dropped', 0);
"""


DROP_LOG_INTERVAL_S = 60.0


class OutboxError(Exception):
    """The outbox file cannot be opened or written."""


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    topic: str
    payload: bytes
    qos: int
    created: float


class Outbox:
    def __init__(self, path: Path, topics: Topics, max_events: int = 100_000) -> None:
        self.path = Path(path)
        self.topics = topics
        self.max_events = max_events
        self._lock = threading.Lock()
        self._last_drop_log = float("-inf")
        self._unlogged_drops = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open the outbox {self.path}: {exc}") from exc

    def append(self, kind: str, body: dict[str, Any], wall: float | None = None) -> dict[str, Any]:
        """Give the event its envelope and seq, commit it, and return the payload as stored."""
        wall = time.time() if wall is None else wall
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                seq = cur.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
                payload = envelope(kind, body, self.topics.device, seq, wall)
                cur.execute(
                    "INSERT INTO outbox (seq, topic, payload, qos, created) VALUES (?, ?, ?, 1, ?)",
                    (seq, self.topics.for_kind(kind), encode(payload), wall),
                )
                cur.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
                self._enforce_cap(cur)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return payload

    def _enforce_cap(self, cur: sqlite3.Cursor) -> None:
        depth = cur.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        excess = depth - self.max_events
        if excess > 0:
            cur.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,))
            cur.execute("UPDATE meta SET value = value + ? WHERE key='dropped'", (excess,))
            self._unlogged_drops += excess
            now = time.monotonic()
            if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:  # a week offline must not flood the journal
                log.warning("outbox full (%d events): dropped the %d oldest since the last warning "
                            "(reported as dropped_events in summaries and metrics)",
                            self.max_events, self._unlogged_drops)
                self._last_drop_log, self._unlogged_drops = now, 0

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[StoredEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos, created FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [StoredEvent(*r) for r in rows]

    def ack(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def oldest_age_s(self, now: float | None = None) -> float:
        with self._lock:
            row = self._db.execute("SELECT MIN(created) FROM outbox").fetchone()
        if row is None or row[0] is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - row[0])

    def dropped_total(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()[0])

    def next_seq(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
