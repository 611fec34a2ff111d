"""The colours of attention states and emotions, one source for the hub's page (served as
``/static/palette.json``) and for ``emocast analyze --plot``: a state or an emotion looks the same
wherever it is drawn. The choice and its reasons are in ``palette.json`` itself."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def palette() -> dict[str, Any]:
    return json.loads(resources.files("emocast.contract").joinpath("palette.json").read_text())


def state_colour(state: str) -> str:
    return palette()["states"].get(state, "#CCCCCC")


def emotion_colours(labels: tuple[str, ...] | list[str]) -> dict[str, str]:
    """A colour for each label: the palette's for the seven FER emotions, spares for any other."""
    known, spare = palette()["emotions"], list(palette()["spare"])
    out, k = {}, 0
    for label in labels:
        if label in known:
            out[label] = known[label]
        else:
            out[label] = spare[k % len(spare)]
            k += 1
    return out
