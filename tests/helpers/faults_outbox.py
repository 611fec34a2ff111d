"""What the unit and integration tests of faults outbox share."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from emocast.contract.events import Topics

TOPICS = Topics("emocast", "kiosk1")
BODY = {"track": 1, "state": "attentive", "previous": None, "previous_duration_s": 0.0, "source_t": 1.0}


@contextlib.contextmanager
def tiny_disk(where: Path, size: str = "200k"):
    """A real filesystem that fills up: tmpfs of ``size`` (needs root and mount; skips otherwise)."""
    where.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("a small tmpfs needs root and mount")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
