"""Face detector backends, one small file each, and the union that combines them.

Every backend takes a grayscale frame and returns boxes in that frame's pixels. A detector that
handles scale itself (``full_frame = True``: BlazeFace tiles the frame to reach small faces) gets the
frame at its own resolution; the others get it shrunk to ``detect_width`` (see ``faces.detect_faces``).

A name joined with ``+`` (``blazeface+profile``) runs each backend and keeps the union, with
duplicates suppressed in favour of the backend named first: never "the second only when the first
finds nothing", which let one HOG hit hide 25 faces in a group photo.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from .base import DetectorUnavailable as DetectorUnavailable
from .base import FaceDetector as FaceDetector
from .boxes import Box, suppress_duplicates

log = logging.getLogger(__name__)


def _haar() -> FaceDetector:
    from .haar import HaarDetector

    return HaarDetector()


def _hog() -> FaceDetector:
    from .hog import HogDetector

    return HogDetector()


def _blazeface() -> FaceDetector:
    from .blazeface import BlazeFaceDetector

    return BlazeFaceDetector()


def _profile() -> FaceDetector:
    from .profile import ProfileDetector

    return ProfileDetector()


BACKENDS: dict[str, Callable[[], FaceDetector]] = {
    "blazeface": _blazeface,
    "haar": _haar,
    "hog": _hog,
    "profile": _profile,
}


class UnionDetector:
    """Several backends on the same frame; their boxes pooled, duplicates suppressed in the order the
    backends are named. ``faces.detect_faces`` gives each backend the frame at the resolution it asks for."""

    def __init__(self, parts: list[FaceDetector]) -> None:
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        self.full_frame = any(p.full_frame for p in parts)

    def detect(self, gray: np.ndarray, min_size: int) -> list[Box]:
        """Only reached when called directly on one image (every part gets the same one)."""
        return suppress_duplicates([p.detect(gray, min_size) for p in self.parts])


def primary(detector: FaceDetector) -> FaceDetector:
    """The backend whose boxes a detector keeps first: itself, or a union's first part."""
    return detector.parts[0] if isinstance(detector, UnionDetector) else detector


def landmark_box(detector: FaceDetector) -> Callable[[Box], Box]:
    """How a detector's boxes become the boxes the landmark model was trained on (identity where
    they already are). A union uses its first backend's: the one whose boxes it keeps first."""
    return getattr(primary(detector), "to_landmark_box", lambda box: box)


def valid_name(name: str) -> bool:
    parts = name.split("+")
    return all(p in BACKENDS for p in parts) and len(set(parts)) == len(parts)


def make_detector(name: str, fallback: str | None = "haar") -> FaceDetector:
    """The detector a config names. A backend that is not installed (BlazeFace's models come from a
    separate package) is replaced by ``fallback`` with a warning that says how to install it, so a
    kiosk keeps seeing faces; with ``fallback=None`` it raises ``DetectorUnavailable``."""
    if not valid_name(name):
        raise ValueError(f"unknown face detector {name!r}; backends: {', '.join(BACKENDS)} (join with '+')")
    names = name.split("+")
    parts = []
    for part in names:
        try:
            parts.append(BACKENDS[part]())
        except DetectorUnavailable as exc:
            if fallback is None:
                raise
            log.warning("face detector %s is unavailable (%s); using %s instead", part, exc, fallback)
            if fallback not in names:
                parts.append(BACKENDS[fallback]())
    return parts[0] if len(parts) == 1 else UnionDetector(parts)


__all__ = ["BACKENDS", "Box", "DetectorUnavailable", "FaceDetector", "UnionDetector", "landmark_box",
           "make_detector", "primary", "suppress_duplicates", "valid_name"]
