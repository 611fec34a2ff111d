"""The MQTT contract in code: topics, schema names, and the envelope every JSON payload carries.

Hubs depend on these names; change a payload's shape only together with its schema version and
its JSON Schema file in ``schemas/`` (the tests hold real payloads against those files).
Nothing here may carry an image, a crop, landmark coordinates or anything that identifies a person:
a face is a per-session ``track`` number.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any

ATTENTION = "attention"
EMOTION = "emotion"
SUMMARY = "summary"
METRICS = "metrics"
INFO = "info"

SCHEMAS = {
    ATTENTION: "emocast.attention/1",
    EMOTION: "emocast.emotion/1",
    SUMMARY: "emocast.summary/1",
    METRICS: "emocast.metrics/1",
    INFO: "emocast.info/1",
}

_TOPIC_SUFFIX = {
    ATTENTION: "events/attention",
    EMOTION: "events/emotion",
    SUMMARY: "summary",
    METRICS: "metrics",
    INFO: "info",
}

# Events that must reach the hub go through the durable outbox at QoS 1; metrics are best-effort.
DURABLE_KINDS = (ATTENTION, EMOTION, SUMMARY)

# What carries emotion, per payload kind: a whole emotion event, and these fields of the others (the
# info's name the emotion model and its labels). A kiosk or hub with ``[privacy] emotion = false``
# publishes, stores and shows none of it.
EMOTION_FIELDS = {
    SUMMARY: ("emotion_share", "emotion_readings", "emotion_unsure", "emotion_unsure_s"),
    METRICS: ("inferences",),
    INFO: ("model", "model_sha256", "labels"),
}


def without_emotion(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its emotion fields left out (``EMOTION_FIELDS``)."""
    drop = EMOTION_FIELDS.get(kind, ())
    return {k: v for k, v in payload.items() if k not in drop}


@dataclass(frozen=True)
class Topics:
    prefix: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    def for_kind(self, kind: str) -> str:
        return f"{self.base}/{_TOPIC_SUFFIX[kind]}"


def utc_timestamp(wall: float) -> str:
    """UTC ISO-8601 with milliseconds and a Z, as the contract says."""
    dt = datetime.fromtimestamp(wall, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def envelope(kind: str, body: dict[str, Any], device: str, seq: int, wall: float) -> dict[str, Any]:
    """The payload as published: the common fields first, then the kind's own."""
    return {
        "schema": SCHEMAS[kind],
        "id": str(uuid.uuid4()),
        "seq": seq,
        "ts": utc_timestamp(wall),
        "device": device,
        **body,
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema file for a payload kind, as shipped in the package."""
    text = resources.files("emocast.contract").joinpath("schemas", f"{kind}.schema.json").read_text()
    return json.loads(text)
