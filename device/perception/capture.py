"""Frame sources and the capture thread.

Every source (a video file, a V4L2 index, an RTSP/HTTP URL, the Pi camera) sits behind one small
interface, so the service is tested with video files through exactly the code a camera uses.
The capture thread never waits for analysis: it keeps only the newest frame in a one-slot mailbox
and counts what it overwrote. The exception is a file read with ``realtime = false`` (offline
analysis), where every frame matters and the thread waits for the slot to be taken.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from emocast.core.broker import redact_url
from emocast.core.errors import EmocastError, ExitCode

log = logging.getLogger(__name__)


class SourceError(EmocastError):
    """A source cannot be opened or read (file missing, not a video, camera absent)."""

    exit_code = ExitCode.SOURCE


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR, HxWx3 uint8
    index: int  # frames read since the source was opened (across loops and reopenings)
    t: float  # seconds: media time for files, monotonic clock for live sources
    wall: float  # time.time() when captured


class FrameSource(Protocol):
    """What the capture thread needs from a camera or a file."""

    name: str
    live: bool  # a camera or a stream, not a file

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...  # None: end of stream (file) or a failed read (live)
    def close(self) -> None: ...
    @property
    def fps(self) -> float: ...


class VideoCaptureSource:
    """OpenCV's VideoCapture for files, camera indices and network URLs."""

    def __init__(self, uri: str, width: int = 0, height: int = 0, fps: float = 0.0,
                 stall_timeout_s: float = 5.0) -> None:
        self.uri = uri
        self.name = redact_url(uri)  # what logs and errors show: never a camera's password
        self.is_index = uri.isdigit()
        self.is_url = "://" in uri
        self.live = self.is_index or self.is_url
        self._want = (width, height, fps)
        self.stall_timeout_s = stall_timeout_s
        self._cap: cv2.VideoCapture | None = None
        self._fps = 0.0
        self.frame_count = 0
        self._read = 0
        self._first: np.ndarray | None = None  # read at open() to prove the file decodes

    def open(self) -> None:
        if not self.live:
            path = Path(self.uri)
            if not path.is_file():
                raise SourceError(f"video file not found: {path}")
        if self.is_url:
            # A stalled stream must fail its read (and be reopened), not block the capture thread forever.
            ms = int(self.stall_timeout_s * 1000)
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            cap = cv2.VideoCapture(int(self.uri) if self.is_index else self.uri)
        if not cap.isOpened():
            cap.release()
            kind = "camera" if self.is_index else "stream" if self.is_url else "video file (not a video?)"
            raise SourceError(f"cannot open {kind}: {self.name}")
        if self.is_index:
            w, h, f = self._want
            if w and h:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            if f:
                cap.set(cv2.CAP_PROP_FPS, f)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a backlog
        self._fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (0.5 < self._fps < 1000):
            self._fps = self._want[2] or 25.0
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._cap = cap
        self._read = 0
        if not self.live:
            first = self.read()
            if first is None:
                self.close()
                raise SourceError(f"video file has no decodable frame: {self.name}")
            self._first = first

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        if self._first is not None:
            first, self._first = self._first, None
            return first
        ok, image = self._cap.read()
        if not ok or image is None:
            if not self.live and self.frame_count and self._read < self.frame_count - 1:
                log.warning("%s ended early: %d of %d frames decoded (truncated file?)",
                            self.name, self._read, self.frame_count)
            return None
        self._read += 1
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return image

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def fps(self) -> float:
        return self._fps


GST_PREFIX = "gst:"
JETSON_CSI_EXAMPLE = ("gst:nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! "
                      "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
                      "appsink drop=true max-buffers=1")


def opencv_has_gstreamer() -> bool:
    """Whether this OpenCV build can run GStreamer pipelines (PyPI's wheels cannot; JetPack's can)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1].upper()
    return False


class GStreamerSource(VideoCaptureSource):
    """A GStreamer pipeline ending in ``appsink`` (``uri = "gst:<pipeline>"``): how a Jetson's CSI
    camera (``nvarguscamerasrc``) reaches OpenCV. PyPI's OpenCV is built without GStreamer, so this
    needs the system's OpenCV (JetPack's ``python3-opencv`` seen from a venv made with
    ``--system-site-packages``, with PyPI's ``opencv-python-headless`` uninstalled); the error says so.
    The other way needs no special OpenCV: a V4L2 loopback device fed by ``gst-launch-1.0``, opened as
    a camera index."""

    def __init__(self, uri: str, width: int = 0, height: int = 0, fps: float = 0.0,
                 stall_timeout_s: float = 5.0) -> None:
        super().__init__(uri, width, height, fps, stall_timeout_s)
        self.pipeline = uri.removeprefix(GST_PREFIX).strip()
        self.is_index = self.is_url = False
        self.live = True

    def open(self) -> None:
        if "appsink" not in self.pipeline:
            raise SourceError(f"GStreamer pipeline {self.pipeline!r} must end in appsink (OpenCV reads from it), "
                              f"e.g. {JETSON_CSI_EXAMPLE!r}")
        if not opencv_has_gstreamer():
            raise SourceError(
                f"this OpenCV ({cv2.__version__}, {Path(cv2.__file__).parent}) is built without GStreamer, so "
                "it cannot open a gst: pipeline. On a Jetson: use JetPack's OpenCV (sudo apt install "
                "python3-opencv; a venv made with --system-site-packages; pip uninstall opencv-python-headless), "
                "or feed the camera to a V4L2 loopback (sudo modprobe v4l2loopback video_nr=10; gst-launch-1.0 "
                "nvarguscamerasrc ! nvvidconv ! video/x-raw,format=YUY2 ! v4l2sink device=/dev/video10) and "
                "set [source] uri = \"10\"")
        cap = cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"GStreamer could not start the pipeline: {self.pipeline} "
                              "(try it with gst-launch-1.0, replacing appsink with fakesink)")
        self._fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (0.5 < self._fps < 1000):
            self._fps = self._want[2] or 30.0
        self.frame_count = 0
        self._cap = cap
        self._read = 0


class PiCameraSource:
    """The Raspberry Pi camera through picamera2 (the ``[pi]`` extra); frames copied, buffers released."""

    live = True

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.name = "picamera"
        self._size = (width, height)
        self._fps = fps
        self._cam = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SourceError(
                "source 'picamera' needs picamera2 with libcamera, which is not on PyPI: on Raspberry Pi OS "
                "`sudo apt install python3-picamera2` and a venv made with --system-site-packages "
                f"(systemd/install.sh --pi does both) ({exc})") from exc
        except ValueError as exc:  # apt's simplejpeg built for apt's numpy 1.x, imported under pip's numpy 2
            raise SourceError(
                f"picamera2 cannot import under this numpy ({exc}): Raspberry Pi OS's python3-picamera2 and "
                "python3-simplejpeg are built for its own numpy (1.24 on Bookworm); in the venv run "
                "`pip install 'numpy<2' 'opencv-python-headless<4.12'` (OpenCV 4.12 and later need numpy 2), "
                "or use Raspberry Pi OS Trixie, whose packages are built for numpy 2") from exc
        try:
            cam = Picamera2()
            cfg = cam.create_video_configuration(
                main={"size": self._size, "format": "RGB888"},
                controls={"FrameRate": self._fps},
                buffer_count=2,
            )
            cam.configure(cfg)
            cam.start()
        except Exception as exc:  # picamera2 raises bare RuntimeErrors for an absent camera
            raise SourceError(f"cannot open the Pi camera: {exc}") from exc
        self._cam = cam

    def read(self) -> np.ndarray | None:
        if self._cam is None:
            return None
        try:
            # "RGB888" in picamera2 is BGR in memory order, which is what OpenCV wants; copy it so the
            # camera's buffer goes back at once.
            return np.array(self._cam.capture_array("main"), copy=True)
        except Exception as exc:
            log.warning("Pi camera read failed: %s", exc)
            return None

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None

    @property
    def fps(self) -> float:
        return self._fps


def open_source(uri: str, width: int = 640, height: int = 480, fps: float = 30.0,
                stall_timeout_s: float = 5.0) -> FrameSource:
    """Pick the source class for ``uri``: ``picamera``, ``demo`` (the clip emocast makes for itself),
    ``gst:<pipeline>`` (GStreamer, e.g. a Jetson's CSI camera), else OpenCV's VideoCapture (a file, a
    camera index, an rtsp:// or http:// URL)."""
    if uri == "picamera":
        return PiCameraSource(width, height, fps)
    if uri == "demo":
        from .demo_clip import DemoUnavailable, ensure_demo_clip

        try:
            return VideoCaptureSource(str(ensure_demo_clip()))
        except DemoUnavailable as exc:
            raise SourceError(str(exc)) from None
    if uri.startswith(GST_PREFIX):
        return GStreamerSource(uri, width, height, fps, stall_timeout_s)
    return VideoCaptureSource(uri, width, height, fps, stall_timeout_s)


class LatestFrameSlot:
    """A one-frame mailbox. A newer frame replaces an untaken one (counted as dropped), unless
    ``lossless``, where the producer waits for the consumer instead."""

    def __init__(self, lossless: bool = False) -> None:
        self.lossless = lossless
        self._frame: Frame | None = None
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self._cond:
            if self.lossless:
                while self._frame is not None and not stop.is_set() and not self._closed:
                    self._cond.wait(0.1)
            elif self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed and self._frame is None

    def metrics(self) -> dict[str, int]:
        """Frames replaced before analysis took them (the camera outran it)."""
        return {"frames_dropped": self.dropped}


@dataclass
class CaptureStats:
    frames_in: int = 0
    reopens: int = 0
    source_ok: bool = True
    last_error: str = ""
    ended: bool = False
    crashed: bool = False  # ended on an exception, not at end of file or on request

    def metrics(self) -> dict[str, int | bool]:
        """Capture's fields of the metrics event."""
        return {"frames_in": self.frames_in, "source_ok": self.source_ok, "source_reopens": self.reopens}


class CaptureThread(threading.Thread):
    """Reads a source into a LatestFrameSlot; reopens a lost live source with capped back-off."""

    def __init__(
        self,
        source: FrameSource,
        slot: LatestFrameSlot,
        stop: threading.Event,
        loop: bool = False,
        realtime: bool = True,
        backoff_max_s: float = 30.0,
    ) -> None:
        super().__init__(name="capture", daemon=True)
        self.source = source
        self.slot = slot
        self.stop_event = stop
        self.loop = loop
        self.realtime = realtime
        self.backoff_max_s = backoff_max_s
        self.stats = CaptureStats()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # never die silently: the service turns this into an exit code
            log.exception("capture thread failed")
            self.stats.last_error = str(exc)
            self.stats.crashed = True
        finally:
            self.stats.ended = True
            self.source.close()
            self.slot.close()

    def _run(self) -> None:
        src = self.source
        index = 0
        t_offset = 0.0  # media time carried across loops of a file
        start_wall = time.monotonic()
        backoff = 0.5
        local = 0
        while not self.stop_event.is_set():
            image = src.read()
            if image is None:
                if not src.live:
                    if self.loop:
                        t_offset += local / src.fps
                        local = 0
                        src.close()
                        src.open()
                        continue
                    log.info("end of %s after %d frames", src.name, index)
                    return
                self.stats.source_ok = False
                self.stats.last_error = f"lost {src.name}"
                log.warning("lost %s; reopening in %.1f s", src.name, backoff)
                src.close()
                if self.stop_event.wait(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max_s)
                try:
                    src.open()
                    self.stats.reopens += 1
                    log.info("reopened %s", src.name)
                except SourceError as exc:
                    self.stats.last_error = str(exc)
                continue
            if src.live:
                t = time.monotonic()
                # back-off resets on a delivered frame, not on a successful open: a camera that opens
                # but never delivers must not be retried twice a second forever
                backoff = 0.5
                self.stats.source_ok = True
            else:
                t = t_offset + local / src.fps
                local += 1
                if self.realtime:
                    delay = start_wall + t - time.monotonic()
                    if delay > 0 and self.stop_event.wait(delay):
                        return
            self.stats.frames_in += 1
            self.slot.put(Frame(image, index, t, time.time()), self.stop_event)
            index += 1
