"""Per-face attention: rules that turn one face reading into a proposed state, per-track eye
monitoring (open-eye baseline, blinks), and a state machine with hysteresis.

Each tracked face is in one state at a time. Raw per-reading observations propose a state with its
cue; a spell of proposals of another kind (away: any cue of looking away or shut eyes) must last that
state's dwell time before the face changes state, so a blink or one missed detection never becomes an
event, and a look away whose cue flickers between gaze and eyes is still one look away. The change is
what gets published, with the state it left, how long the face spent there, and the cue that led.

Proposals, in order: the head turned off the screen (pose beyond the limits, after the kiosk's
offsets) is ``looking_away``; else both eyes under the closed threshold is ``eyes_closed``, unless the
head is bowed or the lower lids sit no higher than when the eyes are open (eyes looking down under
lowered lids: ``looking_away``, reason ``gaze``); else an iris outside the screen's gaze range is
``looking_away``; else ``attentive``. A face seen only by
the profile detector is ``looking_away`` too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from emocast.contract.events import ABSENT, ATTENTIVE, EYES_CLOSED, LOOKING_AWAY

from .calibration import Calibration

__all__ = ["ABSENT", "ATTENTIVE", "EYES_CLOSED", "LOOKING_AWAY"]  # the contract's states, as the rules use them


GRACE_READINGS = 1.5  # the grace in a face's own reading intervals, where that is longer than grace_s
AWAY = "away"  # looking_away or eyes_closed: the kind of state a not-attentive spell is, whatever its cue
AWAY_STATES = (LOOKING_AWAY, EYES_CLOSED)
# A spell away becomes eyes_closed only where shut eyes held at least this many times as long as every
# other cue (gaze, head pose): eyes darting down and aside under lowered lids are a look away, not sleep.
EYES_LEAD = 2.0
TIE_S = 1e-6  # time sums closer than this are a tie
MAX_CREDIT_S = 0.5  # a reading speaks for the time until the next, up to this (a face not read is not seen)


def kind_of(state: str) -> str:
    return AWAY if state in AWAY_STATES else state


@dataclass(frozen=True)
class StateChange:
    state: str
    previous: str | None
    previous_duration_s: float  # 0 for the first state of a track
    t: float  # when the new state took effect (its first supporting observation)
    reason: str = ""  # the cue that held longest over the spell that made it ("" for attentive)


class Spell:
    """The proposals since a candidate began: how long each state and each (state, reason) held."""

    def __init__(self, since: float) -> None:
        self.since = since
        self.time: dict[str, float] = {}
        self.reasons: dict[tuple[str, str], float] = {}

    def add(self, state: str, reason: str, dt: float) -> None:
        self.time[state] = self.time.get(state, 0.0) + dt
        self.reasons[(state, reason)] = self.reasons.get((state, reason), 0.0) + dt

    def away_state(self) -> str:
        """What a spell away is: eyes_closed where shut eyes led by ``EYES_LEAD``, else looking_away."""
        eyes, other = self.time.get(EYES_CLOSED, 0.0), self.time.get(LOOKING_AWAY, 0.0)
        return EYES_CLOSED if eyes > TIE_S and eyes >= EYES_LEAD * other - TIE_S else LOOKING_AWAY

    def of_kind(self, kind: str) -> float:
        return sum(dt for state, dt in self.time.items() if kind_of(state) == kind)

    def reason_of(self, state: str, default: str = "") -> str:
        held = [(dt, reason) for (st, reason), dt in self.reasons.items() if st == state and reason]
        return max(held)[1] if held else default


class AttentionStateMachine:
    """Debounces proposed states for one face, dwelling on the kind of state, not on its cue.

    A spell away from the screen accumulates while any not-attentive cue holds (head pose, gaze, eyes)
    and becomes a state once it has lasted that state's dwell; which state (``looking_away`` or
    ``eyes_closed``) is decided over the spell (``Spell.away_state``), so eyes darting down and aside
    under lowered lids, read as "gaze" on one frame and "eyes" on the next, are one spell, not a dwell
    restarted at every change of cue. The change carries the cue that held longest.

    A brief proposal of another kind (under the grace: one borderline reading, a landmark glitch, eyes
    crossing the centre on their way from one side to the other) interrupts a candidate without
    restarting its clock; a spell away is ended only by a return to attentive that lasts the attentive
    dwell. The same on the way back: a return to attentive accumulates across brief cues away. An
    interruption that lasts the grace is real: back to the current kind drops the candidate, another
    kind replaces it.

    Dwell and grace are time, not readings, so they hold at any reading rate; but one reading is only
    seen at the next, so a face read less often than ``grace_s`` would turn every single odd reading into
    a restart. Whoever reads the face therefore says how often it does (``pace``), and the grace becomes
    at least one and a half of those intervals: a classroom face read three times a second keeps its
    candidate across one glitch, as a kiosk face read ten times a second does across two.

    While away, the state may turn from one kind of away to the other (a sub-spell that must both last
    the new state's dwell and outweigh the current one). ``eyes_closed`` is a claim about the eyes alone,
    so it ends once they have been read open for the attentive dwell, whatever the candidate then is:
    eyes that reopen onto a gaze darting off the screen (lp_d14 at 7 s) become ``looking_away`` then,
    instead of staying ``eyes_closed`` for the 1.5 s that looking away needs from ``attentive``."""

    def __init__(self, dwell_s: dict[str, float] | None = None, grace_s: float = 0.3) -> None:
        self.dwell_s = {ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0, ABSENT: 2.0}
        if dwell_s:
            self.dwell_s.update(dwell_s)
        self.grace_s = grace_s
        self.exit_s = {EYES_CLOSED: self.dwell_s[ATTENTIVE]}  # a state left sooner than its successor's dwell
        self.state: str | None = None
        self.since: float = 0.0
        self.grace = grace_s  # grace_s, or longer where the face is read less often (``pace``)
        self._candidate: str | None = None  # a kind (attentive, AWAY, absent) other than the state's
        self._spell: Spell | None = None
        self._interrupted_since: float | None = None
        self._sub: Spell | None = None  # while away: the other away state's spell
        self._sub_interrupted_since: float | None = None
        self._last: tuple[str, str, float] | None = None  # the previous observation: state, reason, t

    def pace(self, reading_interval_s: float | None) -> None:
        """The face is read about every ``reading_interval_s``: the grace becomes at least
        ``GRACE_READINGS`` of those intervals (never shorter than ``grace_s``)."""
        self.grace = self.grace_s if reading_interval_s is None else max(self.grace_s,
                                                                          GRACE_READINGS * reading_interval_s)

    def observe(self, proposed: str, t: float, reason: str = "") -> StateChange | None:
        """Feed one observation at time ``t`` (``reason``: its cue); returns a StateChange when the state
        changes."""
        last, self._last = self._last, (proposed, reason, t)
        if self.state is None or (self.dwell_s.get(proposed, 0.0) <= 0.0 and proposed != self.state):
            return self._change(proposed, t, reason)
        if last is not None:  # the previous reading held until this one
            dt = min(MAX_CREDIT_S, max(0.0, t - last[2]))
            if self._spell is not None and last[2] >= self._spell.since:
                self._spell.add(last[0], last[1], dt)
            if self._sub is not None and last[2] >= self._sub.since and last[0] in AWAY_STATES:
                self._sub.add(last[0], last[1], dt)
        kind, current = kind_of(proposed), kind_of(self.state)
        if kind == current:
            self._interrupt(t, current)
            return self._within_away(proposed, t, reason) if current == AWAY else None
        if kind == self._candidate:
            if self._interrupted_since is not None and t - self._interrupted_since >= self._hold():
                self._spell = Spell(t)  # it was away long enough to count as a new start
            self._interrupted_since = None
        elif self._candidate is None:
            self._candidate, self._spell = kind, Spell(t)
        else:  # a third kind: a glitch until it lasts the grace
            if self._interrupted_since is None:
                self._interrupted_since = t
            if t - self._interrupted_since < self.grace:
                return None
            self._candidate, self._spell, self._interrupted_since = kind, Spell(t), None
        assert self._spell is not None
        target = self._spell.away_state() if kind == AWAY else proposed
        needed = self.dwell_s.get(target, 0.0)
        if self.state in self.exit_s:
            needed = min(needed, self.exit_s[self.state])
        if t - self._spell.since >= needed and self._leads(kind, current):
            return self._change(target, self._spell.since, self._spell.reason_of(target, reason))
        return None

    def _leads(self, kind: str, current: str) -> bool:
        """The candidate held longer than the current kind over its spell (eyes reopening: a tie will do,
        the open eyes are the news)."""
        assert self._spell is not None
        held, against = self._spell.of_kind(kind), self._spell.of_kind(current)
        if self.state == EYES_CLOSED and kind == ATTENTIVE:
            return held >= against - TIE_S
        return held > against + TIE_S

    def _hold(self) -> float:
        """How long the current kind must come back to end a candidate: the grace; a spell away, at
        least the attentive dwell (eyes crossing the centre do not end a look away)."""
        if self._candidate == AWAY:
            return max(self.grace, self.dwell_s[ATTENTIVE])
        return self.grace

    def _interrupt(self, t: float, current: str) -> None:
        """An observation of the current kind while a candidate runs: the candidate ends if it lasts,
        or as soon as it no longer leads its spell (a flicker that is mostly on the screen is not a look
        away; the next cue away starts a spell afresh)."""
        if self._candidate is None or self._spell is None:
            return
        if self._interrupted_since is None:
            self._interrupted_since = t
        if t - self._interrupted_since >= self._hold() or not self._leads(self._candidate, current):
            self._candidate = self._spell = self._interrupted_since = None

    def _within_away(self, proposed: str, t: float, reason: str) -> StateChange | None:
        """Away, the other away state must last its dwell and outweigh the current one to take over."""
        if proposed == self.state:
            if self._sub is not None:
                if self._sub_interrupted_since is None:
                    self._sub_interrupted_since = t
                if t - self._sub_interrupted_since >= self.grace:
                    self._sub = self._sub_interrupted_since = None
            return None
        if self._sub is None or (self._sub_interrupted_since is not None
                                 and t - self._sub_interrupted_since >= self.grace):
            self._sub = Spell(t)
        self._sub_interrupted_since = None
        sub, state = self._sub, self.state
        assert state is not None
        needed = min(self.dwell_s.get(proposed, 0.0), self.exit_s.get(state, float("inf")))
        held, current = sub.time.get(proposed, 0.0), sub.time.get(state, 0.0)
        leads = held > current and (proposed != EYES_CLOSED or held >= EYES_LEAD * current)
        if t - sub.since >= needed and leads:
            return self._change(proposed, sub.since, sub.reason_of(proposed, reason))
        return None

    def _change(self, state: str, t: float, reason: str) -> StateChange:
        """``state`` becomes the state, from ``t`` (its first supporting observation)."""
        change = StateChange(
            state=state,
            previous=self.state,
            previous_duration_s=0.0 if self.state is None else max(0.0, t - self.since),
            t=t,
            reason="" if state == ATTENTIVE else reason,
        )
        self.state, self.since = state, t
        self._candidate = self._spell = self._interrupted_since = None
        self._sub = self._sub_interrupted_since = None
        return change

    def time_in_state(self, t: float) -> float:
        return max(0.0, t - self.since) if self.state is not None else 0.0


POSE_HYSTERESIS_DEG = 3.0
# Eyes that look down lower their upper lids until, seen from a camera above, they read closed. With
# the head tilted down by more than this share of max_pitch_deg, "closed" eyes are read as a downward
# glance (looking_away, reason gaze), not as eyes_closed (a woman looking down at her phone reads 19
# degrees down with Face Mesh on the first frame, just inside the limit, and her eyes read closed).
DOWNCAST_SHARE = 0.5
# A shut eye raises its lower lid a little (the upper lid comes down to meet it); an eye looking down
# drags its lower lid down with it (the lower lid's drop below the corners' line over eye width, against
# the face's own open-eye median, on closures and glances: docs/benchmarks.md#measured-constants). "Not raised" (>= 0,
# ``[attention] downcast_lid``'s default) is a glance.
LID_MIN_SAMPLES = 5  # open-eye lower-lid readings before the cue judges a face
LID_SAMPLE_S = 0.5  # then one more every so often (the iris model costs two 64x64 reads)
LID_SAMPLE_READS = 4  # and no more often than one open reading in this many (a face read 3 times a second)
# lower lids are compared only on a head this far inside the pose limits: a turned head foreshortens the lids
LID_POSE_MARGIN_DEG = 10.0
REFERENCE_OPEN_EAR = 0.3  # a typical open eye, for openness before a track has its own baseline
REFERENCE_OPEN_IRIS = 0.28  # the same for the iris model's lid gap over eye width
EYE_SIGNALS = ("ear", "iris", "model")  # what EyeMonitor can judge (see its notes)


class EyeMonitor:
    """One face's eyes over time: its own open-eye baseline, closed or not, and blinks.

    EAR varies between people (0.25 to 0.40 open), so after a few readings "closed" means under a
    share of this face's own baseline; before that, and on a single photo, an absolute threshold:
    on the iris model's lid gap where the reading has it (``iris_closed``: it tells narrowed, smiling
    and downcast open eyes from shut ones far better than EAR, see ``eyes.py``), else on EAR. Only
    readings that could be open eyes feed the baseline, so a face that keeps its eyes shut does not
    drag its baseline down until it looks open. With a baseline, EAR against it: it follows the fast
    dip of a blink more closely than the iris model does (a talking head's 1-2 frame blinks).

    ``signal="iris"`` (with Face Mesh landmarks, whose eye points do not follow closing lids) judges
    the iris model's lid gap on every reading instead of EAR, by the same rules: ``iris_closed`` is
    then its absolute threshold and the baseline is of lid gaps.

    ``signal="model"`` (the default reader's) judges the eye-state classifier's probability that the
    eyes are shut (``eyes.py``), as an openness of ``1 - p``: closed where ``p >= model_closed``, with
    no baseline. The classifier reads the eye's pixels, not its shape, so a person's narrow eyes are
    not a lower "open" for it; a baseline would only let a face that keeps its eyes shut look open.

    With ``downcast_lid`` set (and lower-lid readings, ``FaceReading.lower_lid``), the monitor keeps
    the face's open-eye lower-lid position too, and a closure whose lower lids sit, on average, at
    least ``downcast_lid`` eye widths lower than that is ``downcast``: eyes looking down under lowered
    lids, which read shut to the classifier at 32 pixels (see the measurements above
    ``LID_MIN_SAMPLES``). A face first seen with its eyes down has no such baseline and stays judged
    by its head's pitch alone."""

    def __init__(self, ear_closed: float = 0.21, closed_ratio: float = 0.6, blink_max_s: float = 0.5,
                 history: int = 150, min_samples: int = 10, iris_closed: float = 0.19,
                 signal: str = "ear", model_closed: float = 0.5, downcast_lid: float | None = None) -> None:
        if signal not in EYE_SIGNALS:
            raise ValueError(f"unknown eye signal {signal!r}; one of {', '.join(EYE_SIGNALS)}")
        self.signal = signal
        # the absolute threshold on the signal judged, and a typical open value of it
        self.ear_closed = {"iris": iris_closed, "model": 1.0 - model_closed}.get(signal, ear_closed)
        self.reference_open = {"iris": REFERENCE_OPEN_IRIS, "model": 1.0}.get(signal, REFERENCE_OPEN_EAR)
        self.iris_closed = iris_closed
        self.closed_ratio = closed_ratio
        self.blink_max_s = blink_max_s
        self.min_samples = min_samples
        self._open: deque[float] = deque(maxlen=history)
        self._closed_since: float | None = None
        self.closed = False
        self.blinks = 0
        self.downcast_lid = downcast_lid
        self._lids_open: deque[float] = deque(maxlen=60)
        self._lid_sample_t = float("-inf")
        self._closure_lids: list[float] = []

    def wants_lid_sample(self, t: float, every_s: float = LID_SAMPLE_S) -> bool:
        """Whether the next reading should include the lower lids even if the eyes read open: while
        the face's open-eye lower-lid baseline is short, then every ``every_s``."""
        return self.downcast_lid is not None and (len(self._lids_open) < LID_MIN_SAMPLES
                                                  or t - self._lid_sample_t >= every_s)

    @property
    def closure_lid_samples(self) -> int:
        """Lower-lid readings taken during the current closure."""
        return len(self._closure_lids)

    @property
    def lid_baseline(self) -> float | None:
        """The lower lid's median position while the eyes read open (eye widths), once known."""
        if len(self._lids_open) < LID_MIN_SAMPLES:
            return None
        return float(np.median(np.fromiter(self._lids_open, float)))

    @property
    def downcast(self) -> bool:
        """The eyes read shut but their lower lids sit no higher than when open: a downward glance."""
        base = self.lid_baseline
        if self.downcast_lid is None or not self.closed or base is None or not self._closure_lids:
            return False
        return float(np.mean(self._closure_lids)) - base >= self.downcast_lid

    @property
    def has_baseline(self) -> bool:
        """Enough open readings for a baseline (without computing it: asked before every reading)."""
        return len(self._open) >= self.min_samples

    @property
    def baseline(self) -> float | None:
        if not self.has_baseline:
            return None
        return float(np.percentile(np.fromiter(self._open, float), 80))

    @property
    def needs_iris(self) -> bool:
        """Whether the next reading should include the iris model's lid gap: with EAR as the signal,
        for a face without its own baseline yet (see the class's notes)."""
        return self.signal == "ear" and not self.has_baseline

    @property
    def threshold(self) -> float:
        base = None if self.signal == "model" else self.baseline
        if base is None:
            return self.ear_closed
        return float(np.clip(self.closed_ratio * base, 0.6 * self.ear_closed, 1.25 * self.ear_closed))

    def _judged(self, ear: float, iris_openness: float | None, closed_p: float | None) -> float:
        """The value this monitor's signal reads from one reading."""
        if self.signal == "model" and closed_p is not None:
            return 1.0 - closed_p
        return iris_openness if self.signal == "iris" and iris_openness is not None else ear

    def openness(self, ear: float, iris_openness: float | None = None, closed_p: float | None = None) -> float:
        """The signal relative to this face's open baseline (1.0: as open as usual; 0: shut)."""
        if self.signal == "model":
            return self._judged(ear, iris_openness, closed_p)
        return self._judged(ear, iris_openness, closed_p) / (self.baseline or self.reference_open)

    def update(self, ear: float, t: float, iris_openness: float | None = None, closed_p: float | None = None,
               lower_lid: float | None = None) -> bool:
        """Feed one reading (mean EAR of both eyes, the iris model's openness where it was read, the
        eye-state classifier's probability of shut eyes where it was read, the lower lids where they
        were read) at time ``t``; returns whether the eyes are closed. A closure that ends within
        ``blink_max_s`` of its first closed reading counts as a blink."""
        first_look = self.signal == "ear" and not self.has_baseline and iris_openness is not None
        ear = self._judged(ear, iris_openness, closed_p)
        self.closed = iris_openness < self.iris_closed if first_look else ear < self.threshold
        if self.closed:
            if self._closed_since is None:
                self._closed_since = t
        else:
            if self._closed_since is not None and t - self._closed_since <= self.blink_max_s:
                self.blinks += 1
            self._closed_since = None
        could_be_open = not self.closed if first_look else ear >= self.ear_closed
        if could_be_open:  # a narrow-eyed face the iris model sees open gets its true (low) baseline
            self._open.append(ear)
        self._update_lids(lower_lid, t)
        return self.closed

    def _update_lids(self, lower_lid: float | None, t: float) -> None:
        if not self.closed:
            self._closure_lids.clear()
        if lower_lid is None or self.downcast_lid is None:
            return
        if self.closed:
            self._closure_lids.append(lower_lid)
        else:
            self._lids_open.append(lower_lid)
            self._lid_sample_t = t


@dataclass(frozen=True)
class AttentionRules:
    """The thresholds that decide what one reading proposes (config, or a kiosk's calibration)."""

    max_yaw_deg: float = 30.0
    max_pitch_deg: float = 20.0
    yaw_offset_deg: float = 0.0
    pitch_offset_deg: float = 0.0
    gaze: bool = True
    gaze_h: tuple[float, float] = (0.35, 0.65)
    gaze_v: tuple[float, float] = (0.0, 1.0)

    @classmethod
    def from_config(cls, a, calibration: Calibration | None = None) -> AttentionRules:
        rules = cls(a.max_yaw_deg, a.max_pitch_deg, a.yaw_offset_deg, a.pitch_offset_deg, a.gaze,
                    (a.gaze_h_min, a.gaze_h_max), (a.gaze_v_min, a.gaze_v_max))
        if calibration is not None:
            rules = cls(a.max_yaw_deg, a.max_pitch_deg, calibration.yaw_offset_deg, calibration.pitch_offset_deg,
                        a.gaze, calibration.gaze_h, calibration.gaze_v)
        return rules

    def head_away(self, yaw: float, pitch: float, margin: float = 0.0) -> bool:
        """Beyond the limits; ``margin`` narrows them (a face already away must come well back)."""
        return (abs(yaw - self.yaw_offset_deg) > self.max_yaw_deg - margin
                or abs(pitch - self.pitch_offset_deg) > self.max_pitch_deg - margin)

    def facing_camera(self, yaw: float, pitch: float) -> bool:
        """Turned toward the camera itself (not the screen): where the emotion model can be trusted."""
        return abs(yaw) <= self.max_yaw_deg and abs(pitch) <= self.max_pitch_deg

    def gaze_away(self, h: float, v: float) -> bool:
        return self.gaze and not (self.gaze_h[0] <= h <= self.gaze_h[1] and self.gaze_v[0] <= v <= self.gaze_v[1])

    def propose(self, yaw: float, pitch: float, eyes_closed: bool, gaze: tuple[float, float] | None,
                current: str | None = None, downcast: bool = False) -> tuple[str, str]:
        """(state, reason): reason is head_pose, eyes or gaze, or "" for attentive. ``current`` is
        the face's state: looking away, its head must come back ``POSE_HYSTERESIS_DEG`` inside the
        limits before it proposes anything else. ``downcast``: the eyes' own lids say that eyes read
        closed are looking down (``EyeMonitor.downcast``)."""
        margin = POSE_HYSTERESIS_DEG if current == LOOKING_AWAY else 0.0
        if self.head_away(yaw, pitch, margin):
            return LOOKING_AWAY, "head_pose"
        if eyes_closed:
            if downcast or pitch - self.pitch_offset_deg < -DOWNCAST_SHARE * self.max_pitch_deg:
                return LOOKING_AWAY, "gaze"  # lids lowered over eyes that look down: at a desk, a phone
            return EYES_CLOSED, "eyes"
        if gaze is not None and self.gaze_away(*gaze):
            return LOOKING_AWAY, "gaze"
        return ATTENTIVE, ""
