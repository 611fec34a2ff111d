"""Delivery through broker outages: every committed event arrives, in seq order, none lost."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from tests.support import Broker, Recorder, free_port

pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


@pytest.mark.slow  # a wall-clock run with the broker stopped and started
def test_broker_stopped_mid_run_loses_nothing(tmp_path, request):
    from emocast.device.perception.demo_clip import Segment, write_clip

    clip = write_clip(tmp_path / "c.avi", segments=(Segment(1.5, True, 0.6, 0.3, 0.7), Segment(2.3, False)))
    broker = Broker(tmp_path, free_port(), persistent=True)
    broker.start()
    request.addfinalizer(broker.stop)
    rec = Recorder(broker.port, ["emocast/bounce/events/#", "emocast/bounce/summary"], persistent=True)
    rec.start()  # returns once subscribed
    request.addfinalizer(rec.stop)
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


@pytest.mark.slow  # a wall-clock run while the broker is away
def test_outbox_cap_while_the_broker_is_away_is_counted_and_reported(tmp_path, request):
    """The broker is away long enough for the outbox cap to drop the oldest events; when it is back,
    the next summary and the metrics say how many were dropped, and what is left arrives in order."""
    from emocast.device.perception.demo_clip import Segment, write_clip

    clip = write_clip(tmp_path / "c.avi", segments=(Segment(1.0, True, 0.6, 0.3, 0.7), Segment(2.2, False)))
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text('[outbox]\nmax_events = 10\n[events]\nsummary_s = 1.0\nmetrics_s = 0.5\n'
                   '[emotion]\nemotion_hz = 0\n[mqtt]\ndrain_timeout_s = 10.0\n')
    common = [sys.executable, "-m", "emocast", "run", "--config", str(cfg), "--source", str(clip), "--loop",
              "--broker", f"mqtt://127.0.0.1:{port}", "--device-id", "capped", "--outbox", str(tmp_path / "o.sqlite")]
    away = subprocess.run(common + ["--duration", "13"], capture_output=True, text=True, timeout=90)
    assert away.returncode == 0, away.stderr[-2000:]
    assert "outbox full (10 events)" in away.stderr
    assert away.stderr.count("outbox full") <= 2  # warned, not once per dropped event
    broker = Broker(tmp_path, port)
    broker.start()
    request.addfinalizer(broker.stop)
    rec = Recorder(port, ["emocast/capped/#"])
    rec.start()
    request.addfinalizer(rec.stop)
    back = subprocess.run(common + ["--duration", "3"], capture_output=True, text=True, timeout=90)
    assert back.returncode == 0, back.stderr[-2000:]
    rec.wait_for(lambda m: any(t.endswith("/status") and p == b"offline" for t, p, _ in m), 15)
    summaries = rec.payloads("/summary")
    metrics = rec.payloads("/metrics")
    assert summaries and metrics
    dropped = max(s["dropped_events"] for s in summaries)
    assert dropped >= 5
    assert max(m["events_dropped"] for m in metrics) == dropped
    seqs = sorted(p["seq"] for p in rec.payloads("/summary") + rec.payloads("/events/attention"))
    assert seqs[0] > 1  # the oldest were the ones dropped
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # the rest arrived, none missing


def test_service_killed_mid_run_delivers_its_backlog_at_the_next_start(tmp_path, request):
    """SIGKILL while the broker is away: what was committed (the --print lines) is delivered after
    the next start, and seq carries on from where the killed run stopped."""
    from emocast.device.perception.demo_clip import Segment, write_clip

    clip = write_clip(tmp_path / "c.avi", segments=(Segment(1.0, True, 0.6, 0.3, 0.7), Segment(2.2, False)))
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text("[events]\nsummary_s = 1.0\n[emotion]\nemotion_hz = 0\n[mqtt]\ndrain_timeout_s = 10.0\n")
    common = [sys.executable, "-m", "emocast", "run", "--config", str(cfg), "--source", str(clip), "--loop",
              "--broker", f"mqtt://127.0.0.1:{port}", "--device-id", "killed", "--outbox", str(tmp_path / "o.sqlite"),
              "--print"]
    proc = subprocess.Popen(common, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first: list[dict] = []
    for line in proc.stdout:  # type: ignore[union-attr]
        first.append(json.loads(line))
        if len(first) >= 8:
            break
    proc.kill()  # SIGKILL: no final summary, no drain, no offline
    proc.wait(10)
    assert proc.returncode == -9
    broker = Broker(tmp_path, port)
    broker.start()
    request.addfinalizer(broker.stop)
    rec = Recorder(port, ["emocast/killed/events/#", "emocast/killed/summary"])
    rec.start()
    request.addfinalizer(rec.stop)
    again = subprocess.run(common + ["--duration", "3"], capture_output=True, text=True, timeout=90)
    assert again.returncode == 0, again.stderr[-2000:]
    second = [json.loads(line) for line in again.stdout.splitlines()]
    want = {p["id"] for p in first + second}
    assert rec.wait_for(lambda m: want <= {json.loads(p)["id"] for _, p, _ in m}, 20)
    assert second[0]["seq"] > first[-1]["seq"]  # seq survived the kill
    got = sorted({json.loads(p)["seq"] for _, p, _ in rec.messages})
    assert got[0] == 1 and got == list(range(1, got[-1] + 1))


class SilentBroker:
    """A TCP server that answers CONNECT with a CONNACK and then reads and ignores everything: a broker
    that takes events and never acknowledges them. Counts the connections made to it."""

    def __init__(self) -> None:
        import socket

        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._threads: list = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    @staticmethod
    def _serve(conn) -> None:
        with conn:
            conn.recv(4096)  # CONNECT
            conn.sendall(bytes([0x20, 0x02, 0x00, 0x00]))  # CONNACK, MQTT 3.1.1: accepted
            while conn.recv(4096):  # PUBLISHes and PINGREQs, never answered
                pass

    def close(self) -> None:
        self.server.close()


def test_a_broker_that_never_acknowledges_is_left_and_nothing_is_lost(tmp_path):
    """No PUBACK for ``ack_timeout_s``: the kiosk drops the connection and makes a new one (back-off),
    the events stay in its outbox to be sent again."""
    from emocast.contract.events import Topics
    from emocast.device.config import parse_broker_url
    from emocast.device.delivery.outbox import Outbox
    from emocast.device.delivery.publish import MqttOptions, Publisher

    silent = SilentBroker()
    topics = Topics("emocast", "k1")
    outbox = Outbox(tmp_path / "outbox.sqlite", topics)
    for i in range(5):
        outbox.append("attention", {"track": 1, "state": "attentive", "previous": None,
                                    "previous_duration_s": 0.0, "source_t": float(i)})
    stop = threading.Event()
    opts = MqttOptions(broker=parse_broker_url(f"mqtt://127.0.0.1:{silent.port}"), client_id="k1", ack_timeout_s=2.0)
    publisher = Publisher(outbox, topics, opts, {"version": "test"}, stop)
    publisher.start()
    try:
        deadline = time.monotonic() + 20
        while silent.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert silent.connections >= 2 and publisher.stats.ack_timeouts >= 1
        assert publisher.stats.published >= 5 and publisher.stats.acked == 0
        assert outbox.depth() == 5  # nothing acknowledged, nothing lost
    finally:
        stop.set()
        publisher.shutdown()
        silent.close()
        outbox.close()
