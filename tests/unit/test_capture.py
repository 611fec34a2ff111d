from __future__ import annotations

import logging
import threading
import time

import pytest

from emocast.device.perception.capture import (
    CaptureThread,
    Frame,
    LatestFrameSlot,
    SourceError,
    VideoCaptureSource,
    open_source,
)
from emocast.device.perception.demo_clip import Segment, write_clip

SHORT = (Segment(1.0, True, 0.6, 0.4, 0.6), Segment(1.0, False))  # 30 frames at 15 fps


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("cap") / "short.avi", segments=SHORT)


def drain(slot: LatestFrameSlot, thread: CaptureThread, timeout: float = 20.0) -> list[Frame]:
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = slot.get(0.2)
        if f is not None:
            got.append(f)
        elif thread.stats.ended and slot.closed:
            break
    return got


def test_file_source_reads_every_frame_losslessly_with_media_time(short_clip):
    src = VideoCaptureSource(str(short_clip))
    src.open()
    assert not src.live and src.fps == pytest.approx(15.0)
    slot, stop = LatestFrameSlot(lossless=True), threading.Event()
    th = CaptureThread(src, slot, stop, realtime=False)
    th.start()
    frames = drain(slot, th)
    th.join(5)
    assert [f.index for f in frames] == list(range(30))
    assert frames[15].t == pytest.approx(1.0)
    assert frames[0].image.shape == (480, 640, 3)
    assert slot.dropped == 0 and th.stats.ended


def test_realtime_pacing_drops_frames_for_a_slow_consumer_and_counts_them(short_clip):
    src = VideoCaptureSource(str(short_clip))
    src.open()
    slot, stop = LatestFrameSlot(lossless=False), threading.Event()
    th = CaptureThread(src, slot, stop, realtime=True)
    started = time.monotonic()
    th.start()
    seen = []
    while not (th.stats.ended and slot.closed):
        f = slot.get(0.2)
        if f is not None:
            seen.append(f.index)
            time.sleep(0.2)  # a consumer at 5 fps against a 15 fps source
    th.join(5)
    elapsed = time.monotonic() - started
    assert elapsed >= 1.8  # paced at the file's own 15 fps: 30 frames take ~2 s
    assert slot.dropped > 0
    assert len(seen) + slot.dropped == th.stats.frames_in == 30
    assert seen == sorted(seen) and seen[-1] >= 25  # always the newest frame


def test_loop_repeats_a_file_with_continuous_time(short_clip):
    src = VideoCaptureSource(str(short_clip))
    src.open()
    slot, stop = LatestFrameSlot(lossless=True), threading.Event()
    th = CaptureThread(src, slot, stop, loop=True, realtime=False)
    th.start()
    frames = []
    while len(frames) < 70:
        f = slot.get(1.0)
        assert f is not None
        frames.append(f)
    stop.set()
    th.join(5)
    ts = [f.t for f in frames]
    assert all(b > a for a, b in zip(ts, ts[1:], strict=False))
    assert frames[65].t == pytest.approx(65 / 15.0)


def test_missing_file_and_non_video_file(tmp_path):
    with pytest.raises(SourceError, match="video file not found"):
        VideoCaptureSource(str(tmp_path / "none.mp4")).open()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SourceError, match="cannot open|no decodable frame"):
        VideoCaptureSource(str(junk)).open()


def test_truncated_video_ends_early_with_a_warning_and_keeps_what_decoded(short_clip, tmp_path, caplog):
    data = short_clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    src = VideoCaptureSource(str(cut))
    src.open()
    slot, stop = LatestFrameSlot(lossless=True), threading.Event()
    th = CaptureThread(src, slot, stop, realtime=False)
    with caplog.at_level(logging.WARNING):
        th.start()
        frames = drain(slot, th)
        th.join(5)
    assert 0 < len(frames) < 30
    assert th.stats.ended


def test_camera_that_is_absent_is_a_source_error():
    with pytest.raises(SourceError, match="cannot open camera"):
        VideoCaptureSource("97").open()


def test_picamera_without_picamera2_says_how_to_install_it():
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    with pytest.raises(SourceError, match=r"apt install python3-picamera2.*--system-site-packages"):
        open_source("picamera").open()


def test_the_demo_without_matplotlib_says_how_to_get_it_and_the_service_exits_5(tmp_path, monkeypatch, capsys):
    """matplotlib is the [plot] extra: a kiosk's base install has no demo portrait. Asking for the demo
    there is a source error that names the extra and the way around it, from `run` and `demo-clip`."""
    import sys

    from emocast.cli import main
    from emocast.core.errors import ExitCode

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no clip made before
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it fails
    with pytest.raises(SourceError, match=r"pip install 'emocast\[plot\]', or set \[source\] uri"):
        open_source("demo")
    assert main(["demo-clip"]) == ExitCode.SOURCE
    assert main(["run", "--source", "demo", "--duration", "5", "--broker", "mqtt://127.0.0.1:1"]) == ExitCode.SOURCE
    assert not list((tmp_path / "cache").rglob("*.avi"))  # nothing half-made is left behind


def test_picamera2_built_for_another_numpy_says_how_to_fix_it(tmp_path, monkeypatch):
    """Raspberry Pi OS's simplejpeg is built for its numpy 1.24; under pip's numpy 2 importing picamera2
    raises ValueError ("numpy.dtype size changed"), not ImportError. A package that fails the same way
    stands in for it here."""
    import sys

    pkg = tmp_path / "picamera2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        'raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. '
        'Expected 96 from C header, got 88 from PyObject")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    with pytest.raises(SourceError, match=r"numpy.dtype size changed.*numpy<2' 'opencv-python-headless<4.12'"):
        open_source("picamera").open()


class VanishingCamera:
    """A live source that delivers frames, disappears, and comes back: the reopen path."""

    live = True
    name = "vanishing"

    def __init__(self, frame, fail_after: int, fail_opens: int) -> None:
        self.frame = frame
        self.fail_after = fail_after
        self.fail_opens = fail_opens
        self.reads = 0
        self.opens = 0
        self.is_open = False

    def open(self) -> None:
        self.opens += 1
        if 1 < self.opens <= 1 + self.fail_opens:
            raise SourceError("camera gone")
        self.is_open = True

    def read(self):
        if not self.is_open:
            return None
        self.reads += 1
        if self.reads == self.fail_after:
            return None
        time.sleep(0.005)
        return self.frame

    def close(self) -> None:
        self.is_open = False

    @property
    def fps(self) -> float:
        return 30.0


def test_lost_live_source_is_reopened_with_backoff_and_capture_goes_on(short_clip):
    import numpy as np

    cam = VanishingCamera(np.zeros((4, 4, 3), np.uint8), fail_after=5, fail_opens=1)
    cam.open()
    slot, stop = LatestFrameSlot(), threading.Event()
    th = CaptureThread(cam, slot, stop, backoff_max_s=0.2)
    th.start()
    deadline = time.monotonic() + 10
    while th.stats.reopens < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    stop.set()
    th.join(5)
    assert th.stats.reopens == 1
    assert cam.opens == 3  # the first open, one failed reopen, one that worked
    assert th.stats.source_ok
    assert th.stats.frames_in > 5


def test_slot_counts_overwritten_frames():
    import numpy as np

    slot, stop = LatestFrameSlot(), threading.Event()
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(5):
        slot.put(Frame(img, i, i / 10, 0.0), stop)
    f = slot.get(0.1)
    assert f is not None and f.index == 4
    assert slot.dropped == 4
    assert slot.get(0.01) is None


def test_a_stream_that_never_answers_fails_within_the_stall_timeout():
    """A server that accepts and then says nothing must not hang the capture thread."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept_and_hold():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept_and_hold, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match="cannot open stream"):
            VideoCaptureSource(f"http://127.0.0.1:{port}/live.mjpg", stall_timeout_s=1.0).open()
    finally:
        stop.set()
        for c in held:
            c.close()
        srv.close()
    assert time.monotonic() - started < 15


def test_a_camera_that_opens_but_never_delivers_is_retried_with_growing_gaps():
    import numpy as np

    cam = VanishingCamera(np.zeros((4, 4, 3), np.uint8), fail_after=1, fail_opens=0)
    cam.read = lambda: None  # opens fine every time, never yields a frame
    cam.open()
    slot, stop = LatestFrameSlot(), threading.Event()
    th = CaptureThread(cam, slot, stop, backoff_max_s=30.0)
    th.start()
    time.sleep(2.2)
    stop.set()
    th.join(5)
    # waits of 0.5, 1 and then 2 s: two reopens in 2.2 s (a reset on each open would give four)
    assert th.stats.reopens == 2
    assert not th.stats.source_ok
