"""What the unit and integration tests of analyze share."""

from __future__ import annotations

from pathlib import Path

from emocast.device.analyze import analyze
from emocast.device.config import from_mapping
from emocast.device.perception.emotion import EmotionModel
from tests.support import schema_validator


def run_analyze(path: Path, cfg_table: dict | None = None, model: EmotionModel | None = None):
    records: list[dict] = []
    result = analyze(path, from_mapping(cfg_table or {}), model, records.append, progress=False)
    for r in records:
        schema_validator("analyze_record").validate(r)
    return records, result
