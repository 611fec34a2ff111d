"""The systemd unit and the installer, checked with systemd's own tools where they exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.unit_file import UNIT, make_venv, run_check
from tests.support import REPO

HUB_UNIT = REPO / "systemd" / "emocast-hub.service"


needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not here")


@needs_analyze
@pytest.mark.parametrize("source", [UNIT, HUB_UNIT], ids=["device", "hub"])
def test_the_unit_verifies_and_its_exposure_is_at_most_2_5(tmp_path, source):
    unit = tmp_path / source.name  # the venv's binary does not exist here: /bin/true stands in for it
    unit.write_text(re.sub(r"/opt/emocast(-hub)?/venv/bin/emocast", "/bin/true", source.read_text()))
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(["systemd-analyze", "security", "--offline=true", str(source)], capture_output=True,
                         text=True, timeout=60)
    score = re.search(rf"Overall exposure level for {source.name}: ([\d.]+)", res.stdout + res.stderr)
    assert score is not None, res.stdout[-2000:]
    assert float(score.group(1)) <= 2.5


def test_the_installer_is_valid_bash_and_writes_the_groups_drop_in():
    script = REPO / "systemd" / "install.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "emocast.service.d/groups.conf" in text and "check-config" in text
    assert "enable --now" not in text  # a first install waits for the operator's config
    assert "emocast-hub.service" in text and "[hub]" in text  # --hub installs the hub


def test_the_installer_refuses_a_32_bit_system(tmp_path):
    """On armv7l (32-bit Raspberry Pi OS) nothing would install: say so before touching anything."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "uname").write_text("#!/bin/sh\necho armv7l\n")
    (fake / "id").write_text("#!/bin/sh\necho 0\n")  # past the root check, which comes first
    for tool in ("useradd", "usermod", "install", "apt-get", "systemctl", "ln", "mv"):  # must not be reached
        (fake / tool).write_text(f"#!/bin/sh\necho 'reached {tool}' >&2\nexit 99\n")
    for f in fake.iterdir():
        f.chmod(0o755)
    import os

    res = subprocess.run(["bash", str(REPO / "systemd" / "install.sh")], capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}, timeout=60)
    assert res.returncode == 2, res.stderr
    assert "needs a 64-bit OS" in res.stderr and "armv7l" in res.stderr


def test_the_real_venv_passes_the_runtime_check():
    """The test's own environment, through the same script: the shipped model loads."""
    import sys

    res = subprocess.run(["bash", str(REPO / "systemd" / "check_runtime.sh"), str(Path(sys.executable).parents[1])],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "TFLite runtime:" in res.stdout


def test_the_runtime_check_runs_outside_the_checkout_and_shows_the_error(tmp_path):
    """install.sh runs in a checkout whose emocast/ folder would shadow the installed package (a
    real install under systemd-nspawn failed so): the probe runs from /, and a failure shows why."""
    venv = make_venv(tmp_path, '[ "$(pwd)" = / ] || { echo "ModuleNotFoundError: emocast.device" >&2; exit 1; }\n'
                               'echo ai_edge_litert.interpreter')
    res = subprocess.run(["bash", str(REPO / "systemd" / "check_runtime.sh"), str(venv)], capture_output=True,
                         text=True, timeout=120, cwd=str(REPO))
    assert res.returncode == 0, res.stderr
    broken = make_venv(tmp_path / "b", 'echo "ModuleNotFoundError: No module named emocast.device" >&2; exit 1')
    res = run_check(broken)
    assert res.returncode == 4 and "No module named emocast.device" in res.stderr


def test_the_runtime_check_accepts_a_working_runtime_and_installs_nothing(tmp_path):
    venv = make_venv(tmp_path, "echo ai_edge_litert.interpreter")
    res = run_check(venv)
    assert res.returncode == 0 and "TFLite runtime: ai_edge_litert.interpreter" in res.stdout
    assert not (venv / "pip.log").exists()


def test_a_runtime_that_crashes_is_replaced_by_the_1x_line_and_tried_again(tmp_path):
    """ai-edge-litert 2.3 died with SIGSEGV in Interpreter() on an emulated Cortex-A72: a crash, not an
    exception, so only a child process can find out; the 1.x release is installed and tried."""
    venv = make_venv(tmp_path, f'[ -f {tmp_path}/venv/fixed ] && echo ai_edge_litert.interpreter && exit 0\n'
                               'kill -SEGV $$')
    res = run_check(venv)
    assert res.returncode == 0, res.stderr
    assert "ai-edge-litert<2" in (venv / "pip.log").read_text()
    assert "cannot run the emotion model here (exit 139)" in res.stderr
    assert "the current release does not run on this CPU" in res.stdout


def test_no_runtime_at_all_stops_the_install_with_the_model_code(tmp_path):
    venv = make_venv(tmp_path, "kill -SEGV $$")
    res = run_check(venv)
    assert res.returncode == 4 and "no TFLite runtime runs the emotion model" in res.stderr
