"""Per-face reading: landmarks -> head pose, eyes and gaze -> a proposed state -> the attention state.

Faces are read by schedule, not by frame (``scheduler``): at each detection that finds them and, between
detections, toward ``[attention] read_hz`` readings a second; most overdue first, inside the time a frame
leaves (a room too big for its frames reads its faces in turns). The readings run on the worker pool
(``workers``) and are merged in track order, so the state machines see the same sequence on one worker
as on four. All
per-face state (pose, eye baseline, attention) lives here, in memory, for the life of a track.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from emocast.contract.events import AttentionChange, AttentionState, Event

from ..attention import (
    ABSENT,
    ATTENTIVE,
    EYES_CLOSED,
    LID_POSE_MARGIN_DEG,
    LID_SAMPLE_READS,
    LID_SAMPLE_S,
    LOOKING_AWAY,
    AttentionRules,
    AttentionStateMachine,
    EyeMonitor,
    StateChange,
)
from ..detectors.boxes import Box
from ..face_geometry import HeadPose
from ..face_reading import FaceReader, FaceReading
from ..faces import Track
from ..settings import AttentionSection
from .faces import FaceStage, FaceUpdate
from .scheduler import Candidate, CostEstimate, Credit, pick_with
from .timing import Rates, StageTimer
from .workers import Pending, WorkerPool

log = logging.getLogger(__name__)

PROFILE = "profile"  # the reason of a face seen only by the profile finder
BLINK_GAP_S = 0.15  # a face read further apart than this misses most blinks (0.1-0.4 s)
# a face read that sparsely (a classroom) has the lower lids of a closure read on its first few readings only:
# whether the closure is a downward glance is decided on their mean, and the iris model costs as much as Face Mesh
CLOSURE_LID_SAMPLES = 3
FIRST_READ_MS = 8.0  # a reading's cost before one was measured
MAX_READING_GAP_S = 1.0  # readings further apart are a face that was away, not its reading interval
TRACK_PRESENCE = 0.5  # a reading this sure of its face may move the face's box (a tiled room's tracking)


@dataclass
class FaceState:
    """What the reading stage keeps per track (anonymous, in memory only, gone when the track ends)."""

    attention: AttentionStateMachine
    eyes: EyeMonitor
    pose: HeadPose | None = None  # last solved pose, seeds the next solve
    angles: np.ndarray | None = None  # smoothed yaw, pitch, roll
    reading: FaceReading | None = None
    reason: str = ""
    blinks_seen: int = 0
    checked_t: float = float("-inf")  # when it was last read
    read_gap_s: float | None = None  # a running mean of the time between its readings


@dataclass(frozen=True)
class ReadJob:
    """One face to read, with what its reading needs from its past (prepared on the analysis thread)."""

    track: int
    box: Box
    pose: HeadPose | None
    iris: bool
    lids_from: float | None


class ReadingStage:
    def __init__(self, section: AttentionSection, read_hz: float, rules: AttentionRules, min_presence: float,
                 pool: WorkerPool | None, landmark_box: Callable[[Box], Box], reader: FaceReader | None) -> None:
        """``pool`` of worker kits with a reader each (None: no landmark checks, a face detected is
        attentive); ``reader`` is the first kit's, asked what it can read."""
        self.cfg = section
        self.read_hz = read_hz
        self.rules = rules
        self.min_presence = min_presence
        self.pool = pool
        self.reader = reader
        self._landmark_box = landmark_box
        self.dwell = {ATTENTIVE: section.attentive_s, LOOKING_AWAY: section.looking_away_s,
                      EYES_CLOSED: section.eyes_closed_s, ABSENT: 0.0}  # absence is timed by the faces stage
        self.faces: dict[int, FaceState] = {}
        self.timer = StageTimer()
        self.credit = Credit()  # worker time granted and not yet spent (live)
        self.cost = CostEstimate(FIRST_READ_MS)
        self.not_faces: list[int] = []  # tracks the last step found no face in (for the summary)
        self._pending: tuple[float, list[Track], Pending] | None = None  # readings on the workers
        self.rates = Rates()

    # -- state ---------------------------------------------------------------------------------------
    def state(self, track_id: int) -> FaceState | None:
        return self.faces.get(track_id)

    def counted(self, track_id: int) -> bool:
        """Whether the face has a state (a check found a face in its box)."""
        st = self.faces.get(track_id)
        return st is not None and st.attention.state is not None

    def _face(self, tr: Track) -> FaceState:
        st = self.faces.get(tr.id)
        if st is None:
            a = self.cfg
            lid_cue = a.downcast_lids and self.reader is not None and self.reader.reads_lids
            eyes = EyeMonitor(a.ear_closed, a.closed_ratio, a.blink_max_s, iris_closed=a.iris_closed,
                              signal=self.reader.eye_signal if self.reader is not None else "ear",
                              model_closed=a.model_closed, downcast_lid=a.downcast_lid if lid_cue else None)
            st = FaceState(AttentionStateMachine(self.dwell), eyes)
            self.faces[tr.id] = st
        return st

    # -- per frame -----------------------------------------------------------------------------------
    def step(self, gray: np.ndarray, t: float, update: FaceUpdate, faces: FaceStage,
             budget_ms: float | None, cap_ms: float = 0.0) -> list[Event]:
        """Read the faces due now and fold the readings in (``budget_ms``: the worker time this frame
        grants, carried over up to ``cap_ms``; None: no limit)."""
        events = self.submit(gray, t, update, faces, budget_ms, cap_ms)
        return events + self.collect(faces)

    def submit(self, gray: np.ndarray, t: float, update: FaceUpdate, faces: FaceStage,
               budget_ms: float | None, cap_ms: float = 0.0) -> list[Event]:
        """Pick the faces due now and start reading them on the workers; ``collect`` folds them in.
        Without the landmark checks there is nothing to read: a face detected is attentive (returned)."""
        if self.reader is None:
            return [ev for tr in update.touched if tr.confirmed
                    for ev in self.observe(tr, ATTENTIVE, tr.first_t if not self.counted(tr.id) else t, "")]
        present = [tr for tr in faces.confirmed() if self.counted(tr.id) and faces.fresh(tr, t)]
        # a face held by the profile finder is observed by it (looking away), not read: not in the rates
        between = [tr for tr in present
                   if self.faces[tr.id].reason != PROFILE and self.faces[tr.id].attention.state != ABSENT]
        for tr in between:
            self.rates.present(tr.id, t)
        if update.detected:  # the faces this detection found; a missed one is the profile finder's
            eligible = [tr for tr in update.touched if tr.confirmed]
            if update.looked is not None:  # and, in a tiled room, the faces it did not look for this time
                found = {tr.id for tr in eligible}
                eligible += [tr for tr in between if tr.id not in update.looked and tr.id not in found]
        else:
            eligible = between
        if not eligible:
            return []
        tracks = {tr.id: tr for tr in eligible}
        touched = {tr.id for tr in update.touched}
        cands = [Candidate(tr.id, self.faces[tr.id].checked_t if tr.id in self.faces else None, self.read_hz,
                           now=update.detected and tr.id in touched) for tr in eligible]
        chosen = [tracks[c.key] for c in pick_with(self.credit, cands, t, budget_ms, cap_ms, self.cost.ms)]
        if not chosen:
            return []
        chosen.sort(key=lambda tr: tr.id)  # merged in track order, whatever order they were picked in
        jobs = [self._job(tr, t) for tr in chosen]
        pending = self.pool.submit(  # type: ignore[union-attr]
            lambda kit, job: kit.reader.read(gray, job.box, job.pose, iris=job.iris, lids_from=job.lids_from), jobs)
        self._pending = (t, chosen, pending)
        return []

    def collect(self, faces: FaceStage) -> list[Event]:
        """Fold in the readings ``submit`` started (waiting for them), in track order; a track that
        ended meanwhile is skipped."""
        self.not_faces = []
        if self._pending is None:
            return []
        t, chosen, pending = self._pending
        self._pending = None
        results = pending.timed()
        worker_ms = sum(ms for _, ms in results)
        self.cost.add(worker_ms / len(results))
        self.timer.add(worker_ms)
        events: list[Event] = []
        for tr, (reading, _) in zip(chosen, results, strict=True):
            if faces.tracker.tracks.get(tr.id) is not tr:
                continue
            events += self._apply(tr, reading, t)
            if (faces.tracks_by_landmarks and reading.extent is not None and reading.presence is not None
                    and reading.presence >= TRACK_PRESENCE and tr.id in self.faces and tr.last_seen_t <= t):
                faces.seen_at(tr, reading.extent, t)
        return events

    def _job(self, tr: Track, t: float) -> ReadJob:
        st = self._face(tr)
        lids_from = None
        if st.eyes.downcast_lid is not None:  # the lower lids on closures, and on a few open readings
            every = LID_SAMPLE_S if st.read_gap_s is None else max(LID_SAMPLE_S, LID_SAMPLE_READS * st.read_gap_s)
            # no open-eye sample from a head turned too far for its lids to be compared (it would be dropped)
            turned = st.angles is not None and self.rules.head_away(st.angles[0], st.angles[1], LID_POSE_MARGIN_DEG)
            lids_from = 0.0 if st.eyes.wants_lid_sample(t, every) and not turned else self.cfg.model_closed
            sparse = st.read_gap_s is not None and st.read_gap_s > BLINK_GAP_S
            if lids_from and sparse and st.eyes.closure_lid_samples >= CLOSURE_LID_SAMPLES:
                lids_from = None  # a face read a few times a second: a long closure's first lids decide it
        return ReadJob(tr.id, self._landmark_box(tr.box), st.pose, st.eyes.needs_iris, lids_from)

    def _apply(self, tr: Track, reading: FaceReading, t: float) -> list[Event]:
        """Fold one reading into the face's eyes, pose and state."""
        st = self._face(tr)
        when = tr.first_t if st.attention.state is None else t  # a track's first state began at its first sighting
        if st.attention.state is None and self._not_a_face(reading):
            self.faces.pop(tr.id)  # nothing reported or recorded until a check finds a face here
            self.not_faces.append(tr.id)  # but counted: it may be a face hidden behind a hand
            return []
        gap = t - st.checked_t
        if 0.0 < gap < MAX_READING_GAP_S:  # longer: the face was away, not waiting its turn
            st.read_gap_s = gap if st.read_gap_s is None else 0.8 * st.read_gap_s + 0.2 * gap
            st.attention.pace(st.read_gap_s)
        st.reading = reading
        st.checked_t = t
        self.rates.read(tr.id)
        if reading.pose is None:
            return []
        st.pose = reading.pose
        angles = np.array([reading.pose.yaw, reading.pose.pitch, reading.pose.roll])
        k = self.cfg.pose_smoothing
        st.angles = angles if st.angles is None else k * st.angles + (1.0 - k) * angles
        yaw, pitch = float(st.angles[0]), float(st.angles[1])
        lower_lid = reading.lower_lid
        if lower_lid is not None and self.rules.head_away(yaw, pitch, LID_POSE_MARGIN_DEG):
            lower_lid = None  # a turned head's lids are foreshortened: no baseline, no comparison
        closed = st.eyes.update(reading.ear, t, reading.iris_openness, reading.closed_p, lower_lid)
        gaze = None if closed or reading.gaze is None else (reading.gaze.h, reading.gaze.v)
        state, st.reason = self.rules.propose(yaw, pitch, closed, gaze, st.attention.state,
                                              downcast=st.eyes.downcast)
        return self.observe(tr, state, when, st.reason)

    def _not_a_face(self, reading: FaceReading) -> bool:
        """The landmark model found no face in the box (Face Mesh's presence under ``min_presence``):
        on the crowd clip the detector's boxes on hair, a jacket and the back of a head score 0.00, the
        faces 0.29-1.00 at their lowest (a head bowed 19 degrees: 0.47 at the median). Asked only
        before a track's first state, so a counted face bowing or half hidden stays counted."""
        return reading.presence is not None and reading.presence < self.min_presence

    def profiles(self, found: list[Track], t: float) -> list[Event]:
        """Lost tracks the profile finder found turned away: looking away."""
        events: list[Event] = []
        for tr in found:
            st = self.faces[tr.id]
            st.reading, st.pose, st.angles, st.reason = None, None, None, PROFILE
            events += self.observe(tr, LOOKING_AWAY, t, PROFILE)
        return events

    def observe(self, tr: Track, proposed: str, t: float, reason: str) -> list[Event]:
        change = self._face(tr).attention.observe(proposed, t, reason)
        if change is None:
            return []
        log.debug("track %d: %s -> %s%s at %.2f s", tr.id, change.previous, change.state,
                  f" ({change.reason})" if change.reason else "", change.t)  # a number and a state, never a box
        return [attention_change(tr, change)]

    def end(self, tr: Track, t: float, reason: str) -> list[Event]:
        """A track is over: absent (if it ever counted) with the reason, and its state forgotten."""
        events = self.observe(tr, ABSENT, t, reason) if tr.confirmed and self.counted(tr.id) else []
        self.faces.pop(tr.id, None)
        return events

    def take_metrics(self, t: float, run: bool = False) -> dict[str, Any]:
        """attention_reads_per_face_s: the median over the faces tracked since the last call (``run``:
        since the start, and nothing reset)."""
        return {"attention_reads_per_face_s": self.rates.take(t, run)}


def attention_change(tr: Track, ch: StateChange) -> AttentionChange:
    """The contract's event for a state change of the rules (``reason``: the cue that held longest over
    the spell; absent: why the track ended)."""
    previous = None if ch.previous is None else AttentionState(ch.previous)
    return AttentionChange(tr.id, AttentionState(ch.state), previous, ch.previous_duration_s, ch.t, ch.reason)
