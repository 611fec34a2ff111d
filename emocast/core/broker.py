"""The MQTT broker as device and hub reach it: its URL, TLS, the checks on an ``[mqtt]`` section, the
password, a paho client set up the same way, and a jittered back-off.

Credentials and TLS are given the same way on a kiosk and on a hub (``url`` with ``mqtt://`` or
``mqtts://``, ``username``, ``password_file``, ``ca_file``, ``cert_file``/``key_file``), so one module
reads them; a problem is a ``ConfigError`` naming the file and key, found when the config is loaded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from .settings import ConfigError, read_secret


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


def redact_url(url: str) -> str:
    """Any URL fit for a log line, a message or a digest: the password of ``user:password@`` (an RTSP
    camera's, a broker's, a database's) replaced by ``***``; anything without one as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return url
    creds, _, host = authority.rpartition("@")
    user, has_password, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}{slash}{tail}"


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


class MqttSettings(Protocol):
    """What device and hub ``[mqtt]`` sections both hold."""

    url: str
    prefix: str
    username: str
    password: str
    password_file: str
    ca_file: str
    cert_file: str
    key_file: str


def check_mqtt(m: MqttSettings, origin: str) -> None:
    """The checks every ``[mqtt]`` section gets at load: the URL, one password source, a certificate
    with its key, TLS files that exist and are PEM (built once, so a wrong path is exit 3 at start,
    not a TLS failure later), and a topic prefix brokers accept."""
    parse_broker_url(m.url, f"{origin}: [mqtt] url")
    if m.password and m.password_file:
        raise ConfigError(f"{origin}: [mqtt] password and password_file are exclusive; keep one")
    if bool(m.cert_file) != bool(m.key_file):
        raise ConfigError(f"{origin}: [mqtt] cert_file and key_file go together")
    if m.ca_file or m.cert_file or m.key_file:
        tls_context(m.ca_file, m.cert_file, m.key_file, f"{origin}: [mqtt]")
    prefix = m.prefix
    if not prefix or any(ch in prefix for ch in "+#") or prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigError(f"{origin}: [mqtt] prefix {prefix!r} must be non-empty, without + # or edge slashes")


def password_of(m: MqttSettings, origin: str) -> str:
    """The broker password: from ``password_file`` (read now; a ConfigError naming it if it cannot
    be), else ``password``, else the URL's."""
    if m.password_file:
        return read_secret(m.password_file, f"{origin}: [mqtt] password_file")
    return m.password or parse_broker_url(m.url).password


def make_client(client_id: str, broker: BrokerAddress, username: str, password: str, tls: Any = None,
                protocol: str = "5", clean_session: bool | None = None):
    """A paho client set up as both sides need it: the versioned callback API, the protocol, the
    login (the section's user name, else the URL's) and the TLS context. Callbacks are the caller's."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    proto = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
    kwargs: dict[str, Any] = {"callback_api_version": CallbackAPIVersion.VERSION2, "client_id": client_id,
                              "protocol": proto}
    if proto == mqtt.MQTTv311 and clean_session is not None:
        kwargs["clean_session"] = clean_session
    client = mqtt.Client(**kwargs)
    user = username or broker.username
    if user:
        client.username_pw_set(user, password or None)
    if broker.tls:
        client.tls_set_context(tls)
    return client


class Backoff:
    """Exponential back-off with "equal jitter": the n-th consecutive wait is drawn from
    [cap/2, cap], cap = min(max_s, base_s * 2**n). paho's own back-off doubles deterministically, so
    a school's kiosks that lost the same broker would all knock again at the same instants."""

    def __init__(self, base_s: float = 1.0, max_s: float = 30.0, rng: random.Random | None = None) -> None:
        self.base_s, self.max_s = base_s, max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        cap = min(self.max_s, self.base_s * 2 ** min(self.failures, 30))
        self.failures += 1
        return self._rng.uniform(cap / 2, cap)

    def reset(self) -> None:
        self.failures = 0
