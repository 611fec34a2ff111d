"""What the unit and integration tests of hub recorded share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")

from emocast.cli import main  # noqa: E402
from emocast.contract.events import utc_timestamp  # noqa: E402
from emocast.core.errors import ExitCode  # noqa: E402
from emocast.hub.store import Store  # noqa: E402


def with_media(path: Path, recorded: float | None, media_s: float) -> Path:
    """``path``'s analyze log with the first record saying what `emocast analyze` writes there."""
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["media_s"] = media_s
    if recorded is not None:
        first["recorded"] = utc_timestamp(recorded)
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    return path


def imported(capsys, db: str, *args: str) -> dict:
    assert main(["hub", "import", *args, "--db", db]) == ExitCode.OK
    lecture_id = json.loads(capsys.readouterr().out.splitlines()[0])["lecture"]
    store = Store(db)
    try:
        return store.lecture(lecture_id)
    finally:
        store.close()
