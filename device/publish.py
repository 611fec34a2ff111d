"""The MQTT side: connection, availability, and draining the outbox with QoS 1.

paho-mqtt's network thread does the socket work and reconnects with back-off; this module's thread
feeds it outbox rows in ``seq`` order, a bounded window at a time, and deletes a row only in the
PUBACK callback. On every (re)connect the feed restarts from the oldest unacknowledged row, so a
cut connection can duplicate an event (hubs de-duplicate on ``id``) but never lose one.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from .config import BrokerAddress
from .events import Topics
from .outbox import Outbox

log = logging.getLogger(__name__)

# Connection refusals that retrying will not fix: the operator must change something.
_FATAL_REASONS = {
    "Bad user name or password",
    "Not authorized",
    "Client identifier not valid",
    "Banned",
    "Bad authentication method",
    "Unsupported protocol version",
}


class BrokerRefused(Exception):
    """The broker refused us for a reason a retry will not fix (credentials, ACL, client id)."""


@dataclass
class PublisherStats:
    connected: bool = False
    connects: int = 0
    disconnects: int = 0
    published: int = 0
    acked: int = 0
    last_error: str = ""
    fatal: str = ""
    inflight: int = 0


@dataclass(frozen=True)
class MqttOptions:
    broker: BrokerAddress
    client_id: str
    keepalive_s: int = 30
    protocol: str = "3.1.1"
    password: str = ""  # resolved from config, file or URL
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    window: int = 20


class Publisher(threading.Thread):
    def __init__(self, outbox: Outbox, topics: Topics, opts: MqttOptions, info: dict[str, Any],
                 stop: threading.Event) -> None:
        super().__init__(name="publisher", daemon=True)
        self.outbox = outbox
        self.topics = topics
        self.opts = opts
        self.info = info
        self.stop_event = stop
        self.stats = PublisherStats()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[int, int, float]] = {}  # mid -> (seq, generation, sent at)
        self._early_acks: dict[int, float] = {}  # PUBACKs that beat publish() returning
        self._high_water = 0  # highest seq handed to paho on this connection
        self._generation = 0
        self._closing = False
        self._unreachable_logged = False
        self.client = self._make_client()

    # -- setup ---------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        o = self.opts
        proto = mqtt.MQTTv5 if o.protocol == "5" else mqtt.MQTTv311
        kwargs: dict[str, Any] = {"callback_api_version": CallbackAPIVersion.VERSION2, "client_id": o.client_id,
                                  "protocol": proto}
        if proto == mqtt.MQTTv311:
            kwargs["clean_session"] = True
        client = mqtt.Client(**kwargs)
        client.will_set(self.topics.status, "offline", qos=1, retain=True)
        user = o.broker.username
        if user:
            client.username_pw_set(user, o.password or None)
        if o.broker.tls:
            client.tls_set(
                ca_certs=o.ca_file or None,
                certfile=o.cert_file or None,
                keyfile=o.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(o.window)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # -- paho callbacks (network thread) ---------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        if reason_code.is_failure:
            reason = str(reason_code)
            self.stats.last_error = f"broker refused the connection: {reason}"
            log.error("%s (%s)", self.stats.last_error, self.opts.broker.redacted())
            if reason in _FATAL_REASONS:
                self.stats.fatal = self.stats.last_error
                self.stop_event.set()
            return
        self.stats.connected = True
        self.stats.connects += 1
        self._unreachable_logged = False
        with self._lock:
            self._generation += 1
            self._high_water = 0  # replay from the oldest unacknowledged event
        client.publish(self.topics.status, "online", qos=1, retain=True)
        client.publish(self.topics.for_kind("info"), json.dumps(self.info, separators=(",", ":")), qos=1, retain=True)
        log.info("connected to %s as %s", self.opts.broker.redacted(), self.opts.client_id)
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        # Said once per outage, not at every retry: the journal of a kiosk offline for a week stays readable.
        if not self._unreachable_logged:
            self._unreachable_logged = True
            log.warning("cannot reach the broker %s; retrying with back-off, events are kept in the outbox",
                        self.opts.broker.redacted())
        self.stats.last_error = "broker unreachable"

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.stats.connected
        self.stats.connected = False
        if was and not self._closing:
            self.stats.disconnects += 1
            self._unreachable_logged = False
            log.warning("disconnected from the broker (%s); events stay in the outbox", reason_code)

    def _on_publish(self, client, userdata, mid: int, reason_code, properties) -> None:
        with self._lock:
            entry = self._inflight.pop(mid, None)
            if entry is None:
                self._early_acks[mid] = time.monotonic()
                return
        self._acked(entry[0], reason_code)

    def _acked(self, seq: int, reason_code) -> None:
        if getattr(reason_code, "is_failure", False):
            # MQTT 5 reports a refused publish (e.g. an ACL) in the PUBACK; keep the row and say so.
            self.stats.last_error = f"broker refused event seq {seq}: {reason_code}"
            log.error(self.stats.last_error)
            return
        self.outbox.ack(seq)
        self.stats.acked += 1
        self._wake.set()

    # -- the feeding thread ------------------------------------------------------------------------
    def start(self) -> None:
        b = self.opts.broker
        try:
            self.client.connect_async(b.host, b.port, keepalive=self.opts.keepalive_s)
        except (OSError, ValueError) as exc:
            self.stats.last_error = str(exc)
        self.client.loop_start()
        super().start()

    def notify(self) -> None:
        self._wake.set()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            if self.stats.connected:
                self._feed()
            self._prune()

    def _feed(self) -> None:
        with self._lock:
            gen = self._generation
            in_window = sum(1 for _, g, _ in self._inflight.values() if g == gen)
            after = self._high_water
        room = self.opts.window - in_window
        if room <= 0:
            return
        for row in self.outbox.pending(after_seq=after, limit=room):
            info = self.client.publish(row.topic, row.payload, qos=row.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self.stats.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
                break
            self.stats.published += 1
            with self._lock:
                if gen != self._generation:
                    break  # reconnected meanwhile: the new connection replays from the start
                self._high_water = row.seq
                early = self._early_acks.pop(info.mid, None)
                if early is None:
                    self._inflight[info.mid] = (row.seq, gen, time.monotonic())
            if early is not None:
                self._acked(row.seq, None)
        with self._lock:
            self.stats.inflight = len(self._inflight)

    def _prune(self, max_age_s: float = 300.0) -> None:
        """Forget bookkeeping for PUBACKs that will never come (a connection long gone)."""
        now = time.monotonic()
        with self._lock:
            for mid in [m for m, (_, g, t) in self._inflight.items() if g != self._generation and now - t > max_age_s]:
                del self._inflight[mid]
            for mid in [m for m, t in self._early_acks.items() if now - t > max_age_s]:
                del self._early_acks[mid]

    def publish_direct(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False) -> None:
        """Best-effort messages that bypass the outbox (metrics)."""
        if self.stats.connected:
            self.client.publish(topic, payload, qos=qos, retain=retain)

    def drain(self, timeout_s: float) -> bool:
        """Wait for the outbox to empty while connected; True if it did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.outbox.depth() == 0:
                return True
            if self.stats.connected:
                self._wake.set()
            time.sleep(0.05)
        return self.outbox.depth() == 0

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Publish ``offline`` (retained) if connected, then disconnect and stop paho's thread."""
        self._closing = True
        if self.stats.connected:
            try:
                info = self.client.publish(self.topics.status, "offline", qos=1, retain=True)
                info.wait_for_publish(timeout=timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("could not publish offline: %s", exc)
        self.client.disconnect()
        self.client.loop_stop()
        self.join(timeout=2.0)
