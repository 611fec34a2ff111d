"""Turned faces: OpenCV's profile cascade over the whole frame, the image and its mirror.

The frontal detectors stop firing once a head turns past about 40 degrees. The cascade was trained
on faces looking to the image's left, so the mirrored frame finds those looking right. On a whole
frame it fires on more than faces, so it asks for more neighbours than the frontal cascade and is
meant to be combined with a frontal detector (``blazeface+profile``), whose boxes take precedence.
"""

from __future__ import annotations

import numpy as np

from .boxes import Box, suppress_duplicates
from .haar import load_cascade


class ProfileDetector:
    name = "profile"
    full_frame = False

    def __init__(self, cascade: str = "haarcascade_profileface.xml", min_neighbors: int = 6) -> None:
        self._cascade = load_cascade(cascade)
        self.min_neighbors = min_neighbors

    def both_sides(self, gray: np.ndarray, min_size: int) -> tuple[list[Box], list[Box]]:
        """Profiles looking left, and looking right (found in the mirror), in ``gray``'s pixels."""
        w = gray.shape[1]
        sides = []
        for mirrored in (False, True):
            img = np.ascontiguousarray(gray[:, ::-1]) if mirrored else gray
            found = self._cascade.detectMultiScale(img, 1.1, self.min_neighbors, minSize=(min_size, min_size))
            sides.append([(int(w - x - bw) if mirrored else int(x), int(y), int(bw), int(bh))
                          for x, y, bw, bh in found])
        return sides[0], sides[1]

    def detect(self, gray: np.ndarray, min_size: int) -> list[Box]:
        return suppress_duplicates(list(self.both_sides(gray, min_size)))
