"""What every detector backend is, and the error one raises when its model or library is missing
(the backends import these from here; the package re-exports them)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from emocast.core.errors import EmocastError, ExitCode

from .boxes import Box


class FaceDetector(Protocol):
    name: str
    full_frame: bool  # True: give it the frame at its own resolution; it handles scale itself

    def detect(self, gray: np.ndarray, min_size: int) -> list[Box]: ...


class DetectorUnavailable(EmocastError, RuntimeError):
    """A backend's model or library is not installed; the message says how to install it."""

    exit_code = ExitCode.MODEL
