"""The eye-state classifier: the shipped int8 model, how the eye monitor judges its readings, the
fallbacks where it cannot load, its labels and training, and what it reads on real photos."""

from __future__ import annotations

import logging
import shutil

import cv2
import numpy as np
import pytest

from emocast.device.perception.attention import EyeMonitor


def astronaut_gray() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def test_the_shipped_model_is_int8_with_its_card_and_reads_open_eyes_open():
    from emocast.contract.model_card import sha256_of
    from emocast.device.perception.eyes import EyeStateModel, default_eye_model_path
    from emocast.device.perception.face_reading import FaceReader

    model = EyeStateModel()
    assert model.path == default_eye_model_path()
    assert model.card["sha256"] == sha256_of(model.path)  # the card describes this very file
    assert model.size == 32 and model.closed_p == 0.5
    assert model._interp.get_input_details()[0]["dtype"] == np.int8
    reader = FaceReader()
    assert reader.eyes == "model" and reader.eye_signal == "model" and reader.reads_lids
    assert FaceReader(lids=False).iris is None  # the iris model is loaded only for the lower-lid cue
    gray = astronaut_gray()
    reading = reader.read(gray, (170, 80, 110, 110))  # her face (a dlib-style box)
    assert reading.closed_p is not None and reading.closed_p < 0.2
    assert reading.iris_openness is None and reading.lower_lid is None  # the iris model is not run unasked
    assert reader.read(gray, (170, 80, 110, 110), lids_from=0.5).lower_lid is None  # open eyes: not asked
    lower = reader.read(gray, (170, 80, 110, 110), lids_from=0.0).lower_lid  # asked on every reading
    assert lower is not None and 0.02 < lower < 0.2  # an open eye's lower lid, below its corners' line
    right, left = model.closed(gray, reader.landmarks.predict(gray, (170, 80, 110, 110)))
    assert 0.0 <= right < 0.5 and 0.0 <= left < 0.5


def test_a_uniform_patch_and_the_eye_agree_with_the_float_arithmetic_of_the_card():
    """Quantization is applied as the model says: a patch of one grey level gives the same
    probability however often it is read, and the output lies in [0, 1]."""
    from emocast.device.perception.eyes import EyeStateModel

    model = EyeStateModel()
    for level in (0, 128, 255):
        patch = np.full((64, 64), level, np.uint8)
        p = model.closed_of(patch)
        assert 0.0 <= p <= 1.0 and model.closed_of(patch) == p


def test_the_monitor_judges_the_classifier_against_a_fixed_threshold_without_a_baseline():
    eyes = EyeMonitor(signal="model", model_closed=0.5, blink_max_s=0.5)
    for i in range(30):  # a face the classifier reads wide open for three seconds
        assert eyes.update(0.3, i * 0.1, closed_p=0.02) is False
    # a narrow-eyed moment is not closed because this face is usually wider: no baseline with the model
    assert eyes.update(0.3, 3.0, closed_p=0.4) is False
    assert eyes.openness(0.3, closed_p=0.4) == pytest.approx(0.6)
    assert eyes.update(0.3, 3.1, closed_p=0.6) is True
    assert eyes.update(0.3, 3.3, closed_p=0.1) is False  # open again within blink_max_s: a blink
    assert eyes.blinks == 1
    assert not eyes.needs_iris  # nothing else is asked of the reader
    stricter = EyeMonitor(signal="model", model_closed=0.8)
    assert stricter.update(0.3, 0.0, closed_p=0.7) is False and stricter.update(0.3, 0.1, closed_p=0.85) is True
    with pytest.raises(ValueError, match="unknown eye signal"):
        EyeMonitor(signal="eyelids")


def test_config_picks_the_eye_reader_and_its_threshold():
    from emocast.device.config import ConfigError, from_mapping

    cfg = from_mapping({})
    assert cfg.attention.eyes == "model" and cfg.attention.model_closed == 0.5
    assert from_mapping({"attention": {"eyes": "iris"}}).attention.eyes == "iris"
    with pytest.raises(ConfigError, match="model_closed"):
        from_mapping({"attention": {"model_closed": 1.5}})


def test_a_missing_eye_model_falls_back_to_the_iris_model_with_a_warning(tmp_path, monkeypatch, caplog):
    from emocast.device.perception import eyes as eyes_mod
    from emocast.device.perception.face_reading import FaceReader

    monkeypatch.setattr(eyes_mod, "default_eye_model_path", lambda: tmp_path / "gone.tflite")
    with caplog.at_level(logging.WARNING):
        reader = FaceReader()
    assert reader.eyes == "iris" and reader.eye_signal == "iris"
    assert "gone.tflite" in caplog.text and "iris model" in caplog.text


def test_a_corrupt_eye_model_falls_back_to_the_iris_model_naming_the_file(tmp_path, monkeypatch, caplog):
    from emocast.device.perception import eyes as eyes_mod
    from emocast.device.perception.face_reading import FaceReader

    broken = tmp_path / "eyes.tflite"
    broken.write_bytes(eyes_mod.default_eye_model_path().read_bytes()[:5000])  # cut short, as by a full disk
    shutil.copy(eyes_mod.default_eye_model_path().with_suffix(".json"), tmp_path / "eyes.json")
    monkeypatch.setattr(eyes_mod, "default_eye_model_path", lambda: broken)
    with caplog.at_level(logging.WARNING):
        reader = FaceReader()
    assert reader.eyes == "iris" and "eyes.tflite" in caplog.text and "SHA-256" in caplog.text


def test_an_unreadable_card_names_the_file(tmp_path):
    from emocast.device.perception.detectors import DetectorUnavailable
    from emocast.device.perception.eyes import EyeStateModel, default_eye_model_path

    model = tmp_path / "eyes.tflite"
    shutil.copy(default_eye_model_path(), model)
    (tmp_path / "eyes.json").write_text('{"input_size": 32, "sha256": "0"}')
    with pytest.raises(DetectorUnavailable, match=r"eyes\.json.*closed_p"):
        EyeStateModel(model)
