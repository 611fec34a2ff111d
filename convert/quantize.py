"""Keras model -> TFLite (full-integer int8 by default), with its model card beside it.

Full-integer quantization needs a representative data set to calibrate activation ranges; it is
drawn from the training split (class-stratified, so rare classes shape the ranges too), never from
the validation split the card's figures are measured on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from emocast.contract.model_card import ModelCard, Preprocess, batch_to_model_input, card_path_for, sha256_of

from .budget import MAX_FACE_MS, MAX_MB, check_budget
from .data import FER_LABELS, Split, canonical_label, load_split
from .device_check import check_runs_on_device
from .errors import Refusal

log = logging.getLogger(__name__)

Mode = Literal["int8", "float16", "dynamic"]


def representative_images(split: Split, n: int, seed: int) -> np.ndarray:
    """``n`` training images, an equal share per class where the class has enough."""
    rng = np.random.default_rng(seed)
    per_class = max(1, n // len(split.classes))
    picks = []
    for c in range(len(split.classes)):
        idx = np.flatnonzero(split.labels == c)
        if len(idx):
            picks.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    chosen = np.concatenate(picks)
    rng.shuffle(chosen)
    return split.images[chosen]


# Recipe keys that say what the model's input means; flags may set them for a model without a run folder.
PREPROCESS_KEYS = ("input_size", "color", "pixel_scale", "pixel_offset", "crop_margin")


FLAG_NAMES = {"input_size": "--size", "color": "--color", "pixel_scale": "--scale", "pixel_offset": "--offset",
              "crop_margin": "--crop-margin"}


class QuantizationError(Refusal):
    """The conversion was refused: the message says why, with the figures."""


def preprocess_for(recipe: dict) -> Preprocess:
    size = recipe.get("input_size", 48)
    h, w = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
    return Preprocess(
        color=recipe.get("color", "gray"),
        size=(h, w),
        pixel_scale=float(recipe.get("pixel_scale", 1 / 255)),
        pixel_offset=float(recipe.get("pixel_offset", 0.0)),
        crop_margin=float(recipe.get("crop_margin", 0.0)),
    )


def convert_keras(model, pre: Preprocess, mode: Mode, calib: np.ndarray | None) -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    import keras
    import tensorflow as tf

    h, w = pre.size
    c = 1 if pre.color == "gray" else 3
    # Keras 3's own SavedModel export freezes the weights; a hand-made concrete function keeps them
    # as resource variables that the int8 calibrator cannot read.
    with tempfile.TemporaryDirectory(prefix="emocast-export-") as tmp:
        export = keras.export.ExportArchive()
        export.track(model)
        export.add_endpoint(
            "serve", lambda x: model(x, training=False), input_signature=[tf.TensorSpec([1, h, w, c], tf.float32)]
        )
        export.write_out(tmp, verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        return _configure_and_convert(conv, tf, pre, mode, calib)


def _configure_and_convert(conv, tf, pre: Preprocess, mode: Mode, calib: np.ndarray | None) -> bytes:
    if mode == "int8":
        if calib is None or not len(calib):
            raise Refusal("int8 quantization needs representative images")
        x = batch_to_model_input(calib, pre)

        def rep() -> Iterator[list[np.ndarray]]:
            for xi in x:
                yield [xi[None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    elif mode == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


def merge_flags(recipe: dict, flags: dict, where: str) -> dict:
    """The run folder's recipe with the command line's preprocessing flags; a flag that contradicts
    the recipe is an error naming both values (the model was trained on one of them)."""
    merged = dict(recipe)
    for key, value in flags.items():
        if value is None:
            continue
        stored = recipe.get(key)
        if stored is not None and _norm(stored) != _norm(value):
            raise QuantizationError(f"{FLAG_NAMES.get(key, key)} {value} contradicts {where}'s {key} {stored}")
        merged[key] = value
    return merged


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [float(x) for x in v] if len(set(v)) > 1 else float(v[0])
    return float(v) if isinstance(v, (int, float)) else v


def _recipe_and_labels(model_path: Path, recipe: dict | None, labels: tuple[str, ...] | None,
                       preprocess: dict | None, declared: dict | None = None) -> tuple[dict, tuple[str, ...]]:
    """The recipe the model is converted with (given, or its run folder's, or what a graph ``declared``
    of its input, with the flags merged in) and its labels; flags or labels that contradict the run
    folder or the graph are refused, naming both."""
    recipe = dict(recipe or {})
    where = "the given recipe"
    stored = Path(model_path).parent / "recipe.json"
    if not recipe and declared:
        recipe, where = dict(declared), f"{model_path}'s graph"
    elif not recipe and Path(model_path).is_file() and stored.is_file():
        recipe, where = json.loads(stored.read_text()), str(stored)
    recipe = merge_flags(recipe, dict(preprocess or {}), where)
    if labels and recipe.get("labels") and list(map(canonical_label, recipe["labels"])) != list(
            map(canonical_label, labels)):
        raise QuantizationError(f"--labels {','.join(labels)} contradicts {where}'s labels "
                                f"{','.join(recipe['labels'])}")
    return recipe, tuple(labels or recipe.get("labels") or FER_LABELS)


def _check_shapes(source, model_path: Path, labels: tuple[str, ...], pre: Preprocess) -> None:
    """The model's outputs must be the labels and its input the preprocessing's."""
    if source.outputs != len(labels):
        raise QuantizationError(f"{model_path}: {source.outputs} outputs, but {len(labels)} labels "
                                f"({', '.join(labels)}); give the model's classes in output order with --labels")
    want = (*pre.size, 1 if pre.color == "gray" else 3)
    have = source.input_shape[1:]
    if len(have) != 3 or any(h is not None and h != w for h, w in zip(have, want, strict=True)):
        raise QuantizationError(f"{model_path}: input {tuple(have)} does not match the preprocessing "
                                f"{want[0]}x{want[1]}x{want[2]} (set --size and --color to the model's input)")


@contextlib.contextmanager
def nothing_left_on_failure(out_path: Path) -> Iterator[None]:
    """A refusal, a failure or an interruption inside leaves no unchecked file, nor its card, at ``out_path``:
    the one place a converted file is taken back (the checks inside only raise)."""
    try:
        yield
    except BaseException:
        out_path.unlink(missing_ok=True)
        card_path_for(out_path).unlink(missing_ok=True)
        raise


def _score_and_gate(source, out_path: Path, data: Path, recipe: dict, labels: tuple[str, ...], pre: Preprocess,
                    mode: str, metrics: dict, card_recipe: dict, eval_limit: int, robust: bool,
                    accept_drop: bool, max_drop: float) -> None:
    """Score the float model and the written file on the validation split (into ``metrics``); a drop
    over ``max_drop`` is refused (``QuantizationError``), unless ``accept_drop``."""
    from .evaluate import evaluate_tflite, float_probabilities
    from .metrics import score

    val, left_val = load_split(data, recipe.get("val_split", "public_test")).for_labels(labels)
    if eval_limit:
        val = val.subset(eval_limit, 0)
    float_probs = float_probabilities(source, val, pre)
    fl = score(val.labels, float_probs.argmax(axis=1), len(val.classes))
    metrics["float"] = {"accuracy": round(fl.accuracy, 4), "macro_f1": round(fl.macro_f1, 4)}
    _write_card(out_path, pre, card_recipe, mode, metrics, labels)  # the device-side loader reads the file's card
    q = evaluate_tflite(out_path, val)
    metrics[mode] = {"accuracy": round(q.scores.accuracy, 4), "macro_f1": round(q.scores.macro_f1, 4)}
    metrics["validation"] = {"split": val.name, "labels": "FER2013", "images": len(val),
                             **({"left_out": left_val} if left_val else {})}
    metrics["latency_ms_median_1thread"] = round(q.latency_ms, 3)
    # the share of faces on which the file the device runs and the float model give the same class
    metrics["agreement"] = round(float((q.probs.argmax(axis=1) == float_probs.argmax(axis=1)).mean()), 4)
    log.info("float acc %.4f F1 %.4f | %s acc %.4f F1 %.4f | same class on %.1f%% of faces | %.2f ms/face",
             fl.accuracy, fl.macro_f1, mode, q.scores.accuracy, q.scores.macro_f1, 100 * metrics["agreement"],
             q.latency_ms)
    if robust:
        from .robustness import robustness

        metrics["robustness"] = robustness(out_path, val)
    drop = fl.accuracy - q.scores.accuracy
    if drop > max_drop and not accept_drop:  # nothing_left_on_failure takes the file and its card back
        raise QuantizationError(
            f"{mode} accuracy {q.scores.accuracy:.4f} is {100 * drop:.1f} points under the float model's "
            f"{fl.accuracy:.4f} on {val.name} ({len(val)} faces), more than {100 * max_drop:.0f}: nothing "
            f"written; --accept-drop keeps it anyway, or calibrate on more images (--calib)")


def quantize(
    model_path: Path,
    data: Path,
    out_path: Path,
    mode: Mode = "int8",
    calib_size: int = 500,
    recipe: dict | None = None,
    evaluate: bool = True,
    eval_limit: int = 0,
    labels: tuple[str, ...] | None = None,
    preprocess: dict | None = None,
    accept_drop: bool = False,
    max_drop: float = 0.02,
    robust: bool = True,
    max_face_ms: float = MAX_FACE_MS,
    max_mb: float = MAX_MB,
) -> ModelCard:
    """Convert ``model_path`` (.keras, .h5, a SavedModel directory, .onnx or .pt2) and write ``out_path``
    plus its card; with ``evaluate``, score the float and quantized models on the validation split and
    refuse (``QuantizationError``, nothing left behind) an accuracy drop over ``max_drop`` unless
    ``accept_drop``; with ``robust`` also under a kiosk camera's faults (``robustness``), in the
    card. ``labels`` and ``preprocess`` (PREPROCESS_KEYS) describe a model without a run folder;
    they must agree with a run folder's recipe, or what a graph says of its input, where there is
    one. A file over the kiosk's budget (``max_face_ms`` a face on one thread, ``max_mb``) is refused
    (``ModelSourceError``) and removed."""
    from .sources import check_probabilities, load_source

    flags = dict(preprocess or {})
    source = load_source(model_path, _size_flag(flags.get("input_size")), flags.get("color"))
    declared = getattr(source, "declared", None)
    recipe, labels = _recipe_and_labels(model_path, recipe, labels, flags, declared)
    pre = preprocess_for(recipe)
    _check_shapes(source, model_path, labels, pre)
    training = training_record(Path(model_path).parent / "history.csv") if Path(model_path).is_file() else {}
    calib = None
    left_out: dict[str, int] = {}
    if mode == "int8" or evaluate:
        train, left_out = load_split(data, recipe.get("train_split", "train")).for_labels(labels)
        if not len(train):
            raise QuantizationError(f"{data}: no training images of the model's classes ({', '.join(labels)})")
        calib = representative_images(train, calib_size, int(recipe.get("seed", 0)))
        check_probabilities(source, batch_to_model_input(calib[:128], pre))
    log.info("converting %s (%s) to %s TFLite", model_path, source.kind, mode)
    blob = _convert(source, Path(model_path), pre, mode, calib if mode == "int8" else None, calib)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(blob)
    with nothing_left_on_failure(out_path):  # refused, failed or interrupted from here: no unchecked file stays
        card_recipe = {**recipe, "labels": list(labels)}
        if source.foreign:  # a graph from elsewhere: tried by the device's interpreter before it is read
            check_runs_on_device(Path(model_path), out_path)
            card_recipe["source"] = source.record()
        elif source.kind != "keras" or "architecture" not in recipe:
            card_recipe.setdefault("source", {"file": Path(model_path).name, "format": source.kind})
        dataset = FER_DATASET if tuple(labels) == FER_LABELS and "source" not in card_recipe else (
            f"{Path(data).name}: {recipe.get('train_split', 'train')} split for calibration, "
            f"{recipe.get('val_split', 'public_test')} for validation; classes matched by name to {', '.join(labels)}")
        if "vote" in label_source(card_recipe):
            dataset += f"; trained on {label_source(card_recipe)}"
        metrics: dict = {"training": training} if training else {}
        if left_out:
            metrics["left_out_images"] = left_out
        if evaluate:
            _score_and_gate(source, out_path, data, recipe, labels, pre, mode, metrics, card_recipe, eval_limit,
                            robust, accept_drop, max_drop)
        card = _write_card(out_path, pre, card_recipe, mode, metrics, labels, dataset)
        check_budget(Path(model_path), out_path, metrics.get("latency_ms_median_1thread"), max_face_ms, max_mb)
    return card


def _size_flag(size) -> tuple[int, int] | None:
    """``--size`` as (height, width), where given."""
    return None if size is None else preprocess_for({"input_size": size}).size


def _convert(source, model_path: Path, pre: Preprocess, mode: Mode, calib: np.ndarray | None,
             faces: np.ndarray | None = None) -> bytes:
    """The TFLite flatbuffer, by the source's way in: a Keras model, a SavedModel, or a graph onnx2tf
    turns into a SavedModel first (checked on ``faces``)."""
    if source.foreign:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="emocast-onnx-") as tmp:
            return convert_saved_model(source.saved_model(Path(tmp) / "saved_model", faces), pre, mode, calib)
    if source.keras_model is not None:
        return convert_keras(source.keras_model, pre, mode, calib)
    return convert_saved_model(model_path, pre, mode, calib)


def convert_saved_model(path: Path, pre: Preprocess, mode: Mode, calib: np.ndarray | None) -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(path))
    return _configure_and_convert(conv, tf, pre, mode, calib)


def training_record(history_csv: Path) -> dict:
    """What the run actually did, beside the recipe it was asked to do (early stopping, resumes)."""
    import csv

    if not history_csv.is_file():
        return {}
    rows = list(csv.DictReader(history_csv.open()))
    if not rows or "val_accuracy" not in rows[0]:
        return {}
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    return {
        "epochs_run": len({r["epoch"] for r in rows}),
        "best_epoch": int(best["epoch"]) + 1,
        "best_val_accuracy_keras": round(float(best["val_accuracy"]), 4),
    }


def architecture_line(recipe: dict) -> str:
    """The card's architecture line, for a single network, an ensemble of them, or a model brought
    from elsewhere."""
    if "architecture" not in recipe and recipe.get("source"):
        return f"{recipe['source']['format']} model {recipe['source']['file']}"
    if recipe.get("architecture") != "ensemble":
        return f"{recipe.get('architecture', 'unknown')} (width {recipe.get('width', 1.0)})"
    parts = " + ".join(architecture_line(m["recipe"]) for m in recipe.get("members", []))
    return f"{parts}, averaged with the mirrored face" if recipe.get("mirror") else f"ensemble of {parts}"


FER_DATASET = "FER2013: train split for training and calibration, PublicTest for validation"


def label_source(recipe: dict) -> str:
    """What the model learned from: people's votes (``train --votes``) or one label per face, for
    every member of an ensemble (a mix is named as one)."""
    members = [m.get("recipe", {}) for m in recipe.get("members", [])] or [recipe]
    votes = sorted({Path(m["votes"]).name for m in members if m.get("votes")})
    if not votes:
        return "FER2013's labels (one per face)"
    plain = len(votes) < len(members) and any(not m.get("votes") for m in members)
    return f"people's vote shares ({', '.join(votes)})" + (" and FER2013's labels" if plain else "")


def _write_card(out_path: Path, pre: Preprocess, recipe: dict, mode: str, metrics: dict,
                labels: tuple[str, ...] = FER_LABELS, dataset: str = FER_DATASET) -> ModelCard:
    card = ModelCard(
        id=out_path.stem,
        file=out_path.name,
        sha256=sha256_of(out_path),
        labels=tuple(labels),
        preprocess=pre,
        architecture=architecture_line(recipe),
        dataset=dataset,
        metrics={k: v for k, v in metrics.items() if k in ("float", "int8", "validation")},
        extra={
            "label_source": label_source(recipe),
            "quantization": mode,
            "input_dtype": "int8" if mode == "int8" else "float32",
            "size_bytes": out_path.stat().st_size,
            "recipe": recipe,
            **{k: v for k, v in metrics.items() if k not in ("float", "int8", "validation")},
        },
    )
    card_path_for(out_path).write_text(json.dumps(card.to_json(), indent=2) + "\n")
    return card
