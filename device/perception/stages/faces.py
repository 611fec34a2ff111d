"""Faces and tracks: detection at its own rate, tracking, scene cuts, turned faces and expiry.

Detection runs at ``[faces] detect_hz``. Where the frame is small enough for one detector pass (a
kiosk), and offline (``emocast analyze``: a recording has time), each detection sees the whole frame.
Live, where it needs tiles (BlazeFace on a 1080p classroom:
16 model runs, the costliest stage: docs/benchmarks.md), the whole frame is swept at ``[faces] sweep_hz`` to find faces
that came in, and the detections between look only around the faces already tracked (nine, one model
run, those seen longest ago first: 30 faces are each looked for every fourth detection). The
profile finder, which keeps a turned head's track alive, searches only around tracks the
detector missed, each at most ``[faces] profile_hz`` times a second and at most ``[faces] profile_max``
of them per detection, those searched longest ago first. The stage reports its cost (``detect``), how
many faces it tracks and how often it detects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..detectors import UnionDetector, primary
from ..detectors.boxes import Box, iou, suppress_duplicates
from ..faces import FaceDetector, FaceTracker, ProfileFinder, Track, appearance, detect_faces, scene_changed, thumbnail
from ..settings import FacesSection
from .timing import StageTimer

CUT, MERGED, LOST = "cut", "merged", "lost"  # why a track ended
# the profile search's area (twice a face) is shrunk to this width: a kiosk's few large faces keep detail;
# a tiled room, where several tracks may be lost at once, searches at 96 px: cheaper, as many found
# (docs/benchmarks.md, "Measured constants")
KIOSK_PROFILE_WIDTH = 160
LANDMARK_TO_BOX = (1.14, 1.16, 0.09)  # width and height scale, centre raised (of the height): see seen_at
MIN_TRACK_IOU = 0.3  # a reading's box must overlap the track's this much to move it
ROOM_PROFILE_WIDTH = 96


@dataclass
class Ended:
    track: Track
    t: float
    reason: str


@dataclass
class FaceUpdate:
    """What one frame did to the tracks: whether it detected, the tracks matched or created by that
    detection, the tracks that ended (in order), and the lost tracks found again as profiles."""

    detected: bool = False
    touched: list[Track] = field(default_factory=list)
    looked: set[int] | None = None  # the tracks a tiled room's detection looked for (None: the whole frame)
    ended: list[Ended] = field(default_factory=list)
    profiles: list[Track] = field(default_factory=list)


@dataclass
class Tally:
    """Frames, the faces tracked on them and detections, since ``start_t`` (the first frame's time)."""

    start_t: float | None = None
    frames: int = 0
    tracked: int = 0
    detections: int = 0

    def add(self, t: float, tracked: int, detected: bool) -> None:
        if self.start_t is None:
            self.start_t = t
        self.frames += 1
        self.tracked += tracked
        self.detections += int(detected)


class FaceStage:
    def __init__(self, section: FacesSection, detector: FaceDetector, absent_s: float, profiles: bool,
                 live: bool = False) -> None:
        """``profiles``: search for turned faces where tracks were lost (with the attention checks on).
        ``live``: frames come at a camera's pace; offline (a recording has time) every detection sweeps
        the whole frame."""
        self.live = live
        self.cfg = section
        self.detector = detector
        self.absent_s = absent_s
        self.tracker = FaceTracker(match_iou=section.match_iou, min_hits=section.min_hits,
                                   min_similarity=section.min_similarity)
        self.profiles = ProfileFinder() if profiles else None
        self.detect_period = 1.0 / section.detect_hz
        self.sweep_period = 1.0 / section.sweep_hz
        self.refresh_period = self.detect_period  # how often each tracked face is looked for
        self.timer = StageTimer()
        self.last_detect_t = float("-inf")
        self._last_sweep_t = float("-inf")
        self._thumb: np.ndarray | None = None  # the frame at the last detection, 32x24, for cuts
        self._profile_t: dict[int, float] = {}  # when each lost track's surroundings were last searched
        self._tiles: bool | None = None  # whether this source's frames need a tiled sweep (known at the first)
        self._window = Tally()  # since the last metrics
        self._run = Tally()  # since the start
        self.sweeps = 0

    # -- per frame ---------------------------------------------------------------------------------
    def step(self, gray: np.ndarray, t: float, counted: Callable[[int], bool]) -> FaceUpdate:
        """Detect if due and match; ``counted(track_id)``: whether a track has a state (only those are
        searched for as profiles)."""
        update = FaceUpdate()
        if t - self.last_detect_t >= self.detect_period * 0.999:
            update.detected = True
            self.last_detect_t = t
            d0 = time.perf_counter()
            thumb = thumbnail(gray)
            if scene_changed(self._thumb, thumb, self.cfg.scene_cut):
                # a cut or a moved camera: whoever is in view now is not who was; every track ends
                update.ended += [self._drop(tr, t, CUT) for tr in list(self.tracker.tracks.values())]
            self._thumb = thumb
            boxes, looked = self._detect(gray, t)
            update.looked = looked
            touched = self.tracker.update(boxes, t, [appearance(gray, b) for b in boxes])
            update.ended += [self._drop(self.tracker.tracks[tid], t, MERGED) for tid in self.tracker.duplicates()]
            update.touched = [tr for tr in touched if tr.id in self.tracker.tracks]
            update.profiles = self._profiles(gray, t, {tr.id for tr in update.touched}, looked, counted)
            self.timer.add((time.perf_counter() - d0) * 1000)
        tracked = sum(1 for tr in self.tracker.tracks.values() if tr.confirmed and self.fresh(tr, t))
        for tally in (self._window, self._run):
            tally.add(t, tracked, update.detected)
        return update

    def reset_tiling(self) -> None:
        """Decide afresh, at the next frame, whether frames need the tiled room's detection."""
        self._tiles = None

    def _needs_tiles(self, gray: np.ndarray) -> bool:
        if self._tiles is None:
            first = primary(self.detector)
            needs = getattr(first, "needs_tiles", None)
            self._tiles = bool(self.live and needs is not None and needs(gray.shape, self.cfg.min_face_px)
                               and hasattr(first, "detect_near"))
        return self._tiles

    def _detect(self, gray: np.ndarray, t: float) -> tuple[list[Box], set[int] | None]:
        """A whole-frame sweep when one pass covers the frame or a sweep is due; else around the tracked
        faces, one model run's worth (nine) a detection, those seen longest ago first (a face seen once
        before any confirmed one: it must be seen again to count). Returns the boxes and the tracks
        looked for (None: the whole frame)."""
        tiles = self._needs_tiles(gray)
        tracks = list(self.tracker.tracks.values())
        if not tiles or t - self._last_sweep_t >= self.sweep_period * 0.999 or not tracks:
            if tiles:
                self._last_sweep_t = t
            self.sweeps += 1
            return detect_faces(self.detector, gray, self.cfg.detect_width, self.cfg.min_face_px), None
        first = primary(self.detector)
        per_run = getattr(first, "regions_per_run", 1)
        tracks.sort(key=lambda tr: (tr.confirmed, tr.last_seen_t, tr.id))
        looked = tracks[:per_run]
        # each face is looked for every this many detections: its box is fresh for twice that
        self.refresh_period = self.detect_period * max(1, -(-len(tracks) // per_run))
        found = first.detect_near(gray, [tr.box for tr in looked], self.cfg.min_face_px)  # type: ignore[attr-defined]
        if isinstance(self.detector, UnionDetector):  # the other backends still see the whole frame
            others = UnionDetector(self.detector.parts[1:]) if len(self.detector.parts) > 2 else self.detector.parts[1]
            found = suppress_duplicates([found, detect_faces(others, gray, self.cfg.detect_width,
                                                             self.cfg.min_face_px)])
        return found, {tr.id for tr in looked}

    def _profiles(self, gray: np.ndarray, t: float, touched: set[int], looked: set[int] | None,
                  counted: Callable[[int], bool]) -> list[Track]:
        """Counted tracks the frontal detector missed (of those it looked for: ``looked``, None for all):
        a profile face near one keeps it alive."""
        if self.profiles is None:
            return []
        period = 1.0 / self.cfg.profile_hz
        missed = [tr for tr in self.tracker.tracks.values()
                  if tr.id not in touched and tr.confirmed and counted(tr.id) and (looked is None or tr.id in looked)
                  and t - self._profile_t.get(tr.id, float("-inf")) >= period * 0.999]
        missed.sort(key=lambda tr: (self._profile_t.get(tr.id, float("-inf")), tr.id))
        found = []
        for tr in missed[:self.cfg.profile_max]:
            self._profile_t[tr.id] = t
            box = self.profiles.find(gray, tr.box, ROOM_PROFILE_WIDTH if self._tiles else KIOSK_PROFILE_WIDTH)
            if box is None:
                continue
            tr.box, tr.last_seen_t = box, t
            found.append(tr)
        found.sort(key=lambda tr: tr.id)
        return found

    def expire(self, t: float) -> list[Ended]:
        """Tracks unseen for ``absent_s`` end (at when they were last seen)."""
        return [self._drop(tr, tr.last_seen_t, LOST) for tr in list(self.tracker.tracks.values())
                if t - tr.last_seen_t >= self.absent_s]

    def _drop(self, tr: Track, t: float, reason: str) -> Ended:
        self.tracker.drop(tr.id)
        self._profile_t.pop(tr.id, None)
        return Ended(tr, t, reason)

    @property
    def tracks_by_landmarks(self) -> bool:
        """Whether a face's reading may move its box (live, in a tiled frame: see ``seen_at``)."""
        return bool(self._tiles)

    def seen_at(self, tr: Track, extent: Box, t: float) -> None:
        """A reading found the face at ``extent`` (its landmarks' box): in a tiled frame, where each face
        is looked for only every few detections, that keeps its box where the face is and fresh, as
        MediaPipe's own face tracking does. The detector's box is the landmarks' box widened and raised
        (medians on the classroom mosaic's faces: 1.14 x its width, 1.16 x its height, centre 0.09 of its
        height higher; p10-p90 within 0.07)."""
        x, y, w, h = extent
        if w < 4 or h < 4:
            return
        cx, cy = x + w / 2, y + h / 2 - LANDMARK_TO_BOX[2] * h
        bw, bh = LANDMARK_TO_BOX[0] * w, LANDMARK_TO_BOX[1] * h
        box = (int(round(cx - bw / 2)), int(round(cy - bh / 2)), int(round(bw)), int(round(bh)))
        if iou(box, tr.box) < MIN_TRACK_IOU:
            return  # not where the track was: a glitch, not the face
        tr.box, tr.last_seen_t = box, t

    # -- what other stages ask -----------------------------------------------------------------------
    def fresh(self, tr: Track, t: float) -> bool:
        """Its box is recent enough to read the face in (seen within two of its detections)."""
        return t - tr.last_seen_t <= 2 * self.refresh_period

    def confirmed(self) -> list[Track]:
        return [tr for tr in self.tracker.tracks.values() if tr.confirmed]

    def take_metrics(self, t: float, run: bool = False) -> dict[str, float]:
        """faces_tracked (confirmed tracks with a fresh box, the mean a frame) and detections_per_s since
        the last call, which opens the next window (``run``: since the start, nothing reset)."""
        tally = self._run if run else self._window
        span = 0.0 if tally.start_t is None else t - tally.start_t
        out = {
            "faces_tracked": round(tally.tracked / tally.frames, 2) if tally.frames else 0.0,
            "detections_per_s": round(tally.detections / span, 2) if span > 0 else 0.0,
        }
        if not run:
            self._window = Tally(start_t=t)
        return out
