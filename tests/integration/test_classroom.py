"""A classroom on one board: faces read by schedule, on workers, with the rates said and warned of."""

from __future__ import annotations

import statistics
import sys

import pytest

from emocast.device.analyze import analyze
from emocast.device.config import from_mapping
from emocast.device.perception.capture import Frame, VideoCaptureSource
from emocast.device.perception.detectors import make_detector
from emocast.device.perception.pipeline import Analyzer
from tests.support import MEDIA, REPO, needs_media


@needs_media("videos", "facenet_pytorch_crowd_multiface.mp4")
def test_four_workers_give_the_records_one_worker_gives():
    """Several faces a frame, read on four workers with models of their own and merged in track order:
    the very records (states, eyes, gaze, emotion probabilities) one worker gives."""
    clip = MEDIA / "videos" / "facenet_pytorch_crowd_multiface.mp4"
    out = {}
    for threads in (1, 4):
        records: list[dict] = []
        cfg = from_mapping({"device": {"threads": threads}})
        from emocast.device.perception.emotion import EmotionModel, default_model_path

        analyze(clip, cfg, EmotionModel(default_model_path()), records.append, progress=False)
        out[threads] = records
    assert len(out[1]) > 100 and len({r["track"] for r in out[1]}) >= 4
    assert max(sum(1 for r in out[1] if r["frame"] == f) for f in {r["frame"] for r in out[1]}) >= 3
    assert out[4] == out[1]


@needs_media("videos", "lp_d12_desk_expressions_headturn.mp4")
def test_a_tiled_room_is_swept_seldom_and_its_faces_looked_for_in_turns(tmp_path):
    """Live on a 1080p mosaic of 25 cells: the whole frame is swept at sweep_hz, the detections between
    look around nine tracked faces each, every face present keeps being read (none starves), and the
    stage says so in its metrics."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import classroom_mosaic

    clip = classroom_mosaic.build(MEDIA / "videos", seconds=4.0, cache=tmp_path)
    cfg = from_mapping({"emotion": {"emotion_hz": 0}})
    # a budget no frame reaches: live detection, every due face read (deterministic, whatever the machine)
    an = Analyzer(cfg, make_detector("blazeface"), None, frame_budget_ms=1e9)
    src = VideoCaptureSource(str(clip))
    src.open()
    frames = 0
    while (img := src.read()) is not None:
        an.process(Frame(img, frames, frames / src.fps, 0.0))
        frames += 1
    src.close()
    t = frames / 30.0
    m = an.take_metrics(t, run=True)
    assert an.faces.sweeps == pytest.approx(t * cfg.faces.sweep_hz, abs=1)  # not one per detection
    assert m["detections_per_s"] == pytest.approx(cfg.faces.detect_hz, rel=0.1)
    assert m["faces_tracked"] >= 15
    rates = an.reading.rates.run.rates()
    assert len(rates) >= 15 and min(rates) >= 1.0 and statistics.median(rates) >= 2.5
