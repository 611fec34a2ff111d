"""Payloads held against the JSON Schemas the device ships (``emocast/contract/schemas``), compiled
once: live MQTT messages (ingest) and `emocast analyze` records (import) are checked by the same code.

Validity is decided by ``jsonschema-rs`` (compiled) where it is installed and answers, else by
``jsonschema``, whose cost on every message was the largest part of the hub's own (docs/benchmarks.md,
"Hub"); the error's text always comes from ``jsonschema``, the reference, which also has the last word
when the two disagree (``tests/unit/test_hub_validation.py`` holds them to the same answers). Both are
the hub's dependencies, not the device's."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from emocast.contract.events import load_schema

log = logging.getLogger(__name__)


def _compiled(schema: dict) -> Any:
    """``jsonschema-rs``'s validator for ``schema``, or None where it is not installed or cannot take it."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    try:
        return jsonschema_rs.validator_for(schema)
    except Exception as exc:  # a schema it cannot compile: the reference checks it alone
        log.warning("jsonschema-rs cannot compile %s (%s): validating with jsonschema", schema.get("$id"), exc)
        return None


class Validator:
    def __init__(self, kinds: Iterable[str]) -> None:
        self._schemas = {kind: load_schema(kind) for kind in kinds}
        self._fast = {kind: _compiled(schema) for kind, schema in self._schemas.items()}
        self._reference: dict[str, Any] = {}  # jsonschema's validators, built when first needed
        if not all(self._fast.values()):
            for kind in self._schemas:
                self._reference_for(kind)  # a missing or failing compiled checker shows at start, not mid-run

    def _reference_for(self, kind: str) -> Any:
        """jsonschema's validator for ``kind`` (imported on first need: with the compiled checker answering,
        a hub that receives only valid payloads never loads it)."""
        if kind not in self._reference:
            import jsonschema

            schema = self._schemas[kind]
            self._reference[kind] = jsonschema.validators.validator_for(schema)(schema)
        return self._reference[kind]

    def problem(self, kind: str, payload: Any, whole: str = "(payload)") -> str | None:
        """None when valid; else the first error (by path) as ``key/path: message``, short enough for
        a log line; ``whole`` names the payload itself when the error is at its top level."""
        fast = self._fast[kind]
        try:
            if fast is not None and fast.is_valid(payload):
                return None
        except (ValueError, OverflowError, TypeError):  # a value it cannot represent: the reference decides
            pass
        errors = sorted(self._reference_for(kind).iter_errors(payload), key=lambda e: list(e.path))
        if not errors:
            return None
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or whole
        return f"{where}: {e.message[:200]}"
