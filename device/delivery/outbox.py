"""The durable outbox: every event is committed to SQLite before it is published, and deleted only
when the broker has acknowledged it.

``seq`` is allocated in the same transaction that stores the event, so it is gap-free, monotonic and
survives restarts and ``kill -9``. WAL with ``synchronous=FULL`` makes each commit durable across a
power cut too; at a few events a second the fsync costs nothing that matters. When the cap is hit the
oldest events are dropped and counted, never silently.

Faults a kiosk meets for real:
- a full disk: the WAL is checkpointed and truncated to make room; if an event still cannot be
  written it is dropped and counted (in memory until it can be saved), the publisher keeps draining
  (acknowledged events it cannot delete yet are remembered and deleted when space returns), a warning
  goes out at most once a minute, and writing resumes by itself;
- a corrupt file (garbage, a malformed page): it is moved aside as ``<name>.corrupt-<time>``, logged
  once with its path, and a fresh outbox starts with ``seq`` above any value the old one could have
  given: a side file ``<name>.seq`` reserves seqs a block at a time (one small write per block).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emocast.contract.events import Topics, encode, envelope
from emocast.core.errors import EmocastError, ExitCode

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
MAX_RESTARTS = 16  # fresh starts after a corrupt outbox remembered for the hub
SEQ_BLOCK = 1000  # seqs reserved in the side file at a time
BALLAST_BYTES = 64 * 1024  # kept beside the outbox and given up when the disk fills, so SQLite can still
# checkpoint, delete what the broker acknowledged and shrink the file: on a full disk even a delete writes
_FULL = ("database or disk is full", "disk i/o error")


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(s in str(exc).lower() for s in _FULL)


def _corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


class OutboxError(EmocastError):
    """The outbox file cannot be opened or written."""

    exit_code = ExitCode.OUTBOX


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
        self._unsaved_drops = 0  # dropped on a full disk, not yet added to meta.dropped
        self._acked_unsaved: set[int] = set()  # acknowledged, not yet deleted (full disk)
        self.resets = 0  # corrupt files moved aside at this start
        self._seq_file = self.path.with_name(self.path.name + ".seq")
        self._restarts_file = self.path.with_name(self.path.name + ".restarts")
        self._ballast = self.path.with_name(self.path.name + ".reserve")
        self._ballast_tried = self._recover_tried = float("-inf")
        self._tight = False  # the disk filled up: drain first, write again once the reserve fits
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and not _corrupt(exc):
                    raise
                self._move_aside(exc)
                self._db = self._open()
            self._reserved = self._reserve_from(self._read_seq_file())
            if self.resets:
                self._record_restart()
            self._restore_ballast()
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open the outbox {self.path}: {exc}") from exc

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # a new file can give freed pages back to the disk
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA wal_autocheckpoint=16")  # keep the WAL small: it is most of a tiny disk
            db.execute("PRAGMA journal_size_limit=262144")
            db.executescript(_SCHEMA)
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({check})")
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, exc: BaseException) -> None:
        """A file SQLite cannot read is kept for a post-mortem, never reopened: systemd would restart
        a service that exits on it every few seconds for ever."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        moved = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        self.path.replace(moved)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.replace(moved.with_name(moved.name + suffix))
        self.resets += 1
        log.error("outbox %s is unreadable (%s): moved aside to %s; a fresh outbox starts, seq continues "
                  "above %d (its undelivered events are lost)", self.path, exc, moved, self._read_seq_file())

    def _record_restart(self) -> None:
        """A fresh outbox after a corrupt one starts its seqs above what may have been given out: the
        seqs between the last one the hub got and this one may never have existed, or were lost with
        the file. The first seq of each such start is kept (a side file, fsync'd) and published in
        ``info`` (``seq_restarts``), so the hub counts that gap as unknown, not as missing."""
        first = int(self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])
        restarts = [*self.seq_restarts()[-(MAX_RESTARTS - 1):], first]
        tmp = self._restarts_file.with_name(self._restarts_file.name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(json.dumps(restarts) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self._restarts_file)

    def seq_restarts(self) -> list[int]:
        """The first seq of each fresh start after a corrupt outbox (the newest ``MAX_RESTARTS``)."""
        try:
            values = json.loads(self._restarts_file.read_text())
        except (OSError, ValueError):
            return []
        return [int(v) for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0]

    def _read_seq_file(self) -> int:
        try:
            return int(self._seq_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _reserve_from(self, high_water: int) -> int:
        """Seqs below ``high_water`` (the side file) may have been given out. A fresh database (after a
        corrupt one was moved aside, or the file was deleted) starts there; an existing one keeps its
        own next_seq. Returns the end of the reserved block."""
        cur = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
        if cur == 1 and high_water > 1:
            self._db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (high_water,))
            cur = high_water
        if high_water > cur:
            return high_water
        self._write_seq_file(cur + SEQ_BLOCK)
        return cur + SEQ_BLOCK

    def _write_seq_file(self, value: int) -> None:
        tmp = self._seq_file.with_name(self._seq_file.name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(f"{value}\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self._seq_file)

    def append(self, kind: str, body: dict[str, Any], wall: float | None = None) -> dict[str, Any] | None:
        """Give the event its envelope and seq, commit it, and return the payload as stored; None
        when the disk is full (the event is dropped and counted)."""
        wall = time.time() if wall is None else wall
        with self._lock:
            if self._tight and not self._recover(throttle=True):
                self._drop_full("the disk under the outbox is still full")
                return None
            try:
                return self._append_locked(kind, body, wall)
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
                self._enter_tight()
                self._drop_full(f"the outbox {self.path} cannot be written ({exc})")
                return None

    def _drop_full(self, why: str) -> None:
        self._unsaved_drops += 1
        self._warn_drop(why, 1)

    def _append_locked(self, kind: str, body: dict[str, Any], wall: float) -> dict[str, Any]:
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            seq = cur.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
            if seq >= self._reserved:  # one small write per SEQ_BLOCK events
                try:
                    self._write_seq_file(seq + SEQ_BLOCK)
                except OSError as exc:  # the same full disk, seen through the side file
                    raise sqlite3.OperationalError(f"disk I/O error writing {self._seq_file}: {exc}") from exc
                self._reserved = seq + SEQ_BLOCK
            payload = envelope(kind, body, self.topics.device, seq, wall)
            cur.execute(
                "INSERT INTO outbox (seq, topic, payload, qos, created) VALUES (?, ?, ?, 1, ?)",
                (seq, self.topics.for_kind(kind), encode(payload), wall),
            )
            cur.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
            if self._unsaved_drops:
                cur.execute("UPDATE meta SET value = value + ? WHERE key='dropped'", (self._unsaved_drops,))
            if self._acked_unsaved:
                cur.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in self._acked_unsaved])
            self._enforce_cap(cur)
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already (disk full)
                cur.execute("ROLLBACK")
            raise
        self._unsaved_drops = 0
        self._acked_unsaved.clear()
        self._restore_ballast()
        return payload

    def _enter_tight(self) -> None:
        """The disk is full: give up the reserve (the room SQLite needs to checkpoint and to delete
        what the broker acknowledges) and stop writing new events until draining has freed space."""
        self._tight = True
        self._recover_tried = time.monotonic()  # the next try in 5 s, or as acknowledgements free pages
        if self._ballast.exists():
            with contextlib.suppress(OSError):
                self._ballast.unlink()
        log.warning("disk full under the outbox %s: new events are dropped (counted) while it drains; "
                    "writing resumes when there is room", self.path)
        self._make_room()

    def _make_room(self) -> bool:
        """Checkpoint the WAL into the database and truncate it, and hand the pages of deleted events
        back to the filesystem."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("PRAGMA incremental_vacuum")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return True
        except sqlite3.Error:
            return False

    def _recover(self, throttle: bool) -> bool:
        """Out of the full-disk state once the reserve fits again; True when writing may resume."""
        now = time.monotonic()
        if throttle and now - self._recover_tried < 5.0:
            return False
        self._recover_tried = now
        self._make_room()
        self._ballast_tried = float("-inf")
        self._restore_ballast()
        if self._ballast.exists():
            self._tight = False
            log.warning("the outbox %s has room again: writing events resumes", self.path)
        return not self._tight

    def _restore_ballast(self) -> None:
        """Put the reserve back once the disk has room again (tried at most every 10 s)."""
        now = time.monotonic()
        if self._ballast.exists() or now - self._ballast_tried < 10.0:
            return
        self._ballast_tried = now
        try:
            with open(self._ballast, "wb") as fh:
                fh.write(b"\0" * BALLAST_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                self._ballast.unlink()

    def _warn_drop(self, why: str, n: int) -> None:
        self._unlogged_drops += n
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:  # a week offline must not flood the journal
            log.warning("%s: dropped %d events since the last warning (reported as dropped_events in "
                        "summaries and metrics)", why, self._unlogged_drops)
            self._last_drop_log, self._unlogged_drops = now, 0

    def _enforce_cap(self, cur: sqlite3.Cursor) -> None:
        depth = cur.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        excess = depth - self.max_events
        if excess > 0:
            cur.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,))
            cur.execute("UPDATE meta SET value = value + ? WHERE key='dropped'", (excess,))
            self._warn_drop(f"outbox full ({self.max_events} events), the oldest go first", excess)

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[StoredEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos, created FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit + len(self._acked_unsaved)),
            ).fetchall()
        return [StoredEvent(*r) for r in rows if r[0] not in self._acked_unsaved][:limit]

    def ack(self, seq: int) -> None:
        """Delete an acknowledged event; on a full disk remember it (it is never sent again) and
        delete it with the next write that succeeds."""
        with self._lock:
            for attempt in range(2):
                try:
                    self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                    if self._tight and seq % 20 == 0:  # draining a full disk: give pages back as we go
                        self._recover(throttle=False)
                    return
                except sqlite3.OperationalError as exc:
                    if not _disk_full(exc):
                        raise
                    if attempt == 0 and self._make_room():
                        continue
                    self._acked_unsaved.add(seq)

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]) - len(self._acked_unsaved)

    def oldest_age_s(self, now: float | None = None) -> float:
        with self._lock:
            row = self._db.execute("SELECT MIN(created) FROM outbox").fetchone()
        if row is None or row[0] is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - row[0])

    def metrics(self) -> dict[str, int | float]:
        """The outbox's fields of the metrics event: what waits, for how long, what a full disk or a
        corrupt file cost."""
        return {"outbox_depth": self.depth(), "outbox_oldest_s": round(self.oldest_age_s(), 3),
                "events_dropped": self.dropped_total(), "outbox_resets": self.resets}

    def dropped_total(self) -> int:
        with self._lock:
            saved = int(self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()[0])
            return saved + self._unsaved_drops

    def next_seq(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
