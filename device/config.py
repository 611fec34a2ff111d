"""The service's configuration: TOML in, typed and checked dataclasses out.

A kiosk runs unattended for months, so a typo in its config must stop it at start with a message
naming the file, the section and the key, never be ignored (an unknown key is an error) or be
discovered at 3 a.m. as a crash deep in a thread (every type and range is checked up front).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from emocast.core.broker import check_mqtt, password_of, redact_url
from emocast.core.broker import parse_broker_url as parse_broker_url
from emocast.core.settings import ConfigError as ConfigError
from emocast.core.settings import build_section, build_sections, read_toml, state_dir
from emocast.core.settings import rng as _rng

from .perception.settings import AttentionSection, EmotionSection, EventsSection, FacesSection

__all__ = ["AttentionSection", "EmotionSection", "EventsSection", "FacesSection"]  # the analysis' own sections

log = logging.getLogger(__name__)


@dataclass
class DeviceSection:
    id: str = ""  # empty: the host name
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    threads: int = field(default=0, metadata=_rng(0, 256))  # per-face reading workers; 0: the cores it may use


def usable_cores() -> int:
    """The cores this process may run on (a systemd CPUAffinity or taskset counts, not the board's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class SourceSection:
    uri: str = "demo"  # a file, a camera index, "picamera", rtsp://..., http://..., "gst:<pipeline>", or "demo"
    loop: bool = False
    realtime: bool = True  # pace a file at its own frame rate, like a camera; false: every frame, fast
    width: int = field(default=640, metadata=_rng(16, 8192))
    height: int = field(default=480, metadata=_rng(16, 8192))
    fps: float = field(default=30.0, metadata=_rng(1, 240))
    reopen_backoff_max_s: float = field(default=30.0, metadata=_rng(0.1, 3600))
    stall_timeout_s: float = field(default=5.0, metadata=_rng(0.5, 600))  # network streams: open/read timeout


@dataclass
class MqttSection:
    url: str = "mqtt://127.0.0.1:1883"
    prefix: str = "emocast"
    client_id: str = ""  # empty: emocast-<device id>
    username: str = ""
    password: str = ""
    password_file: str = ""  # preferred over password: keeps the secret out of the config
    keepalive_s: int = field(default=30, metadata=_rng(5, 3600))
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    drain_timeout_s: float = field(default=5.0, metadata=_rng(0.0, 600))
    # a broker that takes events and never acknowledges them (wedged, or a proxy that lost the link): reconnect
    ack_timeout_s: float = field(default=30.0, metadata=_rng(2.0, 3600))
    homeassistant: bool = False  # publish Home Assistant MQTT discovery configs (retained) on connect
    discovery_prefix: str = "homeassistant"


@dataclass
class OutboxSection:
    path: str = ""  # empty: $STATE_DIRECTORY or ~/.local/state/emocast, file outbox.sqlite
    max_events: int = field(default=100_000, metadata=_rng(10, 100_000_000))


@dataclass
class PrivacySection:
    # false: no emotion model is opened, nothing emotional is published, logged or written (EU AI Act
    # Art. 5(1)(f): no emotion inference in schools and workplaces); wins over every [emotion] key
    emotion: bool = True


@dataclass
class Config:
    device: DeviceSection = field(default_factory=DeviceSection)
    source: SourceSection = field(default_factory=SourceSection)
    faces: FacesSection = field(default_factory=FacesSection)
    emotion: EmotionSection = field(default_factory=EmotionSection)
    attention: AttentionSection = field(default_factory=AttentionSection)
    events: EventsSection = field(default_factory=EventsSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    outbox: OutboxSection = field(default_factory=OutboxSection)
    privacy: PrivacySection = field(default_factory=PrivacySection)
    origin: str = "<defaults>"  # where it was read from, for messages

    @property
    def emotion_on(self) -> bool:
        """Whether this kiosk infers emotion at all: ``[privacy] emotion`` and a non-zero
        ``[emotion] emotion_hz`` (the older switch, kept as an alias)."""
        return self.privacy.emotion and self.emotion.emotion_hz > 0

    @property
    def threads(self) -> int:
        """Per-face reading workers: ``[device] threads``, or the usable cores."""
        return self.device.threads or usable_cores()

    @property
    def read_hz(self) -> float:
        """A face's attention readings a second (``[attention] read_hz``; ``landmarks_hz`` where set)."""
        a = self.attention
        return a.landmarks_hz if a.landmarks_hz > 0 else a.read_hz

    @property
    def device_id(self) -> str:
        return self.device.id or socket.gethostname().split(".")[0] or "emocast"

    def digest(self) -> str:
        """A short hash of the effective settings, published in `info` so hubs can spot drift."""
        data = dataclasses.asdict(self)
        data.pop("origin", None)
        data["mqtt"].pop("password", None)  # secrets change nothing a hub should see, and their hash
        data["mqtt"]["url"] = redact_url(data["mqtt"]["url"])  # must not leave the device either
        data["source"]["uri"] = redact_url(data["source"]["uri"])
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


SECTIONS: dict[str, type] = {name: hint for name, hint in typing.get_type_hints(Config).items() if name != "origin"}


def from_mapping(data: dict[str, Any], origin: str = "<config>") -> Config:
    cfg = Config(**build_sections(SECTIONS, data, origin), origin=origin)
    validate_cross(cfg)
    return cfg


def load(path: str | os.PathLike[str] | None) -> Config:
    """Read a TOML config; ``None`` gives the defaults."""
    if path is None:
        return Config()
    return from_mapping(read_toml(path), str(Path(path)))


def with_overrides(cfg: Config, section: str, **values: Any) -> Config:
    """A copy with some keys of one section replaced, checked like file values (for CLI flags)."""
    cls = SECTIONS[section]
    current = dataclasses.asdict(getattr(cfg, section))
    current.update({k: v for k, v in values.items() if v is not None})
    new_section = build_section(cls, current, "command line", section)
    out = dataclasses.replace(cfg, **{section: new_section})
    changed = any(v is not None for v in values.values())
    validate_cross(dataclasses.replace(out, origin="command line") if changed else out)
    return out


def validate_cross(cfg: Config) -> None:
    """Checks that span keys; run after every load and override."""
    check_mqtt(cfg.mqtt, cfg.origin)
    a = cfg.attention
    for axis in ("h", "v"):
        lo, hi = getattr(a, f"gaze_{axis}_min"), getattr(a, f"gaze_{axis}_max")
        if lo >= hi:
            raise ConfigError(f"{cfg.origin}: [attention] gaze_{axis}_min ({lo}) must be below gaze_{axis}_max ({hi})")
    if a.blink_max_s >= a.eyes_closed_s > 0:
        raise ConfigError(f"{cfg.origin}: [attention] blink_max_s ({a.blink_max_s}) must be below "
                          f"eyes_closed_s ({a.eyes_closed_s}): a closure is a blink or eyes_closed, not both")
    if a.calibration:
        from .perception.calibration import CalibrationError, load

        try:
            load(a.calibration)
        except CalibrationError as exc:
            raise ConfigError(f"{cfg.origin}: [attention] calibration: {exc}") from None
    if not cfg.privacy.emotion and cfg.emotion != EmotionSection():
        log.warning("%s: [privacy] emotion = false wins: the [emotion] settings are ignored, no model is opened",
                    cfg.origin)
    dev = cfg.device.id
    if dev and any(ch in dev for ch in "+#/"):
        raise ConfigError(f"{cfg.origin}: [device] id {dev!r} must not contain + # or /")


def broker_password(cfg: Config) -> str:
    """The broker password (``password_file`` read now, else ``password``, else the URL's)."""
    return password_of(cfg.mqtt, cfg.origin)


def check_for_run(cfg: Config) -> None:
    """What the service needs of the config's files beyond the checks every load makes: run calls it
    before opening anything, and check-config calls it too, so the two never disagree."""
    broker_password(cfg)


def default_state_dir() -> Path:
    """The outbox's and calibration's folder (``emocast.core.settings.state_dir``)."""
    return state_dir()

