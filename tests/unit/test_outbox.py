from __future__ import annotations

import json
import multiprocessing
import os
import signal

import pytest

from emocast.contract.events import Topics
from emocast.device.delivery.outbox import Outbox, OutboxError

TOPICS = Topics("emocast", "kiosk1")


def test_seq_is_gap_free_and_survives_reopening(tmp_path):
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, TOPICS)
    seqs = [ob.append("attention", {"track": 1, "state": "attentive"})["seq"] for _ in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    ob.close()
    ob = Outbox(path, TOPICS)
    assert ob.append("emotion", {"track": 1})["seq"] == 6
    assert [e.seq for e in ob.pending()] == [1, 2, 3, 4, 5, 6]


def test_stored_payload_is_the_envelope(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite", TOPICS)
    payload = ob.append("attention", {"track": 3, "state": "absent"}, wall=0.0)
    row = ob.pending()[0]
    assert row.topic == "emocast/kiosk1/events/attention" and row.qos == 1
    stored = json.loads(row.payload)
    assert stored == payload
    assert stored["ts"] == "1970-01-01T00:00:00.000Z" and stored["device"] == "kiosk1"
    assert stored["schema"] == "emocast.attention/1" and stored["track"] == 3


def test_ack_removes_only_that_event_and_pending_is_in_seq_order(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite", TOPICS)
    for _ in range(4):
        ob.append("summary", {})
    ob.ack(2)
    assert [e.seq for e in ob.pending()] == [1, 3, 4]
    assert [e.seq for e in ob.pending(after_seq=1, limit=1)] == [3]
    assert ob.depth() == 3


def test_cap_drops_the_oldest_and_counts_them(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite", TOPICS, max_events=10)
    for _ in range(25):
        ob.append("attention", {})
    assert ob.depth() == 10
    assert [e.seq for e in ob.pending()] == list(range(16, 26))
    assert ob.dropped_total() == 15
    ob.close()
    assert Outbox(tmp_path / "o.sqlite", TOPICS, max_events=10).dropped_total() == 15  # survives restarts


def _writer(path: str, ready) -> None:
    ob = Outbox(__import__("pathlib").Path(path), TOPICS)
    for i in range(3):
        ob.append("attention", {"n": i})
    ready.set()
    signal.pause()


def test_committed_events_survive_kill_9(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_writer, args=(str(tmp_path / "o.sqlite"), ready))
    proc.start()
    assert ready.wait(30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    ob = Outbox(tmp_path / "o.sqlite", TOPICS)
    assert [json.loads(e.payload)["n"] for e in ob.pending()] == [0, 1, 2]
    assert ob.append("attention", {})["seq"] == 4


def test_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutboxError, match="cannot open the outbox"):
        Outbox(blocker / "o.sqlite", TOPICS)
