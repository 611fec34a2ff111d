"""Box arithmetic shared by the detectors, the union and the tracker."""

from __future__ import annotations

Box = tuple[int, int, int, int]  # x, y, w, h in full-frame pixels

DUPLICATE_IOU = 0.3  # two boxes this much overlapped are one face
DUPLICATE_COVER = 0.6  # or when this much of the smaller box lies inside the larger


def _intersection(a: Box, b: Box) -> int:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy


def iou(a: Box, b: Box) -> float:
    inter = _intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def cover(a: Box, b: Box) -> float:
    """The share of the smaller box that lies inside the other: a tight and a loose box of the same
    face (Haar's are larger than HOG's) overlap little by IoU but one holds the other."""
    smaller = min(a[2] * a[3], b[2] * b[3])
    return _intersection(a, b) / smaller if smaller > 0 else 0.0


def same_face(a: Box, b: Box) -> bool:
    return iou(a, b) >= DUPLICATE_IOU or cover(a, b) >= DUPLICATE_COVER


def suppress_duplicates(groups: list[list[Box]]) -> list[Box]:
    """Pool boxes from several detectors, earlier groups (and earlier boxes) first: a box is kept
    unless it is the same face as one already kept. One face must never become two tracks."""
    kept: list[Box] = []
    for group in groups:
        for b in group:
            if not any(same_face(b, k) for k in kept):
                kept.append(b)
    return kept
