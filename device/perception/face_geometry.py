"""Geometry on 68-point landmarks: head pose, eye openness, and where the iris sits in the eye.

Angles follow one convention everywhere (degrees, camera looking at the person):
- yaw > 0: the face turns toward the image's right (the person's own left);
- pitch > 0: the face tilts up (a positive rotation about the model's x axis turns the face's
  normal down, hence the minus signs below);
- roll > 0: the face leans clockwise in the image.

Head pose solves a perspective-n-point problem between the landmarks and a generic 3D face. The
3D points below are average adult proportions in millimetres (x to the image's right, y up, z toward
the camera), measured relative to the nose tip; they are our own approximation, good to a few
degrees, which is what an attention check needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# dlib 68-point indices
RIGHT_EYE = slice(36, 42)  # the person's right eye: on the image's left
LEFT_EYE = slice(42, 48)

# landmark index -> generic 3D position (mm)
FACE_3D: dict[int, tuple[float, float, float]] = {
    30: (0.0, 0.0, 0.0),  # nose tip
    33: (0.0, -16.0, -12.0),  # below the nose
    8: (0.0, -68.0, -18.0),  # chin
    36: (-45.0, 34.0, -34.0),  # right eye, outer corner
    39: (-14.0, 32.0, -30.0),  # right eye, inner corner
    42: (14.0, 32.0, -30.0),  # left eye, inner corner
    45: (45.0, 34.0, -34.0),  # left eye, outer corner
    48: (-26.0, -30.0, -24.0),  # mouth, right corner
    54: (26.0, -30.0, -24.0),  # mouth, left corner
    17: (-58.0, 48.0, -46.0),  # right brow, outer end
    26: (58.0, 48.0, -46.0),  # left brow, outer end
    0: (-70.0, 26.0, -100.0),  # jaw line at the right ear
    16: (70.0, 26.0, -100.0),  # jaw line at the left ear
}
POSE_INDICES = np.array(list(FACE_3D), dtype=np.int64)
POSE_MODEL = np.array(list(FACE_3D.values()), dtype=np.float64)


@dataclass(frozen=True)
class HeadPose:
    yaw: float
    pitch: float
    roll: float
    rvec: np.ndarray
    tvec: np.ndarray


def camera_matrix(width: int, height: int, focal: float | None = None) -> np.ndarray:
    """Pinhole intrinsics; without a calibration, a focal length of the frame width (about 53 degrees
    of horizontal field of view, typical of webcams and the Pi camera) is close enough."""
    f = float(focal or width)
    return np.array([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1]], dtype=np.float64)


def _euler_from_rotation(rot: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll (degrees) of a model-to-camera rotation, in this module's convention.

    The model's axes are x right, y up, z toward the camera; OpenCV's camera has y down and z away,
    so a face looking straight at the camera has R = diag(1, -1, -1)."""
    flip = np.diag([1.0, -1.0, -1.0])
    r = flip @ rot  # R = Rz(-roll) Rx(-pitch) Ry(yaw), identity when facing the camera
    pitch = -np.degrees(np.arcsin(np.clip(r[2, 1], -1.0, 1.0)))
    yaw = np.degrees(np.arctan2(-r[2, 0], r[2, 2]))
    roll = np.degrees(np.arctan2(-r[0, 1], r[1, 1]))
    return float(yaw), float(pitch), float(-roll)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model-to-camera rotation for given angles (the inverse of ``_euler_from_rotation``)."""
    y, p, r = np.radians([yaw, -pitch, -roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return np.diag([1.0, -1.0, -1.0]) @ (rz @ rx @ ry)


def head_pose(landmarks: np.ndarray, cam: np.ndarray, previous: HeadPose | None = None) -> HeadPose | None:
    """Solve the pose from 68 landmarks; ``previous`` seeds the solver for temporal stability."""
    image_pts = landmarks[POSE_INDICES].astype(np.float64)
    if previous is not None:
        ok, rvec, tvec = cv2.solvePnP(POSE_MODEL, image_pts, cam, None, previous.rvec.copy(), previous.tvec.copy(),
                                      useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    else:
        ok, rvec, tvec = cv2.solvePnP(POSE_MODEL, image_pts, cam, None, flags=cv2.SOLVEPNP_EPNP)
        if ok:
            ok, rvec, tvec = cv2.solvePnP(POSE_MODEL, image_pts, cam, None, rvec, tvec, useExtrinsicGuess=True,
                                          flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or tvec[2, 0] <= 0:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    yaw, pitch, roll = _euler_from_rotation(rot)
    return HeadPose(yaw, pitch, roll, rvec, tvec)


def project_model(yaw: float, pitch: float, roll: float, cam: np.ndarray, distance_mm: float = 600.0,
                  offset_px: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Landmarks (68x2, only the pose points filled) of the generic face at a known pose: for tests
    and for checking the solver."""
    rot = rotation_from_euler(yaw, pitch, roll)
    rvec, _ = cv2.Rodrigues(rot)
    tvec = np.array([[offset_px[0] * distance_mm / cam[0, 0]], [offset_px[1] * distance_mm / cam[1, 1]],
                     [distance_mm]])
    pts, _ = cv2.projectPoints(POSE_MODEL, rvec, tvec, cam, None)
    out = np.zeros((68, 2), dtype=np.float64)
    out[POSE_INDICES] = pts.reshape(-1, 2)
    return out


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """Soukupova & Cech's EAR on six eye points (corner, two upper, corner, two lower): eyelid
    opening over eye width; about 0.25-0.35 open, under 0.15 closed, whatever the face's size."""
    a = np.linalg.norm(eye[1] - eye[5])
    b = np.linalg.norm(eye[2] - eye[4])
    c = np.linalg.norm(eye[0] - eye[3])
    return float((a + b) / (2.0 * c)) if c > 0 else 0.0


def eye_openness(landmarks: np.ndarray) -> tuple[float, float]:
    """EAR of the person's right and left eye."""
    return eye_aspect_ratio(landmarks[RIGHT_EYE]), eye_aspect_ratio(landmarks[LEFT_EYE])


def upright_patch(gray: np.ndarray, centre: tuple[float, float] | np.ndarray, side: float, angle_deg: float,
                  size: int, border: int = cv2.BORDER_REPLICATE) -> tuple[np.ndarray, np.ndarray]:
    """The square of ``side`` pixels about ``centre``, turned by ``angle_deg`` (a face or an eye that
    leans clockwise in the image, angle > 0, comes out upright) and scaled to ``size`` x ``size``: the
    crop the networks that read a face's parts expect (Face Mesh, the iris model). Returns the patch
    and its affine matrix (image -> patch), to map the network's points back."""
    cx, cy = float(centre[0]), float(centre[1])
    m = cv2.getRotationMatrix2D((cx, cy), angle_deg, size / max(side, 1.0))
    m[0, 2] += size / 2.0 - cx
    m[1, 2] += size / 2.0 - cy
    patch = cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)
    return patch, m
