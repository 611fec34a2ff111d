"""The hub's store: one schema on SQLite (the embedded default) or PostgreSQL (a district's hundreds
of kiosks), behind one small class.

Ingest writes in batches, one transaction each, and acknowledges messages to the broker only after
``write_batch`` returns: a committed row is the hub's promise that the event is kept. SQLite runs in
WAL mode with ``synchronous=FULL`` so that promise survives a power cut, not only a killed process;
the web API reads through connections of its own while ingest writes: one Store per request, never
shared between requests or threads, closed when the request ends. Only the hub's start (and the
commands that may be the first to open a database) migrates the schema; a request never does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emocast.contract.events import DeviceStatus
from emocast.core.broker import redact_url
from emocast.core.errors import EmocastError, ExitCode

from .migrations import LATEST, MIGRATIONS

log = logging.getLogger(__name__)


class StoreError(EmocastError):
    """The database cannot be opened or migrated; the message names it."""

    exit_code = ExitCode.STORE


@dataclass(frozen=True)
class DevicePresence:
    """A device's presence as stored (``Store.presence``)."""

    online: bool  # its retained status says online (the broker's last will has not fired)
    last_seen: float | None  # the last message heard from it, on the hub's clock
    latest_event: float | None  # its latest stored event's time


@dataclass(frozen=True)
class StoredMessage:
    """One durable payload as the store keeps it (the JSON text stays as received), with the few fields
    a timeline reads beside it as columns (``event`` fills them from the payload)."""

    id: str
    device: str
    kind: str
    seq: int
    ts: float
    track: int | None
    value: str | None  # the attention state, or the emotion label
    payload: str
    origin: str = "mqtt"  # or "import:<file name>"
    lecture: str | None = None  # an imported recording's lecture (its events are that lecture's alone)
    starts_face: bool = False  # attention: the face's first state (``previous`` null)
    previous_duration_s: float | None = None  # attention
    window_s: float | None = None  # summary
    blinks: float | None = None  # summary
    face_time_s: float | None = None  # summary

    @classmethod
    def event(cls, kind: str, payload: dict[str, Any], text: str, ts: float, origin: str = "mqtt",
              lecture: str | None = None) -> StoredMessage:
        """An attention, emotion or summary event as stored, from its checked payload and its text."""
        common = (payload["id"], payload["device"], kind, int(payload["seq"]), ts, payload.get("track"))
        if kind == "attention":
            return cls(*common, _text(payload.get("state")), text, origin, lecture, payload.get("previous") is None,
                       _number(payload.get("previous_duration_s")))
        if kind == "summary":
            return cls(*common, None, text, origin, lecture, window_s=_number(payload.get("window_s")),
                       blinks=_number(payload.get("blinks")), face_time_s=_number(payload.get("face_time_s")))
        return cls(*common, _text(payload.get("emotion")), text, origin, lecture)

    def row(self, received: float, lecture: str | None) -> tuple:
        """Its values for ``INSERT_MESSAGE``."""
        return (self.id, self.device, self.kind, self.seq, self.ts, self.track, self.value, self.payload, received,
                self.origin, lecture, int(self.starts_face), self.previous_duration_s, self.window_s, self.blinks,
                self.face_time_s)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)  # a state is a str enum: the plain word


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


INSERT_MESSAGE = ("INSERT INTO messages (id, device, kind, seq, ts, track, value, payload, received, origin, lecture, "
                  "starts_face, previous_duration_s, window_s, blinks, face_time_s) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")


@dataclass
class Batch:
    """What one ingest transaction writes: new messages, and the latest device-level facts."""

    messages: list[StoredMessage]
    last_seen: dict[str, float]
    statuses: dict[str, tuple[str, float]]
    infos: dict[str, tuple[str, float]]
    metrics: dict[str, tuple[str, float]]
    rejects: list[tuple[str, str, str, float, str]]  # device, kind, error, received, excerpt (all ASCII)
    policy_dropped: dict[str, int] = field(default_factory=dict)  # per device: emotion messages not stored
    skews: dict[str, float] = field(default_factory=dict)  # per device: its clock less the hub's (from metrics)

    @classmethod
    def empty(cls) -> Batch:
        return cls([], {}, {}, {}, {}, [])


def _marks(values: Sequence[Any]) -> str:
    """The placeholders of an ``IN (...)`` list for ``values`` (``NULL`` for none: matches nothing)."""
    return ", ".join("?" for _ in values) or "NULL"


def database_error_types() -> tuple[type[BaseException], ...]:
    """The drivers' own errors: a fault of the database or of the way to it, not of the code."""
    types: list[type[BaseException]] = [sqlite3.Error, StoreError]
    try:
        import psycopg

        types.append(psycopg.Error)
    except ImportError:
        pass
    return tuple(types)


def refused_for_content(exc: BaseException) -> bool:
    """Whether the database refused what was written for what it is (a constraint, a value it cannot
    hold), so that the same statement will never succeed: only such a message may be quarantined.
    Everything else (locked, a table missing or renamed, a permission revoked, a connection lost) is
    the database's fault and passes: the batch waits and is retried."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, OverflowError, UnicodeEncodeError)):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(exc, (psycopg.IntegrityError, psycopg.DataError))


class Store:
    """A connection to the hub database; migrated to the latest schema on open unless ``migrate`` is
    false (a request's connection: the hub migrated at its start)."""

    def __init__(self, url: str, migrate: bool = True) -> None:
        self.url = url
        self.dialect = "postgresql" if url.startswith(("postgresql://", "postgres://")) else "sqlite"
        try:
            if self.dialect == "postgresql":
                self._conn = self._open_postgres(url)
            else:
                self._conn = self._open_sqlite(url)
            if migrate:
                self._migrate()
        except StoreError:
            raise
        except Exception as exc:  # sqlite3.Error, psycopg.Error: the driver's words, with the database named
            raise StoreError(f"{redact_url(url)}: {exc}") from exc

    # -- connection ----------------------------------------------------------------------------
    @staticmethod
    def _open_sqlite(url: str) -> sqlite3.Connection:
        path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://"))
        if not path.parent.is_dir():
            raise StoreError(f"{path}: its folder {path.parent} does not exist")
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @staticmethod
    def _open_postgres(url: str):
        """A connection; a database that does not exist yet is created where the role may (``CREATE
        DATABASE``), else refused at once, with the command that creates it (no wait can fix it)."""
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            raise StoreError("PostgreSQL needs psycopg: pip install 'emocast[hub]'") from None
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            if "does not exist" not in str(exc) or "database" not in str(exc):
                raise
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        try:
            with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True, connect_timeout=10) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("database %s did not exist: created", redact_url(url))
        except psycopg.Error as exc:
            raise StoreError(f"{redact_url(url)}: the database {name!r} does not exist and this role may not create "
                             f"it ({type(exc).__name__}): create it with `createdb {name}` (or CREATE DATABASE "
                             f"\"{name}\";) as a role that may") from None
        return psycopg.connect(url, autocommit=True, connect_timeout=10)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self._sql(sql), params)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return list(self._execute(sql, params).fetchall())

    def _begin(self) -> None:
        self._execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")

    def _execute_many(self, sql: str, rows: list[Sequence[Any]]) -> int:
        """One statement over many rows (a round trip per batch, not per row, on PostgreSQL); the
        total row count."""
        if not rows:
            return 0
        cur = self._conn.cursor()
        try:
            cur.executemany(self._sql(sql), rows)
            return cur.rowcount
        finally:
            cur.close()

    def _transaction(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run statements in one transaction; their row counts. A list of parameter tuples runs the
        statement once per tuple (executemany)."""
        counts = []
        self._begin()
        try:
            for sql, params in statements:
                if isinstance(params, list):
                    counts.append(self._execute_many(sql, params))
                else:
                    counts.append(self._execute(sql, params).rowcount)
            self._execute("COMMIT")
        except BaseException:
            self._execute("ROLLBACK")
            raise
        return counts

    def _migrate(self) -> None:
        """Every pending migration in one transaction. Two hubs starting at once must not both migrate:
        on PostgreSQL a transaction-scoped advisory lock serialises them (released by the commit or the
        rollback, whatever fails: no connection can keep it), on SQLite ``BEGIN IMMEDIATE`` does."""
        self._begin()
        try:
            if self.dialect == "postgresql":
                self._execute("SELECT pg_advisory_xact_lock(7302)")
            self._execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = self._query("SELECT MAX(version) FROM schema_version")[0][0] or 0
            if current > LATEST:
                raise StoreError(f"{redact_url(self.url)}: schema version {current} is newer than this emocast "
                                 f"knows ({LATEST}); upgrade emocast")
            for version, what, statements in MIGRATIONS:
                if version <= current:
                    continue
                log.info("database %s: migration %d (%s)", redact_url(self.url), version, what)
                for statement in statements:
                    self._execute(statement[self.dialect] if isinstance(statement, dict) else statement)
                self._execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            self._execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):  # a broken connection rolls back by closing
                self._execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()

    def schema_version(self) -> int:
        return int(self._query("SELECT MAX(version) FROM schema_version")[0][0] or 0)

    # -- ingest ----------------------------------------------------------------------------------
    def ping(self) -> None:
        """A trivial query: raises when the database does not answer."""
        self._query("SELECT 1")

    def write_batch(self, batch: Batch, received: float | None = None, quarantine_keep: int = 1000) -> int:
        """Commit a batch in one transaction; returns how many messages were new (the rest were
        duplicates, dropped on their id). Rejected messages are counted per device and kind and kept
        in quarantine, the newest ``quarantine_keep`` of them."""
        received = time.time() if received is None else received
        statements: list[tuple[str, Sequence[Any]]] = [
            (INSERT_MESSAGE, [m.row(received, m.lecture) for m in batch.messages])]
        devices = (set(batch.last_seen) | set(batch.statuses) | set(batch.infos) | set(batch.metrics)
                   | set(batch.policy_dropped) | set(batch.skews))
        for device in sorted(devices):
            statements.append(("INSERT INTO devices (device) VALUES (?) ON CONFLICT (device) DO NOTHING", (device,)))
        for device, seen in batch.last_seen.items():
            statements.append(("UPDATE devices SET last_seen = ? WHERE device = ? AND "
                               "(last_seen IS NULL OR last_seen < ?)", (seen, device, seen)))
        for device, n in batch.policy_dropped.items():
            statements.append(("UPDATE devices SET policy_dropped = policy_dropped + ? WHERE device = ?", (n, device)))
        for device, (status, ts) in batch.statuses.items():
            statements.append(("UPDATE devices SET status = ?, status_ts = ? WHERE device = ?", (status, ts, device)))
        for device, (info, _ts) in batch.infos.items():
            statements.append(("UPDATE devices SET info = ? WHERE device = ?", (info, device)))
        for device, (metrics, ts) in batch.metrics.items():
            statements.append(("UPDATE devices SET metrics = ?, metrics_ts = ? WHERE device = ? AND "
                               "(metrics_ts IS NULL OR metrics_ts <= ?)", (metrics, ts, device, ts)))
        for device, skew in batch.skews.items():
            statements.append(("UPDATE devices SET clock_skew_s = ? WHERE device = ?", (skew, device)))
        for device, kind, error, ts, excerpt in batch.rejects:
            statements.append((
                "INSERT INTO rejects (device, kind, count, last_error, last_ts) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT (device, kind) DO UPDATE SET count = rejects.count + 1, "
                "last_error = excluded.last_error, last_ts = excluded.last_ts", (device, kind, error, ts)))
            statements.append(("INSERT INTO quarantine (id, device, kind, error, excerpt, received) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (uuid.uuid4().hex, device, kind, error, excerpt, ts)))
        if batch.rejects:
            statements.append(("DELETE FROM quarantine WHERE received < (SELECT received FROM quarantine "
                               "ORDER BY received DESC LIMIT 1 OFFSET ?)", (quarantine_keep,)))
        if len(statements) == 1 and not batch.messages:
            return 0
        return max(0, self._transaction(statements)[0])

    def import_lecture(self, files: Sequence[tuple[str, Sequence[StoredMessage]]], lecture_id: str,
                       create: bool = False, title: str = "", start: float = 0.0, video_offset_s: float = 0.0,
                       video: str | None = None, received: float | None = None, recorded: float | None = None,
                       media_s: float = 0.0) -> tuple[dict[str, Any], list[int]]:
        """Imported files' events, each file a device, into the lecture ``lecture_id`` (made now with
        ``create``: ``title``, ``start``, a recorded lecture dated ``recorded`` where the recording says
        when it was made, lasting the recording's ``media_s`` from the offset, or until just after its
        last event), in one transaction: a failure leaves no lecture and no event of any file. The events
        are that lecture's alone (``lecture``): another lecture's recordings of the same names over the
        same time never mix with them. Returns the lecture and each file's new events."""
        received = time.time() if received is None else received
        devices = [device for device, _ in files]
        statements: list[tuple[str, Sequence[Any]]] = []
        if create:
            last = max((m.ts for _, events in files for m in events), default=start)
            end = max(last, start + 1.0, start + media_s - video_offset_s)
            statements.append((
                "INSERT INTO lectures (id, title, devices, start_ts, end_ts, video_offset_s, created, video, kind, "
                "recorded_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'recorded', ?)",
                (lecture_id, title, json.dumps(sorted(set(devices))), start, end, video_offset_s, received, video,
                 recorded)))
        else:
            lecture = self.lecture(lecture_id)
            if lecture is None:
                raise KeyError(lecture_id)
            merged = sorted(set(lecture["devices"]) | set(devices))
            statements.append(("UPDATE lectures SET devices = ? WHERE id = ?", (json.dumps(merged), lecture_id)))
        for _, events in files:
            statements.append((INSERT_MESSAGE, [m.row(received, lecture_id) for m in events]))
        counts = self._transaction(statements)[1:]
        lecture = self.lecture(lecture_id)
        assert lecture is not None
        return lecture, [max(0, n) for n in counts]

    def purge(self, before_ts: float) -> int:
        """Retention: drop messages the hub received before ``before_ts`` (its own clock: a kiosk whose
        clock is wrong cannot have its events purged early or kept for ever); returns how many."""
        return self._transaction([("DELETE FROM messages WHERE received < ?", (before_ts,))])[0]

    # -- reads -----------------------------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        """Every device the hub has heard of, with its health and its event counts.

        ``missing_seq``: seqs between the lowest and highest the hub stored from MQTT that it never
        got (events lost between the device and the hub, or dropped by a device whose disk was full).
        Imported recordings are listed apart, one entry per lecture they belong to (``source``
        "recording", with ``lecture`` and ``lecture_title``): two lectures' ``student1`` are two."""
        counts = {row[0]: row[1:] for row in self._query(
            "SELECT device, COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM messages "
            "WHERE origin = 'mqtt' GROUP BY device")}
        recordings = self._query(
            "SELECT m.device, m.lecture, l.title, COUNT(*) FROM messages m LEFT JOIN lectures l ON l.id = m.lecture "
            "WHERE m.origin <> 'mqtt' GROUP BY m.device, m.lecture, l.title")
        imported = {device for device, *_ in recordings}
        rejects: dict[str, int] = {}
        for device, count in self._query("SELECT device, SUM(count) FROM rejects GROUP BY device"):
            rejects[device] = int(count)
        out = []
        rows = self._query("SELECT device, status, status_ts, last_seen, info, metrics, metrics_ts, policy_dropped, "
                           "clock_skew_s FROM devices")
        known = {r[0] for r in rows}
        rows += [(d, None, None, None, None, None, None, 0, None) for d in sorted(set(counts) - known)]
        for device, status, status_ts, last_seen, info, metrics, metrics_ts, dropped, skew in sorted(rows):
            n, distinct, lo, hi = counts.get(device, (0, 0, None, None))
            if device in imported and not n and status is None:
                continue  # a recording's name, listed with its lecture below
            m = json.loads(metrics) if metrics else {}
            unknown = self._unknown_seqs(device, (json.loads(info) if info else {}).get("seq_restarts"), lo, hi)
            out.append({
                "device": device,
                "status": status or "unknown",
                "status_ts": status_ts,
                "last_seen": last_seen,
                "events": int(n),
                "first_seq": lo,
                "last_seq": hi,
                "missing_seq": max(0, int(hi - lo + 1 - distinct) - unknown) if n else 0,
                # seqs just below a fresh start after a corrupt outbox (info's seq_restarts): never given
                # out, or lost with the file; the kiosk cannot say which, so they are not called missing
                "unknown_seq": unknown,
                "rejected": rejects.get(device, 0),
                "info": json.loads(info) if info else None,
                "outbox_depth": m.get("outbox_depth"),
                "dropped_events": m.get("events_dropped"),
                "frames_dropped": m.get("frames_dropped"),
                "source_ok": m.get("source_ok"),
                "metrics_ts": metrics_ts,
                "policy_dropped": int(dropped or 0),
                # the kiosk's clock less the hub's, seconds (its latest metrics): its events' times are its own
                "clock_skew_s": None if skew is None else round(float(skew), 1),
                "source": "kiosk",  # it publishes over MQTT
            })
        for device, lecture, title, n in sorted(recordings, key=lambda r: (r[0], r[2] or "", r[1] or "")):
            # imported from `emocast analyze` logs: its own lecture's
            out.append({"device": device, "lecture": lecture, "lecture_title": title, "events": int(n),
                        "status": "unknown", "source": "recording", "missing_seq": 0, "rejected": 0})
        return out

    def _unknown_seqs(self, device: str, restarts: Any, lo: int | None, hi: int | None) -> int:
        """How many seqs lie between the last one stored below each restart and the restart itself."""
        if not isinstance(restarts, list) or lo is None or hi is None:
            return 0
        total = 0
        for r in restarts:
            if not isinstance(r, int) or isinstance(r, bool) or not lo < r <= hi:
                continue
            below = self._query("SELECT MAX(seq) FROM messages WHERE device = ? AND origin = 'mqtt' AND seq < ?",
                                (device, r))[0][0]
            if below is not None:
                total += int(r - below - 1)
        return total

    def rejects(self, per_kind: int = 20) -> list[dict[str, Any]]:
        """Per device and kind: how many messages were rejected, the latest error, and the newest
        ``per_kind`` of them as kept in quarantine (an ASCII excerpt of each, with its error)."""
        kept: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for d, k, e, x, t in self._query("SELECT device, kind, error, excerpt, received FROM quarantine "
                                         "ORDER BY received DESC"):
            rows = kept.setdefault((d, k), [])
            if len(rows) < per_kind:
                rows.append({"error": e, "excerpt": x, "received": t})
        return [{"device": d, "kind": k, "count": int(c), "last_error": e, "last_ts": t,
                 "quarantined": kept.get((d, k), [])}
                for d, k, c, e, t in self._query("SELECT device, kind, count, last_error, last_ts FROM rejects "
                                                 "ORDER BY device, kind")]

    def message_ids(self, device: str | None = None) -> list[str]:
        if device is None:
            return [r[0] for r in self._query("SELECT id FROM messages")]
        return [r[0] for r in self._query("SELECT id FROM messages WHERE device = ?", (device,))]

    def lectures_holding(self, origins: Sequence[str]) -> dict[str, set[tuple[str, str, str]]]:
        """Per imported file's origin (``import:<name>#<digest>``), the lectures (id, title, and the origin
        they hold it under) holding a file of the same content, under any name."""
        out: dict[str, set[tuple[str, str, str]]] = {}
        wanted: dict[str, list[str]] = {}
        for origin in origins:
            wanted.setdefault(origin.rsplit("#", 1)[-1], []).append(origin)
        if not wanted:
            return out
        for origin, lecture_id, title in self._query(
                "SELECT DISTINCT m.origin, l.id, l.title FROM messages m JOIN lectures l ON l.id = m.lecture "
                "WHERE m.lecture IS NOT NULL"):
            for mine in wanted.get(origin.rsplit("#", 1)[-1], ()):
                out.setdefault(mine, set()).add((lecture_id, title, origin))
        return out

    def change_mark(self, devices: Sequence[str], since: float) -> tuple[int, float]:
        """(how many, latest received) of the devices' messages dated from ``since``: a new value
        means a lecture's timeline has changed (the live page's stream watches it)."""
        if not devices:
            return 0, 0.0
        n, latest = self._query(f"SELECT COUNT(*), MAX(received) FROM messages WHERE device IN ({_marks(devices)}) "
                                "AND ts >= ?", (*devices, since))[0]
        return int(n), float(latest or 0.0)

    def count_messages(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM messages")[0][0])

    def timeline_rows(self, devices: Sequence[str], t0: float, t1: float,
                      kinds: Sequence[str] = ("attention", "emotion", "summary"),
                      lecture: str | None = None) -> Iterator[tuple]:
        """What a timeline reads of the given devices' messages between t0 and t1, in time order, from
        columns only (no payload is read), fetched in pages: (device, kind, ts, track, value, first state?,
        the attention's ``previous_duration_s`` or the summary's ``window_s``, blinks, face time). Imported
        events count for their own ``lecture`` only."""
        if not devices:
            return iter(())
        where = (f"device IN ({_marks(devices)}) AND kind IN ({_marks(kinds)}) AND ts >= ? AND ts <= ? "
                 "AND (lecture IS NULL OR lecture = ?)")
        sql = ("SELECT device, kind, ts, track, value, starts_face, "
               "CASE kind WHEN 'attention' THEN previous_duration_s ELSE window_s END, blinks, face_time_s "
               f"FROM messages WHERE {where} ORDER BY ts, seq")
        # PostgreSQL: numbers in binary, not parsed from text (a tenth of the fetch)
        cur = self._conn.cursor(binary=True) if self.dialect == "postgresql" else self._conn.cursor()
        cur.execute(self._sql(sql), (*devices, *kinds, t0, t1, lecture))

        def pages() -> Iterator[tuple]:
            try:
                while rows := cur.fetchmany(5000):
                    yield from rows
            finally:
                cur.close()

        return pages()

    def presence(self, devices: Sequence[str], lecture: str | None = None) -> dict[str, DevicePresence]:
        """What the hub knows of each device's being there, for how long the timeline holds its faces
        (``stories.heard_until``): whether its retained status says online, when it was last heard from
        (any message, on the hub's clock) and its latest stored event (a live kiosk's, or this lecture's
        recording's)."""
        out = {}
        for d in devices:
            rows = self._query("SELECT status, last_seen FROM devices WHERE device = ?", (d,))
            top = self._query("SELECT MAX(ts) FROM messages WHERE device = ? AND (lecture IS NULL OR lecture = ?)",
                              (d, lecture))[0][0]
            out[d] = DevicePresence(bool(rows) and rows[0][0] == DeviceStatus.ONLINE, rows[0][1] if rows else None, top)
        return out

    # -- erasure -----------------------------------------------------------------------------------
    def forget_device(self, device: str) -> dict[str, int]:
        """Everything stored for one device, gone in one transaction (a family that withdraws consent):
        its events, its health row, its rejected messages, and its name in every lecture. On SQLite the
        deleted rows are overwritten and the write-ahead log emptied into the file (``scrub``)."""
        if self.dialect == "sqlite":
            self._execute("PRAGMA secure_delete=ON")  # freed pages zeroed, not left readable in the file
        lectures = [lec for lec in self.lectures() if device in lec["devices"]]
        counts = self._transaction([
            ("DELETE FROM messages WHERE device = ?", (device,)),
            ("DELETE FROM devices WHERE device = ?", (device,)),
            ("DELETE FROM rejects WHERE device = ?", (device,)),
            ("DELETE FROM quarantine WHERE device = ?", (device,)),
            *[("UPDATE lectures SET devices = ? WHERE id = ?",
               (json.dumps([d for d in lec["devices"] if d != device]), lec["id"])) for lec in lectures]])
        self.scrub()
        return {"messages": counts[0], "devices": counts[1], "rejects": counts[2], "quarantined": counts[3],
                "lectures_updated": len(lectures)}

    def scrub(self) -> None:
        """After a deletion that must not linger: SQLite's write-ahead log checkpointed into the file
        and truncated (it held the deleted rows' pages); PostgreSQL's dead rows vacuumed."""
        if self.dialect == "sqlite":
            self._execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            self._execute("VACUUM messages")

    def forget_lecture(self, lecture_id: str, now: float | None = None) -> dict[str, int] | None:
        """A lecture and every event of its devices between its start and its end (now, if live);
        None when there is no such lecture."""
        lecture = self.lecture(lecture_id)
        if lecture is None:
            return None
        end = lecture["end"] if lecture["end"] is not None else (time.time() if now is None else now)
        devices = lecture["devices"]
        if self.dialect == "sqlite":
            self._execute("PRAGMA secure_delete=ON")
        counts = self._transaction([
            (f"DELETE FROM messages WHERE (device IN ({_marks(devices)}) AND ts >= ? AND ts <= ? AND lecture IS NULL) "
             "OR lecture = ?", (*devices, lecture["start"], end, lecture_id)),
            ("DELETE FROM lectures WHERE id = ?", (lecture_id,))])
        self.scrub()
        return {"messages": counts[0], "lectures": counts[1]}

    # -- lectures ----------------------------------------------------------------------------------
    def create_lecture(self, title: str, devices: Sequence[str], start_ts: float | None = None,
                       video_offset_s: float = 0.0, end_ts: float | None = None,
                       video: str | None = None) -> dict[str, Any]:
        lecture_id = new_lecture_id()
        now = time.time()
        start = now if start_ts is None else start_ts
        self._transaction([(
            "INSERT INTO lectures (id, title, devices, start_ts, end_ts, video_offset_s, created, video) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (lecture_id, title, json.dumps(sorted(set(devices))), start, end_ts, video_offset_s, now, video))])
        lecture = self.lecture(lecture_id)
        assert lecture is not None
        return lecture

    def stop_lecture(self, lecture_id: str, end_ts: float | None = None) -> dict[str, Any] | None:
        end = time.time() if end_ts is None else end_ts
        self._transaction([("UPDATE lectures SET end_ts = ? WHERE id = ? AND end_ts IS NULL", (end, lecture_id))])
        return self.lecture(lecture_id)

    def set_video(self, lecture_id: str, video: str | None) -> dict[str, Any] | None:
        """The lecture's video (a file name in ``[web] video_dir``; None: none), set at any time after its
        start or import; None when there is no such lecture."""
        self._transaction([("UPDATE lectures SET video = ? WHERE id = ?", (video, lecture_id))])
        return self.lecture(lecture_id)

    def lecture(self, lecture_id: str) -> dict[str, Any] | None:
        rows = self._query(f"SELECT {LECTURE_COLUMNS} FROM lectures WHERE id = ?", (lecture_id,))
        return _lecture(rows[0]) if rows else None

    def lectures(self) -> list[dict[str, Any]]:
        rows = self._query(f"SELECT {LECTURE_COLUMNS} FROM lectures ORDER BY start_ts DESC")
        return [_lecture(r) for r in rows]


LECTURE_COLUMNS = "id, title, devices, start_ts, end_ts, video_offset_s, created, video, kind, recorded_ts"


def new_lecture_id() -> str:
    return uuid.uuid4().hex[:12]


def _lecture(row: tuple) -> dict[str, Any]:
    """A lecture as the API gives it. ``recorded``: made by an import (its page is on the video's time);
    ``recorded_on``: when its recording was made, where the file said (else null: ``created`` is when
    it was imported); ``duration_s``: its length (a live one's so far: null)."""
    lecture_id, title, devices, start, end, offset, created, video, kind, recorded_ts = row
    return {"id": lecture_id, "title": title, "devices": json.loads(devices), "start": start, "end": end,
            "video_offset_s": offset, "created": created, "live": end is None, "video": video,
            "recorded": kind == "recorded", "recorded_on": recorded_ts,
            "duration_s": None if end is None else round(end - start, 3)}
