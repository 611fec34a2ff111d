"""The whole service, as the console script, against a real Mosquitto the test starts and stops."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time

import pytest

from emocast.core.errors import ExitCode
from tests.helpers.service import EMOCAST, config, event_payloads, run_cli, validate
from tests.support import REPO

pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


def test_clip_in_events_out(broker, recorder_factory, demo_clip, tmp_path):
    rec = recorder_factory(broker.port)
    cfg = config(tmp_path, events={"summary_s": 5.0})
    res = run_cli(["--log-level", "DEBUG", "run", "--config", str(cfg), "--source", str(demo_clip), "--fast",
                   "--metrics-s", "0.2", "--broker", broker.url,
                   "--device-id", "it1", "--outbox", str(tmp_path / "o.sqlite"), "--print"])
    assert res.returncode == ExitCode.OK, res.stderr[-3000:]
    assert rec.wait_for(lambda m: any(t == "emocast/it1/status" and p == b"offline" for t, p, _ in m), 20)

    status = rec.texts("it1/status")
    assert status[0] == "online" and status[-1] == "offline"
    info = rec.payloads("it1/info")
    assert info, "no retained info message"
    validate(info[0])
    assert info[0]["model"] and len(info[0]["labels"]) == 7

    metrics = rec.payloads("it1/metrics")
    assert metrics, "no metrics message"
    for m in metrics:
        validate(m)
    assert metrics[-1]["frames_processed"] > 0 and "detect" in metrics[-1]["stage_ms"]
    # how well it keeps up: in every metrics message, and the whole run's in the closing line
    assert {"faces_tracked", "detections_per_s", "attention_reads_per_face_s", "emotion_reads_per_face_s"} <= \
        metrics[-1].keys()
    assert any(m["faces_tracked"] > 0 and m["detections_per_s"] > 0 for m in metrics)
    assert re.search(r"stopped: .* faces tracked, each read [\d.]+ times a second for attention and [\d.]+ for "
                     r"emotion, [\d.]+ detections a second", res.stderr), res.stderr[-2000:]

    events = event_payloads(rec, "it1")
    for p in events:
        validate(p)
    seqs = [p["seq"] for p in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs == list(range(1, len(seqs) + 1)), "a fresh outbox numbers events 1, 2, 3... without gaps"
    attention = [(p["track"], p["state"]) for p in events if p["schema"].startswith("emocast.attention")]
    assert attention == [(1, "attentive"), (1, "absent"), (2, "attentive"), (2, "absent"), (3, "attentive")]
    emotion = [p for p in events if p["schema"].startswith("emocast.emotion")]
    assert {p["track"] for p in emotion} == {1, 2, 3}
    summaries = [p for p in events if p["schema"].startswith("emocast.summary")]
    assert len(summaries) >= 3 and summaries[-1]["final"] is True
    assert any(s["faces_seen"] >= 1 and s["attentive_share"] == 1.0 for s in summaries)

    # --print wrote the same events, one JSON object per line, in the same order
    printed = [json.loads(line) for line in res.stdout.splitlines()]
    assert [p["id"] for p in printed] == [p["id"] for p in events]
    assert all(p["topic"].startswith("emocast/it1/") for p in printed)
    # nothing identifying or visual in the log either, even at DEBUG
    assert not re.search(r"\b(landmarks?|bbox|box|crop|pixels)\b", res.stderr, re.IGNORECASE)


def test_sigterm_stops_cleanly_and_publishes_offline(broker, recorder_factory, short_clip, tmp_path):
    rec = recorder_factory(broker.port)
    cfg = config(tmp_path)
    proc = subprocess.Popen(
        EMOCAST + ["run", "--config", str(cfg), "--source", str(short_clip), "--loop", "--broker", broker.url,
                   "--device-id", "it2", "--outbox", str(tmp_path / "o.sqlite")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert rec.wait_for(lambda m: any(t.endswith("it2/events/attention") for t, _, _ in m), 60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.OK, err[-2000:]
    assert "received SIGTERM" in err
    assert rec.wait_for(lambda m: rec.texts("it2/status")[-1:] == ["offline"], 10)


def test_last_will_says_offline_when_the_service_is_killed(broker, recorder_factory, short_clip, tmp_path):
    rec = recorder_factory(broker.port)
    proc = subprocess.Popen(
        EMOCAST + ["run", "--config", str(config(tmp_path)), "--source", str(short_clip), "--loop",
                   "--broker", broker.url, "--device-id", "it3", "--outbox", str(tmp_path / "o.sqlite")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert rec.wait_for(lambda m: "online" in rec.texts("it3/status"), 60)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rec.wait_for(lambda m: rec.texts("it3/status")[-1:] == ["offline"], 15), "no last will"
    # the retained status a hub sees when it subscribes later is offline too
    late = recorder_factory(broker.port, "emocast/it3/status")
    assert late.wait_for(lambda m: len(m) >= 1, 10)
    assert late.messages[0][1] == b"offline" and late.messages[0][2] is True


def test_no_broker_events_are_kept_and_delivered_at_the_next_start(broker, recorder_factory, short_clip, tmp_path):
    outbox = str(tmp_path / "o.sqlite")
    cfg = config(tmp_path, mqtt={"drain_timeout_s": 1.0})
    broker.stop()
    first = run_cli(["run", "--config", str(cfg), "--source", str(short_clip), "--fast", "--broker", broker.url,
                     "--device-id", "it4", "--outbox", outbox, "--print"])
    assert first.returncode == ExitCode.OK, first.stderr[-2000:]
    spooled = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(spooled) >= 5 and "left in the outbox" in first.stderr
    assert first.stderr.count("cannot reach the broker") == 1  # said once, not at every retry

    broker.start()
    rec = recorder_factory(broker.port)
    second = run_cli(["run", "--config", str(cfg), "--source", str(short_clip), "--fast", "--broker", broker.url,
                      "--device-id", "it4", "--outbox", outbox, "--print"])
    assert second.returncode == ExitCode.OK, second.stderr[-2000:]
    fresh = [json.loads(line) for line in second.stdout.splitlines()]
    assert fresh[0]["seq"] == spooled[-1]["seq"] + 1, "seq continues across restarts"
    want = {p["id"] for p in spooled + fresh}
    assert rec.wait_for(lambda m: want <= {p["id"] for p in event_payloads(rec, "it4")}, 20)
    got = [p["seq"] for p in event_payloads(rec, "it4")]
    assert sorted(set(got)) == list(range(1, len(want) + 1))


def test_corrupt_model_exits_with_the_model_code_and_names_the_file(tmp_path, short_clip):
    from emocast.contract.model_card import card_path_for
    from emocast.device.perception.emotion import default_model_path

    bad = tmp_path / default_model_path().name
    shutil.copy(card_path_for(default_model_path()), card_path_for(bad))
    bad.write_bytes(default_model_path().read_bytes()[:1000])  # truncated copy
    res = run_cli(["run", "--config", str(config(tmp_path, emotion={"model": str(bad)})), "--source",
                   str(short_clip), "--broker", "mqtt://127.0.0.1:1", "--outbox", str(tmp_path / "o.sqlite")])
    assert res.returncode == ExitCode.MODEL == 4
    assert str(bad) in res.stderr and "SHA-256" in res.stderr
    assert "exiting with code 4 (missing or corrupt model)" in res.stderr


def test_missing_source_exits_with_the_source_code(tmp_path):
    res = run_cli(["run", "--source", str(tmp_path / "nope.mp4"), "--broker", "mqtt://127.0.0.1:1",
                   "--outbox", str(tmp_path / "o.sqlite")])
    assert res.returncode == ExitCode.SOURCE == 5
    assert "nope.mp4" in res.stderr


def test_bad_config_exits_with_the_config_code_and_names_the_key(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[emotion]\nemotion_hz = \"often\"\n")
    res = run_cli(["run", "--config", str(p)])
    assert res.returncode == ExitCode.CONFIG == 3
    assert str(p) in res.stderr and "[emotion] emotion_hz" in res.stderr
    chk = run_cli(["check-config", str(p)])
    assert chk.returncode == 3 and "emotion_hz" in chk.stderr


def test_check_config_accepts_the_shipped_examples_of_device_and_hub(tmp_path):
    example = REPO / "systemd" / "emocast.toml"
    res = run_cli(["check-config", str(example)])
    assert res.returncode == 0 and "valid" in res.stdout
    hub = REPO / "systemd" / "hub.toml"
    res = run_cli(["check-config", str(hub)])
    assert res.returncode == 0 and "valid hub config" in res.stdout and "web 127.0.0.1:8080" in res.stdout
    bad = tmp_path / "hub.toml"
    bad.write_text(hub.read_text().replace('listen = "127.0.0.1:8080"', 'listen = "0.0.0.0:8080"'))
    res = run_cli(["check-config", str(bad)])
    assert res.returncode == 3 and "[web] listen 0.0.0.0:8080" in res.stderr


def test_duration_stops_a_looping_run(broker, tmp_path, short_clip):
    started = time.monotonic()
    res = run_cli(["run", "--config", str(config(tmp_path)), "--source", str(short_clip), "--loop",
                   "--broker", broker.url, "--outbox", str(tmp_path / "o.sqlite"), "--duration", "3"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "duration of 3.0 s reached" in res.stderr
    assert time.monotonic() - started < 60


def test_refused_login_exits_with_the_broker_code_and_says_why(tmp_path, short_clip):
    from tests.support import Broker, free_port

    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed")
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "kiosk", "right"], check=True)
    pw.chmod(0o600)
    secured = Broker(tmp_path, free_port(), extra_conf=f"password_file {pw}\n", anonymous=False)
    secured.start()
    try:
        secret = tmp_path / "mqtt.secret"
        secret.write_text("wrong\n")
        cfg = config(tmp_path, mqtt={"username": "kiosk", "password_file": str(secret)})
        res = run_cli(["run", "--config", str(cfg), "--source", str(short_clip), "--loop", "--broker", secured.url,
                       "--outbox", str(tmp_path / "o.sqlite")], timeout=60)
    finally:
        secured.stop()
    assert res.returncode == ExitCode.BROKER_REFUSED == 6, res.stderr[-2000:]
    assert "broker refused the connection" in res.stderr
    assert "wrong" not in res.stderr  # the password is never logged


def test_http_source(broker, recorder_factory, short_clip, tmp_path):
    """A network URL goes through the same capture code as a camera (live: reopened if it drops)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(short_clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec = recorder_factory(broker.port)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{short_clip.name}"
        res = run_cli(["run", "--config", str(config(tmp_path)), "--source", url, "--broker", broker.url,
                       "--device-id", "http1", "--outbox", str(tmp_path / "o.sqlite"), "--duration", "4"])
    finally:
        server.shutdown()
    assert res.returncode == 0, res.stderr[-2000:]
    assert rec.wait_for(lambda m: any(t.endswith("http1/events/attention") for t, _, _ in m), 10)
    assert rec.payloads("http1/events/attention")[0]["state"] == "attentive"
