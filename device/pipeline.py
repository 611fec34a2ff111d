"""Per-frame analysis: faces -> tracks -> attention states and sampled emotion -> event bodies.

One Analyzer serves the service (camera in, MQTT out) and offline analysis (file in, records out):
only the source and the sink differ. It is single-threaded and holds all per-face state; time comes
from the frame (media time for files), so a recording analysed at any speed gives the same events.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .attention import ABSENT, ATTENTIVE, AttentionStateMachine, StateChange
from .capture import Frame
from .config import Config
from .emotion import EmotionModel, EmotionSmoother
from .events import ATTENTION, EMOTION, SUMMARY
from .faces import FaceDetector, FaceTracker, Track, detect_faces

Event = tuple[str, dict[str, Any]]  # (kind, body)


class StageTimer:
    """Recent latencies of one stage, for p50/p95 in metrics and benchmarks."""

    def __init__(self, size: int = 512) -> None:
        self.samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, ms: float) -> None:
        self.samples.append(ms)
        self.count += 1

    def percentiles(self) -> dict[str, float]:
        if not self.samples:
            return {"p50": 0.0, "p95": 0.0, "n": 0}
        arr = np.fromiter(self.samples, dtype=np.float64)
        return {"p50": round(float(np.percentile(arr, 50)), 3), "p95": round(float(np.percentile(arr, 95)), 3),
                "n": self.count}


@dataclass
class SummaryWindow:
    """Face-time accumulated since the last summary."""

    start_t: float
    face_time_s: float = 0.0
    attentive_s: float = 0.0
    emotion_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    tracks: set[int] = field(default_factory=set)
    frames: int = 0


@dataclass
class FaceState:
    """What the analyzer keeps per track (anonymous, in memory only, gone when the track ends)."""

    attention: AttentionStateMachine
    smoother: EmotionSmoother | None
    last_emotion_t: float = float("-inf")


class Analyzer:
    def __init__(self, cfg: Config, detector: FaceDetector, model: EmotionModel | None) -> None:
        self.cfg = cfg
        self.detector = detector
        self.model = model
        self.tracker = FaceTracker(match_iou=cfg.faces.match_iou, min_hits=cfg.faces.min_hits)
        self.detect_period = 1.0 / cfg.faces.detect_hz
        self.emotion_period = 1.0 / cfg.emotion.emotion_hz if cfg.emotion.emotion_hz > 0 else float("inf")
        self.timers = {"detect": StageTimer(), "emotion": StageTimer(), "frame": StageTimer()}
        self._last_detect_t = float("-inf")
        self._prev_t: float | None = None
        self._faces: dict[int, FaceState] = {}
        self.window: SummaryWindow | None = None
        self.frames = 0
        self.inferences = 0

    # -- per frame -----------------------------------------------------------------------------
    def process(self, frame: Frame) -> list[Event]:
        t0 = time.perf_counter()
        t = frame.t
        if self.window is None:
            self.window = SummaryWindow(start_t=t)
        events: list[Event] = []
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        if t - self._last_detect_t >= self.detect_period * 0.999:
            self._last_detect_t = t
            d0 = time.perf_counter()
            boxes = detect_faces(self.detector, gray, self.cfg.faces.detect_width, self.cfg.faces.min_face_px)
            self.timers["detect"].add((time.perf_counter() - d0) * 1000)
            for tr in self.tracker.update(boxes, t):
                if tr.confirmed:
                    new = self._face(tr).attention.state is None  # a track's first state began at its first sighting
                    events.extend(self._observe(tr, ATTENTIVE, tr.first_t if new else tr.last_seen_t))
        events.extend(self._expire(t))
        events.extend(self._emotions(gray, t))
        self._accumulate(t)
        self.frames += 1
        self.timers["frame"].add((time.perf_counter() - t0) * 1000)
        return events

    def _face(self, tr: Track) -> FaceState:
        st = self._faces.get(tr.id)
        if st is None:
            smoother = None
            if self.model is not None:
                e = self.cfg.emotion
                smoother = EmotionSmoother(self.model.labels, e.smoothing, e.min_confidence)
            st = FaceState(AttentionStateMachine({ABSENT: 0.0}), smoother)
            self._faces[tr.id] = st
        return st

    def _observe(self, tr: Track, proposed: str, t: float) -> list[Event]:
        change = self._face(tr).attention.observe(proposed, t)
        return [] if change is None else [(ATTENTION, self._attention_body(tr, change))]

    @staticmethod
    def _attention_body(tr: Track, ch: StateChange) -> dict[str, Any]:
        return {
            "track": tr.id,
            "state": ch.state,
            "previous": ch.previous,
            "previous_duration_s": round(ch.previous_duration_s, 3),
            "source_t": round(ch.t, 3),
        }

    def _expire(self, t: float) -> list[Event]:
        """A track unseen for ``absent_s`` turns absent (if it ever counted) and is forgotten."""
        events: list[Event] = []
        for tr in list(self.tracker.tracks.values()):
            if t - tr.last_seen_t < self.cfg.attention.absent_s:
                continue
            if tr.confirmed:
                events.extend(self._observe(tr, ABSENT, tr.last_seen_t))
            self.tracker.drop(tr.id)
            self._faces.pop(tr.id, None)
        return events

    def _emotions(self, gray: np.ndarray, t: float) -> list[Event]:
        if self.model is None:
            return []
        events: list[Event] = []
        for tr in self.tracker.tracks.values():
            st = self._faces.get(tr.id)
            if st is None or not tr.confirmed or st.attention.state != ATTENTIVE or st.smoother is None:
                continue
            if t - tr.last_seen_t > 2 * self.detect_period:  # box is stale: the face may have moved
                continue
            if t - st.last_emotion_t < self.emotion_period * 0.999:
                continue
            st.last_emotion_t = t
            e0 = time.perf_counter()
            result = self.model.classify(gray, tr.box)
            self.timers["emotion"].add((time.perf_counter() - e0) * 1000)
            self.inferences += 1
            change = st.smoother.update(result.probs)
            if change is not None:
                label, previous = change
                events.append((EMOTION, {
                    "track": tr.id,
                    "emotion": label,
                    "previous": previous,
                    "confidence": round(float(st.smoother.probs.max()), 4),  # type: ignore[union-attr]
                    "probs": st.smoother.as_dict(),
                    "source_t": round(t, 3),
                }))
        return events

    # -- summary -------------------------------------------------------------------------------
    def _accumulate(self, t: float) -> None:
        dt = 0.0 if self._prev_t is None else min(1.0, max(0.0, t - self._prev_t))
        self._prev_t = t
        w = self.window
        assert w is not None
        w.frames += 1
        for tr in self.tracker.tracks.values():
            st = self._faces.get(tr.id)
            if not tr.confirmed or st is None or st.attention.state in (None, ABSENT):
                continue
            if t - tr.last_seen_t > 2 * self.detect_period:  # gone, not yet declared absent: not face time
                continue
            w.tracks.add(tr.id)
            w.face_time_s += dt
            if st.attention.state == ATTENTIVE:
                w.attentive_s += dt
            if st.smoother is not None and st.smoother.current is not None:
                w.emotion_s[st.smoother.current] += dt

    def summary_due(self, t: float) -> bool:
        return self.window is not None and t - self.window.start_t >= self.cfg.events.summary_s

    def take_summary(self, t: float, extra: dict[str, Any] | None = None) -> Event:
        """Close the current window into a summary body and start the next one."""
        w = self.window or SummaryWindow(start_t=t)
        labels = self.model.labels if self.model is not None else ()
        total_emotion = sum(w.emotion_s.values())
        body: dict[str, Any] = {
            "window_s": round(max(0.0, t - w.start_t), 3),
            "frames": w.frames,
            "faces_seen": len(w.tracks),
            "faces_now": sum(1 for tr in self.tracker.tracks.values() if tr.confirmed),
            "face_time_s": round(w.face_time_s, 3),
            "attentive_share": round(w.attentive_s / w.face_time_s, 4) if w.face_time_s > 0 else None,
            "emotion_share": {lab: round(w.emotion_s.get(lab, 0.0) / total_emotion, 4) if total_emotion > 0 else 0.0
                              for lab in labels},
            **(extra or {}),
        }
        self.window = SummaryWindow(start_t=t)
        return SUMMARY, body
