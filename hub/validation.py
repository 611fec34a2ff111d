"""Payloads held against the JSON Schemas the device ships (``emocast/contract/schemas``), compiled
once: live MQTT messages (ingest) and `emocast analyze` records (import) are checked by the same code.
``jsonschema`` is the hub's dependency, not the device's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emocast.contract.events import load_schema


class Validator:
    def __init__(self, kinds: Iterable[str]) -> None:
        import jsonschema

        self._validators = {}
        for kind in kinds:
            schema = load_schema(kind)
            self._validators[kind] = jsonschema.validators.validator_for(schema)(schema)

    def problem(self, kind: str, payload: Any, whole: str = "(payload)") -> str | None:
        """None when valid; else the first error (by path) as ``key/path: message``, short enough for
        a log line; ``whole`` names the payload itself when the error is at its top level."""
        errors = sorted(self._validators[kind].iter_errors(payload), key=lambda e: list(e.path))
        if not errors:
            return None
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or whole
        return f"{where}: {e.message[:200]}"
