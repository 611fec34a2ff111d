"""The MQTT contract in code: topics, schema names, and the envelope every JSON payload carries.

Hubs depend on these names; change a payload's shape only together with its schema version and
its JSON Schema file in ``schemas/`` (the tests hold real payloads against those files).
Nothing here may carry an image, a crop, landmark coordinates or anything that identifies a person:
a face is a per-session ``track`` number.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from importlib import resources
from typing import Any, ClassVar

ATTENTION = "attention"
EMOTION = "emotion"
SUMMARY = "summary"
METRICS = "metrics"
INFO = "info"
STATUS = "status"  # retained "online" / "offline" (the broker's last will), plain text, not JSON


class DeviceStatus(str, Enum):
    """A device's retained ``status``: ``online`` once connected, ``offline`` from its last will or a
    clean stop (plain text on the wire, not JSON)."""

    ONLINE = "online"
    OFFLINE = "offline"

    def __str__(self) -> str:
        return self.value


class AttentionState(str, Enum):
    """The attention states a device publishes and the hub reads (a ``str``: JSON and SQL see the
    plain word). ``absent`` ends a face's track."""

    ATTENTIVE = "attentive"
    LOOKING_AWAY = "looking_away"
    EYES_CLOSED = "eyes_closed"
    ABSENT = "absent"

    def __str__(self) -> str:
        return self.value


ATTENTIVE, LOOKING_AWAY, EYES_CLOSED, ABSENT = (AttentionState.ATTENTIVE, AttentionState.LOOKING_AWAY,
                                                AttentionState.EYES_CLOSED, AttentionState.ABSENT)
PRESENT_STATES = (ATTENTIVE, LOOKING_AWAY, EYES_CLOSED)  # a face in the room, in the order charts stack them

SCHEMAS = {
    ATTENTION: "emocast.attention/1",
    EMOTION: "emocast.emotion/1",
    SUMMARY: "emocast.summary/1",
    METRICS: "emocast.metrics/1",
    INFO: "emocast.info/1",
}

TOPIC_SUFFIX = {
    ATTENTION: "events/attention",
    EMOTION: "events/emotion",
    SUMMARY: "summary",
    METRICS: "metrics",
    INFO: "info",
    STATUS: "status",
}
KIND_OF_SUFFIX = {suffix: kind for kind, suffix in TOPIC_SUFFIX.items()}  # the table read the other way

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
        return f"{self.base}/{TOPIC_SUFFIX[kind]}"


def utc_timestamp(wall: float) -> str:
    """UTC ISO-8601 with milliseconds and a Z, as the contract says."""
    dt = datetime.fromtimestamp(wall, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def envelope(kind: str, body: Mapping[str, Any], device: str, seq: int, wall: float,
             event_id: str | None = None) -> dict[str, Any]:
    """The payload as published: the common fields first, then the kind's own. ``event_id``: one
    derived from the content (an import, stored once however often it runs); else a random one."""
    return {
        "schema": SCHEMAS[kind],
        "id": event_id or str(uuid.uuid4()),
        "seq": seq,
        "ts": utc_timestamp(wall),
        "device": device,
        **body,
    }


def encode_text(payload: Mapping[str, Any]) -> str:
    """The one JSON form of a payload: compact, UTF-8 as is (what is published, stored and exported)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def encode(payload: Mapping[str, Any]) -> bytes:
    return encode_text(payload).encode()


@dataclass(frozen=True, slots=True)
class AttentionChange:
    """A face's attention state changed (``events/attention``): from ``previous``, held
    ``previous_duration_s``, to ``state`` at media time ``source_t``; ``reason`` names the cue that held
    longest over a spell away, or why a track ended."""

    kind: ClassVar[str] = ATTENTION
    track: int
    state: AttentionState
    previous: AttentionState | None
    previous_duration_s: float
    source_t: float
    reason: str = ""

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"track": self.track, "state": str(self.state),
                               "previous": None if self.previous is None else str(self.previous),
                               "previous_duration_s": round(self.previous_duration_s, 3),
                               "source_t": round(self.source_t, 3)}
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AttentionChange:
        previous = body.get("previous")
        return cls(int(body["track"]), AttentionState(body["state"]),
                   None if previous is None else AttentionState(previous),
                   float(body.get("previous_duration_s") or 0.0), float(body.get("source_t") or 0.0),
                   body.get("reason") or "")


@dataclass(frozen=True, slots=True)
class EmotionChange:
    """A face's smoothed emotion changed (``events/emotion``), with the smoothed probabilities."""

    kind: ClassVar[str] = EMOTION
    track: int
    emotion: str
    previous: str | None
    probs: Mapping[str, float]
    source_t: float

    @property
    def confidence(self) -> float:
        return max(self.probs.values()) if self.probs else 0.0

    def body(self) -> dict[str, Any]:
        return {"track": self.track, "emotion": self.emotion, "previous": self.previous,
                "confidence": round(float(self.confidence), 4), "probs": dict(self.probs),
                "source_t": round(self.source_t, 3)}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> EmotionChange:
        return cls(int(body["track"]), body["emotion"], body.get("previous"), dict(body.get("probs") or {}),
                   float(body.get("source_t") or 0.0))


@dataclass(frozen=True, slots=True)
class Summary:
    """A device's periodic summary (``summary``): its fields are the window's measures and whatever
    each running stage adds (emotion off: none of emotion's), so they travel as a mapping."""

    kind: ClassVar[str] = SUMMARY
    values: Mapping[str, Any]

    def body(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True, slots=True)
class Metrics:
    """A device's health and rates (``metrics``, QoS 0, best effort, not stored as events): each part
    reports its own figures (capture, the frame slot, the analysis stages, the outbox, delivery), merged
    in the order given. Like ``Info``, it carries the latest event's seq instead of taking one."""

    kind: ClassVar[str] = METRICS
    values: Mapping[str, Any]

    @classmethod
    def of(cls, *parts: Mapping[str, Any]) -> Metrics:
        merged: dict[str, Any] = {}
        for part in parts:
            merged.update(part)
        return cls(merged)

    def body(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True, slots=True)
class Info:
    """What a device runs (``info``, retained): version, model (where emotion is on), privacy and
    capabilities, and where its outbox started its seq again."""

    kind: ClassVar[str] = INFO
    values: Mapping[str, Any]

    def body(self) -> dict[str, Any]:
        return dict(self.values)


Event = AttentionChange | EmotionChange | Summary  # what the analysis hands the outbox


def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema file for a payload kind, as shipped in the package."""
    text = resources.files("emocast.contract").joinpath("schemas", f"{kind}.schema.json").read_text()
    return json.loads(text)
