"""The hub against real parts: a Mosquitto the test starts, `emocast run` services on real clips with
their own device ids and outboxes, and `emocast hub` as its own process on SQLite or PostgreSQL.

"Nothing lost" is checked against the devices themselves: each device's outbox allocates seqs
1..N without gaps and ends empty (every event acknowledged by the broker), so the hub must hold
exactly seqs 1..N of each device, each once."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from emocast.contract.events import SCHEMAS
from tests.hub_support import HubProcess, pg_database, published_seqs, run_device, stored_seqs
from tests.support import MEDIA, REPO, Broker, Recorder, free_port

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


def wait_stored(hub: HubProcess, expected: dict[str, int], timeout: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    got: dict[str, int] = {}
    while time.monotonic() < deadline:
        got = {d["device"]: d["events"] for d in hub.get("/api/devices")}
        if all(got.get(k, 0) >= v for k, v in expected.items()):
            return got
        time.sleep(0.3)
    raise AssertionError(f"stored {got}, expected {expected}\n{hub.log_text()}")


def assert_exactly_once(db: str, workdir: Path, devices: list[str]) -> dict[str, int]:
    counts = {}
    for d in devices:
        n = published_seqs(workdir, d)
        assert n > 0, f"{d} published nothing"
        assert stored_seqs(db, d) == list(range(1, n + 1)), f"{d}: the hub's seqs differ from 1..{n}"
        counts[d] = n
    return counts


REAL_CLIPS = ("lp_d12_desk_expressions_headturn.mp4", "fer_woman_looking_down_phone.mp4",
              "lp_d14_wink_gaze_aversion.mp4")


def test_three_devices_every_event_stored_exactly_once(mosquitto, db_url, tmp_path, demo_clip):
    """Three kiosks on real recordings (../shared/media; the demo clip, a real photo in motion, where
    that is absent)."""
    hub = HubProcess(tmp_path, mosquitto.url, db_url)
    hub.start()
    rec = Recorder(mosquitto.port, ["emocast/+/events/#", "emocast/+/summary"])
    rec.start()
    devices = ["kiosk-a", "kiosk-b", "kiosk-c"]
    clips = [MEDIA / "videos" / c for c in REAL_CLIPS]
    if not all(c.is_file() for c in clips):
        clips = [demo_clip] * 3
    try:
        procs = [run_device(mosquitto.url, d, clip, tmp_path, "--fast", background=True)
                 for d, clip in zip(devices, clips, strict=True)]
        for p in procs:
            assert p.wait(240) == 0
        expected = {d: published_seqs(tmp_path, d) for d in devices}
        wait_stored(hub, expected)
        counts = assert_exactly_once(db_url, tmp_path, devices)
        listed = {d["device"]: d for d in hub.get("/api/devices")}
        for d in devices:
            assert listed[d]["events"] == counts[d] and listed[d]["missing_seq"] == 0
            assert listed[d]["status"] == "offline" and listed[d]["info"]["device"] == d
        seen_ids = {json.loads(p)["id"] for _, p, _ in rec.messages}
        from emocast.hub.store import Store

        store = Store(db_url)
        assert seen_ids <= set(store.message_ids())  # what a plain subscriber saw, the hub has too
        store.close()
    finally:
        rec.stop()
        assert hub.stop() == 0


@pytest.mark.slow  # three services on a clip, a fault mid-run, in wall-clock time
@pytest.mark.parametrize("fault", ["hub SIGKILLed", "broker restarted"])
def test_a_fault_mid_run_loses_nothing(mosquitto, db_url, tmp_path, demo_clip, fault):
    """Two kiosks publish for 14 s; 5 s in, the hub is SIGKILLed (no chance to flush or acknowledge)
    or the broker stops cleanly (with persistence on, it saves sessions and queues); 3 s later it
    comes back. Every event of both devices is stored once, on SQLite and on PostgreSQL."""
    db = db_url
    hub = HubProcess(tmp_path, mosquitto.url, db)
    hub.start()
    devices = ["room-a", "room-b"]
    procs = [run_device(mosquitto.url, d, demo_clip, tmp_path, "--loop", "--duration", "14", background=True)
             for d in devices]
    wait_stored(hub, {d: 3 for d in devices})  # both mid-run, their events flowing to the hub
    if fault == "hub SIGKILLed":
        hub.kill()
        time.sleep(3)  # the devices go on publishing; the broker queues for the hub's session
        hub.start()
    else:
        mosquitto.stop()
        time.sleep(3)
        mosquitto.start()
    for p in procs:
        assert p.wait(120) == 0
    expected = {d: published_seqs(tmp_path, d) for d in devices}
    wait_stored(hub, expected)
    assert_exactly_once(db, tmp_path, devices)
    assert hub.stop() == 0
    if fault == "hub SIGKILLed":
        assert "(session resumed)" in hub.log_text()


def test_invalid_payloads_are_counted_and_the_hub_stays_up(mosquitto, db_url, tmp_path):
    db = db_url
    hub = HubProcess(tmp_path, mosquitto.url, db)
    hub.start()
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bad-actor")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    good = {"schema": SCHEMAS["attention"], "id": "good-0000001", "seq": 1, "ts": "2026-11-27T10:00:00.000Z",
            "device": "k9", "track": 1, "state": "attentive", "previous": None, "previous_duration_s": 0.0,
            "source_t": 1.0}
    try:
        for topic, payload in [
            ("emocast/k9/events/attention", b"{not json"),
            ("emocast/k9/events/attention", json.dumps({**good, "id": "bad-0000001", "state": "asleep"}).encode()),
            ("emocast/k9/events/emotion", json.dumps({"schema": SCHEMAS["emotion"]}).encode()),
            ("emocast/k9/summary", b"\xff\xfe"),
            ("emocast/k9/events/attention", json.dumps({**good, "id": "bad-0000002", "device": "k8"}).encode()),
            ("emocast/k9/status", b"sleepy"),
            ("emocast/k9/events/attention", json.dumps(good).encode()),
        ]:
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            devs = {d["device"]: d for d in hub.get("/api/devices")}
            if devs.get("k9", {}).get("events") == 1 and devs["k9"]["rejected"] == 6:
                break
            time.sleep(0.2)
        assert devs["k9"]["events"] == 1 and devs["k9"]["rejected"] == 6, devs
        rejects = {(r["device"], r["kind"]): r for r in hub.get("/api/rejects")}
        assert rejects[("k9", "attention")]["count"] == 3
        assert rejects[("k9", "attention")]["last_error"].startswith("device: payload says 'k8'")  # the latest
        assert rejects[("k9", "summary")]["count"] == 1 and rejects[("k9", "status")]["count"] == 1
        assert hub.proc.poll() is None and hub.health()["ok"]
        log = hub.log_text()
        assert log.count("invalid attention payload from k9") == 1  # logged once per device and kind
    finally:
        pub.loop_stop()
        pub.disconnect()
        assert hub.stop() == 0


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_two_hubs_share_the_load_without_loss_or_repeats(mosquitto, tmp_path, demo_clip, backend):
    if backend == "postgresql":
        ctx = pg_database()
        db = ctx.__enter__()
    else:
        ctx, db = None, str(tmp_path / "shared.sqlite")
    hubs = [HubProcess(tmp_path, mosquitto.url, db, client_id=f"hub-{i}", share_group="room") for i in (1, 2)]
    try:
        for h in hubs:
            h.start()
        devices = ["shared-a", "shared-b", "shared-c"]
        procs = [run_device(mosquitto.url, d, demo_clip, tmp_path, "--fast", background=True) for d in devices]
        for p in procs:
            assert p.wait(240) == 0
        expected = {d: published_seqs(tmp_path, d) for d in devices}
        wait_stored(hubs[0], expected)
        assert_exactly_once(db, tmp_path, devices)
        stored = [h.health()["ingest"]["stored"] for h in hubs]
        assert sum(stored) == sum(expected.values()) and all(n > 0 for n in stored), stored
    finally:
        for h in hubs:
            h.stop()
        if ctx is not None:
            ctx.__exit__(None, None, None)


def test_hub_takes_tls_and_a_client_certificate_like_a_device(tmp_path, demo_clip):
    from tests.helpers.tls import make_ca, make_cert, tls_broker

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    ca = make_ca(pki_dir, "hub-test-ca")
    server = make_cert(pki_dir, "broker", ca, server=True)
    client = make_cert(pki_dir, "hub", ca, server=False)
    pki = {"ca": ca[0], "server_crt": server[0], "server_key": server[1]}
    broker = tls_broker(tmp_path, pki, require_cert=True)
    conf = tmp_path / "hub.toml"
    conf.write_text(f'[mqtt]\nca_file = "{ca[0]}"\ncert_file = "{client[0]}"\nkey_file = "{client[1]}"\n')
    hub = HubProcess(tmp_path, f"mqtts://127.0.0.1:{broker.tls_port}", str(tmp_path / "hub.sqlite"),
                     extra=["--config", str(conf)])
    try:
        hub.start()  # waits for the MQTT connection: the TLS handshake with its certificate worked
        result = run_device(broker.url, "tls-kiosk", demo_clip, tmp_path, "--fast")
        assert result.returncode == 0, result.stderr[-2000:]
        n = published_seqs(tmp_path, "tls-kiosk")
        wait_stored(hub, {"tls-kiosk": n})
        assert stored_seqs(str(tmp_path / "hub.sqlite"), "tls-kiosk") == list(range(1, n + 1))
    finally:
        hub.stop()
        broker.stop()


def kiosk_doc_block(first_line: str) -> str:
    """A code block of docs/kiosk.md, found by its first line: the test runs what the manual says."""
    text = (REPO / "docs" / "kiosk.md").read_text()
    start = text.index("```\n" + first_line) + 4
    return text[start:text.index("```", start)]


def test_hub_reads_as_the_manuals_broker_settings_and_no_client_takes_its_session(tmp_path, demo_clip):
    """docs/kiosk.md's broker settings and ACL: each kiosk writes only under its own topic, the hub's
    user only reads, with its password from a file as a device's; and a client that connects with
    the hub's client id while the hub is down is not handed the hub's queued events."""
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed")
    import subprocess

    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "kiosk1", "k-secret"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "hub", "h-secret"], check=True)
    pw.chmod(0o600)
    (tmp_path / "acl").write_text(kiosk_doc_block("# devices: user name = device id"))
    conf = kiosk_doc_block("# mosquitto.conf").replace("/etc/mosquitto/passwd", str(pw))
    conf = conf.replace("/etc/mosquitto/acl", str(tmp_path / "acl"))
    # the Broker writes its own persistence lines (its folder is the test's)
    conf = "\n".join(line for line in conf.splitlines() if not line.startswith("persistence")) + "\n"
    broker = Broker(tmp_path, free_port(), anonymous=False, persistent=True, extra_conf=conf)
    broker.start()
    (tmp_path / "hub-secret").write_text("h-secret\n")
    (tmp_path / "kiosk-secret").write_text("k-secret\n")
    hub_conf = tmp_path / "hub.toml"
    hub_conf.write_text(f'[mqtt]\nusername = "hub"\npassword_file = "{tmp_path / "hub-secret"}"\n')
    dev_conf = tmp_path / "emocast.toml"
    dev_conf.write_text(f'[mqtt]\nusername = "kiosk1"\npassword_file = "{tmp_path / "kiosk-secret"}"\n')
    db = str(tmp_path / "hub.sqlite")
    hub = HubProcess(tmp_path, broker.url, db, extra=["--config", str(hub_conf)])
    thief = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="emocast-hub",
                        protocol=mqtt.MQTTv5)
    stolen: list[bytes] = []
    try:
        hub.start()  # its session (and subscriptions) exist on the broker
        assert hub.stop() == 0
        result = run_device(broker.url, "kiosk1", demo_clip, tmp_path, "--fast", "--config", str(dev_conf))
        assert result.returncode == 0, result.stderr[-2000:]
        thief.username_pw_set("kiosk1", "k-secret")
        thief.on_message = lambda c, u, m: stolen.append(m.payload)
        thief.connect("127.0.0.1", broker.port, clean_start=False)
        thief.loop_start()
        time.sleep(2.0)
        thief.loop_stop()
        thief.disconnect()
        assert stolen == []
        hub.start()
        n = published_seqs(tmp_path, "kiosk1")
        wait_stored(hub, {"kiosk1": n})
        assert stored_seqs(db, "kiosk1") == list(range(1, n + 1))
    finally:
        hub.stop()
        broker.stop()


def test_the_hub_reconnects_when_postgresql_drops_its_connections(mosquitto, tmp_path, demo_clip):
    """PostgreSQL ends the hub's sessions (as a server restart or an admin's pg_terminate_backend
    does): ingest reconnects and stores everything, unacknowledged meanwhile; the API answers again."""
    psycopg = pytest.importorskip("psycopg")
    from tests.hub_support import PG_ADMIN

    with pg_database() as db:
        name = db.rsplit("/", 1)[1]
        hub = HubProcess(tmp_path, mosquitto.url, db)
        hub.start()
        try:
            first = run_device(mosquitto.url, "pg-a", demo_clip, tmp_path, "--fast")
            assert first.returncode == 0
            wait_stored(hub, {"pg-a": published_seqs(tmp_path, "pg-a")})
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchone()[0]
            assert killed >= 1
            second = run_device(mosquitto.url, "pg-b", demo_clip, tmp_path, "--fast")
            assert second.returncode == 0
            expected = {d: published_seqs(tmp_path, d) for d in ("pg-a", "pg-b")}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the API's first request after the cut may answer 503
                try:
                    wait_stored(hub, expected, timeout=5)
                    break
                except (AssertionError, OSError):
                    time.sleep(0.5)
            assert_exactly_once(db, tmp_path, ["pg-a", "pg-b"])
            assert hub.health()["ingest"]["db_errors"] >= 1
            logs = "".join(p.read_text() for p in tmp_path.glob("hub-*.log"))
            assert "reconnected to" in logs and "Traceback" not in logs
        finally:
            hub.stop()
