"""The summary accumulator: face-time per state and emotion over a window, closed every ``summary_s``.

Time is face-time: each frame adds its interval to every face present, so a summary's shares are of
the time faces were there, at whatever rate they were read. Blinks are counted only where a face was
read often enough to see them (a blink lasts 0.1-0.4 s), and the summary says over how much face-time
that was (``blink_face_time_s``), so a classroom read three times a second does not report "no blinks".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from emocast.contract.events import SUMMARY

from ...config import EventsSection
from ..attention import ABSENT, ATTENTIVE, EYES_CLOSED, LOOKING_AWAY
from .emotion import TOO_SMALL, TURNED, EmotionSampler, EmotionWindow
from .faces import FaceStage
from .reading import BLINK_GAP_S, ReadingStage

Event = tuple[str, dict[str, Any]]


@dataclass
class SummaryWindow:
    """Face-time accumulated since the last summary."""

    start_t: float
    face_time_s: float = 0.0
    blink_time_s: float = 0.0  # face-time read at a rate that sees blinks
    state_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    emotion_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    tracks: set[int] = field(default_factory=set)
    unread: dict[str, set[int]] = field(default_factory=lambda: {TURNED: set(), TOO_SMALL: set()})
    no_face: set[int] = field(default_factory=set)  # tracks whose boxes the landmark model found no face in
    frames: int = 0
    blinks: int = 0
    emotion: EmotionWindow = field(default_factory=EmotionWindow)
    unsure_s: float = 0.0  # face time whose smoothed reading was too unsure to call


class SummaryAccumulator:
    def __init__(self, section: EventsSection, checks: bool) -> None:
        """``checks``: the attention checks run (without them there are no blinks to count)."""
        self.cfg = section
        self.checks = checks
        self.window: SummaryWindow | None = None
        self._prev_t: float | None = None

    def start(self, t: float) -> SummaryWindow:
        if self.window is None:
            self.window = SummaryWindow(start_t=t)
        return self.window

    def add(self, t: float, faces: FaceStage, reading: ReadingStage, emotion: EmotionSampler | None) -> None:
        """One frame's interval of face-time for every face present."""
        dt = 0.0 if self._prev_t is None else min(1.0, max(0.0, t - self._prev_t))
        self._prev_t = t
        w = self.start(t)
        w.frames += 1
        w.no_face.update(reading.not_faces)
        for tr in faces.tracker.tracks.values():
            st = reading.state(tr.id)
            if not tr.confirmed or st is None or st.attention.state in (None, ABSENT):
                continue
            w.blinks += st.eyes.blinks - st.blinks_seen
            st.blinks_seen = st.eyes.blinks
            if not faces.fresh(tr, t):  # gone, not yet declared absent: not face time
                continue
            w.tracks.add(tr.id)
            w.face_time_s += dt
            if st.read_gap_s is not None and st.read_gap_s <= BLINK_GAP_S:
                w.blink_time_s += dt
            w.state_s[st.attention.state] += dt
            if emotion is None:
                continue
            ef = emotion.face(tr.id)
            if ef.unread:  # a turned or tiny face keeps its last reading, which is not what it shows now
                w.unread[ef.unread].add(tr.id)
            elif ef.smoother.unsure:
                w.emotion.read.add(tr.id)
                w.unsure_s += dt
            elif ef.smoother.current is not None:
                w.emotion.read.add(tr.id)
                w.emotion_s[ef.smoother.current] += dt

    def due(self, t: float) -> bool:
        return self.window is not None and t - self.window.start_t >= self.cfg.summary_s

    def take(self, t: float, faces_now: int, labels: tuple[str, ...] | None,
             extra: dict[str, Any] | None = None) -> Event:
        """Close the current window into a summary body and start the next one. ``labels``: the
        emotion model's (None: emotion off, and no emotion key at all)."""
        w = self.window or SummaryWindow(start_t=t)
        total_emotion = sum(w.emotion_s.values())

        def share(state: str) -> float | None:
            return round(w.state_s.get(state, 0.0) / w.face_time_s, 4) if w.face_time_s > 0 else None

        body: dict[str, Any] = {
            "window_s": round(max(0.0, t - w.start_t), 3),
            "frames": w.frames,
            "faces_seen": len(w.tracks),
            "faces_now": faces_now,
            # of faces_seen: whose emotion was read, and those that were not readable (turned away,
            # too small) at some moment: a hub can tell 2 readable faces from a room of 26
            "faces_read": len(w.emotion.read),
            "faces_turned": len(w.unread[TURNED]),
            "faces_too_small": len(w.unread[TOO_SMALL]),
            "boxes_without_face": len(w.no_face - w.tracks),
            "face_time_s": round(w.face_time_s, 3),
            "attentive_share": share(ATTENTIVE),
            "looking_away_share": share(LOOKING_AWAY),
            "eyes_closed_share": share(EYES_CLOSED),
            "blinks": w.blinks,
            "blink_face_time_s": round(w.blink_time_s, 3) if self.checks else 0.0,
            "blink_rate_per_min": round(w.blinks / (w.blink_time_s / 60.0), 2)
            if self.checks and w.blink_time_s >= 1.0 else None,
            **({} if labels is None else {  # emotion off: no emotion key at all
                "emotion_share": {lab: round(w.emotion_s.get(lab, 0.0) / total_emotion, 4) if total_emotion > 0
                                  else 0.0 for lab in labels},
                # readings under [emotion] min_confidence are not called: counted here, in no emotion's share
                "emotion_readings": w.emotion.readings,
                "emotion_unsure": w.emotion.unsure_readings,
                "emotion_unsure_s": round(w.unsure_s, 3),
            }),
            **(extra or {}),
        }
        self.window = SummaryWindow(start_t=t)
        return SUMMARY, body
