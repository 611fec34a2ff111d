"""One face, one frame: landmarks, then head pose, eye openness and gaze from them.

The reading is what the attention rules and ``emocast analyze`` see. Landmarks never leave this
module's caller (the analysis thread): they are reduced to angles and ratios here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .detectors import DetectorUnavailable
from .eyes import EyeStateModel, IrisEyes
from .face_geometry import HeadPose, camera_matrix, eye_openness, head_pose
from .faces import Box
from .gaze import Gaze, gaze_ratios
from .landmarks import LANDMARK_MODELS, Landmarks, make_landmarks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceReading:
    pose: HeadPose | None  # as solved on this frame (smoothing is the track's business)
    ear_right: float  # eye aspect ratio (six eye landmarks) of the person's right eye
    ear_left: float
    gaze: Gaze | None
    iris_openness: float | None = None  # both eyes' mean lid gap / width by the iris model, when asked for
    presence: float | None = None  # Face Mesh's probability that the box holds a face (None with dlib)
    closed_p: float | None = None  # the eye-state classifier's probability that the eyes are shut (both eyes' mean)
    lower_lid: float | None = None  # both lower lids below the eye corners' line / eye width (iris model), when read
    extent: Box | None = None  # the landmarks' bounding box (x, y, w, h): where the face is now, for tracking

    @property
    def ear(self) -> float:
        return (self.ear_right + self.ear_left) / 2.0


def load_landmarks(name: str) -> Landmarks:
    """The configured landmark model, else the other one with a warning (a kiosk keeps its checks);
    DetectorUnavailable naming both fixes where neither is installed."""
    try:
        return make_landmarks(name)
    except DetectorUnavailable as first:
        for other in LANDMARK_MODELS:
            if other == name:
                continue
            try:
                model = make_landmarks(other)
            except DetectorUnavailable:
                continue
            log.warning("landmarks from %s instead of %s: %s", other, name, first)
            return model
        raise DetectorUnavailable(f"no landmark model is installed for the attention checks: {first}") from first


class FaceReader:
    """Landmarks -> pose, eye state and gaze, with intrinsics from the frame size unless a focal
    is given. ``landmarks`` names the model (``landmarks.py``: "facemesh" or "dlib") or is one.
    ``eyes`` (``eyes.py``): "model" reads every face's eyes with the eye-state classifier; "iris"
    loads MediaPipe's iris model for the readings that ask for it (faces without an open-eye
    baseline; every reading with Face Mesh); "landmarks" judges the landmarks' EAR alone. Where the
    model asked for cannot load, a warning, and the next one down serves.

    ``lids`` (with the classifier): also load the iris model to read where the lower lids sit, for the
    readings that ask (``read``'s ``lids_from``): eyes that read shut with the lower lids no higher than
    usual are looking down under lowered lids (``attention.EyeMonitor.downcast``). Without the iris
    model's files the cue is off, with a warning."""

    def __init__(self, focal_px: float = 0.0, gaze: bool = True, landmarks: Landmarks | str = "facemesh",
                 eyes: str = "model", lids: bool = True) -> None:
        self.landmarks = load_landmarks(landmarks) if isinstance(landmarks, str) else landmarks
        self._settings = (focal_px, gaze, eyes, lids)
        self.focal_px = focal_px or None
        self.gaze = gaze
        self.eye_model: EyeStateModel | None = None
        self.iris: IrisEyes | None = None
        if eyes == "model":
            try:
                self.eye_model = EyeStateModel()
            except DetectorUnavailable as exc:
                log.warning("eyes read by the iris model instead of the eye-state classifier: %s", exc)
        if eyes == "iris" or (eyes == "model" and self.eye_model is None):
            try:
                self.iris = IrisEyes()
            except DetectorUnavailable as exc:
                log.warning("eye openness from the landmarks' EAR instead of the iris model: %s", exc)
        elif self.eye_model is not None and lids:
            try:
                self.iris = IrisEyes()
            except DetectorUnavailable as exc:
                log.warning("no lower-lid cue (shut eyes and a downward glance under lowered lids read alike "
                            "from a level head): %s", exc)
        if eyes == "landmarks" and not self.landmarks.lids_follow_closure:
            log.warning("eyes = \"landmarks\" with Face Mesh: its eye points barely move when eyes close "
                        "(no blink seen on a talking-head clip); eyes = \"iris\" reads them")
        self._cam: tuple[tuple[int, int], np.ndarray] | None = None

    def clone(self) -> FaceReader:
        """Another reader with the same settings and models of its own (for a second worker thread:
        an interpreter serves one thread at a time). The models it fell back to are the ones it loads."""
        focal_px, gaze, _, lids = self._settings
        return FaceReader(focal_px, gaze, landmarks=self.landmarks.name, eyes=self.eyes,
                          lids=lids and self.iris is not None)

    @property
    def eye_signal(self) -> str:
        """What eye state is judged on: "model", the eye-state classifier's probability on every
        reading; "iris", the iris model's lid gap on every reading (with landmarks whose eye points do
        not follow closing lids: Face Mesh's); or "ear", the landmarks' eye aspect ratio (with dlib's;
        the iris model then judges only a face without its own baseline yet, see EyeMonitor)."""
        if self.eye_model is not None:
            return "model"
        return "iris" if self.iris is not None and not self.landmarks.lids_follow_closure else "ear"

    @property
    def eyes(self) -> str:
        """The eye model in use: the next one down where the one asked for is not installed."""
        if self.eye_model is not None:
            return "model"
        return "iris" if self.iris is not None else "landmarks"

    def _camera(self, shape: tuple[int, ...]) -> np.ndarray:
        size = (int(shape[1]), int(shape[0]))
        if self._cam is None or self._cam[0] != size:
            self._cam = (size, camera_matrix(size[0], size[1], self.focal_px))
        return self._cam[1]

    @property
    def reads_lids(self) -> bool:
        """Whether ``read`` can report the lower lids (the classifier judges the eyes and the iris
        model is loaded beside it)."""
        return self.eye_model is not None and self.iris is not None

    def read(self, gray: np.ndarray, box: Box, previous: HeadPose | None = None, iris: bool = False,
             lids_from: float | None = None) -> FaceReading:
        """One face's reading. ``iris``: include the iris model's lid gap. ``lids_from``: include the
        lower lids where the classifier's probability of shut eyes is at least this (0: always; None:
        never), so the iris model runs on closures and the few open readings a baseline needs."""
        roll = previous.roll if previous is not None else 0.0  # Face Mesh reads the face turned upright
        found = self.landmarks.read(gray, box, roll)
        lm = found.points
        pose = head_pose(lm, self._camera(gray.shape), previous)
        ear_r, ear_l = eye_openness(lm)
        gz = gaze_ratios(gray, lm) if self.gaze else None
        openness = closed_p = lower = None
        if self.eye_model is not None:
            right, left = self.eye_model.closed(gray, lm)
            closed_p = (right + left) / 2.0
        if self.reads_lids and lids_from is not None and closed_p is not None and closed_p >= lids_from:
            assert self.iris is not None
            gap, lower = self.iris.lids(gray, lm)
            openness = gap if iris else None
        elif self.iris is not None and (iris or self.eye_signal == "iris"):
            right, left = self.iris.openness(gray, lm)
            openness = (right + left) / 2.0
        x0, y0 = lm.min(axis=0)
        x1, y1 = lm.max(axis=0)
        extent = (int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0)))
        return FaceReading(pose, ear_r, ear_l, gz, openness, found.presence, closed_p, lower, extent)
