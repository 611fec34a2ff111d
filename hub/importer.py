"""``emocast hub import``: `emocast analyze` logs of a recorded lecture into a lecture's timeline.

Each student's recording of the same lecture, analysed on their own machine, gives one JSON-lines
file of per-frame records. The hub turns each file into what a live device would have published
(an attention event per state change, an emotion event per change of the smoothed emotion, an
``absent`` event where a track ends), stamped ``lecture start + media time - video offset``, and
stores them with the live flow's code: the recorded and the live lecture give the same timelines.

Only states, labels and times are kept: a record's box, landmarks-derived angles and eye ratios
stay in the file. Event ids are derived from the file's content, so importing a file twice stores
it once. A file that is not analyze output is refused whole, naming the file, the line and the key:
every record passes the checks live ingest applies to a kiosk's payload (``payloads.py``: no NaN or
Infinity, strings short and free of control characters, lone surrogates and bidirectional overrides,
integers the columns hold), a media time inside a lecture's span, and the schema.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emocast.contract.events import ABSENT, AttentionChange, AttentionState, EmotionChange, encode_text, envelope
from emocast.core.errors import EmocastError, ExitCode

from .payloads import MAX_LABEL, TRACK_MAX, PayloadError, check_values, device_problem, load_json, parse_ts
from .store import StoredMessage
from .timeline import MAX_LECTURE_S
from .validation import Validator

MEDIA_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_RECORD_BYTES = 16 * 1024  # one analyze record is a few hundred bytes

NAMESPACE = uuid.UUID("6f1d6f52-8f7c-4c1e-9a0e-0c8a1f5d2b11")


class ImportFileError(EmocastError):
    """The file is not `emocast analyze` output; the message names the file, the line and the key."""

    exit_code = ExitCode.IMPORT


@dataclass(frozen=True)
class ImportResult:
    path: Path
    device: str
    records: int
    tracks: int
    events: list[StoredMessage]


@dataclass(frozen=True, slots=True)
class Reading:
    """What the import keeps of one record (the rest of it stays in the file)."""

    t: float
    attention: str | None  # null before the rules have judged a new face
    reason: str
    emotion: str | None
    probs: tuple[tuple[str, float], ...] | None


def _records(path: Path, digest: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """The file's records, checked, read a line at a time (a recording's log may be hundreds of MB);
    ``digest`` sees every byte. ImportFileError names the file, the line and the key."""
    validator = Validator(("analyze_record",))
    if path.suffix.lower() in MEDIA_SUFFIXES:
        raise ImportFileError(f"{path}: a video or photo, not `emocast analyze` output: run `emocast analyze "
                              f"{path} --out {path.stem}.jsonl` and import the .jsonl")
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        for n, raw in enumerate(fh, 1):
            digest.update(raw)
            if not raw.strip():
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ImportFileError(f"{path}:{n}: not UTF-8 text (byte {exc.start})") from None
            try:
                rec, _ = load_json(raw.rstrip(b"\r\n"), MAX_RECORD_BYTES)
                check_values(rec)
            except PayloadError as exc:
                raise ImportFileError(f"{path}:{n}: {exc}") from None
            problem = validator.problem("analyze_record", rec, whole="(record)")
            if problem is None:
                problem = _record_problem(rec)
            if problem is not None:
                raise ImportFileError(f"{path}:{n}: {problem} (is it `emocast analyze` output?)")
            yield n, rec


def _record_problem(rec: dict[str, Any]) -> str | None:
    """What the schema cannot say and the store needs: a time inside a lecture's span, a track the
    column holds, labels of a label's length."""
    t, track = rec.get("t"), rec.get("track")
    if not isinstance(t, int | float) or isinstance(t, bool) or not 0.0 <= t <= MAX_LECTURE_S:
        return f"t: {str(t)[:30]} is not a media time of 0 to {MAX_LECTURE_S:g} s"
    if isinstance(track, int) and not 0 <= track <= TRACK_MAX:
        return f"track: {str(track)[:30]} is outside 0..{TRACK_MAX}"
    if "recorded" in rec:
        try:
            parse_ts(rec["recorded"])
        except PayloadError as exc:
            return f"recorded: {str(exc).removeprefix('ts: ')}"
    for key in ("attention", "reason", "emotion"):
        value = rec.get(key)
        if isinstance(value, str) and len(value) > MAX_LABEL:
            return f"{key}: a label of {len(value)} characters, more than {MAX_LABEL}"
    return None


@dataclass(frozen=True)
class MediaFacts:
    """What a log's first record says of its recording as a whole (`emocast analyze` writes them there)."""

    recorded: float | None  # epoch seconds: when the recording started, from the video's container
    media_s: float  # the recording's length; 0 when unknown


def media_facts(path: Path) -> MediaFacts:
    """The recording's date and length from the file's first record, read before the import places
    the lecture on the calendar. Only that line is read; a line that is not a record says nothing here
    (the import's own reading of the file names what is wrong with it)."""
    try:
        with path.open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    break
            else:
                return MediaFacts(None, 0.0)
        rec, _ = load_json(raw.rstrip(b"\r\n"), MAX_RECORD_BYTES)
    except (OSError, PayloadError):
        return MediaFacts(None, 0.0)
    if not isinstance(rec, dict):
        return MediaFacts(None, 0.0)
    try:
        recorded = parse_ts(rec["recorded"]) if "recorded" in rec else None
    except PayloadError:
        recorded = None
    length = rec.get("media_s")
    ok = isinstance(length, int | float) and not isinstance(length, bool) and 0 < length <= MAX_LECTURE_S
    return MediaFacts(recorded, float(length) if ok else 0.0)


def device_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an imported file's device (as a live kiosk's id could not), or None."""
    problem = device_problem(name)
    return f"device {name[:60]!r}: {problem} (--device)" if problem else None


def origin_of(path: Path, digest: str) -> str:
    """What an imported event says of where it came from: the file's name and its content's digest (the
    same recording imported again is known by it, under any name)."""
    return f"import:{path.name}#{digest[:16]}"


def events_from_records(path: Path, device: str, start_ts: float, video_offset_s: float = 0.0,
                        lecture: str = "") -> ImportResult:
    """The events a live device would have published for this file's records, for ``lecture`` (their
    ids derive from the file's content and the lecture: the same file imported into one lecture twice
    is stored once, into two lectures once each). The file is read a line at a time and only each
    record's time, states and emotion are kept (``Reading``), so memory grows with the records' few
    fields, not with the file."""
    hasher = hashlib.sha256()
    tracks: dict[int, list[Reading]] = {}
    count = 0
    for _, rec in _records(path, hasher):
        count += 1
        probs = rec.get("probs")
        tracks.setdefault(int(rec["track"]), []).append(Reading(
            float(rec["t"]), rec["attention"], rec.get("reason") or "", rec.get("emotion"),
            tuple(probs.items()) if probs else None))
    if not count:
        raise ImportFileError(f"{path}: no records (an analyze run that found no face writes none)")
    digest = hasher.hexdigest()
    raw: list[tuple[float, int, AttentionChange | EmotionChange]] = []  # (t, track, event)
    for track, recs in tracks.items():
        recs.sort(key=lambda r: r.t)
        state: AttentionState | None = None
        emotion = None
        state_since = recs[0].t
        for rec in recs:
            t = rec.t
            if rec.attention is not None and rec.attention != state:
                now = AttentionState(rec.attention)
                raw.append((t, track, AttentionChange(track, now, state, t - state_since if state else 0.0, t,
                                                      rec.reason)))
                state, state_since = now, t
            if rec.emotion and rec.emotion != emotion and rec.probs:
                raw.append((t, track, EmotionChange(track, rec.emotion, emotion, dict(rec.probs), t)))
                emotion = rec.emotion
        gaps = sorted(b.t - a.t for a, b in zip(recs, recs[1:], strict=False))
        step = gaps[len(gaps) // 2] if gaps else 0.1
        t_end = recs[-1].t + step
        if state != ABSENT:  # the recording's face is lost where its records end
            raw.append((t_end, track, AttentionChange(track, ABSENT, state, t_end - state_since, t_end, "lost")))
    raw.sort(key=lambda x: (x[0], x[1], x[2].kind))
    events = []
    for seq, (t, _track, event) in enumerate(raw, 1):
        ts = start_ts + t - video_offset_s
        key = f"{digest}:{lecture}:{device}:{seq}" if lecture else f"{digest}:{device}:{seq}"
        payload = envelope(event.kind, event.body(), device, seq, ts, str(uuid.uuid5(NAMESPACE, key)))
        events.append(StoredMessage.event(event.kind, payload, encode_text(payload), ts, origin_of(path, digest),
                                          lecture or None))
    return ImportResult(path, device, count, len(tracks), events)
