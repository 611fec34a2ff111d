"""Attention checks benchmark: eye state on labelled photos, per-face cost, and what real clips give.

    taskset -c 0 python benchmarks/bench_attention.py          # needs ../shared/media

Prints, without asserting anything:
- eyes open vs closed on ../shared/media/eyestate (150 + 150 labelled face photos), through the same
  photo path as `emocast analyze`, with the eye-state classifier (default) and the iris model's lid gap,
  each with no per-face baseline (a single photo); faces the detector misses are counted separately,
  and the threshold on eye_openness that would have been best on this set is shown beside the default
  (for calibration, not as the result);
- the per-face cost of landmarks, head pose, EAR, gaze, the eye-state classifier (both eyes; "all"
  is what a default check costs) and the iris model on one core (median);
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
from emocast.device.perception.eyes import EyeStateModel, IrisEyes  # noqa: E402
from emocast.device.perception.face_geometry import camera_matrix, eye_openness, head_pose  # noqa: E402
from emocast.device.perception.face_reading import FaceReader  # noqa: E402
from emocast.device.perception.faces import detect_faces  # noqa: E402
from emocast.device.perception.gaze import gaze_ratios  # noqa: E402
from emocast.device.perception.landmarks import LANDMARK_MODELS, make_landmarks  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def eyestate(root: Path, detector: str, landmarks: str, eyes: str) -> None:
    rows = list(csv.DictReader((root / "labels.csv").open()))
    cfg = from_mapping({"faces": {"detector": detector, "detect_width": 1920}, "emotion": {"emotion_hz": 0},
                        "attention": {"landmarks": landmarks, "eyes": eyes}})
    truth, openness, closed_flags, missed = [], [], [], Counter()
    reader = FaceReader(landmarks=landmarks, eyes=eyes)
    for row in rows:
        recs: list[dict] = []
        analyze(root / row["file"], cfg, None, recs.append, progress=False, reader=reader)
        if not recs or recs[0]["ear"] is None:
            missed[row["eye_state"]] += 1
            continue
        best = max(recs, key=lambda r: r["box"][2] * r["box"][3])
        truth.append(row["eye_state"] == "closed")
        openness.append(best["eye_openness"])
        closed_flags.append(bool(best["eyes_closed"]))
    truth_a, flags, open_a = np.array(truth), np.array(closed_flags), np.array(openness)
    acc = float(np.mean(flags == truth_a))
    tp = int(np.sum(flags & truth_a))
    sweep = [(float(np.mean((open_a < t) == truth_a)), float(t)) for t in np.arange(0.05, 1.0, 0.01)]
    best_acc, best_t = max(sweep)
    print(f"  {detector}, {landmarks}, eyes {reader.eyes!r}: faces found in {len(truth)} of {len(rows)} photos "
          f"(missed: {dict(missed)}); accuracy {acc:.3f} "
          f"(closed recall {tp / max(1, truth_a.sum()):.3f}, open recall "
          f"{np.sum(~flags & ~truth_a) / max(1, (~truth_a).sum()):.3f}); at the best threshold on this set "
          f"(eye_openness {best_t:.2f}) {best_acc:.3f}; counting missed faces as errors "
          f"{acc * len(truth) / len(rows):.3f}")


def per_face_cost(clip: Path, landmarks: str) -> None:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < 200:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    det, lm, iris, model = make_detector("haar"), make_landmarks(landmarks), IrisEyes(), EyeStateModel()
    cam = camera_matrix(frames[0].shape[1], frames[0].shape[0])
    parts: dict[str, list[float]] = {"landmarks": [], "head pose": [], "EAR": [], "gaze": [], "all": [],
                                     "eye-state model": [], "iris model": []}
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
        model.closed(gray, pts)
        t5 = time.perf_counter()
        iris.openness(gray, pts)
        t6 = time.perf_counter()
        for key, dt in (("landmarks", t1 - t0), ("head pose", t2 - t1), ("EAR", t3 - t2), ("gaze", t4 - t3),
                        ("all", t5 - t0), ("eye-state model", t5 - t4), ("iris model", t6 - t5)):
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
        for eyes in ("model", "iris"):
            for detector in ("blazeface", "haar"):
                eyestate(args.media / "eyestate", detector, landmarks, eyes)
    print("\nper-face cost of the attention checks:")
    for landmarks in args.landmarks:
        per_face_cost(args.media / "videos" / "lp_d14_wink_gaze_aversion.mp4", landmarks)
    print("\nreal clips, default config (detect 10 Hz, dwell looking_away 1.5 s, eyes_closed 1.0 s):")
    for landmarks in args.landmarks:
        clips(args.media / "videos", landmarks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
