"""The device's commands: ``run``, ``analyze``, ``calibrate``, ``check-config`` and ``demo-clip``, their
arguments (``add_parsers``) and what each runs (``HANDLERS``). Heavy modules (OpenCV, the models) are
imported only when a command runs, so ``emocast --help`` and the hub's commands stay light."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from emocast.core.logs import setup_logging


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    _run(sub, common)
    _analyze(sub, common)
    _calibrate(sub, common)
    _small(sub, common)


def _run(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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


def _analyze(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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


def _calibrate(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cal = sub.add_parser("calibrate", parents=[common],
                         help="record what looking at this kiosk's screen looks like (gaze and pose)")
    cal.add_argument("--config", help="TOML config (source, detector) as on the kiosk")
    cal.add_argument("--source", help="camera index, 'picamera', URL, or a recording (default: the config's)")
    cal.add_argument("--out", type=Path, help="calibration file (default: calibration.json in the state directory)")
    cal.add_argument("--settle-s", type=float, default=2.0, help="seconds to move the eyes to each target")
    cal.add_argument("--record-s", type=float, default=3.0, help="seconds recorded per target")


def _small(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    chk = sub.add_parser("check-config", parents=[common], help="validate a config file and exit (0 valid, 3 invalid)")
    chk.add_argument("config")

    demo = sub.add_parser("demo-clip", parents=[common], help="write the built-in demo clip and print its path")
    demo.add_argument("path", nargs="?", help="where to write it (default: the cache)")


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
    setup_logging(args.log_level or cfg.device.log_level)
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


HANDLERS = {"run": cmd_run, "analyze": cmd_analyze, "calibrate": cmd_calibrate, "check-config": cmd_check_config,
            "demo-clip": cmd_demo_clip}
