"""The systemd unit and the installer, checked with systemd's own tools where they exist."""

from __future__ import annotations

from tests.helpers.unit_file import UNIT


def test_the_unit_keeps_what_the_service_needs():
    text = UNIT.read_text()
    assert "StateDirectory=emocast" in text and "AF_INET" in text  # the outbox, the broker
    assert "DeviceAllow=char-video4linux rw" in text  # the camera
    assert "SupplementaryGroups" not in text  # written by install.sh from the groups the host has
    assert "RestartPreventExitStatus=3 4 6" in text


