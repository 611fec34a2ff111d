"""What the unit and integration tests of model and emotion share."""

from __future__ import annotations

FER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
