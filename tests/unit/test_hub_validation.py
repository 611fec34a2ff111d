"""The hub's validator: the compiled checker (jsonschema-rs) and the reference (jsonschema) give the same
answer on valid payloads and on every mutation of them tried here, and the error's text is the
reference's whichever decides."""

from __future__ import annotations

import copy
import itertools
import json
import sys

import pytest

from emocast.contract.events import (
    ATTENTION,
    EMOTION,
    SUMMARY,
    AttentionChange,
    AttentionState,
    EmotionChange,
    envelope,
    load_schema,
)

pytest.importorskip("jsonschema_rs", reason="jsonschema-rs is not installed (pip install 'emocast[hub]')")
jsonschema = pytest.importorskip("jsonschema", reason="the hub needs jsonschema (pip install 'emocast[hub]')")

from hub.validation import Validator  # noqa: E402

EDGES = (None, True, 0, -1, 1.5, 2**63, -(2**63) - 1, 1e308, "", "x", "a/b", "é" * 300, [], [1, "x"], {}, {"k": 1},
         "2026-02-30T25:61:61.000Z", "2026-11-27T12:00:00.123Z", "٢٠٢٦-11-27T12:00:00.123Z")


def seeds() -> dict[str, dict]:
    """A valid payload of each kind the device publishes and the analyser writes."""
    attention = envelope(ATTENTION, AttentionChange(3, AttentionState.ATTENTIVE, None, 0.0, 12.5).body(),
                         "kiosk-1", 1, 1_796_000_000.0)
    emotion = envelope(EMOTION, EmotionChange(3, "happy", "neutral", {"happy": 0.7, "neutral": 0.3}, 12.5).body(),
                       "kiosk-1", 2, 1_796_000_000.0)
    summary = envelope(SUMMARY, {
        "window_s": 60.0, "frames": 600, "faces_seen": 4, "faces_now": 3, "faces_read": 3, "faces_turned": 1,
        "faces_too_small": 0, "face_time_s": 200.0, "attentive_share": 0.7, "looking_away_share": 0.2,
        "eyes_closed_share": 0.1, "blinks": 40, "blink_rate_per_min": 12.0,
        "emotion_share": {"neutral": 0.8, "happy": 0.2}, "final": False, "dropped_frames": 0,
        "dropped_events": 0}, "kiosk-1", 3, 1_796_000_000.0)
    return {ATTENTION: attention, EMOTION: emotion, SUMMARY: summary}


def mutations(payload: dict, properties: dict):
    """The payload itself, each key removed, each property set to each edge value, an unknown key."""
    yield payload
    for key in payload:
        yield {k: v for k, v in payload.items() if k != key}
    for key, value in itertools.product(properties, EDGES):
        changed = copy.deepcopy(payload)
        changed[key] = value
        yield changed
    yield {**payload, "unknown_key": 1}


def test_the_compiled_checker_and_the_reference_agree_on_every_mutation():
    import jsonschema_rs

    tried = 0
    for kind, seed in seeds().items():
        schema = load_schema(kind)
        compiled = jsonschema_rs.validator_for(schema)
        reference = jsonschema.validators.validator_for(schema)(schema)
        assert compiled.is_valid(seed) and not list(reference.iter_errors(seed)), kind
        for payload in mutations(seed, schema["properties"]):
            try:
                fast = compiled.is_valid(payload)
            except (ValueError, OverflowError, TypeError):  # the validator lets the reference decide these
                continue
            assert fast == (not list(reference.iter_errors(payload))), (kind, json.dumps(payload)[:300])
            tried += 1
    assert tried > 500


def test_the_error_text_is_the_references_and_valid_payloads_pass():
    v = Validator((ATTENTION, EMOTION, SUMMARY))
    for kind, seed in seeds().items():
        assert v.problem(kind, seed) is None
    assert v._reference == {}  # valid payloads never load the reference (its memory is the hub's)
    bad = {**seeds()[ATTENTION], "state": "asleep"}
    assert v.problem(ATTENTION, bad).startswith("state: 'asleep' is not one of")
    missing = {k: v for k, v in seeds()[SUMMARY].items() if k != "blinks"}
    assert Validator((SUMMARY,)).problem(SUMMARY, missing, whole="record") == "record: 'blinks' is a required property"


def test_the_reference_decides_where_the_compiled_checker_refuses_or_cannot_answer(monkeypatch):
    class Refuses:
        def is_valid(self, payload) -> bool:
            return False

    class Overflows:
        def is_valid(self, payload) -> bool:
            raise OverflowError("int too big to convert")

    v = Validator((ATTENTION,))
    seed = seeds()[ATTENTION]
    for stand_in in (Refuses(), Overflows()):
        v._fast[ATTENTION] = stand_in
        assert v.problem(ATTENTION, seed) is None
        assert v.problem(ATTENTION, {**seed, "track": -5}).startswith("track: -5 is less than the minimum")
    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)  # not installed: the reference alone
    alone = Validator((ATTENTION,))
    assert alone._fast[ATTENTION] is None and alone.problem(ATTENTION, seed) is None
    assert alone.problem(ATTENTION, {**seed, "state": 1}).startswith("state: 1 is not one of")
