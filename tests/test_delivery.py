"""Delivery through broker outages: every committed event arrives, in seq order, none lost."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Broker, free_port

pytestmark = pytest.mark.mqtt


class DurableRecorder:
    """A subscriber with a persistent session (QoS 1, clean_session false): the broker queues what
    arrives while it is away, so it can prove that nothing was lost."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.messages: list[dict] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="durable-rec",
                                  clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(json.loads(msg.payload))

    def ids(self) -> set[str]:
        with self._lock:
            return {m["id"] for m in self.messages}

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_broker_stopped_mid_run_loses_nothing(tmp_path, request):
    from emocast.device.demo_clip import Segment, write_clip

    clip = write_clip(tmp_path / "c.avi", segments=(Segment(1.5, True, 0.6, 0.3, 0.7), Segment(2.3, False)))
    broker = Broker(tmp_path, free_port(), persistent=True)
    broker.start()
    request.addfinalizer(broker.stop)
    rec = DurableRecorder(broker.port, ["emocast/bounce/events/#", "emocast/bounce/summary"])
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
    deadline = time.monotonic() + 20
    while not want <= rec.ids() and time.monotonic() < deadline:
        time.sleep(0.2)
    missing = [p["seq"] for p in committed if p["id"] not in rec.ids()]
    assert not missing, f"lost seq {missing}; stderr: {err[-2000:]}"
    got = sorted({m["seq"] for m in rec.messages})
    assert got == list(range(1, len(committed) + 1))
    assert "disconnected from the broker" in err
