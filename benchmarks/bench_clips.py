"""What the service reads on real clips nobody on the team recorded: emotion shares and eye states.

    taskset -c 0 python benchmarks/bench_clips.py [--also runs/q/candidate.tflite]   # needs ../shared/media

Prints, without asserting anything (the clips have no per-frame labels, so shares, not accuracy):
- per clip in ../shared/media/videos and per emotion model: the share of face records whose smoothed
  emotion is called as each emotion, and the share too unsure to call (``[emotion] min_confidence``),
  with every frame processed (``emocast analyze CLIP --hz 0``);
- per clip: the share of face records in each attention state, and of records whose eyes read closed,
  with the lower-lid cue for a downward glance (``[attention] downcast_lids``, the default) and without;
- the downward glance (``fer_woman_looking_down_phone``: a woman looking down at a phone) seen from a
  camera mounted ever higher above the screen (``[attention] pitch_offset_deg``): the same pixels, with
  the head reading level to the screen at the highest mount, so the eyes alone must tell a glance from
  sleep; beside it the held eye closure of ``lp_d14`` (5.0-6.4 s) that must still read closed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from emocast.device.analyze import analyze  # noqa: E402
from emocast.device.config import from_mapping  # noqa: E402
from emocast.device.perception.emotion import EmotionModel, default_model_path  # noqa: E402
from emocast.device.perception.face_reading import FaceReader  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
DOWN = "fer_woman_looking_down_phone.mp4"
SHUT = ("lp_d14_wink_gaze_aversion.mp4", 5.0, 6.4)


def records_of(clip: Path, model: EmotionModel | None, reader: FaceReader, **config) -> list[dict]:
    cfg = from_mapping({"faces": {"detect_hz": 240.0}, **config})
    out: list[dict] = []
    analyze(clip, cfg, model, out.append, progress=False, reader=reader)
    return out


def emotion_row(records: list[dict], labels: tuple[str, ...]) -> str:
    read = [r for r in records if r["probs"] is not None]
    if not read:
        return "no readable face"
    called = Counter(r["emotion"] for r in read if r["emotion"])
    unsure = sum(bool(r.get("emotion_unsure")) for r in read)
    shares = "  ".join(f"{lab[:3]} {called[lab] / len(read):.2f}" for lab in labels if called[lab])
    return f"{len(read):>4} read   unsure {unsure / len(read):.2f}   {shares}"


def attention_row(records: list[dict]) -> str:
    n = max(1, len(records))
    states = Counter(r["attention"] for r in records)
    closed = sum(bool(r["eyes_closed"]) for r in records)
    return (f"{len(records):>4} records  " + "  ".join(f"{s} {states[s] / n:.2f}" for s in
                                                     ("attentive", "looking_away", "eyes_closed", "absent"))
            + f"   eyes read closed {closed / n:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=MEDIA)
    ap.add_argument("--also", type=Path, nargs="*", default=[], help="more emotion models (with cards) to compare")
    ap.add_argument("--attention-only", action="store_true", help="skip the emotion shares")
    args = ap.parse_args()
    videos = sorted((args.media / "videos").glob("*.mp4"))
    if not videos:
        print(f"{args.media}/videos has no clips: nothing to measure", file=sys.stderr)
        return 1
    reader = FaceReader()
    if not args.attention_only:
        models = [EmotionModel(p) for p in (default_model_path(), *args.also)]
        print("emotion called per face record, every frame read (share of records with a reading)")
        for clip in videos:
            for model in models:
                recs = records_of(clip, model, reader, emotion={"emotion_hz": 60.0})
                print(f"  {clip.stem[:34]:<34} {model.card.id[:30]:<30} {emotion_row(recs, model.labels)}")
    print("\nattention states per face record (lids: the lower-lid cue for a downward glance on or off)")
    for clip in videos:
        for lids in (True, False):
            recs = records_of(clip, None, reader, emotion={"emotion_hz": 0}, attention={"downcast_lids": lids})
            print(f"  {clip.stem[:34]:<34} lids {'on ' if lids else 'off'} {attention_row(recs)}")
    down, (shut_clip, t0, t1) = args.media / "videos" / DOWN, SHUT
    if down.is_file():
        print(f"\na downward glance ({DOWN}) from a camera ever higher above the screen")
        for offset in (0.0, -10.0, -20.0, -25.0):
            recs = records_of(down, None, reader, emotion={"emotion_hz": 0}, attention={"pitch_offset_deg": offset})
            print(f"  pitch_offset_deg {offset:>6.1f}   {attention_row(recs)}")
    if (args.media / "videos" / shut_clip).is_file():
        recs = [r for r in records_of(args.media / "videos" / shut_clip, None, reader, emotion={"emotion_hz": 0})
                if t0 <= r["t"] <= t1]
        print(f"\nheld eye closure ({shut_clip}, {t0}-{t1} s)\n  {'':<24}{attention_row(recs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
