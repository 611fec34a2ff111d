"""The outbox under faults made to happen: a really full disk (a 200 KB tmpfs), a corrupt file."""

from __future__ import annotations

import os

from emocast.device.delivery.outbox import SEQ_BLOCK, Outbox
from tests.helpers.faults_outbox import BODY, TOPICS


def test_garbage_or_a_malformed_page_is_moved_aside_and_seq_goes_on(tmp_path, caplog):
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, TOPICS)
    for _ in range(300):
        ob.append("attention", BODY)
    ob.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2:4096 * 2 + 512] = os.urandom(512)  # a page in the middle of the table
    path.write_bytes(bytes(data))
    for side in ("-wal", "-shm"):
        path.with_name(path.name + side).unlink(missing_ok=True)
    with caplog.at_level("ERROR"):
        fresh = Outbox(path, TOPICS)
    moved = list(tmp_path.glob("o.sqlite.corrupt-*"))
    assert fresh.resets == 1 and len([m for m in moved if m.name.count("-") == 1]) == 1
    assert str(moved[0]) in caplog.text
    seq = fresh.append("attention", BODY)["seq"]
    assert seq > 300 and seq >= SEQ_BLOCK  # above anything the lost file could have given
    assert fresh.seq_restarts() == [seq]  # said to the hub (info), so the gap below it is not "missing"
    fresh.close()

    path.write_bytes(b"this is not a database, just garbage" * 100)
    for side in ("-wal", "-shm"):
        path.with_name(path.name + side).unlink(missing_ok=True)
    third = Outbox(path, TOPICS)
    again = third.append("attention", BODY)["seq"]
    assert third.resets == 1 and again > seq and third.seq_restarts() == [seq, again]
    third.close()
    assert Outbox(path, TOPICS).seq_restarts() == [seq, again]  # kept across starts that find no fault
