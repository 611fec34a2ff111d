"""What a kiosk's message must be before the hub lets it near a transaction.

One message the database cannot take must never reach it: a batch that fails is not acknowledged,
so the broker would send it again after every restart and no kiosk's events would be stored again.
The JSON Schemas say what a payload looks like; this module adds what a schema check cannot see and
what the database needs, and answers with a reason, never an exception:

- size (the payload's bytes) and nesting depth, checked on the raw text before parsing (JSON nested
  100,000 deep would otherwise end in a RecursionError inside the parser or the validator);
- strict UTF-8 (``json.loads`` on bytes also takes UTF-16 and UTF-32, which the stored text is not),
  no NaN or Infinity, no control characters or lone surrogates in any string (PostgreSQL refuses NUL,
  and a surrogate cannot be encoded for either database), strings of bounded length;
- integers the columns hold (``seq`` a BIGINT, ``track`` an INTEGER on PostgreSQL);
- a timestamp in ASCII digits that names a real instant (no 30 February), and not further ahead of
  the hub's clock than the allowed skew (one event dated 2100 would hold a face present until the
  lecture ends).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MAX_PAYLOAD_BYTES = 64 * 1024  # a summary of many faces is a few kilobytes
MAX_DEPTH = 8  # the contract nests three deep (a summary's per-emotion shares)
MAX_STRING = 256  # characters of any string in a payload
MAX_LABEL = 64  # an attention state or emotion label (the value column)
SEQ_MAX = 2**63 - 1
TRACK_MAX = 2**31 - 1
TS_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z", re.ASCII)
# control characters, lone surrogates, and the bidirectional overrides and isolates that make a label
# display as something else (U+202A-U+202E, U+2066-U+2069)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class PayloadError(ValueError):
    """A message the hub will not store; the text says why (it is kept with the quarantined message)."""


def parse_ts(text: str) -> float:
    """The contract's UTC timestamp (``2026-11-27T12:00:00.123Z``, ASCII digits) as epoch seconds;
    PayloadError for anything else, a day that does not exist included."""
    if not isinstance(text, str) or not TS_FORMAT.fullmatch(text):
        raise PayloadError(f"ts: {str(text)[:40]!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    try:
        # fromisoformat, not strptime: this runs for every message the hub takes
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc).timestamp()
    except ValueError as exc:
        raise PayloadError(f"ts: {text!r} is no date: {exc}") from None


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in a JSON text, counted without parsing it (strings, where a
    bracket means nothing, are cut out first)."""
    depth = deepest = 0
    for ch in _BRACKETS.findall(_STRINGS.sub(b'""', raw)):
        if ch in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise PayloadError(f"{name} is not JSON")


def load_json(raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> tuple[Any, str]:
    """(the parsed payload, its text) of a message, or PayloadError: too large, too deep, not UTF-8,
    not JSON."""
    if len(raw) > max_bytes:
        raise PayloadError(f"payload: {len(raw)} bytes, more than {max_bytes}")
    opened = raw.count(b"[") + raw.count(b"{")  # the usual payload: no deeper than it has brackets
    depth = nesting_depth(raw) if opened > MAX_DEPTH else opened
    if depth > MAX_DEPTH:
        raise PayloadError(f"payload: nested {depth} deep, more than {MAX_DEPTH}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not UTF-8: {exc}") from None
    try:
        return json.loads(text, parse_constant=_no_constant), text
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"not JSON: {str(exc)[:120]}") from None


def check_values(payload: Any, where: str = "") -> None:
    """Every string short and free of control characters and surrogates; every number finite and
    every integer within 64 bits (the payload is at most ``MAX_DEPTH`` deep, so recursion is safe)."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            check_values(key, f"{where}/{str(key)[:32]!r} (key)")
            check_values(value, f"{where}/{key}"[:80])
    elif isinstance(payload, list):
        for i, value in enumerate(payload):
            check_values(value, f"{where}/{i}")
    elif isinstance(payload, str):
        if len(payload) > MAX_STRING:
            raise PayloadError(f"{where or 'payload'}: a string of {len(payload)} characters, more than {MAX_STRING}")
        bad = _CONTROL.search(payload)
        if bad:
            raise PayloadError(f"{where or 'payload'}: control character or lone surrogate "
                               f"U+{ord(bad.group()):04X} in a string")
    elif isinstance(payload, int) and not isinstance(payload, bool) and not -SEQ_MAX <= payload <= SEQ_MAX:
        raise PayloadError(f"{where or 'payload'}: integer {str(payload)[:30]} is outside 64 bits")


def check_columns(payload: dict[str, Any]) -> None:
    """The values that become columns fit them on both databases."""
    seq, track = payload.get("seq"), payload.get("track")
    if isinstance(seq, int) and not 0 <= seq <= SEQ_MAX:
        raise PayloadError(f"seq: {seq} is outside 0..{SEQ_MAX}")
    if isinstance(track, int) and not 0 <= track <= TRACK_MAX:
        raise PayloadError(f"track: {track} is outside 0..{TRACK_MAX}")
    for key in ("state", "emotion", "previous"):
        value = payload.get(key)
        if isinstance(value, str) and len(value) > MAX_LABEL:
            raise PayloadError(f"{key}: a label of {len(value)} characters, more than {MAX_LABEL}")


def check_time(ts: float, now: float, max_skew_s: float) -> None:
    """Not further ahead of the hub's clock than ``max_skew_s`` (a kiosk whose clock runs ahead
    sends events from the future; old events are fine: an outbox may deliver days late)."""
    if ts - now > max_skew_s:
        raise PayloadError(f"ts: {ts - now:.0f} s ahead of the hub's clock (more than {max_skew_s:g} s)")


MAX_DEVICE = 128  # characters of a device id (a topic level, or an imported file's device name)


def clean_text(text: str) -> bool:
    """No control character, unpaired surrogate or bidirectional override: text every database stores
    as it is and every page shows as it is (the same rule for a payload's strings and the API's)."""
    return not _CONTROL.search(text)


def device_problem(device: str) -> str | None:
    """Why ``device`` cannot name a device (a kiosk's topic level, an imported recording), or None."""
    if not device or len(device) > MAX_DEVICE or printable(device) != device or "/" in device:
        return (f"the device id is empty, longer than {MAX_DEVICE} characters, or has characters outside "
                "printable ASCII or a '/'")
    return None


def printable(text: str | bytes, limit: int = 400) -> str:
    """ASCII text safe for any column and any log line: a payload, or an error message that may quote
    one, with control characters, surrogates and other non-ASCII escaped, cut to ``limit`` characters."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    out = repr(raw[:limit])[2:-1]
    return out[:limit] + "..." if len(raw) > limit or len(out) > limit else out


def video_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a lecture's video, or None: it must be a plain file name in ``[web]
    video_dir`` (a path, or a hidden or relative name, is refused, not trimmed)."""
    if not name or Path(name).name != name or "\\" in name or name.startswith("."):
        return f"video {name!r}: give the file's name in [web] video_dir, not a path"
    if not clean_text(name):
        return f"video {name!r}: control characters, unpaired surrogates and bidirectional overrides are not a " \
               "file name here"
    return None
