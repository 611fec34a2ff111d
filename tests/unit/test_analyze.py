"""`emocast analyze` end to end on real media: records, CSV, plot, and the attention states that
real clips must produce. Clips from ../shared/media skip with a reason where it is absent."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from emocast.cli import main
from emocast.core.errors import ExitCode
from emocast.device.analyze import CSV_COLUMNS, MediaError
from tests.helpers.analyze import run_analyze
from tests.support import schema_validator


def test_cli_writes_jsonl_csv_and_plot_for_the_demo_clip(demo_clip, tmp_path, capsys):
    out, table, png = tmp_path / "a.jsonl", tmp_path / "a.csv", tmp_path / "a.png"
    code = main(["analyze", str(demo_clip), "--out", str(out), "--csv", str(table), "--plot", str(png)])
    assert code == ExitCode.OK
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) > 50
    for r in records:
        schema_validator("analyze_record").validate(r)
    rows = list(csv.reader(table.open()))
    assert rows[0] == CSV_COLUMNS and len(rows) == len(records) + 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # Grace Hopper's portrait faces the camera, eyes open (behind glasses), a composed expression
    posed = [r for r in records if r["head_pose"] is not None]
    assert len(posed) > 0.8 * len(records)
    assert all(abs(r["head_pose"]["yaw"]) < 25 for r in posed)
    assert sum(r["attention"] == "attentive" for r in records) > 0.8 * len(records)
    assert sum(r["eyes_closed"] is False for r in posed) > 0.9 * len(posed)
    assert max((r["emotion"] for r in records if r["emotion"]), key=[r["emotion"] for r in records].count) == "neutral"
    assert "face records" in capsys.readouterr().err


def test_missing_corrupt_and_truncated_media(tmp_path, demo_clip, caplog):
    with pytest.raises(MediaError, match="no such file"):
        run_analyze(tmp_path / "nothing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError, match="junk.mp4"):
        run_analyze(junk)
    bad_photo = tmp_path / "broken.jpg"
    bad_photo.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["analyze", str(bad_photo), "--quiet"]) == ExitCode.SOURCE
    # a video cut short: what can be read is analysed, and the cut is reported
    whole = demo_clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[: len(whole) // 3])
    records, result = run_analyze(cut)
    assert result.frames > 0 and records
    if result.frames_expected > result.frames:  # the AVI index is at the end: some readers cannot count
        assert result.truncated and "truncated or damaged" in caplog.text


def test_a_bad_kiosk_config_is_exit_3_naming_file_and_key(tmp_path, caplog):
    bad = tmp_path / "kiosk.toml"
    bad.write_text("[attention]\nmax_yawn_deg = 30\n")
    assert main(["analyze", str(tmp_path / "x.mp4"), "--config", str(bad), "--quiet"]) == ExitCode.CONFIG
    assert "kiosk.toml" in caplog.text and "max_yawn_deg" in caplog.text


def test_calibrate_on_a_recording_writes_a_usable_file(tmp_path, capsys):
    from emocast.device.perception import calibration
    from emocast.device.perception.demo_clip import Segment, write_clip

    clip = write_clip(tmp_path / "still.avi", fps=15.0, segments=(Segment(9.0, True, 0.7, 0.5, 0.5),))
    out = tmp_path / "cal.json"
    code = main(["calibrate", "--source", str(clip), "--settle-s", "0.3", "--record-s", "1.2", "--out", str(out)])
    assert code == ExitCode.OK
    cal = calibration.load(out)
    assert cal.samples >= 5 * calibration.MIN_SAMPLES
    # one still face for every target: the ranges are its own iris position plus the margin
    assert cal.gaze_h[1] - cal.gaze_h[0] == pytest.approx(2 * calibration.GAZE_MARGIN, abs=0.03)
    records, _ = run_analyze(clip, {"attention": {"calibration": str(out)}, "emotion": {"emotion_hz": 0}})
    assert records and all(r["attention"] == "attentive" for r in records)
    assert abs(cal.pitch_offset_deg - records[0]["head_pose"]["pitch"]) < 3.0
    assert "calibration =" in capsys.readouterr().out


def test_calibrate_fails_cleanly_when_a_target_has_no_face(tmp_path, demo_clip, caplog):
    out = tmp_path / "cal.json"
    # the demo clip has no face from 3.0 to 6.5 s: the second and third targets see nobody
    code = main(["calibrate", "--source", str(demo_clip), "--settle-s", "0.2", "--record-s", "1.5", "--out", str(out)])
    assert code == ExitCode.CALIBRATION
    assert not out.exists() and "nothing written" in caplog.text
    assert main(["calibrate", "--source", str(tmp_path / "none.mp4"), "--out", str(out)]) == ExitCode.SOURCE


def test_the_plot_numbers_faces_as_they_appear_draws_absence_and_no_lone_reading_as_a_share(tmp_path):
    from emocast.device.analyze import MIN_READINGS_PER_BIN, plot_data, plot_timeline

    def rec(t, track, attention="attentive", emotion="happy"):
        return {"t": t, "track": track, "attention": attention, "emotion": emotion}

    records = ([rec(t / 10, 9) for t in range(0, 20)] + [rec(t / 10, 9) for t in range(50, 60)]  # away 2.0-5.0 s
               + [rec(t / 10, 24, "looking_away", "sad") for t in range(10, 60)]  # sad, but never attentive
               + [rec(3.0, 3, emotion="fear")])  # one lone reading
    data = plot_data(records, ("happy", "sad", "fear"))
    assert data.faces == [9, 24, 3]  # drawn as faces 1, 2, 3
    absent = [b for b in data.bars[1] if b[2] == "absent"]
    assert len(absent) == 1 and absent[0][0] == pytest.approx(2.0) and absent[0][1] == pytest.approx(3.0)
    assert not [b for b in data.bars[2] if b[2] == "absent"]
    happy, sad, fear = data.shares
    assert not np.nansum(sad)  # read while looking away: not counted
    lone = int(np.searchsorted(data.bins, 3.0, side="right") - 1)
    assert np.isnan(fear[lone])  # one reading in its bin is below MIN_READINGS_PER_BIN, not a 100% share
    assert MIN_READINGS_PER_BIN > 1 and np.nanmax(happy) == pytest.approx(1.0)
    png = tmp_path / "p.png"
    plot_timeline(records, ("happy", "sad", "fear"), "t", png)
    plot_timeline(records, (), "emotion off", tmp_path / "off.png")  # one panel, no emotion
    assert png.stat().st_size > 10_000 and (tmp_path / "off.png").stat().st_size > 5_000
