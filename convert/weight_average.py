"""One network whose weights are the mean of a run's last epochs (stochastic weight averaging).

A cosine schedule's last epochs sit around one minimum, each a little off it in its own direction;
their mean sits nearer the middle, and generalises better than any one of them (Izmailov et al.
2018, "Averaging Weights Leads to Wider Optima"). Unlike an ensemble it costs the device nothing:
same network, same file size, same latency. The averaged weights need their own BatchNorm
statistics (a mean of each epoch's running means is not the statistics of the averaged network), so
they are measured again on training faces before the model is written.

``convert train --keep-epochs N`` leaves the weights of its last N epochs in ``RUN/epochs/``;
``convert average RUN`` combines them into a folder that ``ensemble`` and ``quantize`` read like a
run folder (``best.keras``, ``recipe.json``, ``history.csv``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from .errors import Refusal
from .recipe import Recipe, make_batches, stored_recipe
from .run_folder import EPOCHS_DIR, epoch_number, kept_epochs, load_epoch

log = logging.getLogger(__name__)


def choose_epochs(run_dir: Path, last: int | None = None, first: int | None = None) -> list[Path]:
    """The kept epochs to average: all of them, those from ``first`` on, or the ``last`` N."""
    kept = kept_epochs(run_dir)
    if not kept:
        raise Refusal(f"{run_dir / EPOCHS_DIR}: no epoch weights to average (train with --keep-epochs N)")
    numbers = sorted(n for n in kept if first is None or n >= first)
    if last is not None:
        numbers = numbers[-last:] if last > 0 else []
    if len(numbers) < 2:
        raise Refusal(f"{run_dir / EPOCHS_DIR}: {len(numbers)} epoch(s) chosen from {sorted(kept)}; "
                         "averaging needs two or more")
    return [kept[n] for n in numbers]


def mean_weights(model, files: list[Path]) -> list[np.ndarray]:
    """The element-wise mean of each of ``model``'s weights over ``files``; accumulated in float64
    so twenty epochs lose nothing to rounding. A file of another network is refused, naming it."""
    shapes = [tuple(w.shape) for w in model.weights]
    total = [np.zeros(s, np.float64) for s in shapes]
    for f in files:
        try:
            ws = load_epoch(f)
        except (ValueError, OSError, EOFError) as e:
            raise Refusal(f"{f}: not readable as epoch weights ({e})") from e
        if [w.shape for w in ws] != shapes:
            raise Refusal(f"{f}: {len(ws)} weights of other shapes than {model.name}'s {len(shapes)}; "
                             "not an epoch of this run's network")
        for t, w in zip(total, ws, strict=True):
            t += w
    return [(t / len(files)).astype(np.float32) for t in total]


BN_FACES = ("clean", "augmented", "faults")  # the faces ``average_run`` can measure BatchNorm on


def recalibrate_batchnorm(model, batches, max_batches: int) -> int:
    """Measure every BatchNorm layer's statistics again, as the plain mean over ``batches`` of each
    batch's mean and variance (the network's weights do not change; its dropout is off). Returns the
    number of batches read."""
    import keras

    layers = list(_all_layers(model))
    bns = [la for la in layers if isinstance(la, keras.layers.BatchNormalization)]
    if not bns:
        return 0
    drops = [la for la in layers if isinstance(la, keras.layers.Dropout)]
    saved_momentum, saved_rate = [la.momentum for la in bns], [la.rate for la in drops]
    for la in bns:
        la.moving_mean.assign(np.zeros(la.moving_mean.shape, np.float32))
        la.moving_variance.assign(np.ones(la.moving_variance.shape, np.float32))
    for la in drops:
        la.rate = 0.0  # training=True below is for BatchNorm only
    n = 0
    try:
        for i in range(min(max_batches, len(batches))):
            n += 1
            for la in bns:
                la.momentum = 1.0 - 1.0 / n  # moving = running mean of the batch statistics
            model(batches[i][0], training=True)
    finally:
        for la, m in zip(bns, saved_momentum, strict=True):
            la.momentum = m
        for la, r in zip(drops, saved_rate, strict=True):
            la.rate = r
    return n


def _all_layers(model):
    for la in model.layers:
        yield la
        if hasattr(la, "layers"):
            yield from _all_layers(la)


def _best_in_history(run_dir: Path, epochs: list[int]) -> float | None:
    """The best validation accuracy Keras logged for any of ``epochs`` (what averaging must beat)."""
    import csv

    path = run_dir / "history.csv"
    if not path.is_file():
        return None
    accs = [float(r["val_accuracy"]) for r in csv.DictReader(path.open())
            if "val_accuracy" in r and int(r["epoch"]) + 1 in epochs]
    return round(max(accs), 4) if accs else None


def _bn_recipe(recipe, bn_faces: str):
    """The recipe whose training feed measures BatchNorm for ``bn_faces`` (see ``average_run``)."""
    from .augment import CAMERA_FAULTS

    if bn_faces != "faults":
        return recipe
    faults = {k: v for k, v in recipe.augment.items() if k in CAMERA_FAULTS and v}
    if not faults:
        log.warning("the run trained without camera faults, so --bn-faces faults measures BatchNorm on clean faces")
    return dataclasses.replace(recipe, augment=faults)


def average_run(run_dir: Path, data: Path, out_dir: Path, last: int | None = None, first: int | None = None,
                bn_batches: int = 200, bn_faces: str = "clean") -> dict:
    """Average ``run_dir``'s kept epochs into ``out_dir/best.keras`` with BatchNorm statistics from
    ``bn_batches`` batches of training faces; the run's recipe goes beside it with what was averaged.
    Returns the validation accuracy of the averaged model and of the last epoch.

    ``bn_faces`` "clean" measures BatchNorm on unaugmented faces (the clean accuracy gains), "augmented"
    on faces augmented as the run trained (camera faults included): on MobileNetV2 stage 4 the clean
    statistics cost most of what the run had learned about blurred and small faces. "faults" keeps the
    run's camera faults (blur, small, dark, noisy, JPEG faces) and leaves out its warps, flips and
    brightness changes, which a kiosk's aligned face crop does not show: the statistics of the faces
    the device sees, for the clean accuracy of one and the robustness of the other."""
    if bn_faces not in BN_FACES:
        raise Refusal(f"bn_faces must be one of {', '.join(BN_FACES)}, not {bn_faces!r}")
    from .architectures import build
    from .data import FER_LABELS
    from .evaluate import evaluate_float
    from .quantize import preprocess_for
    from .sources import ModelSource
    from .train import run_splits

    recipe_path = run_dir / "recipe.json"
    if not recipe_path.is_file():
        raise Refusal(f"{run_dir}: no recipe.json, so not a run folder of `convert train`")
    stored = stored_recipe(recipe_path)
    recipe = Recipe(**{f.name: stored[f.name] for f in dataclasses.fields(Recipe)})  # an averaged folder's too
    files = choose_epochs(run_dir, last, first)
    model = build(recipe.architecture, recipe.input_shape, len(FER_LABELS), width=recipe.width,
                  dropout=recipe.dropout, stem_stride=recipe.stem_stride)
    train_split, val = run_splits(data, recipe)  # a run that learned votes is scored on their majority
    pre = preprocess_for(stored)

    def accuracy() -> float:  # the scoring quantize reports as the float model's
        return evaluate_float(ModelSource(run_dir, "keras", keras_model=model), val, pre).accuracy

    model.set_weights(mean_weights(model, files[-1:]))
    last_acc = accuracy()

    model.set_weights(mean_weights(model, files))
    calib = make_batches(train_split.subset(min(len(train_split), bn_batches * recipe.batch_size), recipe.seed),
                         _bn_recipe(recipe, bn_faces), training=bn_faces != "clean")
    n = recalibrate_batchnorm(model, calib, bn_batches)
    acc = accuracy()
    epochs = [epoch_number(f) for f in files]
    log.info("averaged epochs %s of %s; BatchNorm from %d batches of %s faces; %s accuracy %.4f (last epoch "
             "alone %.4f)", epochs, run_dir, n, bn_faces, recipe.val_split, acc, last_acc)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / "best.keras")
    record = {**stored, "averaged": {"run": str(run_dir), "epochs": epochs, "bn_batches": n, "bn_faces": bn_faces,
                                     "val_accuracy": round(acc, 4), "last_epoch_val_accuracy": round(last_acc, 4),
                                     "best_single_epoch_val_accuracy": _best_in_history(run_dir, epochs)}}
    (out_dir / "recipe.json").write_text(json.dumps(record, indent=2) + "\n")
    if (run_dir / "history.csv").is_file():
        shutil.copyfile(run_dir / "history.csv", out_dir / "history.csv")
    return record["averaged"]
