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
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from emocast.contract.events import ATTENTION, EMOTION, INFO, METRICS, SUMMARY
from emocast.core.broker import make_client, parse_broker_url, tls_context

from .config import HubConfig
from .store import Batch, Store, StoredMessage, redact
from .validation import Validator

log = logging.getLogger(__name__)

KIND_OF_SUFFIX = {"events/attention": ATTENTION, "events/emotion": EMOTION, "summary": SUMMARY,
                  "metrics": METRICS, "info": INFO, "status": "status"}
RETAINED_SUFFIXES = ("status", "info")
SHARED_SUFFIXES = ("events/#", "summary", "metrics")
PURGE_EVERY_S = 3600.0


def parse_ts(text: str) -> float:
    """The contract's UTC ISO-8601 timestamp (``2026-11-27T12:00:00.123Z``) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    mid: int
    generation: int
    at: float


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    db_errors: int = 0
    connected: bool = False
    last_commit_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates,
                "rejected": self.rejected, "batches": self.batches, "db_errors": self.db_errors,
                "mqtt_connected": self.connected, "last_commit_ms": round(self.last_commit_ms, 2)}


class Ingest:
    """The MQTT client (paho's network thread) and the writer thread that commits and acknowledges."""

    def __init__(self, cfg: HubConfig, stop: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.stop_event = stop or threading.Event()
        self.stats = IngestStats()
        self.validator = Validator((ATTENTION, EMOTION, SUMMARY, METRICS, INFO))
        self.prefix = cfg.mqtt.prefix
        self._queue: queue.Queue[Received] = queue.Queue()
        self._generation = 0
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
        self.stats.connected = True
        log.info("connected to %s as %s (session %s)", parse_broker_url(self.cfg.mqtt.url).redacted(),
                 self.cfg.mqtt.client_id, "resumed" if flags.session_present else "new")
        client.subscribe([(t, mqtt.SubscribeOptions(qos=1)) for t in self.topics()])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._generation += 1  # acknowledgements for what came before are not sent: it will come again
        if self.stats.connected:
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)
        self.stats.connected = False

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        self._queue.put(Received(msg.topic, msg.payload, msg.qos, msg.mid, self._generation, time.time()))

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

    # -- writer ----------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        last_purge = 0.0
        pending: list[Received] = []
        while not (self.stop_event.is_set() and self._queue.empty() and not pending):
            if not pending:
                pending = self._gather()
                if not pending:
                    continue
            try:
                self._commit(pending)
                pending = []
            except Exception as exc:  # the database is down or full: keep the batch, unacknowledged
                self.stats.db_errors += 1
                log.error("cannot write %d messages to %s: %s; retrying", len(pending), redact(self.store.url), exc)
                if self.stop_event.wait(1.0):
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
        log.info("reconnected to %s", redact(fresh.url))

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
        return items

    def _commit(self, items: list[Received]) -> None:
        batch = Batch.empty()
        for item in items:
            self._parse_into(item, batch)
        t0 = time.perf_counter()
        new = self.store.write_batch(batch)
        self.stats.last_commit_ms = (time.perf_counter() - t0) * 1000
        self.stats.batches += 1
        self.stats.stored += new
        self.stats.duplicates += len(batch.messages) - new
        generation = self._generation
        for item in items:
            if item.qos > 0 and item.generation == generation:
                self.client.ack(item.mid, item.qos)
        log.debug("batch of %d: %d new, %d duplicate, commit %.1f ms", len(items), new,
                  len(batch.messages) - new, self.stats.last_commit_ms)

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

    def _reject(self, batch: Batch, device: str, kind: str, error: str, at: float) -> None:
        self.stats.rejected += 1
        batch.rejects.append((device, kind, error, at))
        if (device, kind) not in self._logged_rejects:
            self._logged_rejects.add((device, kind))
            log.warning("invalid %s payload from %s: %s (counted; further ones from it are not logged)",
                        kind, device, error)

    def _parse_into(self, item: Received, batch: Batch) -> None:
        parts = self._split_topic(item.topic)
        if parts is None:
            return
        device, kind = parts
        if kind == "status":
            text = item.payload.decode("utf-8", "replace").strip()
            if text in ("online", "offline"):
                batch.statuses[device] = (text, item.at)
            else:
                self._reject(batch, device, "status", f"status must be online or offline, not {text[:40]!r}", item.at)
            return
        try:
            payload = json.loads(item.payload)
        except (UnicodeDecodeError, ValueError) as exc:
            self._reject(batch, device, kind, f"not JSON: {exc}", item.at)
            return
        problem = self.validator.problem(kind, payload)
        if problem is None and payload.get("device") != device:
            problem = f"device: payload says {payload.get('device')!r}, topic says {device!r}"
        if problem:
            self._reject(batch, device, kind, problem, item.at)
            return
        ts = parse_ts(payload["ts"])
        batch.last_seen[device] = max(batch.last_seen.get(device, 0.0), ts)
        if kind == INFO:
            batch.infos[device] = (item.payload.decode(), ts)
        elif kind == METRICS:
            batch.metrics[device] = (item.payload.decode(), ts)
        else:
            value = payload.get("state") if kind == ATTENTION else payload.get("emotion")
            batch.messages.append(StoredMessage(payload["id"], device, kind, int(payload["seq"]), ts,
                                                payload.get("track"), value, item.payload.decode()))


