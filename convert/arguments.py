"""``emocast convert``'s arguments, added to the ``emocast`` command by the converter itself (its
handlers, which import TensorFlow only when they run, are in ``commands.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .budget import MAX_FACE_MS, MAX_MB


def _default_data() -> Path:
    here = Path.cwd() / ".." / "shared" / "data" / "fer2013"
    return here if here.exists() else Path("fer2013")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``convert`` and its subcommands: train, quantize, ensemble, average, evaluate, eyes."""
    conv = sub.add_parser("convert", parents=[common],
                          help="train, quantize and evaluate emotion models (needs emocast[convert])")
    csub = conv.add_subparsers(dest="convert_command", required=True)
    _train(csub, common)
    _quantize(csub, common)
    _ensemble(csub, common)
    _average(csub, common)
    _evaluate(csub, common)
    _eyes(csub, common)


def _train(csub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    tr = csub.add_parser("train", parents=[common], help="train a model from scratch; resumes a run folder")
    tr.add_argument("--data", type=Path, default=_default_data(),
                    help="FER2013: .npz folder, fer2013.csv or image tree")
    tr.add_argument("--run", type=Path, required=True, help="run folder (checkpoints, history, curves)")
    tr.add_argument("--arch", default="emocnn", help="emocnn, xception or mobilenetv2")
    tr.add_argument("--width", type=float, default=1.0, help="width multiplier")
    tr.add_argument("--size", type=int, default=48, help="input size in pixels (square)")
    tr.add_argument("--epochs", type=int, default=60)
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, default=2e-3)
    tr.add_argument("--seed", type=int, default=1234)
    tr.add_argument("--limit", type=int, default=0, help="train on this many images only (smoke runs)")
    tr.add_argument("--patience", type=int, default=15, help="early-stopping patience in epochs")
    tr.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    tr.add_argument("--stem-stride", type=int, choices=(1, 2), default=None,
                    help="stride of the first conv (default: the architecture's own: 2 for mobilenetv2, else 1)")
    tr.add_argument("--color", choices=("gray", "rgb"), default="gray",
                    help="input channels (FER2013 is gray; rgb repeats it, for a model to fine-tune on colour)")
    tr.add_argument("--dropout", type=float, default=0.3, help="dropout before the classifier")
    tr.add_argument("--workers", type=int, default=1, help="threads preparing batches (more where a GPU waits)")
    tr.add_argument("--teacher", type=Path, help="distil from this trained model (a best.keras or an ensemble's "
                    "model.keras, with its recipe.json, or a .tflite with its card, e.g. the shipped model: "
                    "cheaper on a CPU): the student also learns its probabilities")
    tr.add_argument("--teacher-weight", type=float, default=0.7, help="the teacher's share of each target")
    tr.add_argument("--init", type=Path, help="start from this trained model's weights (same architecture): "
                    "a run continued with a fresh schedule")
    tr.add_argument("--time-budget", type=float, default=0.0, metavar="SECONDS",
                    help="a fresh run fits its epoch count (at most --epochs) into this many seconds, "
                         "judged from the first epoch; the count is stored in the recipe")
    tr.add_argument("--keep-epochs", type=int, default=0, metavar="N",
                    help="keep the weights of the last N epochs in RUN/epochs/ (for `convert average`)")
    tr.add_argument("--votes", type=Path, help="learn the share of people's votes per face instead of one label: "
                    "FER+'s ferplus_votes.npz or fer2013new.csv, or a soft-label CSV (column 'image', one column "
                    "per class); validation then scores against the votes' majority")
    tr.add_argument("--label-weight", type=float, default=0.0, metavar="SHARE",
                    help="with --votes: give this share of each target to the data set's own label (0-1)")
    tr.add_argument("--label-smoothing", type=float, default=None,
                    help="share of each target spread evenly (default 0.1; 0 with --votes, which carry doubt)")
    tr.add_argument("--class-weight-power", type=float, default=0.5,
                    help="inverse class frequency to this power weights each face (0: no class weights)")
    tr.add_argument("--camera-faults", type=float, default=1.0, metavar="SCALE",
                    help="multiply the share of training faces given each camera fault (blur, down-scaling, "
                         "JPEG, noise, low light) by SCALE: 0.5 for a last stage nearer clean faces, 0 for none")


def _quantize(csub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    q = csub.add_parser("quantize", parents=[common],
                        help="a Keras, TensorFlow, ONNX or PyTorch model -> TFLite (int8 by default) with its card")
    q.add_argument("model", type=Path, help="a .keras file (its run folder's recipe.json is read), a Keras 2 / "
                   "tf.keras .h5 full model, a TensorFlow SavedModel directory, an ONNX graph (.onnx: emocast[onnx]) "
                   "or a torch.export program (.pt2: emocast[torch])")
    q.add_argument("--labels", help="the model's classes in output order, comma-separated (default: the recipe's, "
                   "else FER2013's seven); matched to the data's classes by name, with synonyms")
    q.add_argument("--size", help="input size, N or HxW (default: the recipe's, else 48)")
    q.add_argument("--color", choices=("gray", "rgb"), help="input channels (default: the recipe's, else gray)")
    q.add_argument("--scale", type=float, help="float input = pixel * SCALE + OFFSET (default 1/255)")
    q.add_argument("--offset", type=float, help="see --scale (default 0; -1 with --scale 0.00784 for [-1, 1])")
    q.add_argument("--crop-margin", type=float, help="extra share of the face box around the crop (default 0)")
    q.add_argument("--accept-drop", action="store_true",
                   help="keep an int8 model more than 2 points under the float model's accuracy")
    q.add_argument("--data", type=Path, default=_default_data())
    q.add_argument("--out", type=Path, required=True, help="output .tflite (the card is written beside it)")
    q.add_argument("--mode", choices=("int8", "float16", "dynamic"), default="int8")
    q.add_argument("--calib", type=int, default=500, help="representative images from the train split")
    q.add_argument("--eval-limit", type=int, default=0, help="score on this many validation images (0: all)")
    q.add_argument("--max-face-ms", type=float, default=MAX_FACE_MS,
                   help="the kiosk's budget: refuse a file slower than this a face on one thread here "
                   "(default %(default)s)")
    q.add_argument("--max-mb", type=float, default=MAX_MB,
                   help="the kiosk's budget: refuse a file larger than this (default %(default)s)")


def _ensemble(csub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    en = csub.add_parser("ensemble", parents=[common],
                         help="average trained models (and their mirror views) in one model")
    en.add_argument("models", type=Path, nargs="+", help="best.keras files of run folders")
    en.add_argument("--out", type=Path, required=True, help="folder for model.keras and its recipe.json")
    en.add_argument("--mirror", action="store_true", help="also average each model's view of the mirrored face")


def _average(csub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    av = csub.add_parser("average", parents=[common], help="average the weights of a run's last epochs into "
                         "one network (same size and speed), BatchNorm measured again")
    av.add_argument("run", type=Path, help="a run folder trained with --keep-epochs")
    av.add_argument("--out", type=Path, required=True, help="folder for best.keras and its recipe.json")
    av.add_argument("--data", type=Path, default=_default_data(), help="FER2013 (BatchNorm from its train split, "
                    "scored on the recipe's validation split)")
    av.add_argument("--last", type=int, help="average the last N kept epochs (default: all kept)")
    av.add_argument("--first", type=int, help="average the kept epochs from this one on")
    av.add_argument("--bn-batches", type=int, default=200, help="training batches that measure BatchNorm")
    av.add_argument("--bn-faces", choices=("clean", "augmented", "faults"), default="clean",
                    help="measure BatchNorm on unaugmented training faces, on faces augmented as the run trained "
                         "(camera faults included: keeps the robustness the run learned), or on faces with the "
                         "run's camera faults only (no warps, flips or brightness changes)")


def _evaluate(csub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ev = csub.add_parser("evaluate", parents=[common], help="score a .tflite model (with its card) on a FER2013 split")
    ev.add_argument("model", type=Path)
    ev.add_argument("--data", type=Path, default=_default_data())
    ev.add_argument("--split", default="public_test")
    ev.add_argument("--tta", action="store_true", help="also average with the mirrored face and report its cost")
    ev.add_argument("--confusion", type=Path, help="write the confusion matrix as PNG here")
    ev.add_argument("--robustness", action="store_true", help="also score under blur, small faces, JPEG and loose "
                    "boxes (the table the card records)")
    ev.add_argument("--votes", type=Path, help="also score against the majority of people's votes (FER+'s "
                    "ferplus_votes.npz or a soft-label CSV); robustness and the confusion matrix then use it")
    ev.add_argument("--calibrate", action="store_true", help="with --votes: fit the temperature that makes the "
                    "probabilities honest and draw the reliability diagram beside the model")
    ev.add_argument("--update-card", action="store_true",
                    help="record what was measured (people's scores, calibration, robustness) in the card")
    ev.add_argument("--limit", type=int, default=0)


def _eyes(csub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ey = csub.add_parser("eyes", parents=[common], help="train the eye-state classifier on FER2013 faces labelled "
                         "by eye, and quantize it to int8 (the device's eyes_closed check)")
    ey.add_argument("--data", type=Path, default=_default_data(), help="FER2013 (its train split is labelled)")
    ey.add_argument("--labels", type=Path, help="eye-state labels (default: the project's, "
                    "convert/labels/fer2013_eye_state.csv)")
    ey.add_argument("--out", type=Path, required=True, help="output .tflite (its card is written beside it)")
    ey.add_argument("--checkpoint", type=Path, required=True, help="folder for the float model and its history")
    ey.add_argument("--epochs", type=int, default=30)
    ey.add_argument("--size", type=int, default=32, help="eye patch side the classifier reads")
    ey.add_argument("--seed", type=int, default=1)
