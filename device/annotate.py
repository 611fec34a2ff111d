"""What was read, drawn on the frames: ``emocast analyze --annotate OUT`` and ``emocast run --preview``.

For an engineer or installer to see in seconds what the device read and why: each face's box in its
state's colour, its track number, state and reason, emotion (or "unsure", or why it was not read), the
head pose as three axes, and the eyes' openness as a bar. Drawn from the same per-face records
``emocast analyze`` writes; a face keeps its last record until it has not been read for ``absent_s``.

Frames drawn here stay on the machine that ran the command: ``--annotate`` writes a file only when
asked, ``--preview`` shows a local window; the service never writes or sends a frame.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emocast.contract.palette import state_colour
from emocast.core.errors import UsageError

from .perception.stages.record import LatestRecords

log = logging.getLogger(__name__)

FONT = cv2.FONT_HERSHEY_SIMPLEX
CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}  # what OpenCV's bundled FFmpeg writes everywhere
PREVIEW_WINDOW = "emocast preview"


def bgr(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[4:6], 16), int(h[2:4], 16), int(h[0:2], 16)


def pose_axes(yaw: float, pitch: float, roll: float, length: float) -> np.ndarray:
    """The head's x (right, red), y (down, green) and z (out of the face, blue) axes in image pixels,
    orthographic, from degrees (yaw: turned to the image's right is positive; pitch: up is positive)."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    axes = rz @ rx @ ry @ np.diag([1.0, 1.0, -1.0])  # z toward the camera: a frontal face's nose axis is a dot
    return (axes[:2, :] * length).T  # rows: x, y, z axis ends relative to the face centre


def emotion_text(rec: Mapping[str, Any]) -> str | None:
    """The record's emotion as shown: the called emotion with its probability, "unsure", why it was not
    read, or None with emotion off (no key at all)."""
    if "emotion" not in rec:
        return None
    if rec.get("emotion_skipped"):
        return f"emotion: {str(rec['emotion_skipped']).replace('_', ' ')}"
    if rec.get("emotion_unsure") or (rec.get("probs") and not rec.get("emotion")):
        return "unsure"
    if rec.get("emotion"):
        p = (rec.get("probs") or {}).get(rec["emotion"])
        return f"{rec['emotion']} {p:.2f}" if p is not None else str(rec["emotion"])
    return "emotion: not read yet"


def draw(image: np.ndarray, records: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """Draw each record's face on ``image`` (in place; returned for convenience)."""
    scale = max(0.4, min(1.2, image.shape[0] / 900))
    thick = max(2, int(round(2 * scale)))  # a 1-pixel line does not survive a video codec
    for rec in records:
        x, y, w, h = (int(v) for v in rec["box"])
        state = rec.get("attention") or "absent"
        colour = bgr(state_colour(state))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, thick)
        head = f"#{rec['track']} {state.replace('_', ' ')}" + (f" ({rec['reason']})" if rec.get("reason") else "")
        lines = [head]
        text = emotion_text(rec)
        if text is not None:
            lines.append(text)
        for i, line in enumerate(lines):
            (tw, th), base = cv2.getTextSize(line, FONT, 0.5 * scale, thick)
            ty = y - 6 - (len(lines) - 1 - i) * (th + base + 4)
            ty = max(th + 2, ty) if y > th * 3 else y + h + (i + 1) * (th + base + 4)
            cv2.rectangle(image, (x, ty - th - 2), (x + tw + 4, ty + base), (0, 0, 0), -1)
            cv2.putText(image, line, (x + 2, ty), FONT, 0.5 * scale, (255, 255, 255), max(1, thick - 1), cv2.LINE_AA)
        pose = rec.get("head_pose")
        if pose:
            centre = np.array([x + w / 2, y + h / 2])
            for end, axis_colour in zip(pose_axes(pose["yaw"], pose["pitch"], pose["roll"], 0.4 * w),
                                        ((0, 0, 255), (0, 200, 0), (255, 80, 0)), strict=True):
                tip = (centre + end).astype(int)
                cv2.line(image, tuple(centre.astype(int)), tuple(tip), axis_colour, thick, cv2.LINE_AA)
        openness = rec.get("eye_openness")
        if openness is not None:  # a bar right of the box: full at a typical open eye
            fill = int(round(min(1.0, max(0.0, float(openness))) * h))
            bar_x = x + w + 4
            cv2.rectangle(image, (bar_x, y), (bar_x + 6, y + h), (60, 60, 60), 1)
            bar_colour = (60, 60, 230) if rec.get("eyes_closed") else (230, 230, 230)
            cv2.rectangle(image, (bar_x + 1, y + h - fill), (bar_x + 5, y + h - 1), bar_colour, -1)
    return image


def video_fps(path: Path) -> float:
    """The frame rate a video's header gives (0 where it gives none: the writer then uses 25)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()


class AnnotatedVideo:
    """Writes each frame with its overlay to a video file (written beside its name and renamed on
    ``close(ok=True)``, so a failed run leaves no half file)."""

    def __init__(self, path: Path, fps: float, absent_s: float) -> None:
        codec = CODECS.get(path.suffix.lower())
        if codec is None:
            raise UsageError(f"--annotate {path}: write .mp4, .avi or .mkv ({path.suffix or 'no suffix'} given)")
        self.path = path
        self.tmp = path.with_name(path.stem + ".partial" + path.suffix)
        self.fps = fps if fps and fps > 0 else 25.0
        self.codec = codec
        self.overlay = LatestRecords(absent_s)
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, image: np.ndarray, t: float, records: Iterable[Mapping[str, Any]]) -> None:
        if self.writer is None:
            h, w = image.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*self.codec), self.fps, (w, h))
            if not self.writer.isOpened():
                raise UsageError(f"--annotate {self.path}: OpenCV cannot write {self.codec} video here")
        self.writer.write(draw(image.copy(), self.overlay.update(t, records)))
        self.frames += 1

    def close(self, ok: bool) -> None:
        if self.writer is not None:
            self.writer.release()
        if ok and self.frames:
            self.tmp.replace(self.path)
            log.info("annotated video: %s (%d frames)", self.path, self.frames)
        else:
            self.tmp.unlink(missing_ok=True)


def gui_available() -> str:
    """"" where a preview window can open, else why not (no display, or an OpenCV built without one)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display (DISPLAY and WAYLAND_DISPLAY are unset: a service or an SSH session)"
    info = cv2.getBuildInformation()
    gui = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    if not gui or gui.upper().startswith("NONE"):
        return ("this OpenCV has no windows (opencv-python-headless): pip install opencv-python in a venv of "
                "its own for placing a camera")
    return ""


class Preview:
    """A local window showing the analysed frames with their overlay (``emocast run --preview``), for
    placing a camera; 'q' or Esc in the window stops the service. The analysis thread ``offer``s each
    frame; the main thread, which a GUI toolkit wants, ``pump``s the newest into the window."""

    def __init__(self, absent_s: float) -> None:
        why = gui_available()
        if why:
            raise UsageError(f"--preview needs a local window, and {why}")
        self.overlay = LatestRecords(absent_s)
        self._lock = threading.Lock()
        self._newest: tuple[np.ndarray, float, list[Mapping[str, Any]]] | None = None

    def offer(self, image: np.ndarray, t: float, records: Iterable[Mapping[str, Any]]) -> None:
        """The analysis thread's newest frame (an older one not yet shown is replaced)."""
        with self._lock:
            self._newest = (image, t, list(records))

    def pump(self) -> bool:
        """Show the newest frame, if any; False when the viewer asked to stop."""
        with self._lock:
            newest, self._newest = self._newest, None
        if newest is not None:
            image, t, records = newest
            cv2.imshow(PREVIEW_WINDOW, draw(image.copy(), self.overlay.update(t, records)))
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyAllWindows()
