"""Weight averaging of a run's last epochs: kept by train, averaged with BatchNorm measured again,
written as a folder quantize reads; refusals with their exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emocast.convert.data import FER_LABELS

pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")


def _synthetic_fer(folder: Path, n_train: int = 224, n_val: int = 70) -> Path:
    """FER's .npz layout with faces a small net can tell apart: each class lights its own band."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("public_test", n_val)):
        labels = np.arange(n) % len(FER_LABELS)
        images = rng.integers(0, 90, (n, 48, 48)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 6 * c:6 * c + 6, :] += 150
        np.savez(folder / f"{split}.npz", images=images, labels=labels.astype(np.uint8),
                 classes=np.array(FER_LABELS))
    return folder


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny emocnn trained four epochs with the last three kept."""
    from emocast.convert.train import Recipe, train

    root = tmp_path_factory.mktemp("avg")
    data = _synthetic_fer(root / "data")
    run = root / "run"
    recipe = Recipe(architecture="emocnn", width=0.25, epochs=4, batch_size=32, warmup_epochs=1, lr=3e-3,
                    augment={"flip": 1.0}, seed=5)
    train(data, run, recipe, threads=2, keep_epochs=3)
    return data, run


def test_train_keeps_only_the_last_epochs_asked_for(trained_run):
    from emocast.convert.run_folder import kept_epochs

    _, run = trained_run
    assert sorted(kept_epochs(run)) == [2, 3, 4]
    assert not list((run / "epochs").glob("*.tmp.*"))
    recipe = json.loads((run / "recipe.json").read_text())
    assert "keep_epochs" not in recipe  # not a training choice: the weights do not depend on it


def test_average_is_the_mean_of_the_epochs_with_batchnorm_measured_again(trained_run, tmp_path):
    import keras

    from emocast.convert.run_folder import kept_epochs, load_epoch
    from emocast.convert.weight_average import average_run

    data, run = trained_run
    out = tmp_path / "avg"
    done = average_run(run, data, out, last=2, bn_batches=4)
    assert done["epochs"] == [3, 4] and done["bn_batches"] == 4
    assert 0.0 <= done["val_accuracy"] <= 1.0 and 0.0 <= done["last_epoch_val_accuracy"] <= 1.0
    import csv

    logged = [float(r["val_accuracy"]) for r in csv.DictReader((run / "history.csv").open())]
    assert done["best_single_epoch_val_accuracy"] == round(max(logged[2:4]), 4)
    assert done["last_epoch_val_accuracy"] == pytest.approx(logged[3], abs=1e-4)  # scored as Keras scored it

    avg = keras.saving.load_model(out / "best.keras", compile=False)
    e3 = keras.saving.load_model(out / "best.keras", compile=False)
    e3.set_weights(load_epoch(kept_epochs(run)[3]))
    e4 = keras.saving.load_model(out / "best.keras", compile=False)
    e4.set_weights(load_epoch(kept_epochs(run)[4]))
    kernel = avg.get_layer("s1a_conv").kernel
    np.testing.assert_allclose(np.asarray(kernel), (np.asarray(e3.get_layer("s1a_conv").kernel)
                                                    + np.asarray(e4.get_layer("s1a_conv").kernel)) / 2, atol=1e-6)
    bn, bn3, bn4 = (m.get_layer("s1a_bn") for m in (avg, e3, e4))
    mean_of_two = (np.asarray(bn3.moving_mean) + np.asarray(bn4.moving_mean)) / 2
    assert not np.allclose(np.asarray(bn.moving_mean), mean_of_two, atol=1e-4)  # measured, not averaged
    assert np.all(np.asarray(bn.moving_variance) > 0)

    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["architecture"] == "emocnn" and recipe["averaged"]["epochs"] == [3, 4]
    assert (out / "history.csv").read_text() == (run / "history.csv").read_text()


def test_batchnorm_can_be_measured_on_faces_augmented_as_the_run_trained(trained_run, tmp_path):
    """--bn-faces augmented: the same mean weights, BatchNorm from faces with the run's augmentation
    (camera faults included), so other statistics than from clean faces; the choice is recorded."""
    import keras

    from emocast.convert.weight_average import average_run

    data, run = trained_run
    clean = average_run(run, data, tmp_path / "clean", last=2, bn_batches=4)
    aug = average_run(run, data, tmp_path / "aug", last=2, bn_batches=4, bn_faces="augmented")
    assert clean["bn_faces"] == "clean" and aug["bn_faces"] == "augmented" and aug["epochs"] == clean["epochs"]
    a, c = (keras.saving.load_model(tmp_path / d / "best.keras", compile=False) for d in ("aug", "clean"))
    np.testing.assert_allclose(np.asarray(a.get_layer("s1a_conv").kernel), np.asarray(c.get_layer("s1a_conv").kernel))
    assert not np.allclose(np.asarray(a.get_layer("s1a_bn").moving_variance),
                           np.asarray(c.get_layer("s1a_bn").moving_variance), rtol=1e-3)
    assert json.loads((tmp_path / "aug" / "recipe.json").read_text())["averaged"]["bn_faces"] == "augmented"
    with pytest.raises(ValueError, match="bn_faces"):
        average_run(run, data, tmp_path / "bad", bn_faces="dark")
    assert not (tmp_path / "bad").exists()


def test_batchnorm_on_camera_faults_only_leaves_out_the_runs_warps_and_flips(trained_run, tmp_path):
    """--bn-faces faults: faces with the run's camera faults and nothing else. On a run that trained
    with flips only there is nothing left, so the statistics are the clean ones; with blur added to the
    recipe they differ from clean faces and from the fully augmented ones (blur and flips)."""
    import keras

    from emocast.convert.weight_average import _bn_recipe, average_run

    data, run = trained_run
    blurred = tmp_path / "blurred_run"
    shutil.copytree(run, blurred)
    recipe = json.loads((blurred / "recipe.json").read_text())
    recipe["augment"] = {"flip": 1.0, "blur": 1.0, "noise": 0.0}
    (blurred / "recipe.json").write_text(json.dumps(recipe))

    def variance(name: str):
        m = keras.saving.load_model(tmp_path / name / "best.keras", compile=False)
        return np.asarray(m.get_layer("s1a_bn").moving_variance)

    average_run(run, data, tmp_path / "clean", last=2, bn_batches=4)
    done = average_run(run, data, tmp_path / "flips_only", last=2, bn_batches=4, bn_faces="faults")
    assert done["bn_faces"] == "faults"
    np.testing.assert_allclose(variance("flips_only"), variance("clean"), rtol=1e-5)

    average_run(blurred, data, tmp_path / "faults", last=2, bn_batches=4, bn_faces="faults")
    average_run(blurred, data, tmp_path / "augmented", last=2, bn_batches=4, bn_faces="augmented")
    assert not np.allclose(variance("faults"), variance("clean"), rtol=1e-3)
    assert not np.allclose(variance("faults"), variance("augmented"), rtol=1e-3)
    assert variance("faults").sum() < variance("clean").sum()  # blur removes detail: less first-layer variance

    from emocast.convert.recipe import Recipe

    assert _bn_recipe(Recipe(augment={"flip": 1.0, "rotate_deg": 10.0, "blur": 0.3, "jpeg": 0.0}),
                      "faults").augment == {"blur": 0.3}


def test_batchnorm_statistics_are_the_mean_over_the_batches_read():
    import keras

    from emocast.convert.weight_average import recalibrate_batchnorm

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dropout(0.9)(keras.layers.BatchNormalization(name="bn")(inp)))
    rng = np.random.default_rng(1)
    batches = [(rng.normal(loc=i, scale=1 + i, size=(16, 4)).astype(np.float32), None) for i in range(5)]
    assert recalibrate_batchnorm(model, batches, max_batches=3) == 3
    bn = model.get_layer("bn")
    np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean([b[0].mean(0) for b in batches[:3]], 0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), np.mean([b[0].var(0) for b in batches[:3]], 0),
                               rtol=1e-4)
    assert bn.momentum == pytest.approx(0.99)  # the layer's own setting is given back
    assert model.layers[-1].rate == pytest.approx(0.9)  # and the dropout's


def test_the_averaged_folder_quantizes_like_a_run_folder(trained_run, tmp_path):
    from emocast.convert.quantize import quantize
    from emocast.convert.weight_average import average_run
    from emocast.device.perception.emotion import EmotionModel

    data, run = trained_run
    out = tmp_path / "avg"
    average_run(run, data, out, bn_batches=3)
    card = quantize(out / "best.keras", data, tmp_path / "avg_int8.tflite", calib_size=32, accept_drop=True)
    assert card.extra["recipe"]["averaged"]["epochs"] == [2, 3, 4]
    assert EmotionModel(tmp_path / "avg_int8.tflite").labels == FER_LABELS


def test_refusals_name_the_folder_and_exit_with_the_usage_code(trained_run, tmp_path, caplog):
    from emocast.cli import main
    from emocast.core.errors import ExitCode

    data, run = trained_run
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "recipe.json").write_text((run / "recipe.json").read_text())
    def average(folder: Path, *extra: str) -> int:
        return main(["convert", "average", str(folder), "--data", str(data), "--out", str(tmp_path / "o"), *extra])

    assert average(bare) == ExitCode.USAGE  # no epochs kept
    assert average(run, "--last", "1") == ExitCode.USAGE  # one epoch is no average
    assert average(tmp_path) == ExitCode.USAGE  # not a run folder
    averaged = tmp_path / "averaged"
    (averaged / "epochs").mkdir(parents=True)
    from emocast.convert.weight_average import average_run

    average_run(run, data, averaged, bn_batches=1)  # an averaged folder: its recipe has one key more
    assert average(averaged) == ExitCode.USAGE
    assert "averaged/epochs: no epoch weights" in caplog.text
    assert not (tmp_path / "o").exists()  # nothing half-written

    import shutil

    odd = tmp_path / "odd"
    shutil.copytree(run, odd)
    np.savez(odd / "epochs" / "epoch_009.weights.npz", np.zeros(3))
    assert average(odd) == ExitCode.USAGE  # weights of another network
    assert "epoch_009.weights.npz: 1 weights of other shapes" in caplog.text
    (odd / "epochs" / "epoch_009.weights.npz").write_bytes(b"not an npz")
    assert average(odd) == ExitCode.USAGE  # a corrupted file
    assert "epoch_009.weights.npz: not readable as epoch weights" in caplog.text
    assert not (tmp_path / "o").exists()

    from emocast.convert.weight_average import choose_epochs

    with pytest.raises(ValueError, match=r"bare/epochs: no epoch weights .*--keep-epochs"):
        choose_epochs(bare)
    with pytest.raises(ValueError, match=r"1 epoch\(s\) chosen from \[2, 3, 4\]"):
        choose_epochs(run, first=4)
    with pytest.raises(ValueError, match=r"0 epoch\(s\) chosen"):
        choose_epochs(run, last=0)
