"""The outbox under faults made to happen: a really full disk (a 200 KB tmpfs), a corrupt file."""

from __future__ import annotations

import subprocess
import sys

from emocast.contract.events import Topics
from emocast.device.delivery.outbox import Outbox
from tests.helpers.faults_outbox import BODY, TOPICS, tiny_disk


def test_the_service_starts_on_a_corrupt_outbox_instead_of_exiting(tmp_path):
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"\x00garbage" * 1000)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:9"\n')
    res = subprocess.run([sys.executable, "-m", "emocast", "run", "--config", str(cfg), "--outbox", str(path),
                          "--duration", "2"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "moved aside to" in res.stderr and list(tmp_path.glob("o.sqlite.corrupt-*"))


def test_the_service_drains_a_full_disk_backlog_and_keeps_running(tmp_path, broker, recorder_factory, short_clip):
    """The kiosk's disk filled while the broker was away; at the next start with the broker back the
    backlog drains, the service stays up, and its new events get through once there is room."""
    rec = recorder_factory(broker.port)
    with tiny_disk(tmp_path / "disk") as disk:
        topics = Topics("emocast", "full1")
        ob = Outbox(disk / "o.sqlite", topics)
        backlog = 0
        while ob.append("attention", BODY) is not None:
            backlog += 1
        ob.close()
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[mqtt]\nurl = "{broker.url}"\ndrain_timeout_s = 10.0\n[device]\nid = "full1"\n')
        res = subprocess.run([sys.executable, "-m", "emocast", "run", "--config", str(cfg), "--outbox",
                              str(disk / "o.sqlite"), "--source", str(short_clip), "--duration", "12"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "Traceback" not in res.stderr
        seqs = [p["seq"] for p in rec.payloads("full1/events/attention")]
        assert rec.wait_for(lambda m: len(rec.payloads("full1/events/attention")) >= backlog, 20)
        seqs = sorted({p["seq"] for p in rec.payloads("full1/events/attention")})
        assert seqs[:backlog] == list(range(1, backlog + 1))  # the whole backlog, in order, nothing lost
        assert any(s > backlog for s in seqs)  # and the run's own events once there was room


def test_a_full_disk_drops_and_counts_keeps_draining_and_resumes(tmp_path, caplog):
    with tiny_disk(tmp_path / "disk") as disk:
        ob = Outbox(disk / "o.sqlite", TOPICS)
        written = []
        with caplog.at_level("WARNING"):
            for _ in range(3000):
                payload = ob.append("attention", BODY)
                if payload is None:
                    break
                written.append(payload["seq"])
        assert payload is None, "a 200 KB disk should have filled up"
        assert "cannot be written" in caplog.text and str(disk) in caplog.text
        for _ in range(5):
            assert ob.append("attention", BODY) is None  # still full: dropped, no exception
        assert ob.dropped_total() == 6
        assert written == list(range(1, len(written) + 1))  # what was written is gap-free
        for ev in ob.pending(0, 10_000):  # the broker acknowledges everything: space comes back
            ob.ack(ev.seq)
        assert ob.depth() == 0
        resumed = ob.append("attention", BODY)
        assert resumed is not None and resumed["seq"] == len(written) + 1
        assert ob.dropped_total() == 6  # the drops are now saved in the file
        ob.close()
        again = Outbox(disk / "o.sqlite", TOPICS)
        assert again.dropped_total() == 6 and again.next_seq() == len(written) + 2
        again.close()
