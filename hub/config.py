"""The hub's configuration: ``hub.toml`` in, checked dataclasses out, with the device's rules (an
unknown key is an error naming the file, the section and the key; numbers are range-checked).

MQTT credentials and TLS are given exactly as on a device (``url`` with ``mqtt://`` or ``mqtts://``,
``username``, ``password_file``, ``ca_file``, ``cert_file``/``key_file``), read and checked by the same
code (``emocast.core``).
"""

from __future__ import annotations

import logging
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emocast.core.broker import check_mqtt, password_of
from emocast.core.settings import ConfigError, build_sections, read_secret, read_toml, state_dir
from emocast.core.settings import rng as _rng

log = logging.getLogger(__name__)

SYSTEM_CONFIG = Path("/etc/emocast/hub.toml")  # installed by systemd/install.sh --hub, read by the unit
SERVICE_STATE = Path("/var/lib/emocast-hub")  # the unit's StateDirectory=emocast-hub


@dataclass
class HubMqttSection:
    url: str = "mqtt://127.0.0.1:1883"
    prefix: str = "emocast"
    client_id: str = "emocast-hub"  # fixed: the broker keeps the hub's session queue while it is down
    share_group: str = ""  # set on every hub process of a group: MQTT 5 shared subscription $share/<group>/...
    username: str = ""
    password: str = ""
    password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive_s: int = field(default=30, metadata=_rng(5, 3600))
    session_expiry_s: int = field(default=7 * 86400, metadata=_rng(60, 2**32 - 1))
    receive_maximum: int = field(default=200, metadata=_rng(1, 65535))
    max_payload_bytes: int = field(default=65536, metadata=_rng(1024, 16 * 2**20))  # larger: rejected
    max_clock_skew_s: float = field(default=300.0, metadata=_rng(1, 86400 * 365))  # ts further ahead: rejected
    queue_max: int = field(default=10_000, metadata=_rng(100, 10_000_000))  # QoS 0 beyond it: dropped, counted
    queue_max_bytes: int = field(default=32 * 2**20, metadata=_rng(2**20, 2**34))  # the same, in payload bytes


@dataclass
class HubStoreSection:
    url: str = ""  # empty: SQLite hub.sqlite in $STATE_DIRECTORY or ~/.local/state/emocast; or postgresql://...
    retention_days: float = field(default=365.0, metadata=_rng(0, 36500))  # 0: keep for ever
    batch_max: int = field(default=500, metadata=_rng(1, 100_000))
    batch_wait_s: float = field(default=0.05, metadata=_rng(0, 10))
    quarantine_keep: int = field(default=1000, metadata=_rng(10, 1_000_000))  # rejected messages kept to look at
    connect_wait_s: float = field(default=300.0, metadata=_rng(0, 86400))  # a database down at start: retried
    stall_s: float = field(default=60.0, metadata=_rng(5, 86400))  # messages waiting, none stored this long: unhealthy


@dataclass
class HubWebSection:
    listen: str = "127.0.0.1:8080"
    token: str = ""  # required for any address but loopback; or token_file
    token_file: str = ""
    default_bin_s: float = field(default=0.0, metadata=_rng(0, 86400))  # 0: sized to the lecture (auto_bin_s)
    allowed_hosts: str = ""  # host names the page is reached by, comma-separated (loopback always); needed with 0.0.0.0
    max_bins: int = field(default=5000, metadata=_rng(10, 1_000_000))  # a timeline asking for more: 422
    video_dir: str = ""  # lecture videos the page may play, by file name (a lecture's `video`); empty: none
    max_streams: int = field(default=100, metadata=_rng(1, 100_000))  # live pages' event streams open at once


@dataclass
class HubPrivacySection:
    # false: emotion events and emotion fields are dropped before storage and never shown (EU AI Act
    # Art. 5(1)(f): no emotion inference in schools and workplaces); see docs/privacy.md
    emotion: bool = True
    # a bin, a device's view or an export with fewer faces present shows no shares (1: off)
    min_faces: int = field(default=3, metadata=_rng(1, 1000))


@dataclass
class HubConfig:
    mqtt: HubMqttSection = field(default_factory=HubMqttSection)
    store: HubStoreSection = field(default_factory=HubStoreSection)
    web: HubWebSection = field(default_factory=HubWebSection)
    privacy: HubPrivacySection = field(default_factory=HubPrivacySection)
    origin: str = "<defaults>"

    def db_url(self) -> str:
        """``[store] url``, else hub.sqlite in the state folder: the unit's ``$STATE_DIRECTORY``, the
        same folder for a command run by hand with the installed config (so it sees the running hub's
        database), else the user's XDG state folder."""
        if self.store.url:
            return self.store.url
        if not os.environ.get("STATE_DIRECTORY") and self.origin == str(SYSTEM_CONFIG):
            return str(SERVICE_STATE / "hub.sqlite")
        folder = state_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / "hub.sqlite")

    def token(self) -> str:
        if self.web.token_file:
            return read_secret(self.web.token_file, f"{self.origin}: [web] token_file")
        return self.web.token

    def hosts(self) -> frozenset[str]:
        """The Host names requests may carry (a DNS-rebinding page's Host is its own name): loopback,
        the listen address unless it is a wildcard, and ``[web] allowed_hosts``."""
        host, _ = parse_listen(self.web.listen)
        named = {h.strip().lower() for h in self.web.allowed_hosts.split(",") if h.strip()}
        return frozenset(LOOPBACK_NAMES | named | ({host.lower()} if host not in WILDCARDS else set()))

    def password(self) -> str:
        return password_of(self.mqtt, self.origin)


SECTIONS: dict[str, type] = {n: h for n, h in typing.get_type_hints(HubConfig).items() if n != "origin"}


def parse_listen(value: str, where: str = "[web] listen") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected HOST:PORT, not {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = ("0.0.0.0", "::")
MIN_TOKEN = 16  # characters: a token is a password nobody types often; make it long


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def validate(cfg: HubConfig) -> HubConfig:
    """Cross-key checks, everything ``emocast hub`` would otherwise find only once running."""
    m = cfg.mqtt
    check_mqtt(m, cfg.origin)
    if m.share_group and any(c in m.share_group for c in "/+#"):
        raise ConfigError(f"{cfg.origin}: [mqtt] share_group {m.share_group!r} must not contain / + #")
    if not m.client_id:
        raise ConfigError(f"{cfg.origin}: [mqtt] client_id must not be empty (a persistent session needs it)")
    host, _ = parse_listen(cfg.web.listen, f"{cfg.origin}: [web] listen")
    if cfg.web.token and cfg.web.token_file:
        raise ConfigError(f"{cfg.origin}: [web] token and token_file are exclusive; keep one")
    _check_token(cfg, host)
    if host in WILDCARDS and not cfg.web.allowed_hosts.strip():
        raise ConfigError(f"{cfg.origin}: [web] listen {cfg.web.listen} takes any address: set [web] allowed_hosts "
                          "to the names the page is reached by (e.g. \"hub.school.lan\"), so no other site's name "
                          "is served")
    url = cfg.store.url
    if url and not url.startswith(("postgresql://", "postgres://", "sqlite://", "/", ".")):
        raise ConfigError(f"{cfg.origin}: [store] url must be a postgresql:// URL or an SQLite file path, not {url!r}")
    cfg.password()
    return cfg


def _check_token(cfg: HubConfig, host: str) -> None:
    """A token is required off loopback, at least ``MIN_TOKEN`` characters wherever one is set (an
    empty token file must not switch authentication off), and its file readable by no other user."""
    where = f"{cfg.origin}: [web] " + ("token_file " + cfg.web.token_file if cfg.web.token_file else "token")
    token = cfg.token()
    if cfg.web.token_file and not token:
        raise ConfigError(f"{where}: the file is empty; put a token of {MIN_TOKEN} or more characters in it")
    if not is_loopback(host) and not token:
        raise ConfigError(f"{cfg.origin}: [web] listen {cfg.web.listen} is not a loopback address: set [web] "
                          "token_file (or token) so only those who hold it can read the room")
    if token and len(token) < MIN_TOKEN:
        raise ConfigError(f"{where}: a token of {len(token)} characters; use {MIN_TOKEN} or more "
                          "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    if cfg.web.token_file:
        mode = os.stat(cfg.web.token_file).st_mode
        if mode & 0o007:
            log.warning("%s is readable by other users (mode %o): chmod 600 it", where, mode & 0o777)


def from_mapping(data: dict[str, Any], origin: str = "<config>") -> HubConfig:
    return validate(HubConfig(**build_sections(SECTIONS, data, origin), origin=origin))


def load(path: str | os.PathLike[str] | None, overrides: dict[str, dict[str, Any]] | None = None) -> HubConfig:
    """Read ``hub.toml`` (``None``: defaults), then apply command-line ``overrides`` per section."""
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    origin = str(Path(path)) if path is not None else "<defaults>"
    for section, values in (overrides or {}).items():
        table = dict(data.get(section, {}))
        table.update({k: v for k, v in values.items() if v is not None})
        data[section] = table
    return from_mapping(data, origin)
