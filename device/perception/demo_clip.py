"""The demo clip: a real face on video, made here, so a fresh install has something to run on.

matplotlib ships a portrait of Rear Admiral Grace Hopper (public domain, US Navy) among its sample
data; it is read from the installed package. The clip moves that head-and-shoulders crop across a
640x480 frame, leaves the frame empty for stretches longer than the `absent` timeout, and brings
the face back larger, so one run exercises detection, tracking, emotion, and the attentive ->
absent -> new-track path. matplotlib is the ``[plot]`` extra (it also draws `analyze --plot`): a
kiosk's base install leaves it out, runs on its camera, and is told how to get the demo if it asks for
it (``DemoUnavailable``). The portrait is read from matplotlib, never copied into emocast: emocast
ships only what it made.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emocast.core.errors import EmocastError, ExitCode

log = logging.getLogger(__name__)

CLIP_VERSION = 2


@dataclass(frozen=True)
class Segment:
    seconds: float
    face: bool
    scale: float = 1.0  # face-crop height as a fraction of the frame height
    x_from: float = 0.5  # horizontal centre, fraction of the width, at the segment's start...
    x_to: float = 0.5  # ...and at its end


SEGMENTS: tuple[Segment, ...] = (
    Segment(3.0, True, 0.62, 0.35, 0.60),
    Segment(3.5, False),
    Segment(4.0, True, 0.80, 0.62, 0.45),
    Segment(3.0, False),
    Segment(2.5, True, 0.55, 0.45, 0.52),
)


def _background(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A plausible wall: a vertical gradient with fixed sensor-like noise."""
    grad = np.linspace(170, 110, h, dtype=np.float32)[:, None, None]
    tint = np.array([1.0, 0.97, 0.92], dtype=np.float32)[None, None, :]
    bg = grad * tint + rng.normal(0, 4, (h, w, 3)).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


class DemoUnavailable(EmocastError, RuntimeError):
    """The demo clip cannot be made here (matplotlib, whose sample portrait it shows, is not installed)."""

    exit_code = ExitCode.SOURCE


def _portrait_head() -> np.ndarray:
    try:
        from matplotlib import cbook
    except ImportError:
        raise DemoUnavailable("the demo clip shows matplotlib's sample portrait (Grace Hopper, public domain), "
                              "and matplotlib is not installed: pip install 'emocast[plot]', or set "
                              "[source] uri to a camera or a video file") from None

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    bgr = cv2.imread(str(path))  # 600x512, the face about 210 px wide
    if bgr is None:
        raise RuntimeError(f"{path}: matplotlib's sample portrait cannot be read")
    return np.ascontiguousarray(bgr[20:470, 86:446])  # head and shoulders


def render_frames(width: int = 640, height: int = 480, fps: float = 15.0, segments=SEGMENTS):
    """Yield the clip's frames (BGR); deterministic, so tests and benchmarks see the same pixels."""
    rng = np.random.default_rng(7)
    bg = _background(width, height, rng)
    head = _portrait_head()
    for seg in segments:
        n = int(round(seg.seconds * fps))
        for i in range(n):
            frame = bg.copy()
            if seg.face:
                hh = int(height * seg.scale)
                ww = int(head.shape[1] * hh / head.shape[0])
                face = cv2.resize(head, (ww, hh), interpolation=cv2.INTER_AREA)
                frac = i / max(1, n - 1)
                cx = int(width * (seg.x_from + (seg.x_to - seg.x_from) * frac))
                x0 = int(np.clip(cx - ww // 2, 0, width - ww))
                y0 = height - hh
                frame[y0 : y0 + hh, x0 : x0 + ww] = face
            yield frame


def write_clip(path: Path, width: int = 640, height: int = 480, fps: float = 15.0, segments=SEGMENTS) -> Path:
    """Write the clip as Motion-JPEG AVI (every OpenCV build can write and read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {tmp}")
    try:
        for frame in render_frames(width, height, fps, segments):
            writer.write(frame)
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)  # nothing half-made is left in the cache
        raise
    writer.release()
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a clip
    return path


def default_clip_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "emocast" / f"demo_portrait_v{CLIP_VERSION}.avi"


def ensure_demo_clip(path: Path | None = None) -> Path:
    path = path or default_clip_path()
    if not path.is_file():
        log.info("making the demo clip %s", path)
        write_clip(path)
    return path

