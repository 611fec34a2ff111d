"""What the hub's privacy tests share: a room of faces, every stored row as text."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")

from emocast.hub.store import Store  # noqa: E402
from tests.helpers.hub_timeline import T0, attention, emotion  # noqa: E402


def all_rows(db: str) -> list[str]:
    """Every row of every table, as text: what a data-protection officer would grep."""
    s = Store(db)
    try:
        tables = ("messages", "devices", "lectures", "rejects", "quarantine")
        return [" ".join(map(str, row)) for t in tables for row in s._query(f"SELECT * FROM {t}")]
    finally:
        s.close()


def room(n_faces: int, device: str = "k1") -> list:
    """``n_faces`` faces attentive for two minutes on one kiosk."""
    out = []
    for track in range(1, n_faces + 1):
        out.append(attention(device, track * 2 - 1, T0, track, "attentive"))
        out.append(emotion(device, track * 2, T0, track, "happy"))
    return out
