"""The systemd unit and the installer, checked with systemd's own tools where they exist."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

UNIT = REPO / "systemd" / "emocast.service"
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


def test_the_unit_keeps_what_the_service_needs():
    text = UNIT.read_text()
    assert "StateDirectory=emocast" in text and "AF_INET" in text  # the outbox, the broker
    assert "DeviceAllow=char-video4linux rw" in text  # the camera
    assert "SupplementaryGroups" not in text  # written by install.sh from the groups the host has
    assert "RestartPreventExitStatus=3 4 6" in text


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
