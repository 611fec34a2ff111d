"""Attention scored against what a person calls each moment of a clip.

A label file (``attention_labels.json``'s format, the contract for more clips) gives, per clip file name,
``fps``, ``frames``, ``face`` (which face, where several) and ``intervals``: ``start`` <= t < ``end`` in
seconds, ``state`` (attentive, looking_away, eyes_closed, absent, unsure), ``note``; covering the clip
without gaps. ``emocast analyze``'s records are scored against it by one rule, fixed before any default
was tuned on it (docs/benchmarks.md, "Attention against people"):

- every frame of the clip is scored on the state the device held then: the latest record's ``attention``
  of the largest face read (a face not read for ``absent_s`` is absent, as the device declares it);
- frames in ``unsure`` intervals and in labelled intervals shorter than ``MIN_SCORED_S`` are not scored
  (a glance that short is nobody's look away);
- for a state's dwell time plus ``TOLERANCE_S`` after a labelled change, either side's state counts
  (the device reports a state once it has held its dwell, then dates it back; the records are live);
- a clip's attentive share is over its scored frames the labels do not call absent, against the
  device's over the same frames where it held a face.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emocast.core.errors import UsageError

from .perception.attention import ABSENT, ATTENTIVE, EYES_CLOSED, LOOKING_AWAY
from .perception.settings import AttentionSection
from .perception.stages.record import LatestRecords

UNSURE = "unsure"
STATES = (ATTENTIVE, LOOKING_AWAY, EYES_CLOSED, ABSENT)
LABELS = (*STATES, UNSURE)
MIN_SCORED_S = 1.0
TOLERANCE_S = 0.5


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    state: str


@dataclass(frozen=True)
class ClipLabels:
    name: str
    fps: float
    frames: int
    intervals: tuple[Interval, ...]

    def at(self, t: float) -> int:
        """The index of the interval holding ``t`` (the last one for the clip's final instant)."""
        for i, iv in enumerate(self.intervals):
            if iv.start <= t < iv.end:
                return i
        return len(self.intervals) - 1


class LabelError(UsageError):
    """A label file that does not say what it must: names the file and the key (exit 2, as any bad
    argument)."""


def load_labels(path: Path) -> dict[str, ClipLabels]:
    """Read and check a label file; a bad one raises ``LabelError`` naming the file and the key."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"{path}: cannot read the label file: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise LabelError(f"{path}: expected an object of clips, each with fps, frames and intervals")
    return {name: _clip(path, name, entry) for name, entry in raw.items()}


def _clip(path: Path, name: str, entry: Any) -> ClipLabels:
    where = f"{path}: {name}"
    if not isinstance(entry, dict):
        raise LabelError(f"{where}: expected an object with fps, frames and intervals")
    fps, frames, intervals = entry.get("fps"), entry.get("frames"), entry.get("intervals")
    if not isinstance(fps, int | float) or isinstance(fps, bool) or not math.isfinite(fps) or fps <= 0:
        raise LabelError(f"{where}.fps: expected a positive number, got {fps!r}")
    if not isinstance(frames, int) or isinstance(frames, bool) or frames <= 0:
        raise LabelError(f"{where}.frames: expected a positive whole number, got {frames!r}")
    if not isinstance(intervals, list) or not intervals:
        raise LabelError(f"{where}.intervals: expected a list of intervals")
    out: list[Interval] = []
    for i, iv in enumerate(intervals):
        key = f"{where}.intervals[{i}]"
        if not isinstance(iv, dict):
            raise LabelError(f"{key}: expected an object with start, end and state")
        start, end, state = iv.get("start"), iv.get("end"), iv.get("state")
        for k, v in (("start", start), ("end", end)):
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise LabelError(f"{key}.{k}: expected a number of seconds, got {v!r}")
        if state not in LABELS:
            raise LabelError(f"{key}.state: {state!r} is not one of {', '.join(LABELS)}")
        if end <= start:  # type: ignore[operator]
            raise LabelError(f"{key}: end {end} is not after start {start}")
        expected = 0.0 if not out else out[-1].end
        if abs(float(start) - expected) > 1e-6:  # type: ignore[arg-type]
            raise LabelError(f"{key}.start: {start} leaves a gap or overlap after {expected} (intervals must "
                             "cover the clip in order)")
        out.append(Interval(float(start), float(end), str(state)))  # type: ignore[arg-type]
    return ClipLabels(name, float(fps), frames, tuple(out))


def device_states(records: Iterable[Mapping[str, Any]], fps: float, frames: int, absent_s: float) -> list[str]:
    """The state the device held at each frame: the latest record's attention of the largest face whose
    latest record is under ``absent_s`` old; absent where there is none."""
    by_frame: dict[int, list[Mapping[str, Any]]] = {}
    for r in records:
        by_frame.setdefault(int(r["frame"]), []).append(r)
    latest = LatestRecords(absent_s)
    out: list[str] = []
    for i in range(frames):
        live = [r for r in latest.update(i / fps, by_frame.get(i, [])) if r.get("attention")]
        if not live:
            out.append(ABSENT)
            continue
        face = max(live, key=lambda r: r["box"][2] * r["box"][3])
        out.append(str(face["attention"]))
    return out


@dataclass
class ClipScore:
    name: str
    scored: int = 0
    agreed: int = 0
    confusion: Counter = field(default_factory=Counter)  # (truth, device) -> frames
    labelled_share: float | None = None
    device_share: float | None = None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.scored if self.scored else None

    @property
    def share_error(self) -> float | None:
        if self.labelled_share is None or self.device_share is None:
            return None
        return abs(self.device_share - self.labelled_share)


def dwell_of(attention: AttentionSection) -> dict[str, float]:
    """Each state's dwell under ``[attention]``, as ``score_clip`` takes them."""
    return {ATTENTIVE: attention.attentive_s, LOOKING_AWAY: attention.looking_away_s,
            EYES_CLOSED: attention.eyes_closed_s, ABSENT: attention.absent_s}


def score_clip(labels: ClipLabels, states: list[str], dwell_s: Mapping[str, float]) -> ClipScore:
    """Score the device's per-frame ``states`` against ``labels`` by the module's rule."""
    score = ClipScore(labels.name)
    ivs = labels.intervals
    for i, got in enumerate(states):
        t = i / labels.fps
        k = labels.at(t)
        iv = ivs[k]
        if iv.state == UNSURE or iv.end - iv.start < MIN_SCORED_S:
            continue
        truth = iv.state
        if k > 0:  # just after a labelled change, the state it left also counts
            before = ivs[k - 1].state
            if t - iv.start < dwell_s.get(truth, 0.0) + TOLERANCE_S and got == before:
                truth = before
        score.scored += 1
        score.agreed += got == truth
        score.confusion[(truth, got)] += 1
    _shares(score, labels, states)
    return score


def _shares(score: ClipScore, labels: ClipLabels, states: list[str]) -> None:
    """Attentive shares over the scored frames the labels do not call absent: the labels', and the
    device's where it held a face on them."""
    labelled = held = labelled_att = device_att = 0
    for i, got in enumerate(states):
        iv = labels.intervals[labels.at(i / labels.fps)]
        if iv.state in (UNSURE, ABSENT) or iv.end - iv.start < MIN_SCORED_S:
            continue
        labelled += 1
        labelled_att += iv.state == ATTENTIVE
        if got != ABSENT:
            held += 1
            device_att += got == ATTENTIVE
    score.labelled_share = labelled_att / labelled if labelled else None
    score.device_share = device_att / held if held else None


@dataclass
class Totals:
    """Over every clip scored: agreement, per-state recall and precision, the confusion, share error."""

    clips: list[ClipScore]

    @property
    def confusion(self) -> Counter:
        total: Counter = Counter()
        for c in self.clips:
            total.update(c.confusion)
        return total

    @property
    def agreement(self) -> float | None:
        scored = sum(c.scored for c in self.clips)
        return sum(c.agreed for c in self.clips) / scored if scored else None

    def recall(self, state: str) -> float | None:
        conf = self.confusion
        n = sum(v for (truth, _), v in conf.items() if truth == state)
        return conf[(state, state)] / n if n else None

    def precision(self, state: str) -> float | None:
        conf = self.confusion
        n = sum(v for (_, got), v in conf.items() if got == state)
        return conf[(state, state)] / n if n else None

    @property
    def share_error(self) -> float | None:
        errors = [c.share_error for c in self.clips if c.share_error is not None]
        return sum(errors) / len(errors) if errors else None
