"""Per-frame analysis: the stages in order on each frame, and what ``emocast analyze`` records.

One Analyzer serves the service (camera in, MQTT out) and offline analysis (file in, records out):
only the source and the sink differ. Time comes from the frame (media time for files), and offline
there is no frame budget, so a recording analysed at any speed, on any number of workers, gives the
same events. Live, each frame's per-face work is held to what the frame leaves (``frame_budget_ms``).

The stages (``stages/``): faces and tracks; per-face reading on a pool of workers; the optional
stages (``stages/optional``: the emotion sampler, built only when emotion is on); the summary
accumulator; the offline record (``stages/record``, asked for by ``emocast analyze``). Each takes its
own config section and reports its own metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2

from emocast.contract.events import Event, Summary

from . import calibration
from .attention import AttentionRules
from .capture import Frame
from .detectors import landmark_box
from .emotion import EmotionModel
from .face_reading import FaceReader
from .faces import FaceDetector, Track
from .settings import AnalysisSettings
from .stages.budget import FrameBudget
from .stages.emotion import TOO_SMALL as TOO_SMALL
from .stages.emotion import TURNED as TURNED
from .stages.emotion import EmotionSampler
from .stages.faces import FaceStage
from .stages.optional import OptionalStage, RateTarget
from .stages.reading import ReadingStage
from .stages.record import frame_records
from .stages.summary import SummaryAccumulator
from .stages.timing import StageTimer
from .stages.workers import WorkerPool


@dataclass
class WorkerKit:
    """One worker's own models: a landmark reader (None without the attention checks) and an emotion
    model (None with emotion off)."""

    reader: FaceReader | None
    emotion: EmotionModel | None


class Analyzer:
    def __init__(self, cfg: AnalysisSettings, detector: FaceDetector, model: EmotionModel | None,
                 reader: FaceReader | None = None, threads: int = 1, frame_budget_ms: float | None = None) -> None:
        """``model``: the emotion model (None: emotion off, no sampler). ``reader`` does the landmark
        checks (built from the config when ``attention.checks``). ``threads``: per-face workers, each
        with models of its own. ``frame_budget_ms``: a frame's interval, live (None: no deadline,
        offline)."""
        self.cfg = cfg
        a = cfg.attention
        if reader is None and a.checks:
            reader = FaceReader(a.focal_px, a.gaze, landmarks=a.landmarks, eyes=a.eyes)
        self.reader = reader
        kits = [WorkerKit(reader, model)]
        for _ in range(1, max(1, threads)):
            kits.append(WorkerKit(reader.clone() if reader is not None else None,
                                  model.clone() if model is not None else None))
        self.pool = WorkerPool(kits)
        self.budget = FrameBudget(frame_budget_ms, self.pool.size)
        rules = AttentionRules.from_config(a, calibration.load(a.calibration) if a.calibration else None)
        self.faces = FaceStage(cfg.faces, detector, a.absent_s, profiles=reader is not None,
                               live=self.budget.live)
        self.reading = ReadingStage(a, cfg.read_hz, rules, cfg.faces.min_presence,
                                    self.pool if reader is not None else None, landmark_box(detector), reader)
        # the stages a deployment may run without: emotion exists only when it is on
        self.optional: list[OptionalStage] = []
        if model is not None:
            self.optional.append(EmotionSampler(cfg.emotion, model.labels, rules, reader is not None, self.pool))
        self.summary = SummaryAccumulator(cfg.events, checks=reader is not None)
        self.frame_timer = StageTimer()
        self.frames = 0
        self.frame_shape: tuple[int, int] = (0, 0)

    # -- what the service and the benchmarks read -----------------------------------------------------
    @property
    def timers(self) -> dict[str, StageTimer]:
        """Each stage's latency: detect (a detection round), attention (a frame's readings), each
        optional stage's (emotion: one inference), frame (all of a frame)."""
        return {"detect": self.faces.timer, "attention": self.reading.timer,
                **{stage.name: stage.timer for stage in self.optional}, "frame": self.frame_timer}

    def targets(self) -> list[RateTarget]:
        """The per-face rates the stages aim at (attention's, then each optional stage's)."""
        return [RateTarget("attention_reads_per_face_s", "[attention] read_hz", self.cfg.read_hz),
                *(stage.target() for stage in self.optional)]

    @property
    def window(self):
        return self.summary.window

    def close(self) -> None:
        self.pool.close()

    # -- per frame -----------------------------------------------------------------------------------
    def process(self, frame: Frame) -> list[Event]:
        t0 = time.perf_counter()
        t = frame.t
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        self.frame_shape = (int(gray.shape[0]), int(gray.shape[1]))
        self.summary.start(t)
        update = self.faces.step(gray, t, self.reading.counted)
        events: list[Event] = []
        for ended in update.ended:
            events += self._end(ended.track, ended.t, ended.reason)
        read_hz = self.cfg.read_hz or self.cfg.faces.detect_hz  # "as fast as it can" weighs as detection's rate
        read_ms, *optional_ms = self.budget.grants(t0, [read_hz * self.reading.cost.ms,
                                                        *(stage.demand_ms() for stage in self.optional)])
        cap = self.budget.cap_ms()
        if self.budget.overlapped:
            # the workers read the last frame's faces while this frame was detected: fold them in, then
            # start this frame's, to be read while the next frame is detected
            events += self._collect()
            events += self.reading.profiles(update.profiles, t)
            events += self._expire(t)
            events += self.reading.submit(gray, t, update, self.faces, read_ms, cap)
            for stage, ms in zip(self.optional, optional_ms, strict=True):
                stage.submit(gray, t, self.faces, self.reading, ms, cap)
        else:
            events += self.reading.step(gray, t, update, self.faces, read_ms, cap)
            events += self.reading.profiles(update.profiles, t)
            events += self._expire(t)
            for stage, ms in zip(self.optional, optional_ms, strict=True):
                stage.submit(gray, t, self.faces, self.reading, ms, cap)
                events += stage.collect()
        self.summary.add(t, self.faces, self.reading, self.optional)
        self.frames += 1
        self.frame_timer.add((time.perf_counter() - t0) * 1000)
        return events

    def pace(self, frame_budget_ms: float | None) -> None:
        """Frames now come at a camera's pace, ``frame_budget_ms`` apart (None: offline, no deadline)."""
        self.budget = FrameBudget(frame_budget_ms, self.pool.size)
        self.faces.live = self.budget.live
        self.faces.reset_tiling()

    def records(self, frame: Frame) -> list[dict[str, Any]]:
        """The offline records of the frame just processed (``emocast analyze``; never the service)."""
        return frame_records(frame.t, frame.index, self.faces, self.reading, self.optional)

    def flush(self) -> list[Event]:
        """Fold in what the workers are still reading (at the end of a run)."""
        return self._collect()

    def _collect(self) -> list[Event]:
        """Fold in every stage's work on the workers, attention first."""
        events = self.reading.collect(self.faces)
        for stage in self.optional:
            events += stage.collect()
        return events

    def idle(self, t: float) -> list[Event]:
        """Time passing without frames (a lost camera): tracks unseen for absent_s turn absent."""
        return self._expire(t)

    def _expire(self, t: float) -> list[Event]:
        events: list[Event] = []
        for ended in self.faces.expire(t):
            events += self._end(ended.track, ended.t, ended.reason)
        return events

    def _end(self, tr: Track, t: float, reason: str) -> list[Event]:
        """A track is over: absent (if it ever counted), and forgotten by every stage."""
        events = self.reading.end(tr, t, reason)
        for stage in self.optional:
            stage.forget(tr.id)
        return events

    # -- summary and metrics ---------------------------------------------------------------------------
    def summary_due(self, t: float) -> bool:
        return self.summary.due(t)

    def take_summary(self, t: float, extra: dict[str, Any] | None = None) -> Summary:
        """Close the current window into a summary body and start the next one."""
        return self.summary.take(t, len(self.faces.confirmed()), self.optional, extra)

    def take_metrics(self, t: float, run: bool = False) -> dict[str, Any]:
        """Each stage's own report since the last call (``run``: since the start): frames processed,
        faces tracked, detections, reading rates, each stage's latency."""
        out: dict[str, Any] = {"frames_processed": self.frames, **self.faces.take_metrics(t, run),
                               **self.reading.take_metrics(t, run)}
        for stage in self.optional:
            out.update(stage.take_metrics(t, run))
        out["stage_ms"] = {name: timer.percentiles() for name, timer in self.timers.items()}
        return out
