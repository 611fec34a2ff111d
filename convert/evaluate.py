"""Scoring a model on a FER2013 split: the Keras float model, and a TFLite file through the device's
own EmotionModel (same preprocessing, same quantization), so the card's figures are the device's."""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emocast.contract.model_card import Preprocess, batch_to_model_input

from ..device.perception.emotion import EmotionModel
from .data import Split
from .errors import ModelSourceError
from .metrics import Scores, score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TfliteEvaluation:
    scores: Scores  # plain inference
    probs: np.ndarray
    latency_ms: float  # median per face, one thread, preprocessing included
    tta_scores: Scores | None  # averaged with the mirrored face, when asked for
    tta_latency_ms: float | None
    size_bytes: int


def float_probabilities(source, split: Split, pre: Preprocess, batch_size: int = 256) -> np.ndarray:
    """The float model's outputs on ``split``, from its own runtime (Keras, TensorFlow, onnxruntime, torch)."""
    return np.asarray(source.predict(batch_to_model_input(split.images, pre), batch_size=batch_size))


def evaluate_float(source, split: Split, pre: Preprocess, batch_size: int = 256) -> Scores:
    """Score the float model a source holds (``sources.load_source``) on ``split``."""
    probs = float_probabilities(source, split, pre, batch_size)
    return score(split.labels, probs.argmax(axis=1), len(split.classes))


def per_face_latency_ms(model: EmotionModel, image: np.ndarray, repeats: int = 200, flip_tta: bool = False,
                        best: bool = False) -> float:
    """Median wall time of crop -> input -> invoke -> probabilities for one 48x48 face; with ``best`` the
    fastest, the cost with nothing else running."""
    from emocast.contract.model_card import to_model_input

    pre = model.card.preprocess
    for _ in range(10):
        model.predict_input(to_model_input(image, pre))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        x = to_model_input(image, pre)
        model.predict_input(x)
        if flip_tta:
            model.predict_input(x[:, ::-1])
        times.append((time.perf_counter() - t0) * 1000)
    return min(times) if best else statistics.median(times)


def evaluate_tflite(path: Path, split: Split, flip_tta: bool = False, progress: bool = True,
                    latency: bool = True) -> TfliteEvaluation:
    """Score a .tflite file (with its card) on ``split`` with one interpreter thread; with
    ``flip_tta`` the same pass also scores the average with each mirrored face. The split's classes
    are matched to the card's labels by name (``Split.for_labels``)."""
    from emocast.contract.model_card import to_model_input

    model = EmotionModel(path, threads=1)
    if tuple(split.classes) != tuple(model.labels):
        split, left_out = split.for_labels(model.labels)
        if left_out:
            log.info("scoring on the model's classes only: left out %s", left_out)
    pre = model.card.preprocess
    probs = np.empty((len(split), len(model.labels)), dtype=np.float32)
    flipped = np.empty_like(probs) if flip_tta else None
    for i in tqdm(range(len(split)), desc=f"scoring {path.name}", unit="face", disable=not progress,
                  mininterval=1.0):
        x = to_model_input(split.images[i], pre)
        try:
            probs[i] = model.predict_input(x)
            if flipped is not None:
                flipped[i] = model.predict_input(x[:, ::-1])
        except RuntimeError as exc:  # a kernel's own check, on this face's values (an int8 division by zero)
            raise ModelSourceError(f"{path}: the device's interpreter fails on face {i} of {split.name} "
                                   f"({len(split)} faces): {exc}") from exc
    n = len(model.labels)
    scores = score(split.labels, probs.argmax(axis=1), n)
    tta_scores = None if flipped is None else score(split.labels, (probs + flipped).argmax(axis=1), n)
    sample = split.images[0]
    lat = per_face_latency_ms(model, sample) if latency else float("nan")
    tta = per_face_latency_ms(model, sample, flip_tta=True) if flip_tta and latency else None
    return TfliteEvaluation(scores, probs, lat, tta_scores, tta, path.stat().st_size)


def people_record(ev: TfliteEvaluation, split: Split, labels: tuple[str, ...], votes: Path,
                  left_out: dict[str, int]) -> dict:
    """What a card says of a model against people's majority: accuracy, macro-F1 and recall per class
    (with and without the mirror view where it was scored), and which faces were left out."""
    def block(s: Scores) -> dict:
        return {"accuracy": round(s.accuracy, 4), "macro_f1": round(s.macro_f1, 4),
                "recall": {lab: round(float(s.recall[i]), 4) for i, lab in enumerate(labels)}}

    out = {"labels": f"majority of people's votes in {votes.name} (ties, unknown, not a face and classes "
                     "the model lacks left out)",
           "split": split.name, "images": len(split), "left_out": {k: v for k, v in left_out.items() if v},
           "int8": block(ev.scores)}
    if ev.tta_scores is not None:
        out["int8_mirror_view"] = block(ev.tta_scores)
    return out
