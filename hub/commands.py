"""``emocast hub``: serve (ingest + web), ``import`` analyze logs, ``lecture start|stop|list``.

Exit codes: 0 done (or a clean stop on SIGTERM, SIGINT or SIGHUP), 2 usage, 3 config, 9 the database
cannot be opened or written, 10 an import file is not analyze output (nothing of it stored).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from emocast.core.errors import UsageError

log = logging.getLogger("emocast.hub")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    opts = argparse.ArgumentParser(add_help=False)
    opts.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="hub.toml")
    opts.add_argument("--db", default=argparse.SUPPRESS,
                      help="an SQLite file or postgresql://user@host/db (default: hub.sqlite in the state folder)")
    hub = sub.add_parser("hub", parents=[common, opts], help="the classroom hub: collect kiosks' events, serve "
                         "lecture timelines (needs emocast[hub])")
    hub.add_argument("--broker", default=None, help="mqtt://[user:pass@]host[:port] or mqtts://...")
    hub.add_argument("--listen", default=None, help="HOST:PORT for the web page and API (default 127.0.0.1:8080)")
    hub.add_argument("--client-id", default=None, help="MQTT client id (fixed: its session survives restarts; "
                     "unique per process of a share group)")
    hub.add_argument("--share-group", default=None, help="MQTT 5 shared subscription group, for several hubs")
    hsub = hub.add_subparsers(dest="hub_command")
    hsub.add_parser("serve", parents=[common, opts], help="ingest and serve (the default)")
    imp = hsub.add_parser("import", parents=[common, opts], help="load `emocast analyze` JSON-lines files into a "
                          "lecture (one file per student's recording)")
    imp.add_argument("files", nargs="+", type=Path)
    which = imp.add_mutually_exclusive_group(required=True)
    which.add_argument("--lecture", help="an existing lecture's id")
    which.add_argument("--title", help="create a lecture with this title for the files")
    imp.add_argument("--device", help="the device name to file them under (one file only; default: file name)")
    imp.add_argument("--start", type=float, default=None, help="with --title: the lecture's start, epoch seconds")
    imp.add_argument("--video-offset", type=float, default=0.0,
                     help="with --title: seconds of the video at which the lecture starts")
    lec = hsub.add_parser("lecture", parents=[common, opts], help="start, stop or list lectures")
    lsub = lec.add_subparsers(dest="lecture_command", required=True)
    ls = lsub.add_parser("start", parents=[common, opts], help="start a lecture now; prints its id")
    ls.add_argument("--title", required=True)
    ls.add_argument("--device", action="append", default=[], help="a device in the room (repeat)")
    ls.add_argument("--video-offset", type=float, default=0.0)
    lt = lsub.add_parser("stop", parents=[common, opts], help="end a lecture now")
    lt.add_argument("id")
    lsub.add_parser("list", parents=[common, opts], help="all lectures, as JSON lines")


def _config(args: argparse.Namespace):
    from .config import load

    return load(getattr(args, "config", None), {
        "mqtt": {"url": getattr(args, "broker", None), "client_id": getattr(args, "client_id", None),
                 "share_group": getattr(args, "share_group", None)},
        "store": {"url": getattr(args, "db", None)},
        "web": {"listen": getattr(args, "listen", None)},
    })


def run_hub(args: argparse.Namespace) -> int:
    """A bad config, a database that cannot be opened and a file that is not analyze output raise
    their ``EmocastError`` (exit 3, 9, 10: ``emocast.cli.main`` reports them)."""
    try:
        import fastapi  # noqa: F401
        import jsonschema  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"the hub needs its extra: pip install 'emocast[hub]' ({exc})") from None
    cfg = _config(args)
    if args.hub_command in (None, "serve"):
        return _serve(cfg)
    if args.hub_command == "import":
        return _import(cfg, args)
    return _lecture(cfg, args)


def _serve(cfg) -> int:
    import uvicorn

    from .api import create_app
    from .config import parse_listen
    from .ingest import Ingest
    from .store import redact

    ingest = Ingest(cfg)
    app = create_app(cfg.db_url(), cfg.token(), ingest.health, cfg.web.default_bin_s, cfg.hosts(), cfg.web.max_bins)
    host, port = parse_listen(cfg.web.listen)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="off"))
    # uvicorn handles SIGINT/SIGTERM while serving, then restores the handlers it found and raises the
    # signal again: with Python's default there, the process would die before ingest commits and
    # acknowledges what it holds. These handlers make that second delivery a no-op (and SIGHUP a stop).
    def stop_serving(*_: object) -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop_serving)
    log.info("hub: database %s, web http://%s:%d/, topics %s", redact(ingest.store.url), host, port,
             ", ".join(ingest.topics()))
    ingest.start()
    try:
        server.run()
    finally:
        ingest.stop()
        log.info("hub stopped: %s", json.dumps(ingest.stats.as_dict()))
    return 0


def _import(cfg, args: argparse.Namespace) -> int:
    from .importer import ImportFileError, events_from_records
    from .store import Batch, Store

    if args.device and len(args.files) > 1:
        raise UsageError(f"--device names one file's device; {len(args.files)} files were given")
    store = Store(cfg.db_url())
    try:
        if args.lecture:
            lecture = store.lecture(args.lecture)
            if lecture is None:
                raise UsageError(f"no lecture {args.lecture} (emocast hub lecture list)")
        else:
            lecture = store.create_lecture(args.title, [], args.start, args.video_offset)
        results = []
        for path in args.files:
            device = args.device or path.stem
            try:
                results.append(events_from_records(path, device, lecture["start"], lecture["video_offset_s"]))
            except ImportFileError as exc:
                raise ImportFileError(f"{exc}; nothing imported") from None
        for r in results:
            batch = Batch.empty()
            batch.messages = r.events
            new = store.write_batch(batch)
            store.add_lecture_devices(lecture["id"], [r.device])
            print(json.dumps({"file": str(r.path), "device": r.device, "records": r.records, "tracks": r.tracks,
                              "events": len(r.events), "new": new, "lecture": lecture["id"]}))
        if args.title:
            last = max((e.ts for r in results for e in r.events), default=lecture["start"])
            store.stop_lecture(lecture["id"], max(last, lecture["start"] + 1.0))
    finally:
        store.close()
    return 0


def _lecture(cfg, args: argparse.Namespace) -> int:
    from .store import Store

    store = Store(cfg.db_url())
    try:
        out: Any
        if args.lecture_command == "start":
            out = store.create_lecture(args.title, args.device, None, args.video_offset)
        elif args.lecture_command == "stop":
            out = store.stop_lecture(args.id)
            if out is None:
                raise UsageError(f"no lecture {args.id}")
        else:
            for lecture in store.lectures():
                print(json.dumps(lecture))
            return 0
        print(json.dumps(out))
    finally:
        store.close()
    sys.stdout.flush()
    return 0
