"""How a model holds up on the faces a kiosk camera actually gives it.

FER2013's faces are tight, sharp 48 px crops; a kiosk sees faces blurred by focus and motion, faces of
20-30 px enlarged to the model's input, JPEG from RTSP cameras, and detector boxes looser than FER's
crops. Each column of the table is the validation split put through one of those, scored through the
device's own interpreter, so a model's card says what it is worth off the data set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from .data import Split


def _blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda f: cv2.GaussianBlur(f, (0, 0), sigma)


def _small(px: int) -> Callable[[np.ndarray], np.ndarray]:
    def shrink(f: np.ndarray) -> np.ndarray:
        small = cv2.resize(f, (px, px), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, f.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return shrink


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def encode(f: np.ndarray) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else f
    return encode


def _loose_box(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    """The face as a box ``factor`` times larger would crop it: smaller in the frame, with the
    surroundings (here FER's own border, reflected) around it."""
    def loosen(f: np.ndarray) -> np.ndarray:
        h, w = f.shape
        pad = int(round((factor - 1.0) * w / 2))
        wide = cv2.copyMakeBorder(f, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        return cv2.resize(wide, (w, h), interpolation=cv2.INTER_AREA)
    return loosen


CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clean": lambda f: f,
    "blur 1.0": _blur(1.0),
    "blur 1.5": _blur(1.5),
    "24 px": _small(24),
    "32 px": _small(32),
    "JPEG q30": _jpeg(30),
    "box 1.2x": _loose_box(1.2),
}


def corrupted(split: Split, condition: str) -> Split:
    fn = CONDITIONS[condition]
    images = np.stack([fn(f) for f in split.images]).astype(np.uint8)
    return replace(split, images=images, name=f"{split.name} ({condition})")


def robustness(model_path: Path, split: Split) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 of a .tflite model under each condition, on the same faces."""
    from .evaluate import evaluate_tflite

    table = {}
    for condition in CONDITIONS:
        ev = evaluate_tflite(model_path, corrupted(split, condition), progress=False, latency=False)
        table[condition] = {"accuracy": round(ev.scores.accuracy, 4), "macro_f1": round(ev.scores.macro_f1, 4)}
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    names = list(table)
    head = "  " + "".join(f"{n:>10}" for n in ["", *names])
    acc = "  " + f"{'accuracy':>10}" + "".join(f"{table[n]['accuracy']:>10.4f}" for n in names)
    f1 = "  " + f"{'macro-F1':>10}" + "".join(f"{table[n]['macro_f1']:>10.4f}" for n in names)
    return "\n".join((head, acc, f1))
