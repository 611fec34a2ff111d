"""Keras model -> TFLite (full-integer int8 by default), with its model card beside it.

Full-integer quantization needs a representative data set to calibrate activation ranges; it is
drawn from the training split (class-stratified, so rare classes shape the ranges too), never from
the validation split the card's figures are measured on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from ..device.model_card import ModelCard, Preprocess, batch_to_model_input, card_path_for, sha256_of
from .data import FER_LABELS, Split, load_split

log = logging.getLogger(__name__)

Mode = Literal["int8", "float16", "dynamic"]


def representative_images(split: Split, n: int, seed: int) -> np.ndarray:
    """``n`` training images, an equal share per class where the class has enough."""
    rng = np.random.default_rng(seed)
    per_class = max(1, n // len(FER_LABELS))
    picks = []
    for c in range(len(FER_LABELS)):
        idx = np.flatnonzero(split.labels == c)
        if len(idx):
            picks.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    chosen = np.concatenate(picks)
    rng.shuffle(chosen)
    return split.images[chosen]


def preprocess_for(recipe: dict) -> Preprocess:
    size = int(recipe.get("input_size", 48))
    return Preprocess(
        color=recipe.get("color", "gray"),
        size=(size, size),
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
            raise ValueError("int8 quantization needs representative images")
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


def quantize(
    keras_path: Path,
    data: Path,
    out_path: Path,
    mode: Mode = "int8",
    calib_size: int = 500,
    recipe: dict | None = None,
    evaluate: bool = True,
    eval_limit: int = 0,
) -> ModelCard:
    """Convert ``keras_path`` and write ``out_path`` plus its card; scores float and quantized models
    on the validation split when ``evaluate``."""
    import keras

    from . import architectures  # noqa: F401  (registers the Mirror layer that ensembles use)
    from .evaluate import evaluate_float, evaluate_tflite

    recipe = dict(recipe or {})
    if not recipe:
        stored = keras_path.parent / "recipe.json"
        if stored.is_file():
            recipe = json.loads(stored.read_text())
    pre = preprocess_for(recipe)
    training = training_record(keras_path.parent / "history.csv")
    model = keras.models.load_model(keras_path, compile=False)
    calib = None
    if mode == "int8":
        train = load_split(data, recipe.get("train_split", "train"))
        calib = representative_images(train, calib_size, int(recipe.get("seed", 0)))
    log.info("converting %s to %s TFLite", keras_path, mode)
    blob = convert_keras(model, pre, mode, calib)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(blob)

    metrics: dict = {"training": training} if training else {}
    if evaluate:
        val = load_split(data, recipe.get("val_split", "public_test"))
        if eval_limit:
            val = val.subset(eval_limit, 0)
        fl = evaluate_float(model, val, pre)
        metrics["float"] = {"accuracy": round(fl.accuracy, 4), "macro_f1": round(fl.macro_f1, 4)}
        # Write a provisional card so the device-side loader can open the file it checks.
        _write_card(out_path, pre, recipe, mode, metrics)
        q = evaluate_tflite(out_path, val)
        metrics[mode] = {"accuracy": round(q.scores.accuracy, 4), "macro_f1": round(q.scores.macro_f1, 4)}
        metrics["validation"] = {"split": val.name, "images": len(val)}
        metrics["latency_ms_median_1thread"] = round(q.latency_ms, 3)
        log.info("float acc %.4f F1 %.4f | %s acc %.4f F1 %.4f | %.2f ms/face",
                 fl.accuracy, fl.macro_f1, mode, q.scores.accuracy, q.scores.macro_f1, q.latency_ms)
    return _write_card(out_path, pre, recipe, mode, metrics)


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
    """The card's architecture line, for a single network or an ensemble of them."""
    if recipe.get("architecture") != "ensemble":
        return f"{recipe.get('architecture', 'unknown')} (width {recipe.get('width', 1.0)})"
    parts = " + ".join(architecture_line(m["recipe"]) for m in recipe.get("members", []))
    return f"{parts}, averaged with the mirrored face" if recipe.get("mirror") else f"ensemble of {parts}"


def _write_card(out_path: Path, pre: Preprocess, recipe: dict, mode: str, metrics: dict) -> ModelCard:
    card = ModelCard(
        id=out_path.stem,
        file=out_path.name,
        sha256=sha256_of(out_path),
        labels=FER_LABELS,
        preprocess=pre,
        architecture=architecture_line(recipe),
        dataset="FER2013: train split for training and calibration, PublicTest for validation",
        metrics={k: v for k, v in metrics.items() if k in ("float", "int8", "validation")},
        extra={
            "quantization": mode,
            "input_dtype": "int8" if mode == "int8" else "float32",
            "size_bytes": out_path.stat().st_size,
            "recipe": recipe,
            **{k: v for k, v in metrics.items() if k not in ("float", "int8", "validation")},
        },
    )
    card_path_for(out_path).write_text(json.dumps(card.to_json(), indent=2) + "\n")
    return card
