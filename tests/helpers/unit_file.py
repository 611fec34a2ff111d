"""What the unit and integration tests of unit file share."""

from __future__ import annotations

import subprocess

from tests.support import REPO

UNIT = REPO / "systemd" / "emocast.service"


def make_venv(tmp_path, python_body: str):
    """A stand-in venv: bin/python runs ``python_body`` (sh), bin/pip records its arguments and marks
    the venv as fixed (so the next python sees the 1.x runtime)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f"#!/bin/sh\n{python_body}\n")
    (venv / "bin" / "pip").write_text(f"#!/bin/sh\necho \"$@\" >> {venv}/pip.log\ntouch {venv}/fixed\n")
    for f in (venv / "bin").iterdir():
        f.chmod(0o755)
    return venv


def run_check(venv):
    return subprocess.run(["bash", str(REPO / "systemd" / "check_runtime.sh"), str(venv)], capture_output=True,
                          text=True, timeout=120)
