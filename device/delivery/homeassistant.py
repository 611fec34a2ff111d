"""Home Assistant MQTT discovery: a kiosk shows up in Home Assistant as a device with sensors.

Home Assistant reads retained JSON configs under ``<discovery_prefix>/sensor/<node>/<object>/config``
and then follows the state topics they name. The sensors here read the summary emocast already
publishes (no extra traffic, nothing about a single face): the attentive share of face-time, the
dominant emotion, faces in view, the blink rate, and the outbox depth from metrics. Availability
follows the retained ``status`` topic, so a kiosk that goes offline shows as unavailable.
"""

from __future__ import annotations

import json
import re
from typing import Any

from emocast.contract.events import METRICS, SUMMARY, DeviceStatus, Topics

DOMINANT_EMOTION = (
    "{% set s = value_json.emotion_share %}"
    "{% if s and (s.values() | max) > 0 %}{{ (s | dictsort(false, 'value') | last)[0] }}"
    "{% else %}none{% endif %}"
)

SENSORS: tuple[dict[str, Any], ...] = (
    {"key": "attentive_share", "name": "Attentive share", "kind": SUMMARY, "unit_of_measurement": "%",
     "state_class": "measurement", "icon": "mdi:eye-check",
     "value_template": "{{ ((value_json.attentive_share or 0) * 100) | round(1) }}"},
    {"key": "dominant_emotion", "name": "Dominant emotion", "kind": SUMMARY, "icon": "mdi:emoticon-outline",
     "value_template": DOMINANT_EMOTION},
    {"key": "faces_now", "name": "Faces in view", "kind": SUMMARY, "state_class": "measurement",
     "icon": "mdi:account-group", "value_template": "{{ value_json.faces_now }}"},
    {"key": "blink_rate", "name": "Blink rate", "kind": SUMMARY, "unit_of_measurement": "blinks/min",
     "state_class": "measurement", "icon": "mdi:eye-refresh",
     "value_template": "{{ value_json.blink_rate_per_min if value_json.blink_rate_per_min is not none else 0 }}"},
    {"key": "outbox_depth", "name": "Outbox depth", "kind": METRICS, "state_class": "measurement",
     "entity_category": "diagnostic", "icon": "mdi:tray-full", "value_template": "{{ value_json.outbox_depth }}"},
)


def node_id(device: str) -> str:
    """Home Assistant wants [a-zA-Z0-9_-] in discovery topics."""
    return "emocast_" + re.sub(r"[^a-zA-Z0-9_-]", "_", device)


def discovery_messages(topics: Topics, discovery_prefix: str, version: str,
                       model: str | None) -> list[tuple[str, str]]:
    """(topic, retained JSON payload) for every sensor of this kiosk."""
    node = node_id(topics.device)
    device = {"identifiers": [node], "name": f"emocast {topics.device}", "manufacturer": "emocast",
              "model": model or "emocast (no emotion model)", "sw_version": version}
    out = []
    for sensor in SENSORS:
        config = {k: v for k, v in sensor.items() if k not in ("key", "kind")}
        config |= {
            "unique_id": f"{node}_{sensor['key']}",
            "object_id": f"{node}_{sensor['key']}",
            "state_topic": topics.for_kind(sensor["kind"]),
            "availability_topic": topics.status,
            "payload_available": str(DeviceStatus.ONLINE),
            "payload_not_available": str(DeviceStatus.OFFLINE),
            "device": device,
        }
        out.append((f"{discovery_prefix}/sensor/{node}/{sensor['key']}/config", json.dumps(config)))
    return out
