"""Headless Chromium through Selenium: where the browser and its driver are, waiting for a page, a lecture's video."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.support import REPO

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the [test] extra)")


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = REPO / "test-artifacts"


def wait(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def lecture_video(path: Path, seconds: int) -> Path:
    """A plain WebM (VP8) of ``seconds`` seconds at 2 fps, as a teacher's recording stands in for."""
    import cv2
    import numpy as np

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 2, (160, 120))
    for i in range(seconds * 2):
        out.write(np.full((120, 160, 3), (i * 3) % 255, np.uint8))
    out.release()
    return path
