"""The analyzer on the demo clip, and its real payloads held against the shipped JSON Schemas."""

from __future__ import annotations

import jsonschema

from emocast.contract.events import load_schema


def test_schemas_reject_what_the_contract_forbids():
    att = jsonschema.Draft202012Validator(load_schema("attention"))
    good = {"schema": "emocast.attention/1", "id": "0123456789", "seq": 1, "ts": "2026-01-01T00:00:00.000Z",
            "device": "k", "track": 1, "state": "attentive", "previous": None, "previous_duration_s": 0,
            "source_t": 0}
    att.validate(good)
    for bad in ({"box": [1, 2, 3, 4]}, {"landmarks": []}, {"state": "sleepy"}, {"ts": "2026-01-01 00:00"},
                {"device": "a/b"}):
        assert not att.is_valid({**good, **bad}), bad
