"""The converter end to end on a few hundred FER2013 images: train -> int8 -> device interpreter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from emocast.convert.data import FER_LABELS, load_split
from tests.support import FER_DIR, REPO, needs_fer


@needs_fer()
def test_reads_the_npz_layout():
    split = load_split(FER_DIR, "val")
    assert split.images.shape[1:] == (48, 48) and split.images.dtype == np.uint8
    assert len(split) == 3589 and split.labels.max() == 6


@pytest.mark.slow
@needs_fer()
def test_tiny_train_quantize_evaluate(tmp_path):
    tf = pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    assert tf is not None
    from emocast.contract.model_card import batch_to_model_input, load_card, sha256_of
    from emocast.convert.evaluate import evaluate_tflite
    from emocast.convert.quantize import quantize
    from emocast.convert.train import Recipe, train
    from emocast.device.perception.emotion import EmotionModel

    run = tmp_path / "run"
    # mild augmentation: with the full set, a few dozen steps leave the net near uniform outputs (the
    # old tf.data pipeline too: 0.23 train accuracy after 3 epochs on 3,000 faces), and then int8
    # rounding decides the argmax
    recipe = Recipe(architecture="emocnn", width=0.25, epochs=2, train_limit=800, batch_size=32, warmup_epochs=1,
                    augment={"flip": 1.0})
    best = train(FER_DIR, run, recipe, threads=2)
    assert best.is_file() and (run / "history.csv").is_file() and (run / "curves.png").is_file()
    assert json.loads((run / "recipe.json").read_text())["train_limit"] == 800

    out = tmp_path / "models" / "tiny_int8.tflite"
    card = quantize(best, FER_DIR, out, calib_size=70, eval_limit=200)
    assert out.is_file()
    loaded = load_card(out)  # the device's own loader, hash checked
    assert loaded.sha256 == sha256_of(out) == card.sha256
    assert loaded.labels == FER_LABELS and loaded.metrics["int8"]["accuracy"] > 0
    assert loaded.extra["recipe"]["architecture"] == "emocnn"
    assert loaded.extra["training"]["epochs_run"] == 2 and loaded.extra["training"]["best_epoch"] in (1, 2)
    assert set(loaded.extra["training"]) == {"epochs_run", "best_epoch", "best_val_accuracy_keras"}
    assert 0.0 < loaded.extra["training"]["best_val_accuracy_keras"] <= 1.0

    model = EmotionModel(out)
    assert model.input_dtype == np.int8
    import keras

    float_model = keras.models.load_model(best, compile=False)
    val = load_split(FER_DIR, "public_test").subset(200, 0)
    fp = float_model.predict(batch_to_model_input(val.images, loaded.preprocess), verbose=0)
    ev = evaluate_tflite(out, val, progress=False)
    # two epochs leave the net close to uniform, so argmax agreement would be a coin toss between
    # near-tied classes; the probabilities themselves must survive int8 (argmax agreement is checked
    # on a trained network below)
    assert np.abs(ev.probs - fp).mean() < 0.02
    assert ev.latency_ms > 0


@needs_fer()
def test_int8_agrees_with_the_trained_float_model_it_came_from(tmp_path):
    """Quantize the committed float checkpoint afresh: int8 must pick the float model's class on
    nearly every face the float model is sure of, and on most faces overall."""
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    import keras

    from emocast.contract.model_card import batch_to_model_input
    from emocast.convert.evaluate import evaluate_tflite
    from emocast.convert.quantize import quantize

    best = REPO / "checkpoints" / "emocnn_w1_e100" / "best.keras"
    out = tmp_path / "w1_int8.tflite"
    card = quantize(best, FER_DIR, out, calib_size=140, evaluate=False)
    val = load_split(FER_DIR, "public_test").subset(400, 0)
    fp = keras.models.load_model(best, compile=False).predict(batch_to_model_input(val.images, card.preprocess),
                                                              verbose=0)
    q = evaluate_tflite(out, val, progress=False).probs
    top2 = np.sort(fp, axis=1)[:, -2:]
    sure = (top2[:, 1] - top2[:, 0]) >= 0.1
    assert sure.sum() >= 300
    assert np.mean(q.argmax(1)[sure] == fp.argmax(1)[sure]) >= 0.97
    assert np.mean(q.argmax(1) == fp.argmax(1)) >= 0.9


def test_resuming_a_run_with_another_recipe_is_refused(tmp_path):
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    from emocast.convert.train import Recipe, train

    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps({"architecture": "xception"}))
    with pytest.raises(ValueError, match="another recipe"):
        train(Path("unused"), run, Recipe())


@pytest.mark.parametrize("arch, size, color", [("emocnn", 48, "gray"), ("xception", 48, "gray"),
                                               ("mobilenetv2", 64, "rgb")])
def test_every_architecture_builds_and_converts_to_int8_that_the_device_runs(arch, size, color, tmp_path):
    """Untrained weights, but the real ops: an op that full-integer TFLite cannot take fails here."""
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    import json as _json

    from emocast.convert.architectures import build
    from emocast.convert.quantize import _write_card, convert_keras, preprocess_for
    from emocast.device.perception.emotion import EmotionModel

    pre = preprocess_for({"input_size": size, "color": color})
    model = build(arch, (size, size, 1 if color == "gray" else 3), 7, width=0.25 if arch != "emocnn" else 0.5)
    assert model.output_shape == (None, 7)
    calib = np.random.default_rng(0).integers(0, 255, (16, 48, 48), dtype=np.uint8)
    out = tmp_path / f"{arch}.tflite"
    out.write_bytes(convert_keras(model, pre, "int8", calib))
    _write_card(out, pre, {"architecture": arch}, "int8", {})
    dev = EmotionModel(out)
    assert dev.input_dtype == np.int8
    probs = dev.predict_input(np.zeros((size, size, 1 if color == "gray" else 3), np.float32))
    assert probs.shape == (7,) and abs(float(probs.sum()) - 1) < 1e-3
    assert _json.loads(out.with_suffix(".json").read_text())["architecture"].startswith(arch)


def test_augmentation_is_seeded_bounded_and_does_what_it_says():
    from emocast.convert.augment import augment_batch

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (16, 48, 48), dtype=np.uint8)
    faces[:, :, :24] = 0  # dark left half: a flip shows up as a dark right half
    params = {"flip": 1.0, "shift": 0.1, "rotate_deg": 12.0, "zoom": 0.12, "brightness": 0.25, "contrast": 0.3}
    a = augment_batch(faces, params, np.random.default_rng(5))
    b = augment_batch(faces, params, np.random.default_rng(5))
    assert a.dtype == np.float32 and a.shape == faces.shape
    assert np.array_equal(a, b)  # same seed, same batch: reproducible on every backend
    assert a.min() >= 0.0 and a.max() <= 255.0
    assert not np.array_equal(a, augment_batch(faces, params, np.random.default_rng(6)))
    only_flip = augment_batch(faces, {"flip": 1.0}, np.random.default_rng(1))
    flipped = [np.array_equal(o, f[:, ::-1]) for o, f in zip(only_flip, faces, strict=True)]
    kept = [np.array_equal(o, f) for o, f in zip(only_flip, faces, strict=True)]
    assert all(x or y for x, y in zip(flipped, kept, strict=True)) and 3 <= sum(flipped) <= 13
    assert np.array_equal(augment_batch(faces, {}, rng), faces.astype(np.float32))


def test_camera_faults_do_what_a_camera_does():
    """Each fault alone, applied to every face: dimmer, softer, blockier, noisier; seeded."""
    from emocast.convert.augment import corrupt

    rng = np.random.default_rng(0)
    face = cv2.resize(rng.integers(0, 256, (12, 12)).astype(np.uint8), (48, 48), interpolation=cv2.INTER_NEAREST)
    face = face.astype(np.float32)
    sharpness = lambda f: float(cv2.Laplacian(f.astype(np.float32), cv2.CV_32F).var())  # noqa: E731
    dark = corrupt(face, {"dark": 1.0}, np.random.default_rng(1))
    assert 0.2 * face.mean() < dark.mean() < 0.75 * face.mean()
    assert sharpness(corrupt(face, {"blur": 1.0}, np.random.default_rng(1))) < 0.5 * sharpness(face)
    small = corrupt(face, {"downscale": 1.0}, np.random.default_rng(1))
    assert small.shape == face.shape and sharpness(small) < sharpness(face)
    noisy = corrupt(np.full((48, 48), 128, np.float32), {"noise": 1.0}, np.random.default_rng(1))
    assert 1.5 < noisy.std() < 11
    jpeg = corrupt(face, {"jpeg": 1.0}, np.random.default_rng(1))
    assert jpeg.dtype == np.float32 and 0 < np.abs(jpeg - face).mean() < 40
    assert np.array_equal(corrupt(face, {}, rng), face)
    params = {"blur": 0.5, "downscale": 0.5, "noise": 0.5, "jpeg": 0.5, "dark": 0.5}
    a = corrupt(face, params, np.random.default_rng(7))
    assert np.array_equal(a, corrupt(face, params, np.random.default_rng(7)))


def test_camera_faults_scale_scales_only_the_faults_and_is_recorded(tmp_path, caplog):
    """--camera-faults multiplies each fault's share (capped at 1), leaves the geometric and photometric
    augmentation alone, and the run's recipe stores the shares it trained with."""
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    from emocast.cli import main
    from emocast.convert.augment import CAMERA_FAULTS, augment_batch, scale_faults
    from emocast.convert.recipe import Recipe
    from emocast.core.errors import ExitCode

    base = Recipe().augment
    half = scale_faults(base, 0.5)
    assert all(half[k] == pytest.approx(base[k] / 2) for k in CAMERA_FAULTS)
    assert all(half[k] == base[k] for k in base if k not in CAMERA_FAULTS)
    assert all(v == 1.0 for k, v in scale_faults(base, 10).items() if k in CAMERA_FAULTS)
    none = scale_faults(base, 0.0)
    assert all(none[k] == 0.0 for k in CAMERA_FAULTS)
    with pytest.raises(ValueError, match="camera-faults"):
        scale_faults(base, -1)

    # the share of faces a fault reaches follows the scale: blur alone, on a sharp face
    rng = np.random.default_rng(0)
    face = cv2.resize(rng.integers(0, 256, (12, 12)).astype(np.uint8), (48, 48), interpolation=cv2.INTER_NEAREST)
    faces = np.repeat(face[None], 400, axis=0)
    sharp = float(cv2.Laplacian(face.astype(np.float32), cv2.CV_32F).var())

    def blurred_share(params):
        out = augment_batch(faces, params, np.random.default_rng(3))
        return np.mean([cv2.Laplacian(f, cv2.CV_32F).var() < 0.5 * sharp for f in out])

    full, halved = blurred_share({"blur": 0.5}), blurred_share(scale_faults({"blur": 0.5}, 0.5))
    assert 0.4 < full < 0.6 and 0.15 < halved < 0.35
    assert blurred_share(scale_faults({"blur": 0.5}, 0.0)) == 0.0

    assert main(["convert", "train", "--run", str(tmp_path / "run"), "--camera-faults", "-0.5"]) == ExitCode.USAGE
    assert "--camera-faults must be 0 or more" in caplog.text
    assert not (tmp_path / "run").exists()


def test_stem_stride_keeps_small_faces_at_full_resolution():
    """MobileNetV2's 224 px stem halves a 48 px face before any block; stem_stride 1 keeps it."""
    pytest.importorskip("keras")
    from emocast.convert.architectures import build

    def last_map(stem: int) -> tuple:
        model = build("mobilenetv2", (48, 48, 1), 7, width=0.35, stem_stride=stem)
        return model.get_layer("head_conv").output.shape[1:3]

    assert last_map(2) == (2, 2) and last_map(1) == (3, 3)
    xc = build("xception", (64, 64, 1), 5, width=0.25, stem_stride=2)
    assert xc.get_layer("entry1_conv").output.shape[1:3] == (32, 32) and xc.output_shape == (None, 5)


def test_epoch_budget_judges_the_count_from_warm_up_until_half_the_budget_and_records_it(tmp_path, monkeypatch):
    from emocast.convert import run_folder
    from emocast.convert.recipe import Recipe, lr_at
    from emocast.convert.run_folder import EpochBudget

    # start; epoch 0 takes 30 s (start-up), epoch 1 20 s (slowed by a neighbour), epoch 2 10 s,
    # epoch 3 5 s but after half the budget: the count stays
    clock = iter([0.0, 0.0, 30.0, 30.0, 50.0, 50.0, 60.0, 130.0, 135.0])
    monkeypatch.setattr(run_folder.time, "monotonic", lambda: next(clock))
    recipe = Recipe(epochs=100, warmup_epochs=2)
    warm = [lr_at(e, recipe) for e in range(2)]
    budget = EpochBudget(recipe, 250.0, tmp_path / "recipe.json")
    budget.epoch_begin()
    budget.epoch_end(0)
    assert recipe.epochs == 100  # nothing decided during the first warm-up epoch
    budget.epoch_begin()
    budget.epoch_end(1)
    assert recipe.epochs == 2 + int(0.97 * 200 / 20)  # 200 s left at 20 s an epoch
    assert json.loads((tmp_path / "recipe.json").read_text())["epochs"] == recipe.epochs
    assert [lr_at(e, recipe) for e in range(2)] == warm  # warm-up's rates did not depend on the count
    budget.epoch_begin()
    budget.epoch_end(2)
    assert recipe.epochs == 3 + int(0.97 * 190 / 10)  # the pace was judged again: more epochs fit
    assert json.loads((tmp_path / "recipe.json").read_text())["epochs"] == recipe.epochs
    fixed = recipe.epochs
    budget.epoch_begin()
    budget.epoch_end(3)
    assert recipe.epochs == fixed  # past half the budget the count no longer moves


def test_epoch_budget_never_exceeds_the_asked_count_nor_ends_before_the_next_epoch(tmp_path, monkeypatch):
    from emocast.convert import run_folder
    from emocast.convert.recipe import Recipe
    from emocast.convert.run_folder import EpochBudget

    clock = iter([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 90.0])
    monkeypatch.setattr(run_folder.time, "monotonic", lambda: next(clock))
    recipe = Recipe(epochs=12, warmup_epochs=2)
    budget = EpochBudget(recipe, 200.0, tmp_path / "recipe.json")
    budget.epoch_begin()
    budget.epoch_end(0)
    budget.epoch_begin()
    budget.epoch_end(1)
    assert recipe.epochs == 12  # 1 s an epoch would fit 190 more: capped at --epochs
    budget.epoch_begin()
    budget.epoch_end(2)
    assert recipe.epochs == 4  # 88 s an epoch, 108 s left: one more epoch after this one


def test_slim_checkpoint_drops_the_optimizer_and_keeps_the_weights(tmp_path):
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    import keras

    from emocast.convert.architectures import build
    from emocast.convert.run_folder import slim_checkpoint

    model = build("emocnn", (48, 48, 1), 7, width=0.25)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 48, 48, 1)).astype(np.float32)
    model.fit(x, np.eye(7, dtype=np.float32)[np.arange(8) % 7], epochs=1, verbose=0)
    path = tmp_path / "best.keras"
    model.save(path)
    before = path.stat().st_size
    slim_checkpoint(path)
    assert path.stat().st_size < 0.6 * before
    again = keras.saving.load_model(path, compile=False)
    assert np.allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_batches_carry_class_weights_and_reshuffle_each_epoch():
    from emocast.convert.augment import FaceBatches
    from emocast.convert.data import Split

    labels = np.arange(70, dtype=np.uint8) % 7
    split = Split(np.zeros((70, 48, 48), np.uint8) + labels[:, None, None], labels, "t")
    weights = {c: 1.0 + c for c in range(7)}
    feed = FaceBatches(split, 7, 32, 64, "rgb", 1 / 127.5, -1.0, {"flip": 1.0}, weights, seed=3)
    assert len(feed) == 3
    x, y, w = feed[0]
    assert x.shape == (32, 64, 64, 3) and y.shape == (32, 7) and w.shape == (32,)
    assert np.allclose(w, 1.0 + y.argmax(1)) and x.min() >= -1.0 and x.max() <= 1.0
    first = [feed[i][1].argmax(1).tolist() for i in range(3)]
    feed.on_epoch_end()
    assert [feed[i][1].argmax(1).tolist() for i in range(3)] != first
    plain = FaceBatches(split, 7, 32, 48, "gray", 1 / 255, 0.0)
    x, y = plain[0]
    assert np.array_equal(y.argmax(1), labels[:32])  # validation: in order, untouched


@needs_fer()
def test_training_on_the_torch_backend_gives_a_model_the_tensorflow_quantizer_reads(tmp_path):
    """Where a GPU is lent, training runs on Keras' torch backend (no TensorFlow there); the weights
    come back here to be quantized. Skips where PyTorch is not installed (it is not a test dependency)."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed (pip install torch) - the GPU training path is not exercised")
    pytest.importorskip("tensorflow", reason="the quantizer needs emocast[convert]")
    run = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    res = subprocess.run([sys.executable, "-m", "emocast", "convert", "train", "--data", str(FER_DIR), "--run",
                          str(run), "--arch", "emocnn", "--width", "0.25", "--epochs", "1", "--limit", "256",
                          "--batch-size", "32", "--threads", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "on the torch backend" in res.stderr
    from emocast.convert.quantize import quantize

    card = quantize(run / "best.keras", FER_DIR, tmp_path / "t.tflite", calib_size=35, eval_limit=64)
    assert card.metrics["int8"]["accuracy"] > 0 and (tmp_path / "t.tflite").stat().st_size > 10_000


def _tiny_run(folder: Path, seed: int, **recipe_changes) -> Path:
    """An untrained width-0.25 emocnn saved as a run folder's best.keras with its recipe."""
    import dataclasses

    import keras

    from emocast.convert.architectures import build
    from emocast.convert.recipe import Recipe

    recipe = dataclasses.replace(Recipe(width=0.25, seed=seed), **recipe_changes)
    keras.utils.set_random_seed(seed)
    folder.mkdir(parents=True)
    (folder / "recipe.json").write_text(json.dumps(dataclasses.asdict(recipe)))
    model = build("emocnn", recipe.input_shape, len(FER_LABELS), width=0.25)
    model.save(folder / "best.keras")
    return folder / "best.keras"


def test_ensemble_averages_members_and_mirror_views_and_quantizes_to_one_int8_file(tmp_path):
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    import keras

    from emocast.contract.model_card import batch_to_model_input, load_card
    from emocast.convert.ensemble import write_ensemble
    from emocast.convert.quantize import quantize
    from emocast.device.perception.emotion import EmotionModel

    a, b = _tiny_run(tmp_path / "a", 1), _tiny_run(tmp_path / "b", 2)
    path = write_ensemble([a, b], tmp_path / "ens", mirror=True)
    ens = keras.models.load_model(path, compile=False)
    members = [keras.models.load_model(p, compile=False) for p in (a, b)]

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (6, 48, 48, 1)).astype(np.float32)
    mirrored = x[:, :, ::-1]
    expected = np.mean([m.predict(v, verbose=0) for m in members for v in (x, mirrored)], axis=0)
    got = ens.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(ens.predict(mirrored, verbose=0), got, atol=1e-5)  # mirror-invariant
    assert not np.allclose(members[0].predict(x, verbose=0), members[1].predict(x, verbose=0), atol=1e-3)

    recipe = json.loads((tmp_path / "ens" / "recipe.json").read_text())
    assert recipe["architecture"] == "ensemble" and recipe["mirror"] is True
    assert [m["recipe"]["seed"] for m in recipe["members"]] == [1, 2]

    # a made-up data folder: the graph, not accuracy, is under test here
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 140), ("public_test", 40)):
        np.savez(data / f"{split}.npz", images=rng.integers(0, 256, (n, 48, 48), dtype=np.uint8),
                 labels=np.arange(n, dtype=np.uint8) % 7)
    out = tmp_path / "ens_int8.tflite"
    quantize(path, data, out, calib_size=70)
    card = load_card(out)
    assert card.architecture == "emocnn (width 0.25) + emocnn (width 0.25), averaged with the mirrored face"
    assert len(card.extra["recipe"]["members"]) == 2
    device = EmotionModel(out, threads=1)
    faces = rng.integers(0, 256, (20, 48, 48), dtype=np.uint8)
    float_probs = ens.predict(batch_to_model_input(faces, card.preprocess), verbose=0)
    int8_probs = device.predict_batch(batch_to_model_input(faces, card.preprocess))
    assert np.abs(int8_probs - float_probs).mean() < 0.02


def test_ensemble_refuses_members_that_read_different_input(tmp_path):
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    from emocast.convert.ensemble import write_ensemble

    a = _tiny_run(tmp_path / "a", 1)
    b = _tiny_run(tmp_path / "b", 2, pixel_scale=2 / 255, pixel_offset=-1.0)
    with pytest.raises(ValueError, match=r"b/best.keras: its pixel_scale, pixel_offset differ"):
        write_ensemble([a, b], tmp_path / "ens")
    (tmp_path / "a" / "recipe.json").unlink()
    with pytest.raises(ValueError, match="no recipe.json beside it"):
        write_ensemble([a], tmp_path / "ens", mirror=True)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        write_ensemble([tmp_path / "missing.keras"], tmp_path / "ens", mirror=True)
    with pytest.raises(ValueError, match="nothing to combine"):
        write_ensemble([b], tmp_path / "ens", mirror=False)
    assert not (tmp_path / "ens").exists()


def test_robustness_conditions_degrade_the_faces_as_a_camera_would():
    from emocast.convert.data import Split
    from emocast.convert.robustness import CONDITIONS, corrupted, format_table

    rng = np.random.default_rng(0)
    faces = cv2.resize(rng.integers(0, 256, (4, 12, 12)).astype(np.uint8).transpose(1, 2, 0), (48, 48),
                       interpolation=cv2.INTER_NEAREST).transpose(2, 0, 1)
    split = Split(np.ascontiguousarray(faces), np.zeros(4, np.uint8), "t")
    sharp = lambda imgs: float(np.mean([cv2.Laplacian(f, cv2.CV_32F).var() for f in imgs]))  # noqa: E731
    assert np.array_equal(corrupted(split, "clean").images, split.images)
    assert sharp(corrupted(split, "blur 1.5").images) < sharp(corrupted(split, "blur 1.0").images) < sharp(faces)
    assert sharp(corrupted(split, "24 px").images) < sharp(corrupted(split, "32 px").images) < sharp(faces)
    loose = corrupted(split, "box 1.2x")
    assert loose.images.shape == faces.shape and not np.array_equal(loose.images, faces)
    assert 0 < np.abs(corrupted(split, "JPEG q30").images.astype(int) - faces).mean() < 60
    table = {c: {"accuracy": 0.5, "macro_f1": 0.4} for c in CONDITIONS}
    assert "JPEG q30" in format_table(table) and "0.5000" in format_table(table)


def test_distillation_targets_mix_labels_with_the_teachers_reading_of_the_same_face():
    from emocast.convert.augment import FaceBatches
    from emocast.convert.data import Split

    labels = np.arange(16, dtype=np.uint8) % 7
    split = Split(np.random.default_rng(0).integers(0, 255, (16, 48, 48), dtype=np.uint8), labels, "t")
    seen = []

    def teacher(faces: np.ndarray) -> np.ndarray:
        seen.append(faces.copy())
        return np.full((len(faces), 7), 1 / 7, np.float32)

    feed = FaceBatches(split, 7, 8, 48, "gray", 1 / 255, 0.0, {"flip": 1.0}, None, seed=1,
                       teacher=teacher, teacher_weight=0.6)
    x, y = feed[0]
    assert np.allclose(y.sum(1), 1.0) and np.allclose(y.max(1), 0.4 + 0.6 / 7)
    assert seen and np.allclose(seen[0] / 255.0, x[..., 0])  # the teacher saw the very faces the student got
    from emocast.convert.recipe import Recipe, make_batches

    val = make_batches(split, Recipe(batch_size=8, teacher="t.keras", teacher_weight=0.6), training=False,
                       teacher=teacher)
    assert val[0][1].max() == 1.0  # validation targets stay the true labels


@needs_fer()
def test_training_with_a_teacher_runs_and_records_it(tmp_path):
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    from emocast.convert.train import Recipe, train

    teacher = _tiny_run(tmp_path / "teacher", seed=5)
    recipe = Recipe(width=0.25, epochs=1, batch_size=32, train_limit=128, teacher=str(teacher), teacher_weight=0.7)
    best = train(FER_DIR, tmp_path / "student", recipe)
    assert best.is_file()
    stored = json.loads((tmp_path / "student" / "recipe.json").read_text())
    assert stored["teacher"] == str(teacher) and stored["teacher_weight"] == 0.7
    with pytest.raises(ValueError, match="recipe.json"):
        train(FER_DIR, tmp_path / "orphan", Recipe(width=0.25, epochs=1, train_limit=64,
                                                   teacher=str(tmp_path / "nowhere.keras"), teacher_weight=0.5))


def test_an_int8_model_with_its_card_teaches_with_its_labels_matched_by_name(tmp_path):

    from emocast.contract.model_card import batch_to_model_input
    from emocast.convert.teachers import load_teacher
    from emocast.device.perception.emotion import EmotionModel, default_model_path

    shipped = default_model_path()
    faces = np.random.default_rng(3).integers(0, 256, (5, 48, 48)).astype(np.float32)
    model = EmotionModel(shipped)
    expected = model.predict_batch(batch_to_model_input(faces, model.card.preprocess))
    probs = load_teacher(shipped)(faces)
    assert probs.shape == (5, len(FER_LABELS)) and np.allclose(probs, expected, atol=1e-6)

    def copy_with_labels(name: str, labels: list[str]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(shipped, folder / shipped.name)
        card = json.loads(shipped.with_suffix(".json").read_text())
        card["labels"] = labels
        (folder / shipped.with_suffix(".json").name).write_text(json.dumps(card))
        return folder / shipped.name

    # a card spelling its classes otherwise and in another order: the student's columns follow the names
    spelled = ["Anger", "disgust", "fear", "Happiness", "sad", "surprise", "neutral"][::-1]
    swapped = load_teacher(copy_with_labels("swapped", spelled))(faces)
    assert np.allclose(swapped, expected[:, ::-1], atol=1e-6)
    with pytest.raises(ValueError, match=r"teacher .*no fear.*the student learns"):
        load_teacher(copy_with_labels("short", ["angry", "disgust", "bored", "happy", "sad", "surprise", "neutral"]))
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"teacher .*broken\.tflite"):
        load_teacher(broken)


def test_init_starts_a_run_from_trained_weights_of_the_same_network_only(tmp_path):
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    from emocast.convert.architectures import build
    from emocast.convert.train import init_weights

    trained = build("mobilenetv2", (48, 48, 1), 7, width=0.35, stem_stride=1)
    x = np.random.default_rng(1).random((4, 48, 48, 1)).astype(np.float32)
    rng = np.random.default_rng(2)
    for w in trained.weights:  # weights unlike a fresh build's (moved a little, variances stay positive)
        w.assign(np.asarray(w) + rng.normal(size=tuple(w.shape)).astype(np.float32) * 0.05)
    path = tmp_path / "best.keras"
    trained.save(path)
    fresh = build("mobilenetv2", (48, 48, 1), 7, width=0.35, stem_stride=1)
    assert not np.allclose(fresh.predict(x, verbose=0), trained.predict(x, verbose=0), atol=1e-4)
    init_weights(fresh, path)
    assert np.allclose(fresh.predict(x, verbose=0), trained.predict(x, verbose=0), atol=1e-5)
    other = build("mobilenetv2", (48, 48, 1), 7, width=0.5, stem_stride=1)
    with pytest.raises(ValueError, match=r"--init .*best\.keras.*does not match.*--width"):
        init_weights(other, path)
    with pytest.raises(ValueError, match="no such model file"):
        init_weights(fresh, tmp_path / "missing.keras")
