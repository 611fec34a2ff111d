"""OpenCV's frontal-face Haar cascade: fast on a Pi core, frontal faces only, no model to install."""

from __future__ import annotations

import cv2
import numpy as np

from .boxes import Box


def load_cascade(name: str) -> cv2.CascadeClassifier:
    """One of the cascades that ship inside OpenCV's wheel (frontal, profile)."""
    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load the Haar cascade {path}")
    return cascade


class HaarDetector:
    name = "haar"
    full_frame = False

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml") -> None:
        self._cascade = load_cascade(cascade)

    def detect(self, gray: np.ndarray, min_size: int) -> list[Box]:
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
        return [tuple(int(v) for v in b) for b in found]  # type: ignore[misc]
