"""The shipped int8 model, its card, and the device's interpreter wrapper, run for real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emocast.contract.model_card import (
    ModelError,
    Preprocess,
    to_model_input,
)
from emocast.convert.data import FER_LABELS
from emocast.device.perception.emotion import EmotionModel, EmotionSmoother
from emocast.device.perception.tflite import interpreter_class


def test_emocnn_stays_available_by_its_bare_name(tmp_path, monkeypatch):
    """The earlier default still ships, and ``[emotion] model = "<file name>"`` finds it in the
    installed package; a path is taken as given, and an unknown bare name is left for the model
    loader to refuse by name."""
    from emocast.device.perception.emotion import default_model_path, model_path

    monkeypatch.chdir(tmp_path)
    assert model_path("") == default_model_path()
    emocnn = model_path("emotion_fer2013_emocnn_int8.tflite")
    assert emocnn.is_file() and emocnn.parent == default_model_path().parent
    model = EmotionModel(emocnn)
    assert model.card.architecture.startswith("emocnn") and model.labels == FER_LABELS
    probs = model.predict_input(to_model_input(np.full((48, 48), 128, np.uint8), model.card.preprocess))
    assert abs(float(probs.sum()) - 1.0) < 1e-4
    local = tmp_path / "emotion_fer2013_emocnn_int8.tflite"
    local.write_bytes(b"not a model")  # a file of that name in the working folder wins: it is what was named
    assert model_path(local.name) == Path(local.name)
    assert model_path("nowhere.tflite") == Path("nowhere.tflite")
    with pytest.raises(ModelError, match="nowhere.tflite"):
        EmotionModel(model_path("nowhere.tflite"))


def test_interpreter_prefers_ai_edge_litert():
    _, module = interpreter_class()
    assert module == "ai_edge_litert.interpreter"


def test_preprocessing_maps_pixels_as_the_card_says():
    pre = Preprocess("gray", (48, 48), 1 / 255, 0.0)
    bgr = np.zeros((96, 96, 3), np.uint8)
    bgr[...] = 255
    x = to_model_input(bgr, pre)
    assert x.shape == (48, 48, 1) and x.dtype == np.float32
    assert np.allclose(x, 1.0)
    rgb = to_model_input(np.zeros((30, 30), np.uint8), Preprocess("rgb", (32, 32), 2 / 255, -1.0))
    assert rgb.shape == (32, 32, 3) and np.allclose(rgb, -1.0)


def test_smoother_needs_confidence_and_ignores_one_odd_frame():
    s = EmotionSmoother(FER_LABELS, smoothing=0.6, min_confidence=0.4)
    happy = np.array([0, 0, 0, 0.9, 0, 0, 0.1], np.float32)
    sad = np.array([0, 0, 0, 0.1, 0.9, 0, 0], np.float32)
    flat = np.full(7, 1 / 7, np.float32)
    assert s.update(flat) is None  # no label is confident enough to report
    assert s.update(happy) == ("happy", None)
    assert s.update(happy) is None
    assert s.update(sad) is None  # one sad frame does not flip a smoothed happy face
    assert s.update(sad) == ("sad", "happy")
    assert set(s.as_dict()) == set(FER_LABELS)
