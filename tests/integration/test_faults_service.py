"""Faults inside the running service, made to happen: a camera that stops delivering frames."""

from __future__ import annotations

import threading
import time

from emocast.core.errors import ExitCode
from emocast.device import service as service_mod
from emocast.device.config import from_mapping
from emocast.device.perception.capture import SourceError, VideoCaptureSource
from emocast.device.service import RunOptions, Service
from tests.support import MEDIA, needs_media


class CableOutCamera:
    """A live camera reading a real clip that loses its cable after ``frames`` frames: reads come
    back empty and every reopen fails, as with a USB camera pulled out."""

    live = True
    name = "usb-camera"

    def __init__(self, clip, frames: int) -> None:
        self._file = VideoCaptureSource(str(clip))
        self.frames, self.reads, self.opened = frames, 0, 0

    def open(self) -> None:
        self.opened += 1
        if self.opened > 1:
            raise SourceError("camera gone")
        self._file.open()

    def read(self):
        self.reads += 1
        if self.reads > self.frames:
            return None
        time.sleep(1 / 30)
        return self._file.read()

    def close(self) -> None:
        self._file.close()

    @property
    def fps(self) -> float:
        return 30.0


def test_a_lost_camera_still_sends_metrics_and_summaries_and_faces_go_absent(broker, recorder_factory, short_clip,
                                                                             tmp_path, monkeypatch):
    rec = recorder_factory(broker.port)
    cam = CableOutCamera(short_clip, frames=45)  # 1.5 s of a face, then nothing
    monkeypatch.setattr(service_mod, "open_source", lambda *a, **k: cam)
    cfg = from_mapping({"mqtt": {"url": broker.url, "drain_timeout_s": 5.0}, "device": {"id": "lost"},
                        "events": {"summary_s": 1.0, "metrics_s": 1.0}, "attention": {"absent_s": 1.0},
                        "source": {"reopen_backoff_max_s": 0.5}, "outbox": {"path": str(tmp_path / "o.sqlite")}})
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("code", Service(cfg, RunOptions(duration_s=7.0)).run()))
    th.start()
    th.join(60)
    assert result.get("code") == ExitCode.OK
    assert rec.wait_for(lambda m: any(t.endswith("lost/status") and p == b"offline" for t, p, _ in m), 15)
    metrics = rec.payloads("lost/metrics")
    assert any(m["source_ok"] is False for m in metrics), [m["source_ok"] for m in metrics]
    lost_at = next(i for i, m in enumerate(metrics) if m["source_ok"] is False)
    assert len(metrics) - lost_at >= 3  # metrics kept coming while the camera was gone
    summaries = rec.payloads("lost/summary")
    assert any(s["frames"] == 0 and s["faces_now"] == 0 for s in summaries)  # "nobody", said while frameless
    states = [(e["track"], e["state"]) for e in rec.payloads("lost/events/attention")]
    assert states and states[-1][1] == "absent"


@needs_media("videos", "facenet_pytorch_crowd_multiface.mp4")
def test_a_pipeline_that_cannot_keep_up_says_so(tmp_path):
    """1080p with faces down to 12 px looked for in the whole frame on every frame (a tiled sweep at each
    detection, not only around the faces already tracked): far more than one core can do."""
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:9"\n[events]\nmetrics_s = 1.0\n'
                   '[faces]\ndetect_hz = 60.0\nsweep_hz = 60.0\nmin_face_px = 12\n[attention]\nchecks = false\n')
    res = subprocess.run([sys.executable, "-m", "emocast", "run", "--config", str(cfg), "--loop", "--source",
                          str(MEDIA / "videos" / "facenet_pytorch_crowd_multiface.mp4"), "--outbox",
                          str(tmp_path / "o.sqlite"), "--duration", "6"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == ExitCode.OK, res.stderr[-2000:]
    assert "analysis cannot keep up" in res.stderr and "slowest stage detect" in res.stderr
