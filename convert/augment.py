"""Training-time augmentation and batching in NumPy and OpenCV, whatever Keras backend trains.

The model trains on TensorFlow here (CPU) and on PyTorch where a GPU is lent (Keras 3's torch
backend; no TensorFlow there), so the input pipeline must not need TensorFlow. One affine warp per
face does flip, rotation, zoom and shift together (with reflected borders, so no black corners teach
the model that corners matter), then brightness and contrast; all drawn from a seeded generator, so
an epoch's batches are the same on every backend and every rerun.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import cv2
import keras
import numpy as np

from .data import Split
from .errors import Refusal

# What a kiosk camera does to a face that FER2013's studio-like crops rarely show. Each key of the
# recipe's ``augment`` names the share of faces that get it; the strength is drawn from these ranges.
BLUR_SIGMA = (0.5, 1.8)  # Gaussian, in pixels of the 48 px face: focus, motion, a cheap lens
DOWNSCALE_PX = (14, 32)  # a face this small in the frame, enlarged back to the model's input
JPEG_QUALITY = (15, 60)  # RTSP cameras and recorded clips
NOISE_SIGMA = (2.0, 10.0)  # sensor noise, on the 0-255 scale
DARK_GAIN = (0.25, 0.7)  # low light: the face dimmed (noise, if drawn, comes after)
CAMERA_FAULTS = ("dark", "blur", "downscale", "noise", "jpeg")  # the augment keys ``corrupt`` reads


def scale_faults(augment: Mapping[str, float], scale: float) -> dict[str, float]:
    """``augment`` with each camera fault's share multiplied by ``scale`` (capped at 1).

    With the default shares about 69% of training faces carry at least one fault, so the clean faces
    the accuracy bar is measured on are a minority of what the model sees; a last stage at a lower
    scale trades some robustness for clean accuracy, and the recipe records the shares it used."""
    if scale < 0:
        raise Refusal(f"--camera-faults must be 0 or more, not {scale}")
    return {k: (min(1.0, v * scale) if k in CAMERA_FAULTS else v) for k, v in augment.items()}


def corrupt(face: np.ndarray, params: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """One float32 face (0-255) through the camera's faults, in the order a camera makes them:
    light, optics, resolution, sensor noise, compression."""
    h, w = face.shape
    if rng.random() < params.get("dark", 0.0):
        face = face * rng.uniform(*DARK_GAIN)
    if rng.random() < params.get("blur", 0.0):
        face = cv2.GaussianBlur(face, (0, 0), rng.uniform(*BLUR_SIGMA))
    if rng.random() < params.get("downscale", 0.0):
        side = int(rng.integers(DOWNSCALE_PX[0], DOWNSCALE_PX[1] + 1))
        small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        face = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < params.get("noise", 0.0):
        face = face + rng.normal(0.0, rng.uniform(*NOISE_SIGMA), face.shape).astype(np.float32)
    if rng.random() < params.get("jpeg", 0.0):
        quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        ok, buf = cv2.imencode(".jpg", np.clip(face, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            face = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    return face


def augment_batch(images: np.ndarray, params: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, H, W) faces -> float32 (N, H, W) on the 0-255 scale, each randomly transformed:
    one affine warp (flip, rotation, zoom, shift), then contrast and brightness, then the camera's
    faults (``corrupt``) where the recipe asks for them."""
    n, h, w = images.shape
    out = np.empty((n, h, w), np.float32)
    centre = (w / 2.0 - 0.5, h / 2.0 - 0.5)
    rot_max = float(params.get("rotate_deg", 0.0))
    zoom = float(params.get("zoom", 0.0))
    shift = float(params.get("shift", 0.0))
    flip = float(params.get("flip", 0.0))
    bright = float(params.get("brightness", 0.0))
    contrast = float(params.get("contrast", 0.0))
    camera = any(params.get(k, 0.0) for k in CAMERA_FAULTS)
    for i in range(n):
        angle = rng.uniform(-rot_max, rot_max) if rot_max else 0.0
        scale = 1.0 + (rng.uniform(-zoom, zoom) if zoom else 0.0)
        m = cv2.getRotationMatrix2D(centre, angle, scale)
        if flip and rng.random() < 0.5 * flip:  # mirror about the centre column
            m = m @ np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        if shift:
            m[0, 2] += rng.uniform(-shift, shift) * w
            m[1, 2] += rng.uniform(-shift, shift) * h
        face = cv2.warpAffine(images[i], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        face = face.astype(np.float32)
        if contrast:
            mean = face.mean()
            face = (face - mean) * rng.uniform(1.0 - contrast, 1.0 + contrast) + mean
        if bright:
            face += rng.uniform(-bright, bright) * 255.0
        if camera:
            face = corrupt(np.clip(face, 0.0, 255.0), params, rng)
        out[i] = face
    np.clip(out, 0.0, 255.0, out=out)
    return out


class FaceBatches(keras.utils.PyDataset):
    """Batches of (model input, targets[, sample weights]) from a FER split: one-hot labels, or the
    split's vote shares where it carries people's votes (``Split.targets``); with a
    ``teacher`` (augmented faces -> probabilities) the targets are the one-hot labels mixed with
    the teacher's probabilities, ``teacher_weight`` of them (distillation, Hinton et al. 2015, T=1).

    Training batches are reshuffled and re-augmented each epoch from ``seed + epoch``; class weights
    come as per-sample weights, which every backend's ``fit`` honours."""

    def __init__(self, split: Split, n_classes: int, batch_size: int, input_size: int, color: str,
                 pixel_scale: float, pixel_offset: float, augment: Mapping[str, float] | None = None,
                 class_weights: Mapping[int, float] | None = None, seed: int = 0, workers: int = 1,
                 teacher: Callable[[np.ndarray], np.ndarray] | None = None, teacher_weight: float = 0.0) -> None:
        # Threads, not processes: OpenCV releases the GIL in its warps, and a forked worker would
        # copy the whole split. More than one helps where a GPU waits on the CPU.
        super().__init__(workers=workers, use_multiprocessing=False)
        self.split = split
        self.n_classes = n_classes
        self.batch_size = batch_size
        self.input_size = input_size
        self.color = color
        self.pixel_scale, self.pixel_offset = pixel_scale, pixel_offset
        self.augment = dict(augment or {})
        self.weights = None if class_weights is None else np.array(
            [class_weights[c] for c in range(n_classes)], np.float32)
        self.seed = seed
        self.teacher, self.teacher_weight = teacher, teacher_weight
        self.epoch = 0
        self._order = self._shuffled()

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.batch_size)

    def _shuffled(self) -> np.ndarray:
        """Training batches in a new order each epoch; validation in the split's own order."""
        if not self.augment:
            return np.arange(len(self.split))
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.split))

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._shuffled()

    def __getitem__(self, index: int):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.split.images[idx]
        if self.augment:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            x = augment_batch(images, self.augment, rng)
        else:
            x = images.astype(np.float32)
        faces = x  # the augmented faces, 0-255, before this model's resizing and scaling
        if self.input_size != x.shape[1]:
            x = np.stack([cv2.resize(f, (self.input_size, self.input_size), interpolation=cv2.INTER_LINEAR)
                          for f in x])
        x = x[..., None]
        if self.color == "rgb":
            x = np.repeat(x, 3, axis=-1)
        x = x * self.pixel_scale + self.pixel_offset
        labels = self.split.labels[idx].astype(np.int64)
        if self.split.targets is not None:  # people's vote shares (FER+ or a soft-label CSV)
            y = self.split.targets[idx].astype(np.float32)
        else:
            y = np.eye(self.n_classes, dtype=np.float32)[labels]
        if self.teacher is not None and self.teacher_weight > 0:
            # knowledge distillation: the teacher's reading of this very (augmented) face, mixed in
            y = (1.0 - self.teacher_weight) * y + self.teacher_weight * self.teacher(faces).astype(np.float32)
        if self.weights is None:
            return x.astype(np.float32), y
        return x.astype(np.float32), y, self.weights[labels]
