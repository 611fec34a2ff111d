"""Face detection at the right scale, and a tracker that keeps an anonymous number per face.

Detection is the costly step, so it runs at ``detect_hz``; the backends live in ``detectors/``;
boxes come back in full-frame pixels. Between detections a track keeps its last box. Track
numbers are a per-session counter: they say "the same face as a moment ago", never who it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from .detectors import FaceDetector, UnionDetector, suppress_duplicates
from .detectors.boxes import Box, iou
from .detectors.haar import load_cascade

log = logging.getLogger(__name__)

__all__ = ["Box", "FaceDetector", "FaceTracker", "ProfileFinder", "Track", "detect_faces", "iou"]

def detect_faces(detector: FaceDetector, frame_gray: np.ndarray, detect_width: int, min_face_px: int) -> list[Box]:
    """Full-frame boxes from one detector (or a union of several).

    Haar, HOG and the profile cascade see a copy shrunk to ``detect_width`` (their cost grows with
    the pixels); a detector that handles scale itself (BlazeFace's tiles) sees the frame as it is,
    so ``min_face_px`` means the same for every backend: faces that small, in frame pixels."""
    if isinstance(detector, UnionDetector):
        return suppress_duplicates(
            [detect_faces(part, frame_gray, detect_width, min_face_px) for part in detector.parts])
    h, w = frame_gray.shape[:2]
    scale = 1.0 if getattr(detector, "full_frame", False) else min(1.0, detect_width / float(w))
    small = frame_gray if scale == 1.0 else cv2.resize(
        frame_gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA
    )
    min_size = max(8, int(min_face_px * scale))
    boxes = detector.detect(small, min_size)
    inv = 1.0 / scale
    return [(int(x * inv), int(y * inv), int(bw * inv), int(bh * inv)) for x, y, bw, bh in boxes]


def _centre_distance(a: Box, b: Box) -> float:
    """Centre distance in units of the mean face size: robust where a fast move kills the IoU."""
    ca = (a[0] + a[2] / 2, a[1] + a[3] / 2)
    cb = (b[0] + b[2] / 2, b[1] + b[3] / 2)
    size = (a[2] + a[3] + b[2] + b[3]) / 4
    return float(np.hypot(ca[0] - cb[0], ca[1] - cb[1]) / max(size, 1.0))


@dataclass
class Track:
    id: int
    box: Box
    first_t: float
    last_seen_t: float
    hits: int = 1
    confirmed: bool = False


class FaceTracker:
    """Greedy matching of detections to tracks by IoU, falling back to centre distance."""

    def __init__(self, match_iou: float = 0.25, min_hits: int = 2, max_centre_dist: float = 0.6) -> None:
        self.match_iou = match_iou
        self.min_hits = min_hits
        self.max_centre_dist = max_centre_dist
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def update(self, boxes: list[Box], t: float) -> list[Track]:
        """Match this detection round's boxes; returns the tracks matched or created now."""
        pairs = []
        for tid, tr in self.tracks.items():
            for j, b in enumerate(boxes):
                overlap = iou(tr.box, b)
                dist = _centre_distance(tr.box, b)
                if overlap >= self.match_iou or dist <= self.max_centre_dist:
                    pairs.append((overlap - dist, tid, j))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        used_b: set[int] = set()
        touched = []
        for _, tid, j in pairs:
            if tid in used_t or j in used_b:
                continue
            used_t.add(tid)
            used_b.add(j)
            tr = self.tracks[tid]
            tr.box = boxes[j]
            tr.last_seen_t = t
            tr.hits += 1
            tr.confirmed = tr.confirmed or tr.hits >= self.min_hits
            touched.append(tr)
        for j, b in enumerate(boxes):
            if j in used_b:
                continue
            tr = Track(self._next_id, b, t, t, confirmed=self.min_hits <= 1)
            self._next_id += 1
            self.tracks[tr.id] = tr
            touched.append(tr)
        return touched

    def drop(self, track_id: int) -> Track | None:
        return self.tracks.pop(track_id, None)


class ProfileFinder:
    """Looks for a turned-away face near where a tracked frontal face was lost.

    The frontal detectors stop firing once a head turns past about 40 degrees, which would make a
    person who turns to a neighbour look "absent". OpenCV's profile cascade (trained on faces looking
    to the image's left; the mirrored crop covers the other side) searched only around the lost box
    keeps the track alive and lets it be reported as looking away. Only near a known track: on a
    whole frame the profile cascade fires on too much else."""

    def __init__(self, cascade: str = "haarcascade_profileface.xml") -> None:
        self._cascade = load_cascade(cascade)

    def find(self, gray: np.ndarray, near: Box, max_width: int = 160) -> Box | None:
        """The profile face closest to ``near`` within an area twice its size, or None."""
        x, y, w, h = near
        H, W = gray.shape[:2]
        x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
        x1, y1 = min(W, x + w + w // 2), min(H, y + h + h // 2)
        roi = gray[y0:y1, x0:x1]
        if roi.size == 0:
            return None
        scale = min(1.0, max_width / float(roi.shape[1]))
        small = roi if scale == 1.0 else cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_size = max(16, int(0.6 * w * scale))
        found: list[Box] = []
        for mirrored in (False, True):
            img = small[:, ::-1] if mirrored else small
            for bx, by, bw, bh in self._cascade.detectMultiScale(np.ascontiguousarray(img), 1.1, 4,
                                                                 minSize=(min_size, min_size)):
                if mirrored:
                    bx = small.shape[1] - bx - bw
                inv = 1.0 / scale
                found.append((x0 + int(bx * inv), y0 + int(by * inv), int(bw * inv), int(bh * inv)))
        if not found:
            return None
        return min(found, key=lambda b: _centre_distance(b, near))
