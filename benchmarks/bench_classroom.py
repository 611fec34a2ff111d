"""Classroom benchmark: a 1080p room of 25 cells played in real time, on one core and on several.

    python benchmarks/bench_classroom.py                 # one core, then every core this process may use
    python benchmarks/bench_classroom.py --seconds 60 --cores 1 2

The room is built from the clips in ../shared/media/videos (``classroom_mosaic.py``: a 5x5 grid at
1920x1080, each clip in five cells, mirrored on alternate rows and started at different offsets) and
cached in ~/.cache/emocast. Each configuration runs in its own process pinned to its cores
(``os.sched_setaffinity``), so its CPU share and memory are its own: the mosaic is decoded by the
real capture thread at 30 fps (frames that analysis cannot take are dropped, as from a camera), and
analysed by the service's Analyzer with the service's frame budget and one reading worker per core.

It prints, per configuration: faces tracked (mean a frame) against the faces a whole-frame sweep
finds on every frame offline (the room's own count), per-face attention and emotion readings a second
(medians over the faces), the slowest face's rates (the 10th percentile), detections a second, frames
analysed and dropped, CPU share of the cores given and peak resident memory. Nothing here asserts a
speed; compare configurations within one run, as these machines are noisy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import classroom_mosaic  # noqa: E402
import numpy as np  # noqa: E402

VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "media" / "videos"


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def room_count(clip: Path, seconds: float) -> float:
    """Faces a whole-frame sweep finds, the mean over one frame in ten of the first ``seconds``."""
    import cv2

    from emocast.device import config as cfgmod
    from emocast.device.perception.capture import VideoCaptureSource
    from emocast.device.perception.detectors import make_detector
    from emocast.device.perception.faces import detect_faces

    cfg = cfgmod.load(None)
    det = make_detector(cfg.faces.detector, fallback=None)
    src = VideoCaptureSource(str(clip))
    src.open()
    counts = []
    i = 0
    while (img := src.read()) is not None and i < seconds * classroom_mosaic.FPS:
        if i % 10 == 0:
            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            counts.append(len(detect_faces(det, gray, cfg.faces.detect_width, cfg.faces.min_face_px)))
        i += 1
    src.close()
    return float(np.mean(counts))


def child(clip: Path, cores: int, read_hz: float, seconds: float, emotion: bool, workers: int = 0) -> dict:
    """One configuration, in this process, pinned to the first ``cores`` cores allowed, with ``workers``
    reading workers (0: one a core)."""
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, allowed[:cores])
    import cv2

    cv2.setNumThreads(1)
    from emocast.device import config as cfgmod
    from emocast.device.perception.capture import CaptureThread, LatestFrameSlot, VideoCaptureSource
    from emocast.device.perception.detectors import make_detector
    from emocast.device.perception.emotion import EmotionModel, default_model_path
    from emocast.device.perception.pipeline import Analyzer

    cfg = cfgmod.load(None)
    cfg = dataclasses.replace(cfg, attention=dataclasses.replace(cfg.attention, read_hz=read_hz),
                              privacy=dataclasses.replace(cfg.privacy, emotion=emotion),
                              device=dataclasses.replace(cfg.device, threads=workers))
    model = EmotionModel(default_model_path()) if cfg.emotion_on else None
    analyzer = Analyzer(cfg, make_detector(cfg.faces.detector, fallback=None), model, threads=cfg.threads,
                        frame_budget_ms=1000.0 / classroom_mosaic.FPS)
    src = VideoCaptureSource(str(clip))
    src.open()
    slot, stop = LatestFrameSlot(), threading.Event()
    cap = CaptureThread(src, slot, stop, loop=True, realtime=True)
    warm = min(5.0, seconds / 4)  # tracks confirmed and models warm before the window opens
    t0, c0 = time.perf_counter(), cpu_seconds()
    cap.start()
    processed, opened = 0, False
    window_c0 = window_t0 = 0.0
    frames0 = dropped0 = 0
    while time.perf_counter() - t0 < warm + seconds:
        f = slot.get(0.2)
        if f is None:
            continue
        analyzer.process(f)
        processed += 1
        if not opened and time.perf_counter() - t0 >= warm:
            opened = True
            analyzer.take_metrics(f.t)
            for st in (analyzer.reading, *analyzer.optional):
                st.rates.window = None
            window_c0, window_t0 = cpu_seconds(), time.perf_counter()
            frames0, dropped0, processed = cap.stats.frames_in, slot.dropped, 0
            t_open = f.t
    stop.set()
    cap.join(5)
    wall = time.perf_counter() - window_t0
    last_t = t_open + wall
    reading_rates = analyzer.reading.rates.window.rates() if analyzer.reading.rates.window else []
    emotion_rates = [r for st in analyzer.optional if st.name == "emotion" and st.rates.window
                     for r in st.rates.window.rates()]
    metrics = analyzer.take_metrics(last_t)
    timers = {k: v.percentiles() for k, v in analyzer.timers.items()}
    analyzer.close()
    return {
        "cores": cores, "workers": analyzer.pool.size, "read_hz": read_hz, "emotion": emotion,
        "faces_tracked": metrics["faces_tracked"], "detections_per_s": metrics["detections_per_s"],
        "attention_median": percentile(reading_rates, 50), "attention_p10": percentile(reading_rates, 10),
        "attention_min": percentile(reading_rates, 0),
        "emotion_median": percentile(emotion_rates, 50), "emotion_p10": percentile(emotion_rates, 10),
        "faces_rated": len(reading_rates),
        "frames_in": cap.stats.frames_in - frames0, "processed": processed, "dropped": slot.dropped - dropped0,
        "cpu_share": (cpu_seconds() - window_c0) / wall / cores, "cpu_cores_used": (cpu_seconds() - window_c0) / wall,
        "rss_peak_mib": peak_rss_mib(),
        "stages": timers, "seconds": wall, "cpu_total_s": cpu_seconds() - c0,
    }


def run_child(clip: Path, cores: int, read_hz: float, seconds: float, emotion: bool, workers: int = 0) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(clip), str(cores), str(read_hz), str(seconds),
                          "1" if emotion else "0", str(workers)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"configuration {cores} core(s), read_hz {read_hz} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=VIDEOS, help="the clips the room is made of")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds of each real-time run")
    ap.add_argument("--cores", type=int, nargs="+", help="core counts to run (default: 1 and every core allowed)")
    ap.add_argument("--no-emotion", action="store_true", help="attention only ([privacy] emotion = false)")
    ap.add_argument("--workers", type=int, default=4, help="workers of the last row, run on every core allowed, "
                    "for the memory four workers take (0: no such row)")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        clip, cores, read_hz, seconds, emotion, workers = args.child
        print(json.dumps(child(Path(clip), int(cores), float(read_hz), float(seconds), emotion == "1", int(workers))))
        return 0
    if not args.videos.is_dir():
        print(f"{args.videos}: no clips to build the classroom from (../shared/media/videos)", file=sys.stderr)
        return 2
    clip = classroom_mosaic.build(args.videos, seconds=12.0)
    allowed = len(os.sched_getaffinity(0))
    core_counts = args.cores or sorted({1, allowed})
    room = room_count(clip, 12.0)
    print(f"emocast classroom benchmark: {clip.name}, {classroom_mosaic.FRAME_W}x{classroom_mosaic.FRAME_H} at "
          f"{classroom_mosaic.FPS:.0f} fps, real time, {args.seconds:.0f} s measured a configuration; "
          f"{allowed} core(s) allowed; a whole-frame sweep finds {room:.1f} faces a frame (the room)")
    print(f"{'configuration':<34}{'faces':>7}{'of room':>8}{'attn/s':>8}{'p10':>6}{'min':>6}{'emo/s':>7}{'p10':>6}"
          f"{'det/s':>7}{'fps':>6}{'dropped':>9}{'cpu':>7}{'RSS MiB':>9}{'detect p50':>11}{'reads p50':>10}")
    configs = [(c, 10.0, 0) for c in core_counts] + [(c, 0.0, 0) for c in core_counts]
    if args.workers:
        configs.append((allowed, 10.0, args.workers))
    results = []
    for cores, read_hz, workers in configs:
        r = run_child(clip, cores, read_hz, args.seconds, not args.no_emotion, workers)
        results.append(r)
        name = f"{cores} core{'s' if cores > 1 else ''}, {r['workers']} worker{'s' if r['workers'] > 1 else ''}, " \
               f"read_hz {read_hz:g}"
        fps = r["processed"] / r["seconds"]
        drop = r["dropped"] / max(1, r["frames_in"])

        def num(v, fmt=".2f"):
            return "-" if v is None else format(v, fmt)

        print(f"{name:<34}{r['faces_tracked']:>7.1f}{r['faces_tracked'] / room:>8.0%}{num(r['attention_median']):>8}"
              f"{num(r['attention_p10']):>6}{num(r['attention_min']):>6}{num(r['emotion_median']):>7}"
              f"{num(r['emotion_p10']):>6}"
              f"{r['detections_per_s']:>7.1f}{fps:>6.1f}{drop:>9.0%}{r['cpu_share']:>7.0%}{r['rss_peak_mib']:>9.0f}"
              f"{r['stages']['detect']['p50']:>11.1f}{r['stages']['attention']['p50']:>10.1f}")
    fast = {r["cores"]: r["attention_median"] for r in results if r["read_hz"] == 0.0 and r["workers"] == r["cores"]}
    if 1 in fast and len(fast) > 1 and fast[1]:
        for c, v in sorted(fast.items()):
            if c > 1 and v:
                print(f"read_hz 0: per-face attention rate on {c} cores / on 1 core = {v / fast[1]:.2f}")
    print("columns: faces = confirmed tracks a frame (mean); of room = that over the sweep's count; attn/s, emo/s = "
          "readings a second per face (median over faces present 2 s or more; p10 = the slowest tenth; min = the "
          "slowest face); det/s = "
          "detection rounds a second; cpu = share of the cores given; reads p50 = a frame's reading stage, ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
