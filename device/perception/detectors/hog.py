"""dlib's HOG + linear SVM frontal face detector: the boxes dlib's 68-point landmarks were trained on;
finds nothing under about 80 px (40 px with one upsampling)."""

from __future__ import annotations

import numpy as np

from .base import DetectorUnavailable
from .boxes import Box


class HogDetector:
    name = "hog"
    full_frame = False
    min_score = 0.2  # SVM margin; weaker hits were texture (a suit's folds on the astronaut photo, score 0.13)

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise DetectorUnavailable("dlib is not installed: pip install 'emocast[dlib]'") from exc

        self._det = dlib.get_frontal_face_detector()

    def detect(self, gray: np.ndarray, min_size: int) -> list[Box]:
        upsample = 1 if min_size < 80 else 0
        rects, scores, _ = self._det.run(gray, upsample, 0.0)
        boxes = []
        for r, score in zip(rects, scores, strict=True):
            if score < self.min_score:
                continue
            x, y = max(0, r.left()), max(0, r.top())
            w, h = r.right() - x, r.bottom() - y
            if w >= min_size and h >= min_size:
                boxes.append((x, y, w, h))
        return boxes
