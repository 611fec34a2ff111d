"""Attention logic with scripted observations: eye baseline and blinks, rules, hysteresis, gaze,
calibration. No camera, no model: every input here is made up to a known answer."""

from __future__ import annotations

import pytest

from emocast.device.config import from_mapping
from emocast.device.perception import calibration
from emocast.device.perception.attention import (
    AttentionRules,
)


# -- calibration -----------------------------------------------------------------------------------
def samples(yaw, pitch, h, v, n=5):
    return [calibration.Sample(yaw + 0.1 * i, pitch, h + 0.005 * i, v) for i in range(n)]


def test_calibration_fit_and_round_trip(tmp_path):
    data = {
        "centre": samples(2.0, -12.0, 0.50, 0.45),
        "top-left": samples(-10, -5, 0.62, 0.35),
        "top-right": samples(12, -5, 0.38, 0.35),
        "bottom-right": samples(12, -20, 0.40, 0.60),
        "bottom-left": samples(-10, -20, 0.60, 0.60),
    }
    cal = calibration.fit(data)
    assert cal.yaw_offset_deg == pytest.approx(2.2) and cal.pitch_offset_deg == -12.0
    assert cal.gaze_h[0] == pytest.approx(0.38 + 0.01 - 0.05) and cal.gaze_h[1] == pytest.approx(0.62 + 0.01 + 0.05)
    assert cal.gaze_v == (pytest.approx(0.30), pytest.approx(0.65))
    path = tmp_path / "cal.json"
    path.write_text(cal.to_json())
    assert calibration.load(path) == cal
    rules = AttentionRules.from_config(from_mapping({}).attention, cal)
    assert rules.pitch_offset_deg == -12.0 and rules.gaze_h == cal.gaze_h
    cfg = from_mapping({"attention": {"calibration": str(path)}}, origin="kiosk.toml")
    assert cfg.attention.calibration == str(path)


def test_calibration_refuses_targets_without_faces():
    with pytest.raises(calibration.CalibrationError, match="top-right"):
        calibration.fit({"centre": samples(0, 0, 0.5, 0.5), "top-left": samples(0, 0, 0.5, 0.5)})
