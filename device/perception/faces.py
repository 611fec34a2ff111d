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
from .detectors.boxes import Box, iou, same_face
from .detectors.profile import ProfileDetector

log = logging.getLogger(__name__)

__all__ = ["Box", "FaceDetector", "FaceTracker", "ProfileFinder", "Track", "appearance", "detect_faces", "iou",
           "scene_changed", "thumbnail"]

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
    boxes = suppress_duplicates([detector.detect(small, min_size)])  # Haar can nest two boxes on one face
    inv = 1.0 / scale
    return [(int(x * inv), int(y * inv), int(bw * inv), int(bh * inv)) for x, y, bw, bh in boxes]


APPEARANCE_SIDE = 12  # the face shrunk to 12x12 gray: enough to tell people apart, too little to know them


def appearance(gray: np.ndarray, box: Box) -> np.ndarray | None:
    """A cheap descriptor of a face's look, for telling tracks apart: the face region shrunk to
    12x12, mean removed, unit length (so lighting changes cancel). Kept in the tracker's memory
    only, for the life of a track; never published, logged or written."""
    x, y, w, h = box
    crop = gray[max(0, y):y + h, max(0, x):x + w]
    if crop.size < 16:
        return None
    v = cv2.resize(crop, (APPEARANCE_SIDE, APPEARANCE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    v -= v.mean()
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-6 else None


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """The whole frame at 32x24: two consecutive ones far apart mean a cut or a moved camera."""
    return cv2.resize(gray, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32)


def scene_changed(before: np.ndarray | None, after: np.ndarray, threshold: float) -> bool:
    """Mean absolute difference of two thumbnails, in grey levels, above ``threshold`` (0: never)."""
    return threshold > 0 and before is not None and float(np.abs(after - before).mean()) > threshold


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
    look: np.ndarray | None = None  # appearance (see ``appearance``), a running average


class FaceTracker:
    """Greedy matching of detections to tracks by position (IoU, falling back to centre distance)
    and by appearance: a detection whose look is unlike a track's is not that track, however close,
    so a new person stepping into a seat gets a new number instead of the last one's history."""

    look_memory = 0.8  # weight of the past in a track's running appearance

    def __init__(self, match_iou: float = 0.25, min_hits: int = 2, max_centre_dist: float = 0.6,
                 min_similarity: float = 0.4) -> None:
        self.match_iou = match_iou
        self.min_hits = min_hits
        self.max_centre_dist = max_centre_dist
        self.min_similarity = min_similarity
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def update(self, boxes: list[Box], t: float, looks: list[np.ndarray | None] | None = None) -> list[Track]:
        """Match this detection round's boxes (and their appearance descriptors, if given); returns
        the tracks matched or created now."""
        looks = looks if looks is not None else [None] * len(boxes)
        pairs = []
        for tid, tr in self.tracks.items():
            for j, b in enumerate(boxes):
                overlap = iou(tr.box, b)
                dist = _centre_distance(tr.box, b)
                if overlap < self.match_iou and dist > self.max_centre_dist:
                    continue
                similar = 0.0
                if tr.look is not None and looks[j] is not None:
                    similar = float(np.dot(tr.look, looks[j]))
                    if similar < self.min_similarity:
                        continue
                pairs.append((overlap - dist + 0.5 * similar, tid, j))
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
            tr.look = self._blend(tr.look, looks[j])
            touched.append(tr)
        for j, b in enumerate(boxes):
            if j in used_b:
                continue
            tr = Track(self._next_id, b, t, t, confirmed=self.min_hits <= 1, look=looks[j])
            self._next_id += 1
            self.tracks[tr.id] = tr
            touched.append(tr)
        return touched

    def _blend(self, old: np.ndarray | None, new: np.ndarray | None) -> np.ndarray | None:
        if old is None or new is None:
            return new if old is None else old
        v = self.look_memory * old + (1.0 - self.look_memory) * new
        n = float(np.linalg.norm(v))
        return v / n if n > 1e-6 else old

    def duplicates(self) -> list[int]:
        """Younger tracks that sit on the same face as an older one (two tracks for one person, as
        after a detector glitch): the caller ends them."""
        ids = sorted(self.tracks)
        out = []
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                if b not in out and a not in out and same_face(self.tracks[a].box, self.tracks[b].box):
                    out.append(b)
        return out

    def drop(self, track_id: int) -> Track | None:
        return self.tracks.pop(track_id, None)


class ProfileFinder:
    """Looks for a turned-away face near where a tracked frontal face was lost.

    The frontal detectors stop firing once a head turns past about 40 degrees, which would make a
    person who turns to a neighbour look "absent". OpenCV's profile cascade (trained on faces looking
    to the image's left; the mirrored crop covers the other side) searched only around the lost box
    keeps the track alive and lets it be reported as looking away. Only near a known track: on a
    whole frame the profile cascade fires on too much else."""

    def __init__(self) -> None:
        # near a known track fewer neighbours are needed than on a whole frame (ProfileDetector's 6)
        self._profiles = ProfileDetector(min_neighbors=4)

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
        left, right = self._profiles.both_sides(np.ascontiguousarray(small), max(16, int(0.6 * w * scale)))
        inv = 1.0 / scale
        found = [(x0 + int(bx * inv), y0 + int(by * inv), int(bw * inv), int(bh * inv))
                 for bx, by, bw, bh in left + right]
        if not found:
            return None
        return min(found, key=lambda b: _centre_distance(b, near))
