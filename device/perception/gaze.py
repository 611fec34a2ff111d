"""Where the iris sits inside each eye, as ratios that a per-kiosk calibration maps to the screen.

Eye trackers built for the desk find the pupil by infrared glints; a kiosk camera in room light
sees only the iris as the darkest blob between the eyelids. So the eye's six landmarks outline the
opening, the darkest part of that opening (eyelashes trimmed away by shrinking the outline) is
taken as the iris, and its centre is expressed in the eye's own frame:

- ``h``: 0 at the eye's image-left corner, 1 at its image-right corner (about 0.5 looking ahead);
- ``v``: 0 at the upper lid, 1 at the lower lid (about 0.5 looking ahead).

Ratios, not pixels, so they do not depend on the face's size or distance, and measured along the
corner-to-corner axis, so a tilted head (roll) does not move them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .face_geometry import LEFT_EYE, RIGHT_EYE

EYE_WIDTH_PX = 48  # each eye is resampled to this width so the darkness threshold sees similar detail
DARK_SHARE = 0.3  # the darkest share of the eye opening taken to be iris


@dataclass(frozen=True)
class Gaze:
    h: float
    v: float

    def as_dict(self) -> dict[str, float]:
        return {"h": round(self.h, 3), "v": round(self.v, 3)}


def _eye_frame(eye: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Origin (image-left corner), unit axis along the eye, unit normal (pointing down), eye width."""
    a, b = eye[0], eye[3]
    if a[0] > b[0]:
        a, b = b, a
    axis = b - a
    width = float(np.hypot(*axis))
    u = axis / width
    n = np.array([-u[1], u[0]])  # image y points down, so this normal points down the face
    return a, u, n, width


def iris_position(gray: np.ndarray, eye: np.ndarray) -> tuple[float, float] | None:
    """(h, v) of the iris in one eye given its six landmarks, or None when the eye is too small or
    too closed to tell."""
    origin, u, n, width = _eye_frame(eye)
    if width < 8:
        return None
    # lid positions along the normal: upper lid points 1, 2 and lower lid points 4, 5
    d = (eye - origin) @ n
    upper, lower = float(d[1] + d[2]) / 2.0, float(d[4] + d[5]) / 2.0
    if lower - upper < 0.12 * width:  # nearly shut: no iris to see
        return None
    # resample the eye into its own frame: x along the axis, y along the normal
    scale = EYE_WIDTH_PX / width
    out_h = max(8, int(round((lower - upper) * scale)))
    src = np.float32([origin + upper * n, origin + u * width + upper * n, origin + lower * n])
    dst = np.float32([[0, 0], [EYE_WIDTH_PX - 1, 0], [0, out_h - 1]])
    patch = cv2.warpAffine(gray, cv2.getAffineTransform(src, dst), (EYE_WIDTH_PX, out_h),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # the opening as a mask in patch coordinates, shrunk so lashes and lid shadows stay out
    pts = np.stack([(eye - origin) @ u * scale, ((eye - origin) @ n - upper) * scale], axis=1)
    mask = np.zeros(patch.shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts.astype(np.int32)), 255)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=max(1, out_h // 10))
    values = patch[mask > 0]
    if values.size < 20:
        return None
    k = int(DARK_SHARE * (values.size - 1))
    cut = int(np.partition(values, k)[k])
    ys, xs = np.nonzero((patch <= cut) & (mask > 0))
    weights = cut + 1.0 - patch[ys, xs]  # darker pixels count more; never empty: the cut is a value of the mask
    total = weights.sum()
    cx = float(xs @ weights) / total
    cy = float(ys @ weights) / total
    return cx / (EYE_WIDTH_PX - 1), cy / max(1, out_h - 1)


def gaze_ratios(gray: np.ndarray, landmarks: np.ndarray) -> Gaze | None:
    """Both eyes' iris positions averaged (one eye alone when the other cannot be read)."""
    found = [p for p in (iris_position(gray, landmarks[RIGHT_EYE]), iris_position(gray, landmarks[LEFT_EYE]))
             if p is not None]
    if not found:
        return None
    h = float(np.mean([p[0] for p in found]))
    v = float(np.mean([p[1] for p in found]))
    return Gaze(h, v)
