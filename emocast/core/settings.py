"""Config files as device and hub read them: TOML in, typed and range-checked dataclass sections out.

An unknown section or key, a wrong type, a number out of range or not finite is a ``ConfigError``
naming the file, the section and the key; so is a file that is missing, not UTF-8 or not TOML, and a
secret file (a password, a token) that cannot be read. Both config modules build their sections here,
so the two read their files by the same rules.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import typing
from pathlib import Path
from typing import Any, Literal

from .errors import EmocastError, ExitCode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(EmocastError):
    """The configuration is invalid; the message names the file and the key."""

    exit_code = ExitCode.CONFIG


def rng(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    """A field's allowed range, as dataclass ``metadata``."""
    return {"min": lo, "max": hi}


def _type_name(value: Any) -> str:
    return type(value).__name__


def check_value(where: str, hint: Any, value: Any, meta: typing.Mapping[str, Any]) -> Any:
    """``value`` checked against the field's type ``hint`` and ``meta`` (range, string check)."""
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
    """One ``[name]`` table of the file at ``origin`` as the dataclass ``cls``; unknown keys refused."""
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: [{name}] must be a table, got {_type_name(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        where = f"{origin}: [{name}] {key}"
        if key not in fields:
            raise ConfigError(f"{origin}: unknown key [{name}] {key} (known: {', '.join(fields)})")
        values[key] = check_value(where, hints[key], value, fields[key].metadata)
    return cls(**values)


def build_sections(sections: dict[str, type], data: dict[str, Any], origin: str) -> dict[str, Any]:
    """Every table of a file as its section's dataclass; an unknown section refused."""
    out = {}
    for name, table in data.items():
        if name not in sections:
            raise ConfigError(f"{origin}: unknown section [{name}] (known: {', '.join(sections)})")
        out[name] = build_section(sections[name], table, origin, name)
    return out


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML file as a mapping; a ConfigError naming the file for every way it can fail (missing,
    unreadable, not UTF-8, not TOML)."""
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


def read_secret(path: str, where: str) -> str:
    """A secret kept in a file (a password, a token), stripped; a ConfigError naming ``where`` (the
    config file and key) and the file when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{where} {path}: {why}") from None


def state_dir() -> Path:
    """Where the device's outbox and the hub's SQLite file live: systemd's ``StateDirectory=`` sets
    ``$STATE_DIRECTORY``; elsewhere the XDG state directory (``$XDG_STATE_HOME`` or ~/.local/state)."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "emocast"
