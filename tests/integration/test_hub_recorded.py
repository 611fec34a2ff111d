"""Recorded lectures: an import is dated by when its recording was made (the video's container, carried
by `emocast analyze`'s first record), lasts as long as the recording, says it was imported when the
file gives no date; a video can be given to a lecture after its import; databases from before migrate
without losing a row."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")

from emocast.hub import store as store_module  # noqa: E402
from emocast.hub.migrations import LATEST, MIGRATIONS  # noqa: E402
from emocast.hub.store import Store  # noqa: E402
from tests.helpers.hub_recorded import imported, with_media
from tests.helpers.hub_timeline import T0, analyze_records  # noqa: E402


def test_an_import_is_dated_by_its_recording_and_lasts_as_long(db_url, tmp_path, capsys):
    made = T0 - 86400 * 30  # recorded a month before the import
    a = with_media(analyze_records(tmp_path / "ana.jsonl", {1: [(t, "attentive", None) for t in range(100)]}),
                   made, 2400.0)
    b = analyze_records(tmp_path / "ben.jsonl", {1: [(t, "attentive", None) for t in range(50)]})
    lecture = imported(capsys, db_url, str(a), str(b), "--title", "Optics", "--video-offset", "60")
    assert lecture["recorded"] is True and lecture["recorded_on"] == pytest.approx(made, abs=0.001)
    # the lecture starts at the offset into the recording and ends with the recording, not its last face
    assert lecture["start"] == pytest.approx(made + 60, abs=0.001)
    assert lecture["duration_s"] == pytest.approx(2400.0 - 60, abs=0.01)
    # its events sit at the recording's own time: the first face at the video's second 0
    store = Store(db_url)
    try:
        first = min(ts for _, _, ts, *_ in store.timeline_rows(["ana"], 0, 4e9, ("attention",), lecture["id"]))
    finally:
        store.close()
    assert first == pytest.approx(made, abs=0.001)


def test_a_database_from_before_recorded_lectures_migrates_without_losing_a_row(db_url, tmp_path, monkeypatch):
    """A hub database at schema 5 (before imports were keyed to their lecture) with a live lecture and an
    imported one: after the upgrade every row is there, the import's events are its lecture's and that
    lecture is a recorded one."""
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:5])
    monkeypatch.setattr(store_module, "LATEST", 5)
    old = Store(db_url)
    assert old.schema_version() == 5
    rows = [(f"m{i}", "student1" if i < 5 else "kiosk", "attention", i + 1, T0 + i, 1, "attentive", "{}", T0,
             "import:student1.jsonl#ab" if i < 5 else "mqtt") for i in range(10)]
    old._transaction([
        ("INSERT INTO messages (id, device, kind, seq, ts, track, value, payload, received, origin) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows),
        ("INSERT INTO lectures (id, title, devices, start_ts, end_ts, video_offset_s, created) "
         "VALUES (?, ?, ?, ?, ?, ?, ?)", ("rec", "Recorded", '["student1"]', T0, T0 + 60, 0.0, T0)),
        ("INSERT INTO lectures (id, title, devices, start_ts, end_ts, video_offset_s, created) "
         "VALUES (?, ?, ?, ?, ?, ?, ?)", ("live", "Live", '["kiosk"]', T0, None, 0.0, T0))])
    old.close()
    monkeypatch.undo()
    new = Store(db_url)
    try:
        assert new.schema_version() == LATEST
        assert new.count_messages() == 10
        assert sorted(new._query("SELECT id, lecture FROM messages WHERE origin <> 'mqtt'")) == \
            [(f"m{i}", "rec") for i in range(5)]
        assert new.lecture("rec")["recorded"] is True and new.lecture("live")["recorded"] is False
        assert new.lecture("live")["live"] is True and new.lecture("rec")["duration_s"] == 60.0
    finally:
        new.close()
