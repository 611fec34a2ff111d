"""Recorded lectures: an import is dated by when its recording was made (the video's container, carried
by `emocast analyze`'s first record), lasts as long as the recording, says it was imported when the
file gives no date; a video can be given to a lecture after its import; databases from before migrate
without losing a row."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")

from emocast.cli import main  # noqa: E402
from emocast.contract.events import utc_timestamp  # noqa: E402
from emocast.core.errors import ExitCode  # noqa: E402
from emocast.hub.store import Store  # noqa: E402
from tests.helpers.hub_recorded import imported, with_media
from tests.helpers.hub_timeline import T0, analyze_records  # noqa: E402


def test_an_undated_recording_says_when_it_was_imported_and_lists_by_date(tmp_path, capsys):
    db = str(tmp_path / "hub.sqlite")
    a = analyze_records(tmp_path / "ana.jsonl", {1: [(t, "attentive", None) for t in range(100)]})
    before = time.time()
    undated = imported(capsys, db, str(a), "--title", "Undated")
    assert undated["recorded_on"] is None and undated["created"] >= before and undated["duration_s"] == 100.0
    old = with_media(analyze_records(tmp_path / "old.jsonl", {1: [(t, "attentive", None) for t in range(10)]}),
                     T0 - 86400 * 300, 60.0)
    dated = imported(capsys, db, str(old), "--title", "Last year")
    given = imported(capsys, db, str(analyze_records(tmp_path / "c.jsonl", {1: [(0, "attentive", None)]})),
                     "--title", "Given", "--start", str(T0))
    assert given["recorded_on"] == T0  # --start dates it
    store = Store(db)
    try:
        assert [x["title"] for x in store.lectures()] == ["Undated", "Given", "Last year"]  # newest first
    finally:
        store.close()
    assert dated["duration_s"] == 60.0


def test_a_video_is_given_to_a_lecture_after_its_import(tmp_path, capsys):
    db = str(tmp_path / "hub.sqlite")
    a = analyze_records(tmp_path / "ana.jsonl", {1: [(t, "attentive", None) for t in range(10)]})
    lecture = imported(capsys, db, str(a), "--title", "Chemistry")
    assert lecture["video"] is None
    assert main(["hub", "lecture", "video", lecture["id"], "chemistry.mp4", "--db", db]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["video"] == "chemistry.mp4"
    assert main(["hub", "lecture", "video", lecture["id"], "../x.mp4", "--db", db]) == ExitCode.USAGE
    assert main(["hub", "lecture", "video", "nope", "x.mp4", "--db", db]) == ExitCode.USAGE
    assert main(["hub", "lecture", "video", lecture["id"], "--none", "--db", db]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["video"] is None


def mp4_with_date(path: Path, created_1904: int, version: int = 0) -> Path:
    """The boxes a camera's MP4 starts with: ftyp, then moov holding mvhd (its creation time)."""
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    times = struct.pack(">QQIQ", created_1904, created_1904, 1000, 5000) if version else \
        struct.pack(">IIII", created_1904, created_1904, 1000, 5000)
    mvhd = box(b"mvhd", bytes([version, 0, 0, 0]) + times + b"\0" * 80)
    path.write_bytes(box(b"ftyp", b"isom\0\0\0\0isom") + box(b"free", b"\0" * 16) + box(b"moov", mvhd))
    return path


def test_a_recording_date_is_read_from_the_mp4_movie_header_or_not_at_all(tmp_path):
    from emocast.device.recording_date import EPOCH_1904, recorded_at

    when = 1_780_000_000
    assert recorded_at(mp4_with_date(tmp_path / "a.mp4", when + EPOCH_1904)) == when
    assert recorded_at(mp4_with_date(tmp_path / "b.mov", when + EPOCH_1904, version=1)) == when
    assert recorded_at(mp4_with_date(tmp_path / "zero.mp4", 0)) is None  # no date written
    assert recorded_at(mp4_with_date(tmp_path / "old.mp4", 100)) is None  # a camera whose clock was never set
    assert recorded_at(mp4_with_date(tmp_path / "c.webm", when + EPOCH_1904)) is None  # not an MP4
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(mp4_with_date(tmp_path / "d.mp4", when + EPOCH_1904).read_bytes()[:40])
    assert recorded_at(damaged) is None
    assert recorded_at(tmp_path / "missing.mp4") is None


def test_analyze_writes_the_media_length_and_date_on_its_first_record(tmp_path):
    """A real MP4 written by OpenCV, its movie header then dated as a camera would: the first record
    carries ``media_s`` and ``recorded``, the schema accepts it, and no other record carries them."""
    import cv2
    import numpy as np

    from emocast.device.analyze import media_fields
    from emocast.device.recording_date import EPOCH_1904, recorded_at

    path = tmp_path / "lesson.mp4"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(25):
        out.write(np.full((48, 64, 3), i * 8, np.uint8))
    out.release()
    data = bytearray(path.read_bytes())
    at = data.find(b"mvhd") + 4
    assert at > 4
    version = data[at]
    field = ">Q" if version else ">I"
    struct.pack_into(field, data, at + 4, 1_780_000_000 + EPOCH_1904)
    path.write_bytes(bytes(data))
    assert recorded_at(path) == 1_780_000_000
    fields = media_fields(path, 2.5)
    assert fields == {"media_s": 2.5, "recorded": utc_timestamp(1_780_000_000)}
    assert media_fields(tmp_path / "photo.jpg", 0.0) == {}


def test_a_recorded_class_of_one_face_recordings_shows_its_room_and_no_one_alone(tmp_path, capsys):
    """Four students' own recordings (one face each) under the default min_faces 3: the room's bins have
    shares (together they are four faces), each recording's own view is withheld, the bins where only
    two remain are withheld; and a recording cannot be imported into a second lecture, where the two
    lectures' difference would be that student's own record."""
    from emocast.hub.privacy import Privacy
    from emocast.hub.timeline import lecture_timeline
    from tests.hub_support import class_recordings

    db = str(tmp_path / "hub.sqlite")
    files = class_recordings(tmp_path / "rec", students=4, minutes=20)
    lecture = imported(capsys, db, *map(str, files), "--title", "Period 3", "--start", str(T0))
    store = Store(db)
    try:
        data = lecture_timeline(store, lecture, 60.0, T0 + 10_000, per_device=True, privacy=Privacy(min_faces=3))
    finally:
        store.close()
    shown = [b for b in data["bins"] if "withheld" not in b]
    assert len(shown) >= 16 and all(b["attentive_share"] is not None for b in shown)
    assert data["bins"][-1]["withheld"] and data["bins"][-1]["faces"] == pytest.approx(2.0)  # two stayed
    assert all("withheld" in b for d in data["per_device"].values() for b in d if b["faces"] > 0)
    capsys.readouterr()
    new = analyze_records(tmp_path / "new.jsonl", {1: [(0, "attentive", None)]})
    assert main(["hub", "import", str(files[0]), str(new), "--title", "Period 3 again", "--db", db]) == ExitCode.USAGE
    copy = tmp_path / "renamed.jsonl"
    copy.write_bytes(files[1].read_bytes())
    assert main(["hub", "import", str(copy), "--lecture", lecture["id"], "--db", db]) == ExitCode.USAGE  # twice
    assert main(["hub", "import", str(files[1]), "--lecture", lecture["id"], "--db", db]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["new"] == 0  # the same file again: stored once
    store = Store(db)
    try:
        assert [x["title"] for x in store.lectures()] == ["Period 3"]
    finally:
        store.close()
