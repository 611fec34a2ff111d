"""Per-face attention states with hysteresis.

Each tracked face is in one state at a time. Raw per-frame observations propose a state; the
proposal must hold for that state's dwell time before the face changes state, so a blink or one
missed detection never becomes an event. The change is what gets published, with the state it left
and how long the face spent there.

First cut (issue 2): ``attentive`` (a frontal face is detected; the frontal detectors only fire on
faces turned toward the camera) and ``absent`` (the track has not been seen for ``absent_s``).
``looking_away`` and ``eyes_closed`` come with head pose, eye openness and gaze.
"""

from __future__ import annotations

from dataclasses import dataclass

ATTENTIVE = "attentive"
LOOKING_AWAY = "looking_away"
EYES_CLOSED = "eyes_closed"
ABSENT = "absent"


@dataclass(frozen=True)
class StateChange:
    state: str
    previous: str | None
    previous_duration_s: float  # 0 for the first state of a track
    t: float  # when the new state took effect (its first supporting observation)


class AttentionStateMachine:
    """Debounces proposed states for one face."""

    def __init__(self, dwell_s: dict[str, float] | None = None) -> None:
        self.dwell_s = {ATTENTIVE: 0.0, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0, ABSENT: 2.0}
        if dwell_s:
            self.dwell_s.update(dwell_s)
        self.state: str | None = None
        self.since: float = 0.0
        self._candidate: str | None = None
        self._candidate_since: float = 0.0

    def observe(self, proposed: str, t: float) -> StateChange | None:
        """Feed one observation at time ``t``; returns a StateChange when the state changes."""
        if proposed == self.state:
            self._candidate = None
            return None
        if proposed != self._candidate:
            self._candidate, self._candidate_since = proposed, t
        if self.state is None or t - self._candidate_since >= self.dwell_s.get(proposed, 0.0):
            change = StateChange(
                state=proposed,
                previous=self.state,
                previous_duration_s=0.0 if self.state is None else max(0.0, self._candidate_since - self.since),
                t=self._candidate_since,
            )
            self.state, self.since = proposed, self._candidate_since
            self._candidate = None
            return change
        return None

    def time_in_state(self, t: float) -> float:
        return max(0.0, t - self.since) if self.state is not None else 0.0
