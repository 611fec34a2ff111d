"""TLS, authentication and ACLs against a real Mosquitto with certificates the test makes (openssl),
and MQTT 5: each failure gives the documented outcome, with the cause named, never a silent retry."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from emocast.core.errors import ExitCode
from tests.helpers.service import config, event_payloads, run_cli, validate
from tests.helpers.tls import make_ca, make_cert, tls_broker
from tests.support import Broker, Recorder, free_port

pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


needs_tools = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None,
    reason="needs openssl, mosquitto and mosquitto_passwd",
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "emocast-test-ca")
    other = make_ca(d, "some-other-ca")
    server = make_cert(d, "broker", ca, server=True)
    client = make_cert(d, "kiosk1", ca, server=False)
    stranger = make_cert(d, "stranger", other, server=False)
    return {"ca": ca[0], "other_ca": other[0], "server_crt": server[0], "server_key": server[1],
            "client_crt": client[0], "client_key": client[1], "stranger_crt": stranger[0],
            "stranger_key": stranger[1]}


@needs_tools
@pytest.mark.parametrize("client_cert", [False, True])
def test_tls_with_a_private_ca_delivers_events(tmp_path, pki, short_clip, client_cert):
    broker = tls_broker(tmp_path, pki, require_cert=client_cert)
    rec = Recorder(broker.port, "emocast/#")
    rec.start()
    try:
        mqtt = {"ca_file": str(pki["ca"])}
        if client_cert:
            mqtt |= {"cert_file": str(pki["client_crt"]), "key_file": str(pki["client_key"])}
        cfg = config(tmp_path, mqtt=mqtt)
        res = run_cli(["run", "--config", str(cfg), "--source", str(short_clip), "--device-id", "tls1",
                       "--broker", f"mqtts://127.0.0.1:{broker.tls_port}", "--outbox", str(tmp_path / "o.sqlite")])
        assert res.returncode == 0, res.stderr[-2000:]
        assert rec.wait_for(lambda m: any(t == "emocast/tls1/status" and p == b"offline" for t, p, _ in m), 20)
        events = event_payloads(rec, "tls1")
        assert any(e["schema"] == "emocast.attention/1" for e in events)
        for e in events:
            validate(e)
    finally:
        rec.stop()
        broker.stop()


@needs_tools
@pytest.mark.parametrize("case, require_cert, expect", [
    ("broker certificate from another CA", False, ["certificate is not trusted", "ca_file"]),
    ("client certificate the broker does not trust", True, ["rejected the TLS handshake", "cert_file"]),
])
def test_certificate_problems_are_fatal_and_named(tmp_path, pki, short_clip, case, require_cert, expect):
    broker = tls_broker(tmp_path, pki, require_cert=require_cert)
    mqtt = {"ca_file": str(pki["other_ca"] if not require_cert else pki["ca"])}
    if require_cert:
        mqtt |= {"cert_file": str(pki["stranger_crt"]), "key_file": str(pki["stranger_key"])}
    try:
        t0 = time.monotonic()
        res = run_cli(["run", "--config", str(config(tmp_path, mqtt=mqtt)), "--source", str(short_clip), "--loop",
                       "--broker", f"mqtts://127.0.0.1:{broker.tls_port}", "--outbox", str(tmp_path / "o.sqlite")],
                      timeout=90)
    finally:
        broker.stop()
    assert res.returncode == ExitCode.BROKER_REFUSED, f"{case}: {res.stderr[-2000:]}"
    assert all(text in res.stderr for text in expect), res.stderr[-2000:]
    assert time.monotonic() - t0 < 60  # not a silent retry loop


@needs_tools
def test_tls_files_are_checked_at_start(tmp_path, pki, short_clip):
    missing = config(tmp_path, mqtt={"ca_file": str(tmp_path / "nope.crt")})
    res = run_cli(["run", "--config", str(missing), "--source", str(short_clip)], timeout=60)
    assert res.returncode == ExitCode.CONFIG and "[mqtt] ca_file: no such file" in res.stderr
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate\n")
    bad = config(tmp_path, mqtt={"ca_file": str(junk)})
    res = run_cli(["check-config", str(bad)], timeout=60)
    assert res.returncode == ExitCode.CONFIG and "is not a PEM CA certificate" in res.stderr
    mismatched = config(tmp_path, mqtt={"cert_file": str(pki["client_crt"]), "key_file": str(pki["stranger_key"])})
    res = run_cli(["check-config", str(mismatched)], timeout=60)
    assert res.returncode == ExitCode.CONFIG and "cert_file/key_file" in res.stderr


@needs_tools
def test_tls_and_password_wrong_password_is_refused_by_name(tmp_path, pki, short_clip):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "kiosk", "right"], check=True)
    pw.chmod(0o600)
    broker = tls_broker(tmp_path, pki, extra=f"password_file {pw}\n")
    broker.anonymous = False
    broker.stop()
    broker.start()
    try:
        secret = tmp_path / "secret"
        for password, code in (("right", ExitCode.OK), ("Zq9-not-it", ExitCode.BROKER_REFUSED)):
            secret.write_text(password + "\n")
            cfg = config(tmp_path, mqtt={"ca_file": str(pki["ca"]), "username": "kiosk",
                                         "password_file": str(secret)})
            res = run_cli(["run", "--config", str(cfg), "--source", str(short_clip), "--outbox",
                           str(tmp_path / f"o-{code}.sqlite"), "--broker", f"mqtts://127.0.0.1:{broker.tls_port}"],
                          timeout=90)
            assert res.returncode == code, res.stderr[-2000:]
        assert "Bad user name or password" in res.stderr or "Not authorized" in res.stderr
        assert "Zq9-not-it" not in res.stderr  # the password is never logged
    finally:
        broker.stop()


ACL = """user kiosk1
topic write emocast/kiosk1/#
user hub
topic read emocast/#
"""


@needs_tools
def test_an_acl_that_forbids_the_device_topic_is_reported_and_loses_nothing(tmp_path, short_clip):
    """MQTT 5 returns "Not authorized" in the PUBACK: the service exits 6 naming the topic, and the
    events stay in the outbox for when the ACL is fixed. (MQTT 3.1.1 has no way to say no: the
    broker acknowledges and discards, which is why the README recommends protocol 5.)"""
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "kiosk1", "pw1"], check=True)
    pw.chmod(0o600)
    (tmp_path / "acl").write_text(ACL)
    broker = Broker(tmp_path, free_port(), anonymous=False,
                    extra_conf=f"password_file {pw}\nacl_file {tmp_path / 'acl'}\n")
    broker.start()
    outbox = tmp_path / "o.sqlite"
    try:
        secret = tmp_path / "secret"
        secret.write_text("pw1\n")
        cfg = config(tmp_path, mqtt={"username": "kiosk1", "password_file": str(secret), "protocol": "5"})
        # the device id kiosk2 is not the one the ACL lets user kiosk1 write under
        res = run_cli(["run", "--config", str(cfg), "--source", str(short_clip), "--loop", "--device-id", "kiosk2",
                       "--broker", broker.url, "--outbox", str(outbox)], timeout=90)
        assert res.returncode == ExitCode.BROKER_REFUSED, res.stderr[-2000:]
        assert "Not authorized" in res.stderr and "emocast/kiosk2/" in res.stderr and "ACL" in res.stderr
        from emocast.contract.events import Topics
        from emocast.device.delivery.outbox import Outbox

        kept = Outbox(outbox, Topics("emocast", "kiosk2"), 1000)
        assert kept.depth() >= 1  # nothing was lost
        kept.close()
    finally:
        broker.stop()


@needs_tools
def test_mqtt5_end_to_end(broker, recorder_factory, short_clip, tmp_path):
    rec = recorder_factory(broker.port)
    cfg = config(tmp_path, mqtt={"protocol": "5"})
    res = run_cli(["run", "--config", str(cfg), "--source", str(short_clip), "--device-id", "v5",
                   "--broker", broker.url, "--outbox", str(tmp_path / "o.sqlite")])
    assert res.returncode == 0, res.stderr[-2000:]
    assert rec.wait_for(lambda m: any(t == "emocast/v5/status" and p == b"offline" for t, p, _ in m), 20)
    events = event_payloads(rec, "v5")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    info = [json.loads(p) for t, p, _ in rec.messages if t == "emocast/v5/info"]
    assert info and info[0]["capabilities"]["attention_checks"] is True


def test_home_assistant_discovery_describes_sensors_that_read_real_summaries(broker, short_clip, tmp_path):
    jinja2 = pytest.importorskip("jinja2")
    rec = Recorder(broker.port, ["homeassistant/#", "emocast/#"])
    rec.start()
    try:
        cfg = config(tmp_path, mqtt={"homeassistant": True}, events={"summary_s": 1.0})
        res = run_cli(["run", "--config", str(cfg), "--source", str(short_clip), "--device-id", "hall.kiosk",
                       "--broker", broker.url, "--outbox", str(tmp_path / "o.sqlite")])
        assert res.returncode == 0, res.stderr[-2000:]
        assert rec.wait_for(lambda m: any(t.endswith("/status") and p == b"offline" for t, p, _ in m), 20)
    finally:
        rec.stop()
    configs = {t: json.loads(p) for t, p, _ in rec.messages if t.startswith("homeassistant/")}
    assert set(configs) == {f"homeassistant/sensor/emocast_hall_kiosk/{k}/config" for k in
                            ("attentive_share", "dominant_emotion", "faces_now", "blink_rate", "outbox_depth")}
    summaries = [json.loads(p) for t, p, _ in rec.messages if t == "emocast/hall.kiosk/summary"]
    with_faces = [s for s in summaries if s["face_time_s"] > 0]
    assert with_faces
    env = jinja2.Environment()
    for c in configs.values():
        assert c["availability_topic"] == "emocast/hall.kiosk/status"
        assert c["device"]["identifiers"] == ["emocast_hall_kiosk"]
        assert c["state_topic"] in ("emocast/hall.kiosk/summary", "emocast/hall.kiosk/metrics")
    render = lambda key, payload: env.from_string(  # noqa: E731
        configs[f"homeassistant/sensor/emocast_hall_kiosk/{key}/config"]["value_template"]).render(value_json=payload)
    s = with_faces[0]
    assert float(render("attentive_share", s)) == pytest.approx(round(s["attentive_share"] * 100, 1))
    top = max(s["emotion_share"], key=s["emotion_share"].get)
    assert render("dominant_emotion", s) == (top if s["emotion_share"][top] > 0 else "none")
    assert render("faces_now", s) == str(s["faces_now"])
    empty = {**s, "attentive_share": None, "emotion_share": {k: 0.0 for k in s["emotion_share"]},
             "blink_rate_per_min": None}
    assert float(render("attentive_share", empty)) == 0.0 and render("dominant_emotion", empty) == "none"
    assert render("blink_rate", empty) == "0"


def test_credentials_never_reach_logs_messages_or_the_digest(tmp_path, broker):
    """A camera's and a broker's passwords inside their URLs: check-config (the unit's ExecStartPre,
    so the journal), the service's start and "lost" lines and the published config digest show
    neither, and the digest does not change with them (a hash of a short password can be guessed)."""
    from emocast.device import config as cfgmod

    secret = "hunter2-secret"
    cam = f"rtsp://cam:{secret}@127.0.0.1:{free_port()}/live"  # nothing listens: the source is lost
    url = f"mqtt://kiosk:{secret}@127.0.0.1:{broker.port}"
    path = config(tmp_path, source={"uri": cam, "stall_timeout_s": 1.0, "reopen_backoff_max_s": 1.0},
                  mqtt={"url": url})
    checked = run_cli(["check-config", str(path)], timeout=60)
    assert checked.returncode == ExitCode.OK, checked.stderr
    assert secret not in checked.stdout + checked.stderr and "rtsp://cam:***@127.0.0.1" in checked.stdout
    ran = run_cli(["run", "--config", str(path), "--duration", "4", "--log-level", "DEBUG"], timeout=90)
    said = ran.stdout + ran.stderr
    assert "rtsp://cam:***@" in said and secret not in said, said[-2000:]
    one = cfgmod.from_mapping({"source": {"uri": cam}, "mqtt": {"url": url}})
    other = cfgmod.from_mapping({"source": {"uri": cam.replace(secret, "x")},
                                 "mqtt": {"url": url.replace(secret, "y")}})
    assert one.digest() == other.digest()
    assert cfgmod.from_mapping({"source": {"uri": cam.replace("cam:", "cam2:")}}).digest() != one.digest()
