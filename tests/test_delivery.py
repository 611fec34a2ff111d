"""Delivery through broker outages: every committed event arrives, in seq order, none lost."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import Broker, Recorder, free_port

pytestmark = pytest.mark.mqtt


def test_broker_stopped_mid_run_loses_nothing(tmp_path, request):
    from emocast.device.demo_clip import Segment, write_clip

    clip = write_clip(tmp_path / "c.avi", segments=(Segment(1.5, True, 0.6, 0.3, 0.7), Segment(2.3, False)))
    broker = Broker(tmp_path, free_port(), persistent=True)
    broker.start()
    request.addfinalizer(broker.stop)
    rec = Recorder(broker.port, ["emocast/bounce/events/#", "emocast/bounce/summary"], persistent=True)
    rec.start()
    request.addfinalizer(rec.stop)
    time.sleep(0.5)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[emotion]\nmin_confidence = 0.0\n[mqtt]\ndrain_timeout_s = 20.0\n[events]\nsummary_s = 1.0\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "emocast", "run", "--config", str(cfg), "--source", str(clip), "--loop",
         "--broker", broker.url, "--device-id", "bounce", "--outbox", str(tmp_path / "o.sqlite"), "--print",
         "--duration", "14"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    broker.stop()  # a clean stop: mosquitto saves its sessions
    time.sleep(4)  # events keep being committed meanwhile
    broker.start()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-3000:]
    committed = [json.loads(line) for line in out.splitlines()]
    assert len(committed) >= 15
    want = {p["id"] for p in committed}
    received = lambda: {p["id"] for p in rec.payloads("")}  # noqa: E731 (only JSON topics are subscribed)
    rec.wait_for(lambda m: want <= received(), 20)
    missing = [p["seq"] for p in committed if p["id"] not in received()]
    assert not missing, f"lost seq {missing}; stderr: {err[-2000:]}"
    got = sorted({p["seq"] for p in rec.payloads("")})
    assert got == list(range(1, len(committed) + 1))
    assert "disconnected from the broker" in err
