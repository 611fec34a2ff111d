"""Messages meant to stop the hub, sent to the real hub process through a real Mosquitto, on SQLite and
PostgreSQL: each is rejected (counted, quarantined, acknowledged), a good kiosk's events are all
stored around them, and a restart replays none of them. A message the database itself refuses while it
answers (a constraint the test adds) is split out of its batch and quarantined."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from emocast.contract.events import SCHEMAS, utc_timestamp
from tests.hub_support import HubProcess

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


DEVICE = "k9"


def attention(seq: int, **over) -> dict:
    return {"schema": SCHEMAS["attention"], "id": f"poison-test-{seq:06d}", "seq": seq,
            "ts": utc_timestamp(time.time() - 60), "device": DEVICE, "track": 1, "state": "attentive",
            "previous": None, "previous_duration_s": 0.0, "source_t": 1.0, **over}


def emotion(seq: int, **over) -> dict:
    return {"schema": SCHEMAS["emotion"], "id": f"poison-test-{seq:06d}", "seq": seq,
            "ts": utc_timestamp(time.time() - 60), "device": DEVICE, "track": 1, "emotion": "happy",
            "previous": None, "confidence": 0.9, "probs": {"happy": 0.9, "neutral": 0.1}, "source_t": 1.0, **over}


def poison() -> list[tuple[str, bytes, str]]:
    """(topic suffix, payload, what the rejection says)."""
    def enc(p: dict) -> bytes:
        return json.dumps(p).encode()

    deep = b'{"schema": "emocast.attention/1", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    return [
        ("events/attention", enc(attention(101, ts="2026-02-30T10:00:00.000Z")), "is no date"),
        ("events/attention", enc(attention(102, ts="2026-13-45T10:00:00.000Z")), "is no date"),
        # other scripts' digits: the schema's pattern asks for ASCII ones
        ("events/attention", enc(attention(103, ts="٢٠٢٦-١١-٢٧T10:00:00.000Z")), "does not match '^[0-9]{4}"),
        ("events/attention", deep, "nested 20001 deep"),
        ("events/attention", b"[" * 100_000 + b"]" * 100_000, "bytes, more than"),
        ("events/attention", enc(attention(2**64)), "outside 64 bits"),
        ("events/attention", enc(attention(104, track=2**31)), "track: 2147483648 is outside"),
        ("events/emotion", enc(emotion(105, emotion="happy\u0000")), "U+0000"),
        ("events/emotion", enc(emotion(106, emotion="\ud800")), "U+D800"),
        ("events/emotion", enc(emotion(107, emotion="x" * 65)), "more than 64"),
        ("events/attention", enc(attention(108, ts="2100-01-01T00:00:00.000Z")), "ahead of the hub's clock"),
        ("events/attention", json.dumps(attention(109)).encode("utf-16"), "not UTF-8"),
        ("events/emotion", enc(emotion(110)).replace(b'"confidence": 0.9', b'"confidence": NaN'), "NaN is not JSON"),
    ]


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="poison-sender")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for suffix, payload in messages:
            pub.publish(f"emocast/{DEVICE}/{suffix}", payload, qos=1).wait_for_publish(5)
    finally:
        pub.loop_stop()
        pub.disconnect()


def wait_for(hub: HubProcess, events: int, rejected: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    dev: dict = {}
    while time.monotonic() < deadline:
        dev = {d["device"]: d for d in hub.get("/api/devices")}.get(DEVICE, {})
        if dev.get("events") == events and dev.get("rejected") == rejected:
            return dev
        time.sleep(0.2)
    raise AssertionError(f"{DEVICE}: {dev}, expected {events} events and {rejected} rejected\n{hub.log_text()}")


def test_no_message_stops_ingest_and_a_restart_replays_none(mosquitto, db_url, tmp_path):
    bad = poison()
    hub = HubProcess(tmp_path, mosquitto.url, db_url)
    hub.start()
    try:
        publish(mosquitto.port, [("events/attention", json.dumps(attention(1)).encode())]
                + [(suffix, payload) for suffix, payload, _ in bad]
                + [("events/attention", json.dumps(attention(2, state="looking_away", previous="attentive")).encode()),
                   ("events/emotion", json.dumps(emotion(3)).encode())])
        wait_for(hub, events=3, rejected=len(bad))
        health = hub.health()
        assert health["ok"] is True and health["problems"] == [], health
        rejects = {r["kind"]: r for r in hub.get("/api/rejects") if r["device"] == DEVICE}
        errors = [q["error"] for r in rejects.values() for q in r["quarantined"]]
        assert len(errors) == len(bad)
        for _, _, says in bad:
            assert any(says in e for e in errors), f"no rejection says {says!r}: {errors}"
        for r in rejects.values():
            for q in r["quarantined"]:
                assert q["excerpt"].isascii() and len(q["excerpt"]) <= 403
        assert "Traceback" not in hub.log_text() and "retrying" not in hub.log_text()
    finally:
        assert hub.stop() == 0
    hub.start()  # the broker would send anything unacknowledged again now
    try:
        publish(mosquitto.port, [("events/attention", json.dumps(attention(4)).encode())])
        dev = wait_for(hub, events=4, rejected=len(bad))
        assert dev["missing_seq"] == 0
        time.sleep(1.0)
        assert wait_for(hub, events=4, rejected=len(bad), timeout=1)["rejected"] == len(bad)
        assert hub.health()["ok"] is True
    finally:
        assert hub.stop() == 0


def refuse_value(db: str, value: str) -> None:
    """Make the database itself refuse a row: a CHECK constraint on PostgreSQL, a trigger on SQLite."""
    from emocast.hub.store import Store

    s = Store(db)
    try:
        if s.dialect == "postgresql":
            s._execute(f"ALTER TABLE messages ADD CONSTRAINT test_refuses CHECK (value <> '{value}')")
        else:
            s._execute(f"CREATE TRIGGER test_refuses BEFORE INSERT ON messages WHEN NEW.value = '{value}' "
                       "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    finally:
        s.close()


def test_a_message_the_database_refuses_is_split_out_and_quarantined(mosquitto, db_url, tmp_path):
    hub = HubProcess(tmp_path, mosquitto.url, db_url)
    hub.start()
    try:
        refuse_value(db_url, "surprise")
        good = [("events/emotion", json.dumps(emotion(i)).encode()) for i in range(1, 40)]
        refused = ("events/emotion", json.dumps(emotion(40, emotion="surprise")).encode())
        publish(mosquitto.port, good[:20] + [refused] + good[20:])
        wait_for(hub, events=39, rejected=1)
        (row,) = [r for r in hub.get("/api/rejects") if r["device"] == DEVICE]
        assert row["last_error"].startswith("the database refused it")
        assert '"surprise"' in row["quarantined"][0]["excerpt"]
        assert hub.health()["ok"] is True
        assert "writing it in parts" in hub.log_text()
    finally:
        assert hub.stop() == 0


def test_best_effort_messages_are_dropped_and_counted_while_the_store_falls_behind(tmp_path):
    """QoS 0 (metrics) past ``[mqtt] queue_max`` waiting for the store are dropped and counted; QoS 1
    is never dropped (the broker bounds it with receive_maximum)."""
    import paho.mqtt.client as paho

    from emocast.hub import config as hubconfig
    from emocast.hub.ingest import Ingest

    cfg = hubconfig.load(None, {"store": {"url": str(tmp_path / "hub.sqlite")}, "mqtt": {"queue_max": 100}})
    ingest = Ingest(cfg)  # not started: nothing drains the queue, as when the store is slow
    try:
        for i in range(250):
            msg = paho.MQTTMessage(mid=i, topic=b"emocast/k1/metrics" if i % 2 else b"emocast/k1/events/attention")
            msg.qos, msg.payload = (0 if i % 2 else 1), b"{}"
            ingest._on_message(ingest.client, None, msg)
        health = ingest.health()
        assert health["received"] == 250 and health["dropped"] > 0
        assert health["waiting"] == 250 - health["dropped"] and health["waiting"] >= 125  # every QoS 1 kept
    finally:
        ingest.store.close()


def test_sizes_are_checked_on_arrival_and_the_queue_is_bounded_in_bytes(tmp_path):
    """2 MB payloads wait as their first KiB (and are rejected naming their size); QoS 0 past
    ``queue_max_bytes`` is dropped, QoS 1 never."""
    import paho.mqtt.client as paho

    from emocast.hub import config as hubconfig
    from emocast.hub.ingest import Ingest

    cfg = hubconfig.load(None, {"store": {"url": str(tmp_path / "hub.sqlite")},
                                "mqtt": {"queue_max_bytes": 2**20}})
    ingest = Ingest(cfg)  # not started: nothing drains the queue, as when the store is slow
    try:
        big = b'{"schema": "emocast.attention/1", "pad": "' + b"x" * (2 * 2**20) + b'"}'
        for i in range(20):
            msg = paho.MQTTMessage(mid=i, topic=b"emocast/k1/metrics" if i % 2 else b"emocast/k1/events/attention")
            msg.qos, msg.payload = (0 if i % 2 else 1), big
            ingest._on_message(ingest.client, None, msg)
        assert ingest._queued_bytes <= 20 * 1024  # 40 MB arrived; 20 KiB wait
        mid = b"y" * 60_000
        for i in range(40):
            msg = paho.MQTTMessage(mid=100 + i, topic=b"emocast/k1/metrics")
            msg.qos, msg.payload = 0, mid
            ingest._on_message(ingest.client, None, msg)
        assert ingest.stats.dropped >= 40 - 2**20 // 60_000 and ingest._queued_bytes <= 2**20
        items = ingest._gather()
        assert ingest._write(items[:20]) == 0
        rejects = {(r["device"], r["kind"]): r for r in ingest.store.rejects()}
        errors = [q["error"] for r in rejects.values() for q in r["quarantined"]]
        assert any("2097" in e and "more than 65536" in e for e in errors), errors
    finally:
        ingest.store.close()


def test_a_status_from_a_device_id_that_cannot_be_one_makes_no_device(tmp_path):
    import paho.mqtt.client as paho

    from emocast.hub import config as hubconfig
    from emocast.hub.ingest import Ingest

    ingest = Ingest(hubconfig.load(None, {"store": {"url": str(tmp_path / "hub.sqlite")}}))
    try:
        for i, device in enumerate(["x" * 200, "caf\u00e9", "a\u0001b", "ok-kiosk"]):
            msg = paho.MQTTMessage(mid=i, topic=f"emocast/{device}/status".encode())
            msg.qos, msg.payload = 1, b"online"
            ingest._on_message(ingest.client, None, msg)
        ingest._write(ingest._gather())
        assert [d["device"] for d in ingest.store.devices()] == ["ok-kiosk"]
        assert {r["device"] for r in ingest.store.rejects()} == {"?"}
    finally:
        ingest.store.close()


def test_each_kiosks_clock_skew_is_measured_from_its_live_metrics(tmp_path):
    """A kiosk whose clock runs 2 h behind: its metrics (sent live) say so, /api/devices shows it."""
    import paho.mqtt.client as paho

    from emocast.hub import config as hubconfig
    from emocast.hub.ingest import Ingest

    ingest = Ingest(hubconfig.load(None, {"store": {"url": str(tmp_path / "hub.sqlite")}}))
    try:
        body = {"schema": SCHEMAS["metrics"], "id": "metrics-00000000-0001", "seq": 0,
                "ts": utc_timestamp(time.time() - 7200), "device": "late", "frames_in": 1, "frames_processed": 1,
                "frames_dropped": 0, "source_ok": True,
                "stage_ms": {}, "outbox_depth": 0, "outbox_oldest_s": 0.0, "events_dropped": 0, "reconnects": 0,
                "cpu_temp_c": None, "events_published": 0, "events_acked": 0, "events_refused": 0,
                "outbox_resets": 0}
        msg = paho.MQTTMessage(mid=1, topic=b"emocast/late/metrics")
        msg.qos, msg.payload = 0, json.dumps(body).encode()
        ingest._on_message(ingest.client, None, msg)
        ingest._write(ingest._gather())
        (device,) = ingest.store.devices()
        assert device["device"] == "late" and device["clock_skew_s"] == pytest.approx(-7200, abs=5)
        assert ingest.store.rejects() == []
    finally:
        ingest.store.close()
