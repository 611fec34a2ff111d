"""Per-frame analysis: faces -> tracks -> attention states and sampled emotion -> event bodies.

One Analyzer serves the service (camera in, MQTT out) and offline analysis (file in, records out):
only the source and the sink differ. It is single-threaded and holds all per-face state; time comes
from the frame (media time for files), so a recording analysed at any speed gives the same events.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from emocast.contract.events import ATTENTION, EMOTION, SUMMARY

from ..config import Config
from . import calibration
from .attention import (
    ABSENT,
    ATTENTIVE,
    EYES_CLOSED,
    LID_POSE_MARGIN_DEG,
    LOOKING_AWAY,
    AttentionRules,
    AttentionStateMachine,
    EyeMonitor,
    StateChange,
)
from .capture import Frame
from .detectors import landmark_box
from .emotion import EmotionModel, EmotionSmoother
from .face_geometry import HeadPose
from .face_reading import FaceReader, FaceReading
from .faces import (
    FaceDetector,
    FaceTracker,
    ProfileFinder,
    Track,
    appearance,
    detect_faces,
    scene_changed,
    thumbnail,
)

Event = tuple[str, dict[str, Any]]  # (kind, body)

log = logging.getLogger(__name__)

# Why a face's emotion is not read now (analyze records and summary counts say so, not hide it).
TURNED = "turned"  # a profile, or the head turned past the limits: the model was trained on frontal faces
TOO_SMALL = "too_small"  # under [emotion] min_face_px: too few pixels for the model to read


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
    state_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    emotion_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    tracks: set[int] = field(default_factory=set)
    read: set[int] = field(default_factory=set)  # tracks whose emotion was read in this window
    unread: dict[str, set[int]] = field(default_factory=lambda: {TURNED: set(), TOO_SMALL: set()})
    no_face: set[int] = field(default_factory=set)  # tracks whose boxes the landmark model found no face in
    frames: int = 0
    blinks: int = 0
    readings: int = 0  # emotion inferences in the window
    unsure_readings: int = 0  # of them, those whose smoothed reading was too unsure to call
    unsure_s: float = 0.0  # face time whose smoothed reading was too unsure to call


@dataclass
class FaceState:
    """What the analyzer keeps per track (anonymous, in memory only, gone when the track ends)."""

    attention: AttentionStateMachine
    smoother: EmotionSmoother | None
    eyes: EyeMonitor
    last_emotion_t: float = float("-inf")
    pose: HeadPose | None = None  # last solved pose, seeds the next solve
    angles: np.ndarray | None = None  # smoothed yaw, pitch, roll
    reading: FaceReading | None = None
    reason: str = ""
    blinks_seen: int = 0
    checked_t: float = float("-inf")  # when the landmark checks last ran
    unread: str = ""  # TURNED, TOO_SMALL, or "" while the emotion model can read the face


class Analyzer:
    def __init__(self, cfg: Config, detector: FaceDetector, model: EmotionModel | None,
                 reader: FaceReader | None = None, keep_records: bool = False) -> None:
        """``reader`` does the landmark checks (built from the config when ``attention.checks``);
        ``keep_records`` makes ``process`` keep per-face records for offline analysis."""
        self.cfg = cfg
        a = cfg.attention
        self.detector = detector
        self._landmark_box = landmark_box(detector)  # the box geometry the landmark model expects
        self.model = model
        self.tracker = FaceTracker(match_iou=cfg.faces.match_iou, min_hits=cfg.faces.min_hits,
                                   min_similarity=cfg.faces.min_similarity)
        self._thumb: np.ndarray | None = None  # the frame at the last detection, 32x24, for cuts
        self.detect_period = 1.0 / cfg.faces.detect_hz
        self.emotion_period = 1.0 / cfg.emotion.emotion_hz if cfg.emotion.emotion_hz > 0 else float("inf")
        self.timers = {"detect": StageTimer(), "attention": StageTimer(), "emotion": StageTimer(),
                       "frame": StageTimer()}
        self.rules = AttentionRules.from_config(a, calibration.load(a.calibration) if a.calibration else None)
        if reader is None and a.checks:
            reader = FaceReader(a.focal_px, a.gaze, landmarks=a.landmarks, eyes=a.eyes)
        self.reader = reader
        self.profiles = ProfileFinder() if self.reader is not None else None
        self.landmark_period = 1.0 / a.landmarks_hz if a.landmarks_hz > 0 else float("inf")
        self.dwell = {ATTENTIVE: a.attentive_s, LOOKING_AWAY: a.looking_away_s, EYES_CLOSED: a.eyes_closed_s,
                      ABSENT: 0.0}  # absence is timed by the tracker (absent_s)
        self.keep_records = keep_records
        self.records: list[dict[str, Any]] = []
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
        self.records = []
        events: list[Event] = []
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        detected = t - self._last_detect_t >= self.detect_period * 0.999
        if detected:
            self._last_detect_t = t
            d0 = time.perf_counter()
            thumb = thumbnail(gray)
            if scene_changed(self._thumb, thumb, self.cfg.faces.scene_cut):
                # a cut or a moved camera: whoever is in view now is not who was; every track ends
                events.extend(self._end_all(t, "cut"))
            self._thumb = thumb
            boxes = detect_faces(self.detector, gray, self.cfg.faces.detect_width, self.cfg.faces.min_face_px)
            touched = self.tracker.update(boxes, t, [appearance(gray, b) for b in boxes])
            for tid in self.tracker.duplicates():
                events.extend(self._end(self.tracker.tracks[tid], t, "merged"))
            touched = [tr for tr in touched if tr.id in self.tracker.tracks]
            self.timers["detect"].add((time.perf_counter() - d0) * 1000)
            a0 = time.perf_counter()
            for tr in touched:
                if tr.confirmed:
                    events.extend(self._check(gray, tr, t))
            events.extend(self._profiles(gray, t, {tr.id for tr in touched}))
            if touched:
                self.timers["attention"].add((time.perf_counter() - a0) * 1000)
        elif self.reader is not None and self.landmark_period < float("inf"):
            events.extend(self._between_detections(gray, t))
        events.extend(self._expire(t))
        events.extend(self._emotions(gray, t))
        self._accumulate(t)
        if self.keep_records:
            self.records = [self._record(tr, frame) for tr in self.tracker.tracks.values()
                            if tr.confirmed and tr.id in self._faces
                            and (tr.last_seen_t == t or self._faces[tr.id].checked_t == t)]
        self.frames += 1
        self.timers["frame"].add((time.perf_counter() - t0) * 1000)
        return events

    def idle(self, t: float) -> list[Event]:
        """Time passing without frames (a lost camera): tracks unseen for absent_s turn absent."""
        return self._expire(t)

    def _face(self, tr: Track) -> FaceState:
        st = self._faces.get(tr.id)
        if st is None:
            smoother = None
            if self.model is not None:
                e = self.cfg.emotion
                smoother = EmotionSmoother(self.model.labels, e.smoothing, e.min_confidence)
            a = self.cfg.attention
            lid_cue = a.downcast_lids and self.reader is not None and self.reader.reads_lids
            eyes = EyeMonitor(a.ear_closed, a.closed_ratio, a.blink_max_s, iris_closed=a.iris_closed,
                              signal=self.reader.eye_signal if self.reader is not None else "ear",
                              model_closed=a.model_closed, downcast_lid=a.downcast_lid if lid_cue else None)
            st = FaceState(AttentionStateMachine(self.dwell), smoother, eyes)
            self._faces[tr.id] = st
        return st

    def _check(self, gray: np.ndarray, tr: Track, t: float) -> list[Event]:
        """Read a confirmed track's face (at its detection, or between detections at landmarks_hz)
        and propose its state."""
        st = self._face(tr)
        when = tr.first_t if st.attention.state is None else t  # a track's first state began at its first sighting
        if self.reader is None:
            return self._observe(tr, ATTENTIVE, when, "")
        # with EAR as the signal, the iris model judges a face's eyes until it has its own baseline
        lids_from = None
        if st.eyes.downcast_lid is not None:  # the lower lids on closures, and on a few open readings
            lids_from = 0.0 if st.eyes.wants_lid_sample(t) else self.cfg.attention.model_closed
        reading = self.reader.read(gray, self._landmark_box(tr.box), st.pose, iris=st.eyes.needs_iris,
                                   lids_from=lids_from)
        if st.attention.state is None and self._not_a_face(reading):
            self._faces.pop(tr.id)  # nothing reported or recorded until a check finds a face here
            if self.window is not None:
                self.window.no_face.add(tr.id)  # but counted: it may be a face hidden behind a hand
            return []
        st.reading = reading
        st.checked_t = t
        if reading.pose is None:
            return []
        st.pose = reading.pose
        angles = np.array([reading.pose.yaw, reading.pose.pitch, reading.pose.roll])
        k = self.cfg.attention.pose_smoothing
        st.angles = angles if st.angles is None else k * st.angles + (1.0 - k) * angles
        yaw, pitch = float(st.angles[0]), float(st.angles[1])
        lower_lid = reading.lower_lid
        if lower_lid is not None and self.rules.head_away(yaw, pitch, LID_POSE_MARGIN_DEG):
            lower_lid = None  # a turned head's lids are foreshortened: no baseline, no comparison
        closed = st.eyes.update(reading.ear, t, reading.iris_openness, reading.closed_p, lower_lid)
        gaze = None if closed or reading.gaze is None else (reading.gaze.h, reading.gaze.v)
        state, st.reason = self.rules.propose(yaw, pitch, closed, gaze, st.attention.state,
                                              downcast=st.eyes.downcast)
        return self._observe(tr, state, when, st.reason)

    def _not_a_face(self, reading: FaceReading) -> bool:
        """The landmark model found no face in the box (Face Mesh's presence under ``min_presence``):
        on the crowd clip the detector's boxes on hair, a jacket and the back of a head score 0.00, the
        faces 0.29-1.00 at their lowest (a head bowed 19 degrees: 0.47 at the median). Asked only
        before a track's first state, so a counted face bowing or half hidden stays counted."""
        return reading.presence is not None and reading.presence < self.cfg.faces.min_presence

    def _between_detections(self, gray: np.ndarray, t: float) -> list[Event]:
        """Landmark checks at ``landmarks_hz`` on frames without detection, on each face's last
        detected box (a face moves little in a tenth of a second; dlib's predictor copes): eye and
        gaze readings at camera rate catch short blinks that 10 Hz detection would miss."""
        events: list[Event] = []
        a0 = time.perf_counter()
        checked = 0
        for tr in list(self.tracker.tracks.values()):
            st = self._faces.get(tr.id)
            if (st is None or not tr.confirmed or st.reason == "profile" or st.attention.state in (None, ABSENT)
                    or t - tr.last_seen_t > 2 * self.detect_period or t - st.checked_t < self.landmark_period * 0.999):
                continue
            events.extend(self._check(gray, tr, t))
            checked += 1
        if checked:
            self.timers["attention"].add((time.perf_counter() - a0) * 1000)
        return events

    def _profiles(self, gray: np.ndarray, t: float, touched: set[int]) -> list[Event]:
        """Confirmed tracks the frontal detector missed: a profile face near them keeps them alive,
        looking away."""
        if self.profiles is None:
            return []
        events: list[Event] = []
        for tr in list(self.tracker.tracks.values()):
            st = self._faces.get(tr.id)
            if tr.id in touched or not tr.confirmed or st is None or st.attention.state is None:
                continue
            box = self.profiles.find(gray, tr.box)
            if box is None:
                continue
            tr.box, tr.last_seen_t = box, t
            st.reading, st.pose, st.angles, st.reason = None, None, None, "profile"
            events.extend(self._observe(tr, LOOKING_AWAY, t, "profile"))
        return events

    def _observe(self, tr: Track, proposed: str, t: float, reason: str) -> list[Event]:
        change = self._face(tr).attention.observe(proposed, t)
        if change is None:
            return []
        log.debug("track %d: %s -> %s%s at %.2f s", tr.id, change.previous, change.state,
                  f" ({reason})" if reason else "", change.t)  # a number and a state, never a box
        return [(ATTENTION, self._attention_body(tr, change, reason))]

    @staticmethod
    def _attention_body(tr: Track, ch: StateChange, reason: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "track": tr.id,
            "state": ch.state,
            "previous": ch.previous,
            "previous_duration_s": round(ch.previous_duration_s, 3),
            "source_t": round(ch.t, 3),
        }
        if reason:
            body["reason"] = reason
        return body

    def _end(self, tr: Track, t: float, reason: str) -> list[Event]:
        """A track is over: absent (if it ever counted) with the reason, and forgotten (its state and
        appearance go with it)."""
        st = self._faces.get(tr.id)
        counted = tr.confirmed and st is not None and st.attention.state is not None
        events = self._observe(tr, ABSENT, t, reason) if counted else []
        self.tracker.drop(tr.id)
        self._faces.pop(tr.id, None)
        return events

    def _end_all(self, t: float, reason: str) -> list[Event]:
        events: list[Event] = []
        for tr in list(self.tracker.tracks.values()):
            events.extend(self._end(tr, t, reason))
        return events

    def _expire(self, t: float) -> list[Event]:
        """A track unseen for ``absent_s`` turns absent (if it ever counted) and is forgotten."""
        events: list[Event] = []
        for tr in list(self.tracker.tracks.values()):
            if t - tr.last_seen_t >= self.cfg.attention.absent_s:
                events.extend(self._end(tr, tr.last_seen_t, "lost"))
        return events

    def _unreadable(self, tr: Track, st: FaceState) -> str:
        """Why the emotion model cannot read this face now ("" when it can). The eyes do not matter:
        eyes squeezed shut by a laugh are still a happy face."""
        if st.reason == "profile":
            return TURNED
        if self.reader is not None and (st.angles is None or
                                        not self.rules.facing_camera(st.angles[0], st.angles[1])):
            return TURNED
        if min(tr.box[2], tr.box[3]) < self.cfg.emotion.min_face_px:
            return TOO_SMALL
        return ""

    def _emotions(self, gray: np.ndarray, t: float) -> list[Event]:
        if self.model is None:
            return []
        events: list[Event] = []
        for tr in self.tracker.tracks.values():
            st = self._faces.get(tr.id)
            if st is None or not tr.confirmed or st.attention.state in (None, ABSENT) or st.smoother is None:
                continue
            if t - tr.last_seen_t > 2 * self.detect_period:  # box is stale: the face may have moved
                continue
            st.unread = self._unreadable(tr, st)
            if st.unread:
                continue
            if t - st.last_emotion_t < self.emotion_period * 0.999:
                continue
            st.last_emotion_t = t
            e0 = time.perf_counter()
            result = self.model.classify(gray, tr.box)
            self.timers["emotion"].add((time.perf_counter() - e0) * 1000)
            self.inferences += 1
            change = st.smoother.update(result.probs)
            if self.window is not None:
                self.window.readings += 1
                self.window.unsure_readings += int(st.smoother.unsure)
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

    def _record(self, tr: Track, frame: Frame) -> dict[str, Any]:
        """What ``emocast analyze`` writes for one face on one processed frame (stays on the machine)."""
        st = self._faces[tr.id]
        r = st.reading
        angles = st.angles
        smoother = st.smoother
        current = smoother is not None and not st.unread  # a turned or tiny face keeps a stale reading
        return {
            "t": round(frame.t, 3),
            "frame": frame.index,
            "track": tr.id,
            "box": [int(v) for v in tr.box],
            "head_pose": None if angles is None else dict(zip(("yaw", "pitch", "roll"),
                                                              (round(float(a), 1) for a in angles), strict=True)),
            "eye_openness": None if r is None else round(st.eyes.openness(r.ear, r.iris_openness, r.closed_p), 3),
            "ear": None if r is None else round(r.ear, 3),
            "eyes_closed": None if r is None else st.eyes.closed,
            "gaze": None if r is None or r.gaze is None or st.eyes.closed else r.gaze.as_dict(),
            "attention": st.attention.state,
            "reason": st.reason,
            **({} if self.model is None else {  # emotion off: not a key of it, not even a null
                "emotion": smoother.called if current else None,  # type: ignore[union-attr]
                "probs": smoother.as_dict() if current and smoother.probs is not None else None,  # type: ignore[union-attr]
                "emotion_skipped": (st.unread or None) if smoother is not None else None,
                "emotion_unsure": smoother.unsure if current and smoother.probs is not None else None,  # type: ignore[union-attr]
            }),
        }

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
            w.blinks += st.eyes.blinks - st.blinks_seen
            st.blinks_seen = st.eyes.blinks
            if t - tr.last_seen_t > 2 * self.detect_period:  # gone, not yet declared absent: not face time
                continue
            w.tracks.add(tr.id)
            w.face_time_s += dt
            w.state_s[st.attention.state] += dt
            if st.smoother is None:
                continue
            if st.unread:  # a turned or tiny face keeps its last reading, which is not what it shows now
                w.unread[st.unread].add(tr.id)
            elif st.smoother.unsure:
                w.read.add(tr.id)
                w.unsure_s += dt
            elif st.smoother.current is not None:
                w.read.add(tr.id)
                w.emotion_s[st.smoother.current] += dt

    def summary_due(self, t: float) -> bool:
        return self.window is not None and t - self.window.start_t >= self.cfg.events.summary_s

    def take_summary(self, t: float, extra: dict[str, Any] | None = None) -> Event:
        """Close the current window into a summary body and start the next one."""
        w = self.window or SummaryWindow(start_t=t)
        labels = self.model.labels if self.model is not None else ()
        total_emotion = sum(w.emotion_s.values())

        def share(state: str) -> float | None:
            return round(w.state_s.get(state, 0.0) / w.face_time_s, 4) if w.face_time_s > 0 else None

        body: dict[str, Any] = {
            "window_s": round(max(0.0, t - w.start_t), 3),
            "frames": w.frames,
            "faces_seen": len(w.tracks),
            "faces_now": sum(1 for tr in self.tracker.tracks.values() if tr.confirmed),
            # of faces_seen: whose emotion was read, and those that were not readable (turned away,
            # too small) at some moment: a hub can tell 2 readable faces from a room of 26
            "faces_read": len(w.read),
            "faces_turned": len(w.unread[TURNED]),
            "faces_too_small": len(w.unread[TOO_SMALL]),
            "boxes_without_face": len(w.no_face - w.tracks),
            "face_time_s": round(w.face_time_s, 3),
            "attentive_share": share(ATTENTIVE),
            "looking_away_share": share(LOOKING_AWAY),
            "eyes_closed_share": share(EYES_CLOSED),
            "blinks": w.blinks,
            "blink_rate_per_min": round(w.blinks / (w.face_time_s / 60.0), 2)
            if self.reader is not None and w.face_time_s >= 1.0 else None,
            **({} if self.model is None else {  # emotion off: no emotion key at all
                "emotion_share": {lab: round(w.emotion_s.get(lab, 0.0) / total_emotion, 4) if total_emotion > 0
                                  else 0.0 for lab in labels},
                # readings under [emotion] min_confidence are not called: counted here, in no emotion's share
                "emotion_readings": w.readings,
                "emotion_unsure": w.unsure_readings,
                "emotion_unsure_s": round(w.unsure_s, 3),
            }),
            **(extra or {}),
        }
        self.window = SummaryWindow(start_t=t)
        return SUMMARY, body
