"""The MQTT side: connection, availability, and draining the outbox with QoS 1.

paho-mqtt's network thread does the socket work and reconnects, after a jittered back-off that this
module sets; this module's thread feeds it outbox rows in ``seq`` order, a bounded window at a
time, and deletes a row only in the PUBACK callback. On every (re)connect the feed restarts from
the oldest unacknowledged row, so a cut connection can duplicate an event (hubs de-duplicate on
``id``) but never lose one.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from emocast.contract.events import INFO, DeviceStatus, Topics, encode
from emocast.core.broker import Backoff, BrokerAddress, make_client, tls_context

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


@dataclass
class PublisherStats:
    connected: bool = False
    connects: int = 0
    published: int = 0
    acked: int = 0
    last_error: str = ""
    fatal: str = ""
    refused: int = 0  # PUBACKs with a failure reason (MQTT 5 only)
    ack_timeouts: int = 0  # connections dropped because the broker stopped acknowledging

    def metrics(self) -> dict[str, int]:
        """Delivery's fields of the metrics event."""
        return {"reconnects": max(0, self.connects - 1), "events_published": self.published,
                "events_acked": self.acked, "events_refused": self.refused}


@dataclass(frozen=True)
class MqttOptions:
    broker: BrokerAddress
    client_id: str
    keepalive_s: int = 30
    ack_timeout_s: float = 30.0  # the oldest event in flight this long without a PUBACK: reconnect
    protocol: str = "3.1.1"
    password: str = ""  # resolved from config, file or URL
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    window: int = 20


class Publisher(threading.Thread):
    def __init__(self, outbox: Outbox, topics: Topics, opts: MqttOptions, info: dict[str, Any],
                 stop: threading.Event, retained: list[tuple[str, str]] | None = None) -> None:
        """``retained``: more (topic, payload) pairs published retained on every connect (discovery)."""
        super().__init__(name="publisher", daemon=True)
        self.outbox = outbox
        self.topics = topics
        self.opts = opts
        self.info = info
        self.retained = list(retained or [])
        self.stop_event = stop
        self.stats = PublisherStats()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[int, int, float, str]] = {}  # mid -> (seq, generation, sent at, topic)
        self._early_acks: dict[int, tuple[float, Any]] = {}  # PUBACKs that beat publish() returning
        self._high_water = 0  # highest seq handed to paho on this connection
        self._generation = 0
        self._closing = False
        self._unreachable_logged = False
        self._backoff = Backoff(1.0, 30.0)
        self.client = self._make_client()

    # -- setup ---------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        o = self.opts
        client = make_client(o.client_id, o.broker, o.broker.username, o.password,
                             self._tls_context() if o.broker.tls else None, o.protocol, clean_session=True)
        client.will_set(self.topics.status, str(DeviceStatus.OFFLINE), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=1)  # replaced by a jittered wait at each failure
        client.max_inflight_messages_set(o.window)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _tls_context(self) -> ssl.SSLContext:
        o = self.opts
        return tls_context(o.ca_file, o.cert_file, o.key_file)

    def _tls_problem(self, timeout_s: float = 5.0) -> str:
        """Why a TLS connection failed, when retrying cannot help ("" when it might).

        paho retries every failed connect and keeps the exception to itself, so a kiosk given the
        wrong CA would retry forever in silence. After a failure this makes one handshake of its own
        to tell a certificate problem (fatal: exit 6, the message names the cause) from a broker
        that is simply down (retried)."""
        b = self.opts.broker
        try:
            with socket.create_connection((b.host, b.port), timeout=timeout_s) as raw, \
                    self._tls_context().wrap_socket(raw, server_hostname=b.host) as tls:
                tls.do_handshake()
                # TLS 1.3 finishes the client's side of the handshake before the broker has checked
                # our certificate: its verdict (an alert) arrives as the first thing read
                tls.settimeout(2.0)
                tls.recv(1)
        except ssl.SSLCertVerificationError as exc:
            return (f"the broker's TLS certificate is not trusted: {exc.verify_message} "
                    f"(check [mqtt] ca_file {self.opts.ca_file or '(system CAs)'} and the broker's host name)")
        except ssl.SSLError as exc:
            if "alert" in str(exc).lower():
                return (f"the broker rejected the TLS handshake: {exc.reason or exc} "
                        "(check [mqtt] cert_file and key_file)")
            return ""
        except OSError:
            return ""
        return ""

    # -- paho callbacks (network thread) ---------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        if reason_code.is_failure:
            reason = str(reason_code)
            if reason in _FATAL_REASONS:
                self._fatal(f"broker refused the connection: {reason}")
            else:
                self.stats.last_error = f"broker refused the connection: {reason}"
                log.error("%s (%s)", self.stats.last_error, self.opts.broker.redacted())
            return
        self.stats.connected = True
        self.stats.connects += 1
        self._unreachable_logged = False
        self._backoff.reset()
        with self._lock:
            self._generation += 1
            self._high_water = 0  # replay from the oldest unacknowledged event
        client.publish(self.topics.status, str(DeviceStatus.ONLINE), qos=1, retain=True)
        client.publish(self.topics.for_kind(INFO), encode(self.info), qos=1, retain=True)
        for topic, payload in self.retained:
            client.publish(topic, payload, qos=1, retain=True)
        log.info("connected to %s as %s", self.opts.broker.redacted(), self.opts.client_id)
        self._wake.set()

    def _schedule_retry(self) -> None:
        """Set the wait before paho's next connection attempt (it calls this module back first)."""
        delay = self._backoff.next()
        self.client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    def _fatal(self, message: str) -> None:
        """A refusal a retry cannot fix: say it once and stop the service (exit 6)."""
        self.stats.last_error = self.stats.fatal = message
        log.error("%s (%s)", message, self.opts.broker.redacted())
        self.stop_event.set()

    def _stopped_for_tls(self) -> bool:
        problem = self._tls_problem() if self.opts.broker.tls else ""
        if problem:
            self._fatal(problem)
        return bool(problem)

    def _on_connect_fail(self, client, userdata) -> None:
        self._schedule_retry()
        if self._stopped_for_tls():
            return
        # Said once per outage, not at every retry: the journal of a kiosk offline for a week stays readable.
        if not self._unreachable_logged:
            self._unreachable_logged = True
            log.warning("cannot reach the broker %s; retrying with back-off, events are kept in the outbox",
                        self.opts.broker.redacted())
        self.stats.last_error = "broker unreachable"

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.stats.connected
        self.stats.connected = False
        self._schedule_retry()
        # dropped before CONNACK: with TLS 1.3 that is how a refused client certificate looks
        if not was and not self._closing and self._stopped_for_tls():
            return
        if was and not self._closing:
            self._unreachable_logged = False
            log.warning("disconnected from the broker (%s); events stay in the outbox", reason_code)

    def _on_publish(self, client, userdata, mid: int, reason_code, properties) -> None:
        with self._lock:
            entry = self._inflight.pop(mid, None)
            if entry is None:
                self._early_acks[mid] = (time.monotonic(), reason_code)
                return
        self._acked(entry[0], reason_code, entry[3])

    def _acked(self, seq: int, reason_code, topic: str = "") -> None:
        if getattr(reason_code, "is_failure", False):
            # MQTT 5 says in the PUBACK that a publish was refused; the row stays in the outbox. An
            # ACL that forbids the topic will refuse every retry too: stop (exit 6) and say where.
            self.stats.refused += 1
            self.stats.last_error = f"the broker refused event seq {seq} on {topic or 'its topic'}: {reason_code}"
            if str(reason_code) == "Not authorized":
                self._fatal(self.stats.last_error + " (the broker's ACL does not let this client write there); "
                            "the event stays in the outbox")
            else:
                log.error("%s; the event stays in the outbox and is sent again after the next reconnect",
                          self.stats.last_error)
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
                self._watch_acks()
            self._prune()

    def _feed(self) -> None:
        with self._lock:
            gen = self._generation
            in_window = sum(1 for _, g, _, _ in self._inflight.values() if g == gen)
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
                    self._inflight[info.mid] = (row.seq, gen, time.monotonic(), row.topic)
            if early is not None:
                self._acked(row.seq, early[1], row.topic)

    def _watch_acks(self) -> None:
        """A broker that connects and takes events but never acknowledges them (wedged, or a link that
        dropped without a reset) would hold the kiosk's window full for ever: when the oldest event in
        flight on this connection has waited ``ack_timeout_s``, the socket is shut, paho reconnects
        with back-off, and the new connection sends the unacknowledged events again (still in the
        outbox: nothing is lost)."""
        now = time.monotonic()
        with self._lock:
            oldest = min((t for _, g, t, _ in self._inflight.values() if g == self._generation), default=None)
        if oldest is None or now - oldest < self.opts.ack_timeout_s:
            return
        self.stats.ack_timeouts += 1
        self.stats.last_error = f"no acknowledgement from the broker for {now - oldest:.0f} s"
        log.warning("%s (%s): reconnecting; the events stay in the outbox", self.stats.last_error,
                    self.opts.broker.redacted())
        with self._lock:
            self._generation += 1  # what was in flight is not waited for any longer
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # paho's loop sees the connection lost, and reconnects

    def _prune(self, max_age_s: float = 300.0) -> None:
        """Forget bookkeeping for PUBACKs that will never come (a connection long gone)."""
        now = time.monotonic()
        with self._lock:
            for mid in [m for m, (_, g, t, _) in self._inflight.items()
                        if g != self._generation and now - t > max_age_s]:
                del self._inflight[mid]
            for mid in [m for m, (t, _) in self._early_acks.items() if now - t > max_age_s]:
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
                info = self.client.publish(self.topics.status, str(DeviceStatus.OFFLINE), qos=1, retain=True)
                info.wait_for_publish(timeout=timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("could not publish offline: %s", exc)
        self.client.disconnect()
        self.client.loop_stop()
        self.join(timeout=2.0)
