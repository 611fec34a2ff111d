"""The emotion sampler: each readable face's emotion at ``[emotion] emotion_hz``, smoothed.

It exists only when emotion is on: a kiosk with ``[privacy] emotion = false`` never builds it, so no
stage asks "is there a model?". Faces are sampled by staleness inside what the frame's budget leaves
(``scheduler``), on the worker pool, merged in track order. A face the model cannot read now (turned
past the limits, seen only as a profile, under ``min_face_px``) is not sampled, and says why.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emocast.contract.events import EmotionChange, Event

from ..attention import ABSENT, AttentionRules
from ..emotion import EmotionSmoother
from ..faces import Track
from ..settings import EmotionSection
from .faces import FaceStage
from .optional import RateTarget
from .reading import PROFILE, FaceState, ReadingStage
from .scheduler import Candidate, CostEstimate, Credit, pick_with
from .timing import Rates, StageTimer
from .workers import Pending, WorkerPool

log = logging.getLogger(__name__)

# Why a face's emotion is not read now (analyze records and summary counts say so, not hide it).
TURNED = "turned"  # a profile, or the head turned past the limits: the model was trained on frontal faces
TOO_SMALL = "too_small"  # under [emotion] min_face_px: too few pixels for the model to read
FIRST_EMOTION_MS = 4.0  # an inference's cost before one was measured


@dataclass
class EmotionFace:
    smoother: EmotionSmoother
    last_t: float | None = None
    unread_reason: str = ""  # TURNED, TOO_SMALL, or "" while the model can read the face


@dataclass
class EmotionWindow:
    """What the sampler saw since the last summary: readings, and face-time per emotion."""

    readings: int = 0
    unsure_readings: int = 0
    read: set[int] = field(default_factory=set)  # faces whose emotion was read
    unread_faces: dict[str, set[int]] = field(default_factory=lambda: {TURNED: set(), TOO_SMALL: set()})
    emotion_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    unsure_s: float = 0.0  # face time whose smoothed reading was too unsure to call


class EmotionSampler:
    """An optional stage (``optional.OptionalStage``): built only when emotion is on."""

    name = "emotion"

    def __init__(self, section: EmotionSection, labels: tuple[str, ...], rules: AttentionRules, checks: bool,
                 pool: WorkerPool) -> None:
        """``checks``: the attention checks run (a face's pose then says whether it faces the camera)."""
        self.cfg = section
        self.labels = labels
        self.rules = rules
        self.checks = checks
        self.pool = pool
        self.faces: dict[int, EmotionFace] = {}
        self.timer = StageTimer()
        self.credit = Credit()  # worker time granted and not yet spent (live)
        self.cost = CostEstimate(FIRST_EMOTION_MS)
        self.inferences = 0
        self.failures = 0  # readings the interpreter refused (a kernel's check on a face's values)
        self._pending: tuple[float, list[int], Pending] | None = None  # inferences on the workers
        self.rates = Rates()
        self.window = EmotionWindow()

    def demand_ms(self) -> float:
        return self.cfg.emotion_hz * self.cost.ms

    def target(self) -> RateTarget:
        return RateTarget("emotion_reads_per_face_s", "[emotion] emotion_hz", self.cfg.emotion_hz)

    def face(self, track_id: int) -> EmotionFace:
        ef = self.faces.get(track_id)
        if ef is None:
            ef = self.faces[track_id] = EmotionFace(
                EmotionSmoother(self.labels, self.cfg.smoothing, self.cfg.min_confidence))
        return ef

    def forget(self, track_id: int) -> None:
        self.faces.pop(track_id, None)

    def _unreadable(self, tr: Track, st: FaceState) -> str:
        """Why the model cannot read this face now ("" when it can). The eyes do not matter: eyes
        squeezed shut by a laugh are still a happy face."""
        if st.reason == PROFILE:
            return TURNED
        if self.checks and (st.angles is None or not self.rules.facing_camera(st.angles[0], st.angles[1])):
            return TURNED
        if min(tr.box[2], tr.box[3]) < self.cfg.min_face_px:
            return TOO_SMALL
        return ""

    def submit(self, gray: np.ndarray, t: float, faces: FaceStage, reading: ReadingStage,
               budget_ms: float | None, cap_ms: float = 0.0) -> None:
        """Pick the readable faces due now and start their inferences on the workers."""
        tracks: dict[int, Track] = {}
        for tr in faces.confirmed():
            st = reading.state(tr.id)
            if st is None or st.attention.state in (None, ABSENT) or not faces.fresh(tr, t):
                continue
            ef = self.face(tr.id)
            ef.unread_reason = self._unreadable(tr, st)
            if ef.unread_reason:
                continue
            self.rates.present(tr.id, t)
            tracks[tr.id] = tr
        cands = [Candidate(k, self.faces[k].last_t, self.cfg.emotion_hz) for k in tracks]
        chosen = sorted(c.key for c in pick_with(self.credit, cands, t, budget_ms, cap_ms, self.cost.ms))
        if not chosen:
            return
        for k in chosen:
            self.faces[k].last_t = t
        pending = self.pool.submit(lambda kit, box: _classify(kit.emotion, gray, box), [tracks[k].box for k in chosen])
        self._pending = (t, chosen, pending)

    def collect(self) -> list[Event]:
        """Fold in the inferences ``submit`` started, in track order (a face forgotten meanwhile skipped)."""
        if self._pending is None:
            return []
        t, chosen, pending = self._pending
        self._pending = None
        results = pending.timed()
        for _, ms in results:
            self.timer.add(ms)
            self.cost.add(ms)
        events: list[Event] = []
        summary = self.window
        for k, (result, _) in zip(chosen, results, strict=True):
            ef = self.faces.get(k)
            if isinstance(result, RuntimeError):
                self._failed(result)
                continue
            if ef is None:
                continue
            self.inferences += 1
            self.rates.read(k)
            change = ef.smoother.update(result.probs)
            summary.readings += 1
            summary.unsure_readings += int(ef.smoother.unsure)
            if change is not None:
                label, previous = change
                events.append(EmotionChange(k, label, previous, ef.smoother.as_dict(), t))
        return events

    def _failed(self, exc: RuntimeError) -> None:
        """A reading the interpreter refused is skipped, not the service stopped: one face's values (an
        int8 division by a sum that rounds to zero) say nothing of the next. Logged at the first and then
        at every hundredth, with the count."""
        self.failures += 1
        if self.failures == 1 or self.failures % 100 == 0:
            log.warning("the emotion model failed on a face (%d so far; the reading is skipped): %s",
                        self.failures, exc)

    # -- summary, records, metrics -------------------------------------------------------------------
    def add_face_time(self, track_id: int, dt: float) -> None:
        """A present face's frame interval: under its current emotion, unsure, or unread (a turned or
        tiny face keeps its last reading, which is not what it shows now)."""
        w = self.window
        ef = self.face(track_id)
        if ef.unread_reason:
            w.unread_faces[ef.unread_reason].add(track_id)
        elif ef.smoother.unsure:
            w.read.add(track_id)
            w.unsure_s += dt
        elif ef.smoother.current is not None:
            w.read.add(track_id)
            w.emotion_s[ef.smoother.current] += dt

    def take_summary(self) -> dict[str, Any]:
        """The summary's emotion fields (of the faces seen: whose emotion was read, and those that were
        not readable at some moment, so a hub can tell 2 readable faces from a room of 26)."""
        w, self.window = self.window, EmotionWindow()
        total = sum(w.emotion_s.values())
        return {
            "faces_read": len(w.read),
            "faces_turned": len(w.unread_faces[TURNED]),
            "faces_too_small": len(w.unread_faces[TOO_SMALL]),
            "emotion_share": {lab: round(w.emotion_s.get(lab, 0.0) / total, 4) if total > 0 else 0.0
                              for lab in self.labels},
            # readings under [emotion] min_confidence are not called: counted here, in no emotion's share
            "emotion_readings": w.readings,
            "emotion_unsure": w.unsure_readings,
            "emotion_unsure_s": round(w.unsure_s, 3),
        }

    def record_fields(self, track_id: int) -> dict[str, Any]:
        """The record's emotion, its probabilities and whether it was too unsure to call; or why the
        face was not read (a turned or tiny face's last reading is not shown as current)."""
        ef = self.faces.get(track_id)
        smoother = ef.smoother if ef is not None else None
        current = ef is not None and not ef.unread_reason
        probs = smoother is not None and current and smoother.probs is not None
        return {
            "emotion": smoother.called if smoother is not None and current else None,
            "probs": smoother.as_dict() if probs else None,  # type: ignore[union-attr]
            "emotion_skipped": (ef.unread_reason or None) if ef is not None else None,
            "emotion_unsure": smoother.unsure if probs else None,  # type: ignore[union-attr]
        }

    def take_metrics(self, t: float, run: bool = False) -> dict[str, Any]:
        """inferences, and emotion_reads_per_face_s over the faces it could read since the last call
        (``run``: since the start, and nothing reset)."""
        rate = self.rates.take(t, run)
        return {"inferences": self.inferences, "emotion_reads_per_face_s": rate}


def _classify(model: Any, gray: np.ndarray, box: tuple[int, int, int, int]) -> Any:
    """The model's reading of the face at ``box``, or the interpreter's RuntimeError, handed back for
    ``collect`` to count (a worker thread must not end the frame's other readings)."""
    try:
        return model.classify(gray, box)
    except RuntimeError as exc:
        return exc
