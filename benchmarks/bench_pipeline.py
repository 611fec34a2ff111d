"""Pipeline benchmark: per-stage latency, fps on one core, CPU share at real-time 30 fps, memory.

    taskset -c 0 python benchmarks/bench_pipeline.py            # one core, as on a Pi
    python benchmarks/bench_pipeline.py --clip some.mp4 --seconds 20

Machines are noisy: compare the ratios within one run (Haar vs HOG, 2 Hz vs every frame), not
absolute figures across runs. Nothing here asserts a speed; it prints what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

from emocast.device import config as cfgmod  # noqa: E402
from emocast.device.perception.capture import CaptureThread, Frame, LatestFrameSlot, VideoCaptureSource  # noqa: E402
from emocast.device.perception.demo_clip import write_clip  # noqa: E402
from emocast.device.perception.detectors import make_detector  # noqa: E402
from emocast.device.perception.emotion import EmotionModel, default_model_path  # noqa: E402
from emocast.device.perception.face_reading import FaceReader  # noqa: E402
from emocast.device.perception.pipeline import Analyzer  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def read_frames(path: Path) -> tuple[list, float]:
    src = VideoCaptureSource(str(path))
    src.open()
    frames = []
    while (img := src.read()) is not None:
        frames.append(img)
    src.close()
    return frames, src.fps


READERS: dict[str, FaceReader] = {}  # one per landmark model and eye reader ("facemesh/iris"), loaded once


def make_analyzer(detector: str, emotion_hz: float, model: EmotionModel | None, checks: bool = True,
                  landmarks: str = "facemesh") -> Analyzer:
    cfg = cfgmod.load(None)
    cfg = dataclasses.replace(cfg, faces=dataclasses.replace(cfg.faces, detector=detector),
                              emotion=dataclasses.replace(cfg.emotion, emotion_hz=emotion_hz),
                              attention=dataclasses.replace(cfg.attention, checks=checks, landmarks=landmarks))
    return Analyzer(cfg, make_detector(detector), model, reader=READERS[landmarks] if checks else None)


def offline_fps(frames: list, fps: float, an: Analyzer) -> dict:
    """Every frame, as fast as one thread goes: the pipeline's own throughput."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    for i, img in enumerate(frames):
        an.process(Frame(img, i, i / fps, 0.0))
    wall = time.perf_counter() - t0
    return {"fps": len(frames) / wall, "cpu_per_frame_ms": (cpu_seconds() - c0) / len(frames) * 1000,
            "stages": {k: v.percentiles() for k, v in an.timers.items()},
            "inferences": an.take_metrics(len(frames) / fps, run=True).get("inferences", 0)}


def realtime_share(clip: Path, an: Analyzer, seconds: float) -> dict:
    """The clip paced at its own frame rate through the real capture thread, as a camera would deliver
    it: what share of one core the service needs to keep up, and how many frames it had to drop."""
    src = VideoCaptureSource(str(clip))
    src.open()
    slot, stop = LatestFrameSlot(), threading.Event()
    cap = CaptureThread(src, slot, stop, loop=True, realtime=True)
    t0, c0 = time.perf_counter(), cpu_seconds()
    cap.start()
    processed = 0
    while time.perf_counter() - t0 < seconds:
        f = slot.get(0.2)
        if f is not None:
            an.process(f)
            processed += 1
    stop.set()
    cap.join(5)
    wall = time.perf_counter() - t0
    return {"cpu_share": (cpu_seconds() - c0) / wall, "frames_in": cap.stats.frames_in,
            "processed": processed, "dropped": slot.dropped, "fps_in": cap.stats.frames_in / wall}


def model_latency(model: EmotionModel, repeats: int = 300) -> float:
    import numpy as np

    from emocast.contract.model_card import to_model_input

    face = np.random.default_rng(0).integers(0, 255, (120, 120), dtype=np.uint8)
    for _ in range(20):
        model.predict_input(to_model_input(face, model.card.preprocess))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict_input(to_model_input(face, model.card.preprocess))
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, help="a video (default: the demo clip at 640x480, 30 fps)")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of the real-time run")
    ap.add_argument("--model", type=Path, default=default_model_path())
    args = ap.parse_args()

    cv2.setNumThreads(1)
    rss0 = rss_mib()
    tmp = Path(tempfile.mkdtemp(prefix="emocast-bench-"))
    model = EmotionModel(args.model, threads=1)
    make_detector("haar"), make_detector("hog"), make_detector("blazeface", fallback=None)
    READERS["facemesh"] = FaceReader(landmarks="facemesh")
    rss_loaded = rss_mib()
    READERS["facemesh/iris"] = FaceReader(landmarks="facemesh", eyes="iris")
    READERS["dlib/iris"] = FaceReader(landmarks="dlib", eyes="iris")  # dlib's model: 100 MB on disk, ~70 MB loaded
    rss_dlib = rss_mib()
    clip = args.clip or write_clip(tmp / "demo30.avi", fps=30.0)
    frames, fps = read_frames(clip)
    h, w = frames[0].shape[:2]
    cores = len(os.sched_getaffinity(0))
    print(f"emocast pipeline benchmark: {clip.name} {w}x{h} @ {fps:.0f} fps, {len(frames)} frames; "
          f"{cores} core(s) allowed; model {model.card.id} on {model.runtime}")
    print(f"emotion model: {model_latency(model):.3f} ms per face (median, 1 thread, preprocessing included); "
          f"card: int8 accuracy {model.card.metrics.get('int8', {}).get('accuracy')} "
          f"macro-F1 {model.card.metrics.get('int8', {}).get('macro_f1')} on FER2013 PublicTest"
          + (f", {model.card.extra['ferplus_majority']['int8']['accuracy']} against the FER+ majority"
             if "ferplus_majority" in model.card.extra else ""))
    print()
    print(f"{'configuration':<44}{'fps 1 thread':>13}{'cpu ms/frame':>13}{'detect p50':>11}{'detect p95':>11}"
          f"{'attention p50':>14}{'emotion p50':>12}{'frame p50':>10}{'frame p95':>10}")
    results = {}
    for name, det, hz, checks, lm in (
            ("haar 10 Hz, emotion 2 Hz, no landmarks", "haar", 2.0, False, "facemesh"),
            ("blazeface+facemesh+eye model (default)", "blazeface", 2.0, True, "facemesh"),
            ("blazeface+facemesh+iris every check", "blazeface", 2.0, True, "facemesh/iris"),
            ("blazeface+dlib, iris until baseline", "blazeface", 2.0, True, "dlib/iris"),
            ("haar@320+dlib, iris until baseline", "haar", 2.0, True, "dlib/iris"),
            ("haar+facemesh, emotion every frame", "haar", 1000.0, True, "facemesh"),
            ("hog+dlib+iris 10 Hz, emotion 2 Hz", "hog", 2.0, True, "dlib/iris")):
        an = make_analyzer(det, hz, model, checks, lm)
        if hz > 100:
            an.faces.detect_period = 0.0
        r = offline_fps(frames, fps, an)
        results[name] = r
        s = r["stages"]
        print(f"{name:<44}{r['fps']:>13.1f}{r['cpu_per_frame_ms']:>13.2f}{s['detect']['p50']:>11.2f}"
              f"{s['detect']['p95']:>11.2f}{s['attention']['p50']:>14.2f}{s['emotion']['p50']:>12.3f}"
              f"{s['frame']['p50']:>10.2f}{s['frame']['p95']:>10.2f}")
    print()
    rt = realtime_share(clip, make_analyzer("blazeface", 2.0, model), args.seconds)
    print(f"real time ({rt['fps_in']:.1f} fps in, blazeface 10 Hz, emotion 2 Hz, capture thread decoding): "
          f"CPU {rt['cpu_share'] * 100:.1f}% of one core, {rt['processed']} frames analysed, "
          f"{rt['dropped']} dropped of {rt['frames_in']}")
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frames_mib = sum(f.nbytes for f in frames) / 2**20
    print(f"resident memory: {rss0:.0f} MiB after imports, {rss_loaded:.0f} MiB with the emotion model, detectors "
          f"and Face Mesh loaded ({rss_dlib - rss_loaded:+.0f} MiB more for dlib's landmark model and the iris "
          f"model); "
          f"peak {ru:.0f} MiB of which {frames_mib:.0f} MiB are the {len(frames)} frames this benchmark holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
