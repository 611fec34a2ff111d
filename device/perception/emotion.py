"""Emotion inference with an int8 TFLite model, and per-face smoothing of its probabilities.

The interpreter comes from ``tflite.load_interpreter`` (the device never needs TensorFlow itself).
The converter evaluates fresh models through this same class, so a model is scored with exactly
the preprocessing and quantization the device applies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emocast.contract.model_card import ModelCard, ModelError, crop_face, load_card, shipped_model_file, to_model_input

from .tflite import dequantize_output, load_interpreter, quantize_input

log = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "emotion_ferplus_mobilenetv2_int8.tflite"

def default_model_path() -> Path:
    return shipped_model_file(DEFAULT_MODEL_FILE)


def model_path(setting: str) -> Path:
    """The file an ``[emotion] model`` setting names: empty for the default; a bare file name that is
    not in the working folder but ships with emocast (``emotion_fer2013_emocnn_int8.tflite``, the
    earlier default) from the installed package, so a kiosk can choose a shipped model without knowing
    where pip put it; anything else as the path it is (a missing file is refused later, by name)."""
    if not setting:
        return default_model_path()
    path = Path(setting)
    if path.exists() or path.name != setting:
        return path
    shipped = shipped_model_file(setting)
    return shipped if shipped.is_file() else path


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities as a softmax of logits divided by ``temperature`` would give them: ``p ** (1/T)``
    renormalised (the same thing, computed from the probabilities an int8 model outputs). T > 1 softens
    an over-confident model, T < 1 sharpens; the converter fits it (``convert/calibration.py``)."""
    if temperature == 1.0:
        return probs
    p = np.power(np.clip(probs, 0.0, 1.0), 1.0 / temperature)
    total = p.sum(axis=-1, keepdims=True)
    return np.where(total > 0, p / np.maximum(total, 1e-30), 1.0 / probs.shape[-1]).astype(np.float32)


def card_temperature(card: ModelCard) -> float:
    """The temperature a card's ``calibration`` names (1.0: the model is used as trained)."""
    cal = card.extra.get("calibration")
    if cal is None:
        return 1.0
    try:
        t = float(cal["temperature"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{card.file}: its card's 'calibration' needs a numeric 'temperature'") from None
    if not np.isfinite(t) or t <= 0:
        raise ModelError(f"{card.file}: its card's calibration temperature must be above 0, not {t}")
    return t


@dataclass(frozen=True)
class EmotionResult:
    probs: np.ndarray  # (n_labels,) float, sums to 1

    def top(self, labels: tuple[str, ...]) -> tuple[str, float]:
        i = int(np.argmax(self.probs))
        return labels[i], float(self.probs[i])


class EmotionModel:
    """One loaded model: face crop in, class probabilities out."""

    def __init__(self, model_path: Path, threads: int = 1, verify_hash: bool = True) -> None:
        self.path = Path(model_path)
        self.card: ModelCard = load_card(self.path, verify_hash=verify_hash)
        self._interp, self.runtime = load_interpreter(self.path, threads)
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self.input_dtype = np.dtype(inp["dtype"])
        self._in_q = inp.get("quantization", (0.0, 0))
        self._out_q = out.get("quantization", (0.0, 0))
        self.output_dtype = np.dtype(out["dtype"])
        h, w = self.card.preprocess.size
        channels = 1 if self.card.preprocess.color == "gray" else 3
        if tuple(inp["shape"][1:]) != (h, w, channels):
            raise ModelError(
                f"{self.path}: input shape {tuple(inp['shape'])} does not match the card's "
                f"preprocess {h}x{w}x{channels}"
            )
        if int(out["shape"][-1]) != len(self.card.labels):
            raise ModelError(
                f"{self.path}: {out['shape'][-1]} outputs but the card lists {len(self.card.labels)} labels"
            )
        self.temperature = card_temperature(self.card)
        log.info("emotion model %s (%s, input %s, temperature %.3g) on %s", self.card.id, self.path.name,
                 self.input_dtype, self.temperature, self.runtime)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    def clone(self) -> EmotionModel:
        """The same model with an interpreter of its own, for another worker thread (its file was
        checked against its card when this one loaded)."""
        return EmotionModel(self.path, threads=1, verify_hash=False)

    def predict_input(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for one preprocessed float input (H, W, C)."""
        self._interp.set_tensor(self._in_index, quantize_input(x[None], self.input_dtype, self._in_q))
        self._interp.invoke()
        probs = dequantize_output(self._interp.get_tensor(self._out_index)[0], self.output_dtype, self._out_q)
        total = float(probs.sum())
        probs = probs / total if total > 0 else np.full_like(probs, 1.0 / len(probs))
        return apply_temperature(probs, self.temperature)

    def predict_batch(self, x: np.ndarray, flip_tta: bool = False) -> np.ndarray:
        """Probabilities for preprocessed inputs (N, H, W, C); with ``flip_tta`` averaged with the mirror."""
        out = np.empty((len(x), len(self.labels)), dtype=np.float32)
        for i, xi in enumerate(x):
            p = self.predict_input(xi)
            if flip_tta:
                p = 0.5 * (p + self.predict_input(xi[:, ::-1]))
            out[i] = p
        return out

    def classify(self, frame_gray: np.ndarray, box: tuple[int, int, int, int]) -> EmotionResult:
        pre = self.card.preprocess
        crop = crop_face(frame_gray, box, pre.crop_margin)
        return EmotionResult(self.predict_input(to_model_input(crop, pre)))


class EmotionSmoother:
    """Exponential moving average of a face's probabilities. The reported emotion changes only when
    the smoothed reading is confident (its top probability at least ``min_confidence``, on a
    calibrated model's probabilities); a reading under it is *unsure*: the face keeps its last
    emotion for events, and summaries count the reading as too unsure to call instead of
    crediting either emotion with its time. So one odd frame does not flip the reported emotion,
    and a face people would not agree on is not called."""

    def __init__(self, labels: tuple[str, ...], smoothing: float = 0.5, min_confidence: float = 0.5) -> None:
        self.labels = labels
        self.smoothing = smoothing
        self.min_confidence = min_confidence
        self.probs: np.ndarray | None = None
        self.current: str | None = None
        self.samples = 0
        self.unsure = False  # the latest smoothed reading is under min_confidence
        self.unsure_samples = 0

    def update(self, probs: np.ndarray) -> tuple[str, str | None] | None:
        """Fold in one inference; returns (new, previous) when the smoothed emotion changes."""
        self.samples += 1
        if self.probs is None:
            self.probs = probs.astype(np.float32).copy()
        else:
            self.probs = self.smoothing * self.probs + (1.0 - self.smoothing) * probs
        i = int(np.argmax(self.probs))
        label, conf = self.labels[i], float(self.probs[i])
        self.unsure = conf < self.min_confidence
        if self.unsure:
            self.unsure_samples += 1
            return None
        if label != self.current:
            previous, self.current = self.current, label
            return label, previous
        return None

    @property
    def called(self) -> str | None:
        """The emotion a summary credits now: the current one while the reading is confident."""
        return None if self.unsure else self.current

    def as_dict(self) -> dict[str, float]:
        if self.probs is None:
            return {}
        return {lab: round(float(p), 4) for lab, p in zip(self.labels, self.probs, strict=True)}
