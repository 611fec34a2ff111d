"""What the unit and integration tests of hub timeline share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


from emocast.contract.events import SCHEMAS, utc_timestamp  # noqa: E402
from emocast.hub.binning import Grid, Tally, tally_bins  # noqa: E402
from emocast.hub.store import StoredMessage  # noqa: E402
from emocast.hub.stories import Rows, Segments, Stories  # noqa: E402
from tests.hub_support import analyze_record  # noqa: E402
from tests.support import schema_validator  # noqa: E402

T0 = 1_790_000_000.0  # a lecture's start, epoch seconds


def event(kind: str, device: str, seq: int, ts: float, **body) -> StoredMessage:
    payload = {"schema": SCHEMAS[kind], "id": f"{device}-{seq:08d}", "seq": seq, "ts": utc_timestamp(ts),
               "device": device, **body}
    return StoredMessage.event(kind, payload, json.dumps(payload), ts)


def attention(device, seq, ts, track, state, previous=None, prev_dur=0.0, **extra):
    return event("attention", device, seq, ts, track=track, state=state, previous=previous,
                 previous_duration_s=prev_dur, source_t=ts - T0, **extra)


def emotion(device, seq, ts, track, label, previous=None):
    probs = {"happy": 0.8, "neutral": 0.2} if label == "happy" else {"happy": 0.2, "neutral": 0.8}
    return event("emotion", device, seq, ts, track=track, emotion=label, previous=previous, confidence=0.8,
                 probs=probs, source_t=ts - T0)


def hand_case() -> list[StoredMessage]:
    """Two faces on one kiosk over two 60 s bins; the shares below are worked out by hand.

    track 1: attentive 0-30, looking_away 30-60, attentive 60-120 (still there at the end);
             happy from 0, neutral from 90.
    track 2: attentive 0-45, eyes_closed 45-60, then absent at 62 with previous_duration 15 (gone at 60).
             neutral from 0."""
    d = "k1"
    return [
        attention(d, 1, T0 + 0, 1, "attentive"),
        emotion(d, 2, T0 + 0, 1, "happy"),
        attention(d, 3, T0 + 0, 2, "attentive"),
        emotion(d, 4, T0 + 0, 2, "neutral"),
        attention(d, 5, T0 + 30, 1, "looking_away", "attentive", 30.0, reason="head_pose"),
        attention(d, 6, T0 + 45, 2, "eyes_closed", "attentive", 45.0, reason="eyes"),
        attention(d, 7, T0 + 60, 1, "attentive", "looking_away", 30.0),
        attention(d, 8, T0 + 62, 2, "absent", "eyes_closed", 15.0, reason="lost"),
        emotion(d, 9, T0 + 90, 1, "neutral", "happy"),
        event("summary", d, 10, T0 + 60, window_s=60.0, frames=600, faces_seen=2, faces_now=1, faces_read=2,
              faces_turned=0, faces_too_small=0, face_time_s=105.0, attentive_share=0.714,
              looking_away_share=0.143, eyes_closed_share=0.143, blinks=21, blink_rate_per_min=12.0,
              emotion_share={"happy": 0.5}, final=False, dropped_frames=0, dropped_events=0),
    ]


def rows(msgs: list[StoredMessage]) -> Rows:
    """The rows a timeline reads, taken from each parsed payload in Python (the reference for what the
    store's columns hold)."""
    raw = []
    for m in sorted(msgs, key=lambda m: m.ts):
        p = json.loads(m.payload)
        if m.kind == "summary":
            raw.append((m.device, m.kind, m.ts, m.track, m.value, False, p.get("window_s"), p.get("blinks"),
                        p.get("face_time_s")))
        else:
            attention = m.kind == "attention"
            raw.append((m.device, m.kind, m.ts, m.track, m.value, attention and p.get("previous") is None,
                        p.get("previous_duration_s") if attention else None, None, None))
    return Rows.of(raw)


def analyze_records(path: Path, track_states: dict[int, list[tuple[float, str, str | None]]]) -> Path:
    """A JSON-lines file shaped like `emocast analyze` output (validated against its schema)."""
    validator = schema_validator("analyze_record")
    lines = []
    for track, seq in track_states.items():
        for i, (t, state, label) in enumerate(seq):
            probs = None if label is None else {"happy": 0.9 if label == "happy" else 0.1,
                                                "neutral": 0.1 if label == "happy" else 0.9}
            rec = analyze_record(t, i + 1, track, state, label, probs, "eyes" if state == "eyes_closed" else "")
            validator.validate(rec)
            lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n")
    return path


class Segment(NamedTuple):
    """One stretch of a face's story, as a test writes or reads it."""

    device: str
    track: int
    value: str
    start: float
    end: float


def segments_of(segments: list[Segment]) -> Segments:
    """The columns the timeline holds, from a list of segments."""
    devices = list(dict.fromkeys(s.device for s in segments))
    values = list(dict.fromkeys(s.value for s in segments))
    return Segments(devices, np.array([devices.index(s.device) for s in segments], np.int64),
                    np.array([s.track for s in segments], np.int64), values,
                    np.array([values.index(s.value) for s in segments], np.int64),
                    np.array([s.start for s in segments], float), np.array([s.end for s in segments], float))


def segment_list(segments: Segments) -> list[Segment]:
    return [Segment(segments.devices[d], int(tr), segments.values[v], float(s), float(e))
            for d, tr, v, s, e in zip(segments.device, segments.track, segments.value, segments.start, segments.end,
                                      strict=True)]


def bins(stories: Stories, start: float, end: float, bin_s: float, video_offset_s: float = 0.0,
         min_faces: int = 1, pool_small: bool = False) -> list[dict[str, Any]]:
    """The room's bins, all devices together, as the timeline computes them."""
    tally = Tally.of(stories, Grid(start, end, bin_s))
    return tally_bins(tally, range(len(tally.devices)), video_offset_s, min_faces, pool_small)
