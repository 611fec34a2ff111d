"""Attention checks benchmark: eye state on labelled photos, per-face cost, and what real clips give.

    taskset -c 0 python benchmarks/bench_attention.py          # needs ../shared/media

Prints, without asserting anything:
- eyes open vs closed on ../shared/media/eyestate (150 + 150 labelled face photos), through the same
  photo path as `emocast analyze`, with the default single-photo rule (mean eye aspect ratio under
  [attention] ear_closed); faces the detector misses are counted separately, and the threshold that
  would have been best on this set is shown beside the default (for calibration, not as the result);
- the per-face cost of landmarks, head pose, eye openness and gaze on one core (median);
- per real clip: the share of face records in each attention state and the state changes.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emocast.device.analyze import analyze  # noqa: E402
from emocast.device.config import from_mapping  # noqa: E402
from emocast.device.perception.detectors import make_detector  # noqa: E402
from emocast.device.perception.eyes import IrisEyes  # noqa: E402
from emocast.device.perception.face_geometry import camera_matrix, eye_openness, head_pose  # noqa: E402
from emocast.device.perception.face_reading import FaceReader  # noqa: E402
from emocast.device.perception.faces import detect_faces  # noqa: E402
from emocast.device.perception.gaze import gaze_ratios  # noqa: E402
from emocast.device.perception.landmarks import LANDMARK_MODELS, make_landmarks  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def eyestate(root: Path, detector: str, landmarks: str) -> None:
    rows = list(csv.DictReader((root / "labels.csv").open()))
    cfg = from_mapping({"faces": {"detector": detector, "detect_width": 1920}, "emotion": {"emotion_hz": 0},
                        "attention": {"landmarks": landmarks}})
    truth, ears, closed_flags, missed = [], [], [], Counter()
    reader = FaceReader(landmarks=landmarks)
    for row in rows:
        recs: list[dict] = []
        analyze(root / row["file"], cfg, None, recs.append, progress=False, reader=reader)
        if not recs or recs[0]["ear"] is None:
            missed[row["eye_state"]] += 1
            continue
        best = max(recs, key=lambda r: r["box"][2] * r["box"][3])
        truth.append(row["eye_state"] == "closed")
        ears.append(best["ear"])
        closed_flags.append(bool(best["eyes_closed"]))
    truth_a, flags, ear_a = np.array(truth), np.array(closed_flags), np.array(ears)
    acc = float(np.mean(flags == truth_a))
    tp = int(np.sum(flags & truth_a))
    sweep = [(float(np.mean((ear_a < t) == truth_a)), float(t)) for t in np.arange(0.12, 0.30, 0.005)]
    best_acc, best_t = max(sweep)
    print(f"  {detector}, {landmarks}: faces found in {len(truth)} of {len(rows)} photos (missed: {dict(missed)}); "
          f"accuracy {acc:.3f} ({reader.eyes}: iris_closed={cfg.attention.iris_closed}, ear_closed="
          f"{cfg.attention.ear_closed}) "
          f"(closed recall {tp / max(1, truth_a.sum()):.3f}, open recall "
          f"{np.sum(~flags & ~truth_a) / max(1, (~truth_a).sum()):.3f}); EAR alone at its best threshold "
          f"{best_t:.3f} -> {best_acc:.3f}; counting missed faces as errors {acc * len(truth) / len(rows):.3f}")


def per_face_cost(clip: Path, landmarks: str) -> None:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < 200:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    det, lm, iris = make_detector("haar"), make_landmarks(landmarks), IrisEyes()
    cam = camera_matrix(frames[0].shape[1], frames[0].shape[0])
    parts: dict[str, list[float]] = {"landmarks": [], "head pose": [], "eye openness": [], "gaze": [], "all": [],
                                     "iris model (until a baseline)": []}
    for gray in frames:
        boxes = detect_faces(det, gray, 320, 40)
        if not boxes:
            continue
        t0 = time.perf_counter()
        pts = lm.predict(gray, boxes[0])
        t1 = time.perf_counter()
        head_pose(pts, cam)
        t2 = time.perf_counter()
        eye_openness(pts)
        t3 = time.perf_counter()
        gaze_ratios(gray, pts)
        t4 = time.perf_counter()
        iris.openness(gray, pts)
        t5 = time.perf_counter()
        for key, dt in (("landmarks", t1 - t0), ("head pose", t2 - t1), ("eye openness", t3 - t2),
                        ("gaze", t4 - t3), ("all", t4 - t0), ("iris model (until a baseline)", t5 - t4)):
            parts[key].append(dt * 1000)
    print(f"  {clip.name}, {landmarks}, {len(parts['all'])} faces: " + ", ".join(
        f"{k} {statistics.median(v):.2f} ms" for k, v in parts.items()) + " (median, one thread)")


def clips(folder: Path, landmarks: str) -> None:
    cfg = from_mapping({"emotion": {"emotion_hz": 0}, "attention": {"landmarks": landmarks}})
    for clip in sorted(folder.glob("*.mp4")):
        recs: list[dict] = []
        result = analyze(clip, cfg, None, recs.append, progress=False)
        states = Counter(r["attention"] for r in recs)
        total = max(1, sum(states.values()))
        changes = [f"{b['state']}({b.get('reason', '')})@{b['source_t']:.1f}s" for k, b in result.events
                   if k == "attention"]
        print(f"  {clip.name}, {landmarks}: {len(recs)} face records; " + ", ".join(
            f"{s} {n / total:.0%}" for s, n in states.most_common()) + "; changes: " + " ".join(changes[:12]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=MEDIA)
    ap.add_argument("--landmarks", nargs="+", default=list(LANDMARK_MODELS), choices=LANDMARK_MODELS,
                    help="landmark models to compare (default: both)")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    if not (args.media / "eyestate" / "labels.csv").is_file():
        print(f"{args.media} has no eyestate/ and videos/: nothing to measure", file=sys.stderr)
        return 2
    print("eyes open vs closed, single photos, no baseline (../shared/media/eyestate):")
    for landmarks in args.landmarks:
        for detector in ("blazeface", "haar", "hog", "hog+haar"):
            eyestate(args.media / "eyestate", detector, landmarks)
    print("\nper-face cost of the attention checks:")
    for landmarks in args.landmarks:
        per_face_cost(args.media / "videos" / "lp_d14_wink_gaze_aversion.mp4", landmarks)
    print("\nreal clips, default config (detect 10 Hz, dwell looking_away 1.5 s, eyes_closed 1.0 s):")
    for landmarks in args.landmarks:
        clips(args.media / "videos", landmarks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
