"""What a training step costs on the machine it runs on: the student's step and each teacher's reading of a batch.

    python benchmarks/bench_training.py                      # MobileNetV2 w1.0 stem 1, shipped int8 teacher
    python benchmarks/bench_training.py --arch xception --width 0.5 --teacher runs/teacher/model.keras

A CPU training run may have about two hours of two cores, and one build machine has run the same step
1.5x slower than another (325 ms a MobileNetV2 step on one, 480-500 ms on an AMD EPYC): measure before
choosing a network, a batch or a teacher, and read the epochs-in-budget line. Random faces: the cost of
a step does not depend on what the faces show. Each setting is timed after three warm-up steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import timeit
from pathlib import Path

import numpy as np

from emocast.convert.data import FER_LABELS
from emocast.device.perception.emotion import default_model_path

TRAIN_FACES = 28709  # FER2013's train split


def timed(fn, repeats: int) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls, after three untimed ones."""
    timeit.repeat(fn, number=1, repeat=3)
    return 1000 * statistics.median(timeit.repeat(fn, number=1, repeat=repeats))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="mobilenetv2")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--stem-stride", type=int, default=1)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--teacher", type=Path, action="append",
                    help="a teacher as `convert train --teacher` takes it (repeatable; default: the shipped model)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--budget", type=float, default=7600.0, help="seconds of training to fit epochs into")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from emocast.convert.architectures import build
    from emocast.convert.teachers import load_teacher

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (args.batch_size, args.size, args.size)).astype(np.float32)
    x = faces[..., None] / 255.0
    y = np.eye(len(FER_LABELS), dtype=np.float32)[rng.integers(0, len(FER_LABELS), args.batch_size)]
    model = build(args.arch, (args.size, args.size, 1), len(FER_LABELS), width=args.width, stem_stride=args.stem_stride)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.005),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    step = timed(lambda: model.train_on_batch(x, y), args.repeats)
    steps = -(-TRAIN_FACES // args.batch_size)
    print(f"keras {keras.__version__} on {keras.backend.backend()}, {os.cpu_count()} cores")
    print(f"{'student ' + model.name:<52}{step:>9.1f} ms a step of {args.batch_size}")
    for path in args.teacher or [default_model_path()]:
        read = load_teacher(path)
        ms = timed(lambda read=read: read(faces), args.repeats)
        epoch = steps * (step + ms) / 1000
        print(f"{'teacher ' + str(path):<52}{ms:>9.1f} ms a batch; epoch ~{epoch:.0f} s, "
              f"{int(args.budget // epoch)} epochs in {args.budget:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
