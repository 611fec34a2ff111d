"""The ``emocast`` command: ``run`` on the device, ``convert`` for model engineers, and helpers.

TensorFlow is imported only inside the ``convert`` subcommands, so the device's install never needs it.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from . import __version__

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# commands that run OpenCV (the converter too: augmentation, crops): only they import it; the hub never does
OPENCV_COMMANDS = ("run", "analyze", "calibrate", "demo-clip", "convert")


def _setup_logging(level: str, opencv: bool = True) -> None:
    # Under systemd, journald stamps time and unit itself; elsewhere a timestamp helps.
    fmt = "%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") else \
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=fmt, stream=sys.stderr)
    if not opencv:
        return
    # OpenCV prints its own "[ WARN:0@...]" lines (a V4L2 probe, a codec): errors only, unless debugging
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING if level.upper() == "DEBUG"
                                  else cv2.utils.logging.LOG_LEVEL_ERROR)


def _default_data() -> Path:
    here = Path.cwd() / ".." / "shared" / "data" / "fer2013"
    return here if here.exists() else Path("fer2013")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emocast", description=__doc__)
    p.add_argument("--version", action="version", version=f"emocast {__version__}")
    p.add_argument("--log-level", default=None, type=str.upper, choices=LOG_LEVELS,
                   help="DEBUG, INFO, WARNING or ERROR (default: the config's); also after the subcommand")
    # the same option after a subcommand; SUPPRESS keeps one given before it when none comes after
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, type=str.upper, choices=LOG_LEVELS,
                        help="DEBUG, INFO, WARNING or ERROR (default: the config's)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run the device service")
    run.add_argument("--config", help="TOML config file (see systemd/emocast.toml)")
    run.add_argument("--source", help="video file, camera index, 'picamera', rtsp:// or http:// URL, or 'demo'")
    run.add_argument("--broker", help="mqtt://[user:pass@]host[:port] or mqtts://...")
    run.add_argument("--device-id", help="device id in topics (default: the host name)")
    run.add_argument("--print", action="store_true", dest="print_events", help="also write each event to stdout")
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument("--loop", action="store_true", default=None, help="repeat a file source")
    run.add_argument("--no-emotion", action="store_true", help="no emotion inference at all, as [privacy] emotion = "
                     "false: no model opened, nothing emotional published")
    run.add_argument("--preview", action="store_true", help="show what is read in a local window, for placing "
                     "the camera (needs a display and an OpenCV with windows; nothing is written)")
    run.add_argument("--fast", action="store_true", help="read a file source as fast as analysis allows, "
                     "every frame (default: at the file's own frame rate, like a camera)")
    run.add_argument("--threads", type=int, help="per-face reading workers (default: the config's [device] threads, "
                     "or the cores this process may use)")
    run.add_argument("--outbox", help="outbox SQLite file (default: $STATE_DIRECTORY or ~/.local/state/emocast)")
    run.add_argument("--summary-s", type=float, help="seconds between summaries")
    run.add_argument("--metrics-s", type=float, help="seconds between metrics messages")

    an = sub.add_parser("analyze", parents=[common], help="log what the device would see in a video file or a photo")
    an.add_argument("path", type=Path, help="a video file or a photo")
    an.add_argument("--config", help="TOML config (thresholds, calibration, detector) as on the kiosk")
    an.add_argument("--out", type=Path, help="write JSON lines here instead of stdout")
    an.add_argument("--csv", type=Path, help="also write the records as CSV")
    an.add_argument("--plot", type=Path, help="write a PNG timeline of attention and emotion")
    an.add_argument("--annotate", type=Path, help="write the video with what was read drawn on it (.mp4, .avi or "
                    ".mkv): boxes, track, state and reason, emotion, head pose, eye openness; never sent")
    an.add_argument("--hz", type=float, help="faces detected and read per second of media (default: the config's "
                    "detect_hz and read_hz; 0: every frame)")
    an.add_argument("--threads", type=int, help="per-face reading workers (default: the config's [device] threads, "
                    "or the cores this process may use); the records are the same on any number")
    an.add_argument("--detector", help="face detector: blazeface, haar, hog, profile, or a union joined by '+' "
                    "(default: the config's, for photos and videos alike)")
    an.add_argument("--no-emotion", action="store_true", help="no emotion model and no emotion in the records "
                    "(as [privacy] emotion = false)")
    an.add_argument("--quiet", action="store_true", help="no progress bar or summary line")

    cal = sub.add_parser("calibrate", parents=[common],
                         help="record what looking at this kiosk's screen looks like (gaze and pose)")
    cal.add_argument("--config", help="TOML config (source, detector) as on the kiosk")
    cal.add_argument("--source", help="camera index, 'picamera', URL, or a recording (default: the config's)")
    cal.add_argument("--out", type=Path, help="calibration file (default: calibration.json in the state directory)")
    cal.add_argument("--settle-s", type=float, default=2.0, help="seconds to move the eyes to each target")
    cal.add_argument("--record-s", type=float, default=3.0, help="seconds recorded per target")

    chk = sub.add_parser("check-config", parents=[common], help="validate a config file and exit (0 valid, 3 invalid)")
    chk.add_argument("config")

    demo = sub.add_parser("demo-clip", parents=[common], help="write the built-in demo clip and print its path")
    demo.add_argument("path", nargs="?", help="where to write it (default: the cache)")

    conv = sub.add_parser("convert", parents=[common],
                          help="train, quantize and evaluate emotion models (needs emocast[convert])")
    csub = conv.add_subparsers(dest="convert_command", required=True)
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

    q = csub.add_parser("quantize", parents=[common],
                        help="Keras model -> TFLite (int8 by default) with its model card")
    q.add_argument("model", type=Path, help="a .keras file (its run folder's recipe.json is read), a Keras 2 / "
                   "tf.keras .h5 full model, or a TensorFlow SavedModel directory")
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

    en = csub.add_parser("ensemble", parents=[common],
                         help="average trained models (and their mirror views) in one model")
    en.add_argument("models", type=Path, nargs="+", help="best.keras files of run folders")
    en.add_argument("--out", type=Path, required=True, help="folder for model.keras and its recipe.json")
    en.add_argument("--mirror", action="store_true", help="also average each model's view of the mirrored face")

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
    from emocast.hub.commands import add_parser as add_hub_parser

    add_hub_parser(sub, common)
    return p


def cmd_run(args: argparse.Namespace) -> int:
    from emocast.device import config as cfgmod
    from emocast.device.service import RunOptions, Service

    cfg = cfgmod.load(args.config)
    cfg = cfgmod.with_overrides(cfg, "source", uri=args.source, loop=args.loop,
                                realtime=False if args.fast else None)
    cfg = cfgmod.with_overrides(cfg, "mqtt", url=args.broker)
    cfg = cfgmod.with_overrides(cfg, "device", id=args.device_id, threads=args.threads)
    cfg = cfgmod.with_overrides(cfg, "outbox", path=args.outbox)
    cfg = cfgmod.with_overrides(cfg, "events", summary_s=args.summary_s, metrics_s=args.metrics_s)
    if args.no_emotion:
        cfg = cfgmod.with_overrides(cfg, "privacy", emotion=False)
    if args.duration is not None and not (args.duration > 0 and math.isfinite(args.duration)):
        raise cfgmod.ConfigError(f"command line: --duration {args.duration} must be a positive number of seconds")
    cfgmod.check_for_run(cfg)
    _setup_logging(args.log_level or cfg.device.log_level)
    return Service(cfg, RunOptions(print_events=args.print_events, duration_s=args.duration,
                                   preview=args.preview)).run()


def cmd_analyze(args: argparse.Namespace) -> int:
    from emocast.core.errors import UsageError
    from emocast.device import config as cfgmod
    from emocast.device.analyze import RecordWriter, analyze, plot_timeline, summarize
    from emocast.device.perception.emotion import EmotionModel, model_path

    cfg = cfgmod.load(args.config)
    if args.hz is not None:  # a value out of range is a config error wherever it was written
        cfg = cfgmod.with_overrides(cfg, "faces", detect_hz=240.0 if args.hz == 0 else args.hz)
        cfg = cfgmod.with_overrides(cfg, "attention", read_hz=args.hz, landmarks_hz=0.0)
    cfg = cfgmod.with_overrides(cfg, "faces", detector=args.detector)
    cfg = cfgmod.with_overrides(cfg, "device", threads=args.threads)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install 'emocast[plot]'") from None
    for flag, path in (("--out", args.out), ("--csv", args.csv), ("--plot", args.plot), ("--annotate", args.annotate)):
        if path is not None and not path.parent.is_dir():  # said before any work, not after it
            raise UsageError(f"{flag} {path}: the folder {path.parent} does not exist")
    annotated = None
    if args.annotate is not None:
        from emocast.device.analyze import is_photo
        from emocast.device.annotate import AnnotatedVideo, video_fps

        if is_photo(args.path):
            raise UsageError(f"--annotate takes a video; {args.path} is a photo")
        annotated = AnnotatedVideo(args.annotate, video_fps(args.path), cfg.attention.absent_s)
    model = None
    if not args.no_emotion and cfg.emotion_on:
        model = EmotionModel(model_path(cfg.emotion.model), threads=cfg.emotion.threads)
    # Outputs are written beside their final names and renamed only when the analysis succeeds: a typo
    # in the input path must not truncate yesterday's results.
    partial = {p: p.with_name(p.name + ".partial") for p in (args.out, args.csv) if p is not None}
    out = partial[args.out].open("w") if args.out else sys.stdout
    csv_file = partial[args.csv].open("w", newline="") if args.csv else None
    writer = RecordWriter(out, csv_file, keep=args.plot is not None or not args.quiet, emotion=model is not None)
    ok = False
    try:  # a file that cannot be read, or no landmark model installed, raises with its exit code
        result = analyze(args.path, cfg, model, writer, progress=not args.quiet,
                         on_frame=annotated.write if annotated is not None else None)
        ok = True
    finally:
        if annotated is not None:
            annotated.close(ok)
        if args.out:
            out.close()
        if csv_file is not None:
            csv_file.close()
        for final, tmp in partial.items():
            if ok:
                tmp.replace(final)
            else:
                tmp.unlink(missing_ok=True)
    if args.plot is not None:
        labels = tuple(model.labels) if model is not None else ()
        tmp_plot = args.plot.with_name(args.plot.stem + ".partial" + args.plot.suffix)
        plot_timeline(writer.kept, labels, args.path.name, tmp_plot)
        tmp_plot.replace(args.plot)
    if not args.quiet:
        print(summarize(writer.kept, result), file=sys.stderr)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Exit 0 with the file written; 3 bad config; 4 no landmark model; 5 source; 8 too few readings
    (nothing written)."""
    from emocast.device import calibrate
    from emocast.device import config as cfgmod
    from emocast.device.perception.capture import open_source

    cfg = cfgmod.with_overrides(cfgmod.load(args.config), "source", uri=args.source)
    s = cfg.source
    source = open_source(s.uri, s.width, s.height, s.fps, s.stall_timeout_s)
    source.open()
    try:  # no landmark model installed (no pose or gaze to calibrate) raises with its exit code
        cal = calibrate.record(cfg, source, args.settle_s, args.record_s)
    except calibrate.CalibrationError as exc:
        raise calibrate.CalibrationError(f"calibration failed, nothing written: {exc}") from None
    finally:
        source.close()
    out = args.out or cfgmod.default_state_dir() / "calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(cal.to_json())
    print(f"wrote {out}: yaw offset {cal.yaw_offset_deg} deg, pitch offset {cal.pitch_offset_deg} deg, "
          f"gaze h {list(cal.gaze_h)}, v {list(cal.gaze_v)} from {cal.samples} readings\n"
          f"use it with, in the config: [attention] calibration = \"{out}\"")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """A device config, or a hub config (one with a [store] or [web] table), checked as ``run`` or
    ``hub`` would check it; nothing is opened. Secrets are never printed."""
    from emocast.core.broker import parse_broker_url, redact_url
    from emocast.core.errors import ExitCode
    from emocast.core.settings import ConfigError, read_toml
    from emocast.device import config as cfgmod

    try:
        if {"store", "web"} & set(read_toml(args.config)):
            from emocast.hub import config as hubcfg

            hub = hubcfg.load(args.config)
            print(f"{args.config}: valid hub config (database {redact_url(hub.db_url())}, web {hub.web.listen}, "
                  f"broker {parse_broker_url(hub.mqtt.url).redacted()})")
            return ExitCode.OK
        cfg = cfgmod.load(args.config)
        cfgmod.check_for_run(cfg)  # everything `run` checks before it opens anything
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    print(f"{args.config}: valid (device {cfg.device_id}, source {redact_url(cfg.source.uri)}, broker "
          f"{parse_broker_url(cfg.mqtt.url).redacted()}, digest {cfg.digest()})")
    return ExitCode.OK


def cmd_demo_clip(args: argparse.Namespace) -> int:
    from emocast.device.perception.demo_clip import ensure_demo_clip, write_clip

    print(write_clip(Path(args.path)) if args.path else ensure_demo_clip())
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from emocast.convert.commands import run_convert

    return run_convert(args)


def cmd_hub(args: argparse.Namespace) -> int:
    from emocast.hub.commands import run_hub

    return run_hub(args)


def main(argv: list[str] | None = None) -> int:
    """Run one command; a fault it raises (``EmocastError``) becomes one log line and its exit code,
    here and nowhere else."""
    from emocast.core.errors import EmocastError, ExitCode

    args = build_parser().parse_args(argv)
    if args.command != "run":
        _setup_logging(args.log_level or "INFO", opencv=args.command in OPENCV_COMMANDS)
    handlers = {"run": cmd_run, "analyze": cmd_analyze, "calibrate": cmd_calibrate,
                "check-config": cmd_check_config, "demo-clip": cmd_demo_clip, "convert": cmd_convert,
                "hub": cmd_hub}
    try:
        code = ExitCode(handlers[args.command](args))
    except EmocastError as exc:
        if not logging.getLogger().handlers:  # a fault before the command set logging up
            _setup_logging(args.log_level or "INFO")
        logging.getLogger("emocast").error("%s", exc)
        code = exc.exit_code
    if args.command == "run" and code != ExitCode.OK:  # one line that says why, for `journalctl -u emocast`
        logging.getLogger("emocast").error("exiting with code %d (%s)", code, code.description)
    return int(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
