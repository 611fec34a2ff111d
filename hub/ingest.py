"""Ingest: every kiosk's MQTT messages into the store, each durable event once, none lost.

- A persistent MQTT 5 session (fixed client id, clean start off, a session expiry): while the hub is
  down or restarting, the broker queues its QoS 1 messages.
- Manual acknowledgement: paho hands a message over without a PUBACK; the writer thread commits a
  batch, then acknowledges each message of it. A hub killed at any moment has either not committed a
  message (the broker still holds it and sends it again) or committed it (a repeat is dropped on its
  ``id``). Acknowledgements are only sent on the connection the message came in on: after a reconnect
  the broker re-sends what was not acknowledged, with packet ids that may since name other messages.
- Payloads are checked against the JSON Schemas the device ships; an invalid one is counted per
  device and kind (stored, shown on the devices page), logged once per device and kind, acknowledged
  (redelivering it cannot make it valid) and never stops the hub.
- Several hubs can share the load: with ``share_group`` the event topics are subscribed as MQTT 5
  shared subscriptions (``$share/<group>/...``), each message to one member; the retained
  ``status``/``info`` topics, which brokers do not send to shared subscriptions, are subscribed by
  every member (writing them twice is harmless).
- A database fault waits, it never discards: a batch the database fails for its own reasons (down,
  locked by another process, a table missing, a permission revoked) stays unacknowledged and is retried
  with back-off while health names the error; only a message the database refuses for its content (a
  constraint, a value it cannot hold) is quarantined, once.
- The broker's own count of messages it dropped for a full client queue (Mosquitto's
  ``$SYS/broker/publish/messages/dropped``, where the broker publishes it and lets the hub read it) is
  watched: a broker set up with queue limits too small for a backlog drops QoS 1 messages it has
  already acknowledged to the kiosks, and health warns while that count is above zero.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from emocast.contract.events import (
    ATTENTION,
    EMOTION,
    INFO,
    KIND_OF_SUFFIX,
    METRICS,
    STATUS,
    SUMMARY,
    DeviceStatus,
    encode_text,
)
from emocast.core.broker import Backoff, make_client, parse_broker_url, redact_url, tls_context

from .config import HubConfig
from .feed import ChangeFeed
from .payloads import (
    PayloadError,
    check_columns,
    check_time,
    check_values,
    device_problem,
    load_json,
    parse_ts,
    printable,
)
from .privacy import Privacy
from .store import Batch, Store, StoredMessage, refused_for_content
from .validation import Validator

log = logging.getLogger(__name__)

RETAINED_SUFFIXES = ("status", "info")
SHARED_SUFFIXES = ("events/#", "summary", "metrics")
PURGE_EVERY_S = 3600.0
UNNAMED_DEVICE = "?"  # where a topic's device id cannot be a device (its rejects counted under this one name)
OVERSIZE_HEAD = 1024  # bytes kept of a payload over [mqtt] max_payload_bytes: its quarantined excerpt


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    mid: int
    generation: int
    at: float
    size: int = -1  # the payload's size on arrival, where more than [mqtt] max_payload_bytes (only a head kept)


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0  # QoS 0 messages dropped while the queue was full
    policy_dropped: int = 0  # emotion events not stored: [privacy] emotion = false
    batches: int = 0
    db_errors: int = 0
    db_error: str = ""  # the latest failed write's error, until a write succeeds
    connected: bool = False
    connection_changed_at: float = field(default_factory=time.time)
    last_stored_at: float = field(default_factory=time.time)  # the latest committed batch (start: now)
    last_commit_ms: float = 0.0
    broker_dropped: int | None = None  # the broker's count of messages dropped for full queues (None: unknown)

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates,
                "rejected": self.rejected, "dropped": self.dropped, "policy_dropped": self.policy_dropped,
                "batches": self.batches,
                "db_errors": self.db_errors, "mqtt_connected": self.connected,
                "last_commit_ms": round(self.last_commit_ms, 2), "last_stored_at": round(self.last_stored_at, 3),
                "broker_dropped": self.broker_dropped}


BROKER_GRACE_S = 30.0  # a broker away this long makes the hub unhealthy (a restart takes seconds)
# Mosquitto's count, since it started, of QoS 1/2 messages it dropped because a client's queue was full
# (max_queued_messages / max_queued_bytes); other brokers may publish nothing here
BROKER_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
MAX_RETRY_WAIT_S = 10.0  # the longest wait between tries of a batch the database failed


class Ingest:
    """The MQTT client (paho's network thread) and the writer thread that commits and acknowledges."""

    def __init__(self, cfg: HubConfig, stop: threading.Event | None = None, feed: ChangeFeed | None = None) -> None:
        """``feed``: told what each commit stored, for the live pages' streams of the same process."""
        self.cfg = cfg
        self.feed = feed
        self.stop_event = stop or threading.Event()
        self.stats = IngestStats()
        self.validator = Validator((ATTENTION, EMOTION, SUMMARY, METRICS, INFO))
        self.privacy = Privacy.of(cfg.privacy)
        self.prefix = cfg.mqtt.prefix
        self._queue: queue.Queue[Received] = queue.Queue()
        self._generation = 0
        self._pending = 0  # messages taken from the queue, not yet committed
        self._queued_bytes = 0  # payload bytes in the queue
        self._queued_lock = threading.Lock()
        self._logged_rejects: set[tuple[str, str]] = set()
        self._writer = threading.Thread(target=self._write_loop, name="hub-writer", daemon=True)
        self.store = Store(cfg.db_url())
        self.client = self._make_client()

    # -- MQTT ------------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        m = self.cfg.mqtt
        broker = parse_broker_url(m.url)
        client = make_client(m.client_id, broker, m.username, self.cfg.password(),
                             tls_context(m.ca_file, m.cert_file, m.key_file) if broker.tls else None)
        client.manual_ack_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def topics(self) -> list[str]:
        share = f"$share/{self.cfg.mqtt.share_group}/" if self.cfg.mqtt.share_group else ""
        return ([f"{self.prefix}/+/{s}" for s in RETAINED_SUFFIXES]
                + [f"{share}{self.prefix}/+/{s}" for s in SHARED_SUFFIXES])

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the hub's connection: %s", reason_code)
            return
        self._generation += 1
        self.stats.connected, self.stats.connection_changed_at = True, time.time()
        log.info("connected to %s as %s (session %s)", parse_broker_url(self.cfg.mqtt.url).redacted(),
                 self.cfg.mqtt.client_id, "resumed" if flags.session_present else "new")
        client.subscribe([(t, mqtt.SubscribeOptions(qos=1)) for t in self.topics()]
                         + [(BROKER_DROPPED_TOPIC, mqtt.SubscribeOptions(qos=0))])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._generation += 1  # acknowledgements for what came before are not sent: it will come again
        if self.stats.connected:
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)
            self.stats.connection_changed_at = time.time()
        self.stats.connected = False

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        """Queue the message for the writer. Sizes are checked here, on arrival: a payload over
        ``[mqtt] max_payload_bytes`` is kept as its first KiB only (enough to quarantine an excerpt), so
        what waits is bounded by count and bytes: QoS 0 past ``queue_max`` or ``queue_max_bytes`` is
        dropped and counted; QoS 1 is bounded by the broker (``receive_maximum`` in flight)."""
        if msg.topic == BROKER_DROPPED_TOPIC:
            self._broker_dropped(msg.payload)
            return
        self.stats.received += 1
        m = self.cfg.mqtt
        payload, size = msg.payload, -1
        if len(payload) > m.max_payload_bytes:
            payload, size = bytes(payload[:OVERSIZE_HEAD]), len(payload)
        with self._queued_lock:
            full = self._queue.qsize() >= m.queue_max or self._queued_bytes + len(payload) > m.queue_max_bytes
            if msg.qos == 0 and full:
                self.stats.dropped += 1  # best-effort metrics while the store is slow
                return
            self._queued_bytes += len(payload)
        self._queue.put(Received(msg.topic, payload, msg.qos, msg.mid, self._generation, time.time(), size))

    def _broker_dropped(self, payload: bytes) -> None:
        try:
            dropped = int(payload.decode("ascii"))
        except ValueError:
            return
        if dropped > (self.stats.broker_dropped or 0):
            log.warning("the broker has dropped %d queued messages for full client queues since it started", dropped)
        self.stats.broker_dropped = dropped

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        broker = parse_broker_url(self.cfg.mqtt.url)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.mqtt.session_expiry_s
        props.ReceiveMaximum = self.cfg.mqtt.receive_maximum
        self._writer.start()
        self.client.connect_async(broker.host, broker.port, keepalive=self.cfg.mqtt.keepalive_s,
                                  clean_start=False, properties=props)
        self.client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and acknowledge what has arrived, then disconnect (the session stays on the broker)."""
        self.stop_event.set()
        self._writer.join(timeout)
        self.stats.connected = False  # a disconnection asked for, not one to warn about
        self.client.disconnect()
        self.client.loop_stop()
        self.store.close()

    def writer_alive(self) -> bool:
        return self._writer.is_alive()

    def health(self) -> dict[str, Any]:
        """The counters, the messages waiting, and ``problems``: why the hub is not doing its job now
        (nothing stored for ``[store] stall_s`` with messages waiting, the database failing, the broker
        away); an empty list is healthy. ``/api/health`` and the unit's watchdog read it. ``warnings``:
        what went wrong that a restart cannot mend (the broker dropped queued messages)."""
        now, st = time.time(), self.stats
        waiting = self._queue.qsize() + self._pending
        problems = []
        if st.db_error:
            problems.append(f"database: {st.db_error}")
        idle = now - st.last_stored_at
        if waiting and idle > self.cfg.store.stall_s and not st.db_error:  # a writer stuck, not a database down
            problems.append(f"ingest: {waiting} messages waiting and nothing stored for {idle:.0f} s")
        if not st.connected and now - st.connection_changed_at > BROKER_GRACE_S:
            problems.append(f"broker: not connected for {now - st.connection_changed_at:.0f} s")
        warnings = []
        if st.broker_dropped:
            warnings.append(f"broker: it dropped {st.broker_dropped} queued messages for full client queues since "
                            "it started; if the hub's session was one, events the kiosks had been told were "
                            "delivered are lost: set max_queued_messages 0 as docs/hub.md says")
        return {**st.as_dict(), "waiting": waiting, "problems": problems, "warnings": warnings}

    # -- writer ----------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        """Commit and acknowledge batch after batch. A batch the database fails (down, locked, a table
        missing, a permission revoked) stays unacknowledged and is retried, with back-off, on a fresh
        connection, for as long as it takes: health says why meanwhile. Nothing is dropped for it."""
        last_purge = 0.0
        backoff = Backoff(0.5, MAX_RETRY_WAIT_S)
        pending: list[Received] = []
        while not (self.stop_event.is_set() and self._queue.empty() and not pending):
            if not pending:
                pending = self._gather()
                self._pending = len(pending)
                if not pending:
                    continue
            try:
                self._commit(pending)
                pending, self._pending = [], 0
                backoff.reset()
            except Exception as exc:  # the database's fault: keep the batch, unacknowledged
                self.stats.db_errors += 1
                self.stats.db_error = printable(f"{type(exc).__name__}: {exc}", 200)
                pause = backoff.next()
                log.error("cannot write %d messages to %s: %s; retrying in %.1f s", len(pending),
                          redact_url(self.store.url), exc, pause)
                if self.stop_event.wait(pause):
                    break
                self._reconnect()
            if time.time() - last_purge > PURGE_EVERY_S:
                last_purge = time.time()
                self._purge()

    def _reconnect(self) -> None:
        """A fresh connection after a failed write: a restarted PostgreSQL (or one that dropped this
        session) leaves the old connection closed for good. Failing here is logged; the loop retries."""
        try:
            fresh = Store(self.store.url)
        except Exception as exc:
            log.debug("database still unreachable: %s", exc)
            return
        with contextlib.suppress(Exception):  # already broken: nothing to close cleanly
            self.store.close()
        self.store = fresh
        log.info("reconnected to %s", redact_url(fresh.url))

    def _gather(self) -> list[Received]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        items = [first]
        deadline = time.monotonic() + self.cfg.store.batch_wait_s
        while len(items) < self.cfg.store.batch_max:
            remaining = deadline - time.monotonic()
            try:
                items.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        with self._queued_lock:
            self._queued_bytes -= sum(len(item.payload) for item in items)
        return items

    def _commit(self, items: list[Received]) -> None:
        """Write and acknowledge ``items``. A batch the database refuses for a message's content (a
        constraint, a value it cannot hold: ``refused_for_content``) is split until that message is
        alone, and that one is quarantined; any other failure is the database's, and raises: the batch
        stays unacknowledged and the write loop retries it."""
        t0 = time.perf_counter()
        try:
            new, written = self._write(items), len(items)
        except Exception as exc:
            if not refused_for_content(exc):
                raise
            log.warning("the database refused a batch of %d for a message's content (%s): writing it in parts",
                        len(items), printable(str(exc), 200))
            new, written = self._write_in_parts(items)
        self.stats.last_commit_ms = (time.perf_counter() - t0) * 1000
        self.stats.batches += 1
        self.stats.stored += new
        self.stats.last_stored_at = time.time()
        self.stats.db_error = ""
        generation = self._generation
        for item in items:
            if item.qos > 0 and item.generation == generation:
                self.client.ack(item.mid, item.qos)
        log.debug("batch of %d: %d new, %d duplicate, commit %.1f ms", len(items), new, written - new,
                  self.stats.last_commit_ms)

    def _write(self, items: list[Received]) -> int:
        batch = Batch.empty()
        for item in items:
            self._parse_into(item, batch)
        new = self.store.write_batch(batch, quarantine_keep=self.cfg.store.quarantine_keep)
        self.stats.duplicates += len(batch.messages) - new
        if self.feed is not None and new:
            self.feed.stored({m.device for m in batch.messages})
        return new

    def _write_in_parts(self, items: list[Received]) -> tuple[int, int]:
        """(new, written) after halving until each message refused for its content stands alone and is
        quarantined. A failure of the database's own meanwhile raises, and the whole batch is retried
        (what was written is then dropped as duplicates)."""
        if len(items) == 1:
            try:
                return self._write(items), 1
            except Exception as exc:
                if not refused_for_content(exc):
                    raise
                item = items[0]
                batch = Batch.empty()
                parts = self._split_topic(item.topic) or ("?", "?")
                self._reject(batch, parts[0], parts[1], f"the database refused it: {exc}", item)
                self.store.write_batch(batch, quarantine_keep=self.cfg.store.quarantine_keep)
                return 0, 0
        half = len(items) // 2
        a, b = self._write_in_parts(items[:half]), self._write_in_parts(items[half:])
        return a[0] + b[0], a[1] + b[1]

    def _purge(self) -> None:
        days = self.cfg.store.retention_days
        if days <= 0:
            return
        try:
            n = self.store.purge(time.time() - days * 86400)
            if n:
                log.info("retention: %d messages older than %g days removed", n, days)
        except Exception as exc:
            log.error("retention purge failed: %s", exc)

    # -- parsing ---------------------------------------------------------------------------------
    def _split_topic(self, topic: str) -> tuple[str, str] | None:
        if not topic.startswith(self.prefix + "/"):
            return None
        device, _, suffix = topic[len(self.prefix) + 1:].partition("/")
        kind = KIND_OF_SUFFIX.get(suffix)
        return (device, kind) if device and kind else None

    def _reject(self, batch: Batch, device: str, kind: str, error: str, item: Received) -> None:
        """Counted per device and kind, kept in quarantine with its error, logged once per device and
        kind; acknowledged with its batch (sending it again cannot make it valid)."""
        self.stats.rejected += 1
        device, error, excerpt = printable(device, 64), printable(error, 300), printable(item.payload)
        error, excerpt = self.privacy.refusal(kind, error, excerpt)  # emotion off: nothing it may quote
        batch.rejects.append((device, kind, error, item.at, excerpt))
        if (device, kind) not in self._logged_rejects:
            self._logged_rejects.add((device, kind))
            log.warning("invalid %s payload from %s: %s (counted; further ones from it are not logged)",
                        kind, device, error)

    def _parse_into(self, item: Received, batch: Batch) -> None:
        parts = self._split_topic(item.topic)
        if parts is None:
            return
        device, kind = parts
        problem = device_problem(device)  # every topic alike, status included
        if problem:
            self._reject(batch, UNNAMED_DEVICE, kind, f"topic: {problem}", item)
            return
        if kind == STATUS:
            text = item.payload.decode("utf-8", "replace").strip()
            if text in {str(s) for s in DeviceStatus}:
                batch.statuses[device] = (text, item.at)
            else:
                self._reject(batch, device, "status", f"status must be online or offline, not {text[:40]!r}", item)
            return
        if not self.privacy.reads(kind):  # [privacy] emotion = false: emotion events are not even read
            self.stats.policy_dropped += 1
            batch.policy_dropped[device] = batch.policy_dropped.get(device, 0) + 1
            return
        try:
            payload, text, ts = self._checked(item, device, kind)
        except PayloadError as exc:
            self._reject(batch, device, kind, str(exc), item)
            return
        batch.last_seen[device] = max(batch.last_seen.get(device, 0.0), item.at)  # the hub's clock, not the kiosk's
        kept = self.privacy.stored(kind, payload)  # [privacy] emotion = false: nothing emotional is written
        if kept is not payload:
            payload, text = kept, encode_text(kept)
        if kind == INFO:
            batch.infos[device] = (text, ts)
        elif kind == METRICS:
            batch.metrics[device] = (text, ts)
            batch.skews[device] = ts - item.at  # metrics are sent live: their time is the kiosk's clock now
        else:
            batch.messages.append(StoredMessage.event(kind, payload, text, ts))

    def _checked(self, item: Received, device: str, kind: str) -> tuple[dict[str, Any], str, float]:
        """The payload, its text and its time, once everything the schema and the database need holds
        (``payloads.py``); PayloadError naming what does not."""
        if item.size >= 0:
            raise PayloadError(f"payload: {item.size} bytes, more than {self.cfg.mqtt.max_payload_bytes}")
        payload, text = load_json(item.payload, self.cfg.mqtt.max_payload_bytes)
        check_values(payload)
        try:
            problem = self.validator.problem(kind, payload)
        except RecursionError:  # not reachable under MAX_DEPTH; a validator must never stop ingest
            problem = "payload: too deep to validate"
        if problem is None and payload.get("device") != device:
            problem = f"device: payload says {payload.get('device')!r}, topic says {device!r}"
        if problem:
            raise PayloadError(problem)
        check_columns(payload)
        ts = parse_ts(payload["ts"])
        check_time(ts, time.time(), self.cfg.mqtt.max_clock_skew_s)
        return payload, text, ts
