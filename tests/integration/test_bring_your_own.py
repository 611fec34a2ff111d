"""An engineer's own model: a legacy .h5 or a SavedModel, other classes, other preprocessing; converted
with flags, checked against its float self, run by the device's EmotionModel; refusals are clear."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")

from emocast.convert.data import load_split  # noqa: E402
from emocast.convert.errors import ModelSourceError  # noqa: E402
from emocast.convert.quantize import QuantizationError, quantize  # noqa: E402
from emocast.device.perception.emotion import EmotionModel  # noqa: E402

FIVE = ("angry", "fear", "happy", "sad", "surprise")  # a published-style model without neutral and disgust


def _five_class_model(softmax: bool = True):
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inp = keras.Input((64, 64, 1))
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(5, activation="softmax" if softmax else None)(x)
    return keras.Model(inp, out)




def test_a_legacy_h5_five_class_model_in_minus_one_to_one_converts_and_runs_on_the_device(image_tree, tmp_path):
    model = _five_class_model()
    h5 = tmp_path / "published.h5"
    model.save(h5)  # the legacy HDF5 format, as Keras 2 / tf.keras models are published
    out = tmp_path / "five.tflite"
    card = quantize(h5, image_tree, out, calib_size=30, labels=FIVE, accept_drop=True,
                    preprocess={"input_size": 64, "pixel_scale": 2 / 255, "pixel_offset": -1.0})
    assert card.labels == FIVE and card.preprocess.size == (64, 64)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["left_out_images"] == {"neutral": 12} and saved["validation"]["images"] == 30
    assert saved["architecture"] == "h5 model published.h5" and saved["labels"] == list(FIVE)
    assert {"float", "int8"} <= set(saved) and "classes matched by name" in saved["dataset"]
    from emocast.convert.robustness import CONDITIONS

    assert set(saved["robustness"]) == set(CONDITIONS)  # the kiosk-camera table, on the same faces
    assert saved["robustness"]["clean"]["accuracy"] == saved["int8"]["accuracy"]
    dev = EmotionModel(out)
    face = cv2.imread(str(next((image_tree / "test" / "happiness").iterdir())), cv2.IMREAD_GRAYSCALE)
    probs = dev.classify(face, (0, 0, 48, 48)).probs
    assert probs.shape == (5,) and abs(float(probs.sum()) - 1) < 0.02
    x = (cv2.resize(face, (64, 64)).astype(np.float32) * 2 / 255 - 1)[None, :, :, None]
    assert int(np.argmax(model.predict(x, verbose=0))) == int(np.argmax(probs)) or probs.max() < 0.5


def test_a_savedmodel_directory_converts_and_runs_on_the_device(image_tree, tmp_path):
    model = _five_class_model()
    saved = tmp_path / "exported"
    model.export(str(saved))  # a TensorFlow SavedModel with a serving signature
    out = tmp_path / "sm.tflite"
    card = quantize(saved, image_tree, out, calib_size=30, labels=FIVE, accept_drop=True,
                    preprocess={"input_size": 64})
    assert card.labels == FIVE
    assert EmotionModel(out).predict_input(np.zeros((64, 64, 1), np.float32)).shape == (5,)


def test_refusals_name_the_problem(image_tree, tmp_path, monkeypatch):
    model = _five_class_model()
    h5 = tmp_path / "m.h5"
    model.save(h5)
    with pytest.raises(QuantizationError, match="5 outputs, but 7 labels"):
        quantize(h5, image_tree, tmp_path / "a.tflite", preprocess={"input_size": 64})
    with pytest.raises(QuantizationError, match=r"input \(64, 64, 1\) does not match the preprocessing 48x48x1"):
        quantize(h5, image_tree, tmp_path / "a.tflite", labels=FIVE)
    with pytest.raises(QuantizationError, match="points under the float model"):
        quantize(h5, image_tree, tmp_path / "d.tflite", calib_size=30, labels=FIVE,
                 preprocess={"input_size": 64}, max_drop=-1.0)  # any result counts as a drop here
    assert not (tmp_path / "d.tflite").exists() and not (tmp_path / "d.json").exists()  # nothing left behind
    with monkeypatch.context() as m:  # a kernel's own check fails on one validation face, as an int8 division
        real, calls = EmotionModel.predict_input, []  # by a sum that rounds to zero does

        def fails_on_the_fourth(self, x):
            calls.append(1)
            if len(calls) == 4:
                raise RuntimeError("tflite/kernels/div.cc:262 data[i] != zero_point was not true.")
            return real(self, x)

        m.setattr(EmotionModel, "predict_input", fails_on_the_fourth)
        with pytest.raises(ModelSourceError, match=r"f.tflite: the device's interpreter fails on face 3 of .*div.cc"):
            quantize(h5, image_tree, tmp_path / "f.tflite", calib_size=30, labels=FIVE, accept_drop=True,
                     preprocess={"input_size": 64})
    assert not (tmp_path / "f.tflite").exists() and not (tmp_path / "f.json").exists()
    logits = tmp_path / "logits.h5"
    _five_class_model(softmax=False).save(logits)
    with pytest.raises(ModelSourceError, match="not probabilities"):
        quantize(logits, image_tree, tmp_path / "l.tflite", labels=FIVE, preprocess={"input_size": 64})
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "best.keras")
    (run / "recipe.json").write_text(json.dumps({"input_size": 64, "color": "gray"}))
    with pytest.raises(QuantizationError, match="--size 48 contradicts .*recipe.json's input_size 64"):
        quantize(run / "best.keras", image_tree, tmp_path / "r.tflite", labels=FIVE, preprocess={"input_size": 48})
    garbage = tmp_path / "broken.h5"
    garbage.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ModelSourceError, match="broken.h5: Keras cannot load it"):
        quantize(garbage, image_tree, tmp_path / "g.tflite")


def test_the_command_line_gives_documented_exit_codes(image_tree, tmp_path, caplog):
    from emocast.cli import main
    from emocast.core.errors import ExitCode

    _five_class_model().save(tmp_path / "m.h5")
    (tmp_path / "broken.h5").write_bytes(b"garbage")
    where = ["--data", str(image_tree), "--out", str(tmp_path / "o.tflite")]

    assert main(["convert", "quantize", str(tmp_path / "m.h5"), "--size", "64", *where]) == ExitCode.USAGE
    assert "5 outputs, but 7 labels" in caplog.text
    assert main(["convert", "quantize", str(tmp_path / "nothing.h5"), *where]) == ExitCode.MODEL
    assert "no such file" in caplog.text
    # and as a shell sees it: the process's exit status, the reason on stderr
    res = subprocess.run([sys.executable, "-m", "emocast", "convert", "quantize", str(tmp_path / "broken.h5"), *where],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == ExitCode.MODEL == 4 and "broken.h5" in res.stderr
    assert not (tmp_path / "o.tflite").exists()


def test_image_tree_classes_are_read_by_name_and_matched_to_a_models_labels(image_tree):
    split = load_split(image_tree, "train")
    assert split.classes == ("angry", "fear", "happy", "sad", "surprise", "neutral")
    mine, left_out = split.for_labels(("Happiness", "neutral"))
    assert len(mine) == 24 and left_out == {c: 12 for c in ("angry", "fear", "sad", "surprise")}
    assert set(mine.labels.tolist()) == {0, 1} and mine.classes == ("Happiness", "neutral")
