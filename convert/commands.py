"""``emocast convert train | quantize | ensemble | average | evaluate | eyes``: argument handling and the
figures they print."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys

from .data import load_split
from .errors import Refusal

log = logging.getLogger(__name__)


def _require_tensorflow() -> None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        sys.exit("emocast convert needs TensorFlow: pip install 'emocast[convert]'")


def _require_keras() -> None:
    try:
        import keras  # noqa: F401
    except ImportError as exc:
        sys.exit(f"emocast convert train needs Keras 3 and a backend: pip install 'emocast[convert]' for "
                 f"TensorFlow, or set KERAS_BACKEND=torch where PyTorch is installed ({exc})")


def cmd_train(args: argparse.Namespace) -> int:
    _require_keras()
    from .augment import scale_faults
    from .train import Recipe, train

    recipe = Recipe(augment=scale_faults(Recipe().augment, args.camera_faults),
                    architecture=args.arch, width=args.width, input_size=args.size, color=args.color,
                    stem_stride=args.stem_stride, dropout=args.dropout, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, seed=args.seed, train_limit=args.limit,
                    early_stop_patience=args.patience, teacher=str(args.teacher or ""),
                    teacher_weight=args.teacher_weight if args.teacher else 0.0, init=str(args.init or ""),
                    votes=str(args.votes or ""), class_weight_power=args.class_weight_power,
                    label_weight=args.label_weight if args.votes else 0.0,
                    label_smoothing=(args.label_smoothing if args.label_smoothing is not None
                                     else 0.0 if args.votes else Recipe.label_smoothing))
    best = train(args.data, args.run, recipe, threads=args.threads, workers=args.workers,
                 time_budget_s=args.time_budget, keep_epochs=args.keep_epochs)
    print(f"best checkpoint: {best}\ncurves: {args.run / 'curves.png'}")
    return 0


def _size(text: str | None):
    if text is None:
        return None
    h, _, w = text.lower().partition("x")
    return int(h) if not w else [int(h), int(w)]


def cmd_quantize(args: argparse.Namespace) -> int:
    _require_tensorflow()
    from .quantize import quantize

    labels = tuple(x.strip() for x in args.labels.split(",") if x.strip()) if args.labels else None
    flags = {"input_size": _size(args.size), "color": args.color, "pixel_scale": args.scale,
             "pixel_offset": args.offset, "crop_margin": args.crop_margin}
    card = quantize(args.model, args.data, args.out, mode=args.mode, calib_size=args.calib,
                    eval_limit=args.eval_limit, labels=labels, preprocess=flags, accept_drop=args.accept_drop,
                    max_face_ms=args.max_face_ms, max_mb=args.max_mb)
    print(json.dumps({"file": str(args.out), "size_bytes": card.extra.get("size_bytes"), **card.metrics,
                      "agreement": card.extra.get("agreement"),
                      "latency_ms_median_1thread": card.extra.get("latency_ms_median_1thread")}, indent=2))
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    _require_keras()
    from .ensemble import write_ensemble

    path = write_ensemble(args.models, args.out, mirror=args.mirror)
    print(f"combined model: {path}\nquantize it: emocast convert quantize {path} --out models/NAME.tflite")
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    _require_keras()
    from .weight_average import average_run

    done = average_run(args.run, args.data, args.out, last=args.last, first=args.first, bn_batches=args.bn_batches,
                       bn_faces=args.bn_faces)
    print(f"averaged epochs {done['epochs']}: validation accuracy {done['val_accuracy']:.4f} "
          f"(last epoch alone {done['last_epoch_val_accuracy']:.4f}, best of them in history.csv "
          f"{done['best_single_epoch_val_accuracy']})\n"
          f"model: {args.out / 'best.keras'}\nquantize it: emocast convert quantize {args.out / 'best.keras'} "
          "--out models/NAME.tflite")
    return 0


def _print_scores(title: str, ev, labels: tuple[str, ...]) -> None:
    s = ev.scores
    print(title)
    print(f"  accuracy {s.accuracy:.4f}   macro-F1 {s.macro_f1:.4f}   size {ev.size_bytes / 1024:.0f} KiB")
    if not math.isnan(ev.latency_ms):  # NaN: not measured
        print(f"  latency per face (1 thread, median) {ev.latency_ms:.3f} ms")
    if ev.tta_scores is not None:
        t = ev.tta_scores
        cost = f"   latency {ev.tta_latency_ms:.3f} ms per face (x{ev.tta_latency_ms / ev.latency_ms:.2f})" \
            if ev.tta_latency_ms else ""
        print(f"  with flip TTA: accuracy {t.accuracy:.4f}   macro-F1 {t.macro_f1:.4f}{cost}")
    print(f"  {'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for lab, row in s.per_class(labels).items():
        print(f"  {lab:<10}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>9d}")


def _calibrate(args: argparse.Namespace, full, labels: tuple[str, ...]) -> dict:
    """Fit the temperature on every validation face with usable votes (ties and split votes too: the
    doubt is what calibration is about) and draw the reliability diagram beside the model."""
    from emocast.contract.model_card import load_card

    from ..device.perception.emotion import card_temperature
    from .calibration import calibrate, plot_reliability
    from .evaluate import evaluate_tflite
    from .votes import with_votes

    voted = with_votes(full, args.votes)[0].for_labels(labels)[0]
    if args.limit:
        voted = voted.subset(args.limit, 0)
    probs = evaluate_tflite(args.model, voted, latency=False, progress=False).probs
    before = card_temperature(load_card(args.model, verify_hash=False))  # the readings carry the card's already
    cal = calibrate(probs, voted.targets)
    cal["temperature"] = round(before * cal["temperature"], 4)
    cal.update({"split": voted.name, "faces": len(voted), "fitted_on": "the share of people's votes per class",
                "votes": args.votes.name})
    png = args.model.with_name(args.model.stem + "_reliability.png")
    plot_reliability(probs, voted.targets, cal["temperature"] / before, f"{args.model.stem} on {voted.name}", png)
    print(f"  temperature {cal['temperature']}: expected calibration error {cal['ece_before']} -> "
          f"{cal['ece_after']} on {len(voted)} voted faces; reliability diagram {png}")
    return cal


def cmd_evaluate(args: argparse.Namespace) -> int:
    from emocast.contract.model_card import card_path_for, load_card

    from .evaluate import evaluate_tflite, people_record
    from .metrics import plot_confusion

    labels = load_card(args.model, verify_hash=False).labels
    full = load_split(args.data, args.split)
    split, left_out = full.for_labels(labels)
    if left_out:
        print(f"  left out (classes the model does not have): {left_out}")
    if args.limit:
        split = split.subset(args.limit, 0)
    ev = evaluate_tflite(args.model, split, flip_tta=args.tta)
    _print_scores(f"{args.model.name} on {split.name} ({len(split)} faces), FER2013's labels", ev, labels)
    card_update: dict = {}
    scored, scored_ev = split, ev  # what robustness and the confusion matrix are judged against
    if args.votes:
        from .votes import with_votes

        people, left_people = with_votes(full, args.votes, scoring=True)
        people = people.for_labels(labels)[0]
        if args.limit:
            people = people.subset(args.limit, 0)
        pev = evaluate_tflite(args.model, people, flip_tta=args.tta, latency=False)
        _print_scores(f"against people: the majority of {args.votes.name}'s votes ({len(people)} faces; left out "
                      f"{left_people})", pev, labels)
        card_update["ferplus_majority"] = people_record(pev, people, labels, args.votes, left_people)
        scored, scored_ev = people, pev
        if args.calibrate:
            card_update["calibration"] = _calibrate(args, full, labels)
    elif args.calibrate:
        raise Refusal("--calibrate needs --votes: the temperature is fitted to people's vote shares")
    if args.robustness:
        from .robustness import format_table, robustness

        table = robustness(args.model, scored)
        print(f"  under a kiosk camera's faults (same faces, {'people' if args.votes else 'FER2013'} labels):")
        print(format_table(table))
        card_update["robustness"] = {**table, "split": scored.name, "images": len(scored),
                                     "labels": "FER+ majority" if args.votes else "FER2013"}
    if args.update_card and card_update:
        import json as _json

        path = card_path_for(args.model)
        card = _json.loads(path.read_text())
        card.update(card_update)
        path.write_text(_json.dumps(card, indent=2) + "\n")
        print(f"  recorded in {path}: {', '.join(card_update)}")
    if args.confusion:
        s = scored_ev.scores
        plot_confusion(s.confusion, labels, f"{args.model.name} on {scored.name}: acc {s.accuracy:.3f}"
                       + (" (people's majority)" if args.votes else ""), args.confusion)
        print(f"  confusion matrix: {args.confusion}")
    return 0


def cmd_eyes(args: argparse.Namespace) -> int:
    _require_tensorflow()
    from .eye_state import LABELS_FILE, train_eye_state

    card = train_eye_state(args.data, args.out, args.checkpoint, labels_path=args.labels or LABELS_FILE,
                           epochs=args.epochs, size=args.size, seed=args.seed)
    print(f"{args.out}: held-out faces {card['held_out_faces']}, float {card['float']}, int8 {card['int8']}")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    """The converter's refusals carry their exit codes (``emocast.cli.main`` reports them): 3 the data,
    4 the model file (missing, unreadable, not ending in a softmax), 2 what the command asked for
    (flags or labels that do not fit the model, members that do not fit together, a refused drop)."""
    handlers = {"train": cmd_train, "quantize": cmd_quantize, "ensemble": cmd_ensemble,
                "average": cmd_average, "evaluate": cmd_evaluate, "eyes": cmd_eyes}
    return handlers[args.convert_command](args)
