"""What a stage that may be absent offers the Analyzer: the one shape every optional per-face stage takes.

A deployment may run without a stage (emotion off under the EU AI Act, say): the stage is then simply
not built, and the Analyzer runs whichever optional stages it holds through this protocol, so nothing
downstream asks "is there a model?". Each stage keeps its own per-face state, its own summary window
and its own metrics; the Analyzer only grants it worker time and tells it when a track ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from emocast.contract.events import Event

from .timing import Rates, StageTimer

if TYPE_CHECKING:
    from .faces import FaceStage
    from .reading import ReadingStage



class RateTarget(NamedTuple):
    """A per-face rate a stage aims at, as the metrics report it and the config names it."""

    metric: str  # the metrics key of the achieved median rate
    setting: str  # where a user sets the target, e.g. "[emotion] emotion_hz"
    hz: float  # the target (0: as fast as it can)


class OptionalStage(Protocol):
    name: str  # its latency's key in stage_ms
    timer: StageTimer
    rates: Rates  # its per-face rates (metrics window and whole run)

    def demand_ms(self) -> float:
        """Worker time a second it would spend on one face at its target: a frame's grant is split
        between the stages by this, so a room too big for its frames slows every stage alike."""
        ...

    def target(self) -> RateTarget: ...

    def submit(self, gray: np.ndarray, t: float, faces: FaceStage, reading: ReadingStage,
               budget_ms: float | None, cap_ms: float = 0.0) -> None:
        """Pick the faces due now and start their work on the workers."""
        ...

    def collect(self) -> list[Event]:
        """Fold in the work ``submit`` started, in track order; its events."""
        ...

    def forget(self, track_id: int) -> None:
        """A track ended: drop what is kept of it."""
        ...

    def add_face_time(self, track_id: int, dt: float) -> None:
        """A frame's interval of a present face's time, for the summary window."""
        ...

    def take_summary(self) -> dict[str, Any]:
        """Its fields of the summary closing now; starts its next window."""
        ...

    def record_fields(self, track_id: int) -> dict[str, Any]:
        """Its fields of an offline face record (``emocast analyze``)."""
        ...

    def take_metrics(self, t: float, run: bool = False) -> dict[str, Any]:
        """Its fields of the metrics since the last call (``run``: since the start, nothing reset)."""
        ...
