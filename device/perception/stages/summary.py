"""The summary accumulator: face-time per state and emotion over a window, closed every ``summary_s``.

Time is face-time: each frame adds its interval to every face present, so a summary's shares are of
the time faces were there, at whatever rate they were read. Blinks are counted only where a face was
read often enough to see them (a blink lasts 0.1-0.4 s), and the summary says over how much face-time
that was (``blink_face_time_s``), so a classroom read three times a second does not report "no blinks".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from emocast.contract.events import Summary

from ..attention import ABSENT, ATTENTIVE, EYES_CLOSED, LOOKING_AWAY
from ..settings import EventsSection
from .faces import FaceStage
from .optional import OptionalStage
from .reading import BLINK_GAP_S, ReadingStage


@dataclass
class SummaryWindow:
    """Face-time accumulated since the last summary (an optional stage keeps its own part, e.g. emotion's)."""

    start_t: float
    face_time_s: float = 0.0
    blink_time_s: float = 0.0  # face-time read at a rate that sees blinks
    state_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    tracks: set[int] = field(default_factory=set)
    no_face: set[int] = field(default_factory=set)  # tracks whose boxes the landmark model found no face in
    frames: int = 0
    blinks: int = 0


# The emotion sampler's counts of faces, zero where it does not run (emotion off): the keys stay in the
# contract, so a hub reads every summary alike.
NO_EMOTION = {"faces_read": 0, "faces_turned": 0, "faces_too_small": 0}


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

    def add(self, t: float, faces: FaceStage, reading: ReadingStage, optional: Sequence[OptionalStage]) -> None:
        """One frame's interval of face-time for every face present (and to each optional stage)."""
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
            for stage in optional:
                stage.add_face_time(tr.id, dt)

    def due(self, t: float) -> bool:
        return self.window is not None and t - self.window.start_t >= self.cfg.summary_s

    def take(self, t: float, faces_now: int, optional: Sequence[OptionalStage],
             extra: dict[str, Any] | None = None) -> Summary:
        """Close the current window into a summary body and start the next one; each optional stage
        adds its own fields (emotion off: no emotion key at all)."""
        w = self.window or SummaryWindow(start_t=t)

        def share(state: str) -> float | None:
            return round(w.state_s.get(state, 0.0) / w.face_time_s, 4) if w.face_time_s > 0 else None

        body: dict[str, Any] = {
            "window_s": round(max(0.0, t - w.start_t), 3),
            "frames": w.frames,
            "faces_seen": len(w.tracks),
            "faces_now": faces_now,
            **NO_EMOTION,
            "boxes_without_face": len(w.no_face - w.tracks),
            "face_time_s": round(w.face_time_s, 3),
            "attentive_share": share(ATTENTIVE),
            "looking_away_share": share(LOOKING_AWAY),
            "eyes_closed_share": share(EYES_CLOSED),
            "blinks": w.blinks,
            "blink_face_time_s": round(w.blink_time_s, 3) if self.checks else 0.0,
            "blink_rate_per_min": round(w.blinks / (w.blink_time_s / 60.0), 2)
            if self.checks and w.blink_time_s >= 1.0 else None,
        }
        for stage in optional:
            body.update(stage.take_summary())
        body.update(extra or {})
        self.window = SummaryWindow(start_t=t)
        return Summary(body)
