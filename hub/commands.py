"""``emocast hub``: serve (ingest + web), ``import`` analyze logs, ``lecture start|stop|list``.

Exit codes: 0 done (or a clean stop on SIGTERM, SIGINT or SIGHUP), 2 usage, 3 config, 9 the database
cannot be opened or written, 10 an import file is not analyze output (nothing of it stored).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from emocast.core import sdnotify
from emocast.core.errors import UsageError

from .config import SYSTEM_CONFIG

log = logging.getLogger("emocast.hub")




def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    opts = argparse.ArgumentParser(add_help=False)
    opts.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                      help=f"hub.toml (default: $EMOCAST_HUB_CONFIG, else {SYSTEM_CONFIG} where it exists)")
    opts.add_argument("--db", default=argparse.SUPPRESS,
                      help="an SQLite file or postgresql://user@host/db (default: the config's, else hub.sqlite in "
                           "the state folder)")
    serving = argparse.ArgumentParser(add_help=False)
    serving.add_argument("--broker", default=argparse.SUPPRESS, help="mqtt://[user:pass@]host[:port] or mqtts://...")
    serving.add_argument("--listen", default=argparse.SUPPRESS,
                         help="HOST:PORT for the web page and API (default 127.0.0.1:8080)")
    serving.add_argument("--client-id", default=argparse.SUPPRESS, help="MQTT client id (fixed: its session "
                         "survives restarts; unique per process of a share group)")
    serving.add_argument("--share-group", default=argparse.SUPPRESS,
                         help="MQTT 5 shared subscription group, for several hubs")
    hub = sub.add_parser("hub", parents=[common, opts, serving], help="the classroom hub: collect kiosks' events, "
                         "serve lecture timelines (needs emocast[hub])")
    hsub = hub.add_subparsers(dest="hub_command")
    hsub.add_parser("serve", parents=[common, opts, serving], help="ingest and serve (the default)")
    imp = hsub.add_parser("import", parents=[common, opts], help="load `emocast analyze` JSON-lines files into a "
                          "lecture (one file per student's recording)")
    imp.add_argument("files", nargs="+", type=Path)
    which = imp.add_mutually_exclusive_group(required=True)
    which.add_argument("--lecture", help="an existing lecture's id")
    which.add_argument("--title", help="create a lecture with this title for the files")
    imp.add_argument("--device", help="the device name to file them under (one file only; default: file name)")
    imp.add_argument("--start", type=float, default=None, help="with --title: the lecture's start, epoch seconds "
                     "(default: when the recording was made, where its video said so, else now)")
    imp.add_argument("--video-offset", type=float, default=0.0,
                     help="with --title: seconds of the video at which the lecture starts")
    imp.add_argument("--video", help="with --title: the lecture video's file name in [web] video_dir")
    lec = hsub.add_parser("lecture", parents=[common, opts], help="start, stop or list lectures")
    lsub = lec.add_subparsers(dest="lecture_command", required=True)
    ls = lsub.add_parser("start", parents=[common, opts], help="start a lecture now; prints its id")
    ls.add_argument("--title", required=True)
    ls.add_argument("--device", action="append", default=[], help="a device in the room (repeat)")
    ls.add_argument("--video-offset", type=float, default=0.0)
    ls.add_argument("--video", help="the lecture video's file name in [web] video_dir")
    lt = lsub.add_parser("stop", parents=[common, opts], help="end a lecture now")
    lt.add_argument("id")
    lv = lsub.add_parser("video", parents=[common, opts], help="set (or, with --none, clear) the video a lecture's "
                         "page plays beside its charts: a file name in [web] video_dir")
    lv.add_argument("id")
    lv_which = lv.add_mutually_exclusive_group(required=True)
    lv_which.add_argument("name", nargs="?", help="the video's file name in [web] video_dir")
    lv_which.add_argument("--none", action="store_true", help="no video for this lecture")
    lsub.add_parser("list", parents=[common, opts], help="all lectures, as JSON lines")
    fg = hsub.add_parser("forget", parents=[common, opts], help="delete everything stored for a device or a "
                         "lecture (a family that withdraws consent); prints what was removed")
    what = fg.add_mutually_exclusive_group(required=True)
    what.add_argument("--device", help="a device id: all its events, its health, its rejected messages")
    what.add_argument("--lecture", help="a lecture id: the lecture and its devices' events during it")


def config_path(args: argparse.Namespace) -> Path | None:
    """The hub config every ``emocast hub`` command reads, so that ``hub lecture`` and ``hub import``
    see the database ``hub serve`` writes: ``--config``, else ``$EMOCAST_HUB_CONFIG`` (empty: none),
    else the installed ``/etc/emocast/hub.toml`` where it exists."""
    if getattr(args, "config", None) is not None:
        return args.config
    env = os.environ.get("EMOCAST_HUB_CONFIG")
    if env is not None:
        return Path(env) if env else None
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


def _config(args: argparse.Namespace):
    from .config import load

    path = config_path(args)
    cfg = load(path, {
        "mqtt": {"url": getattr(args, "broker", None), "client_id": getattr(args, "client_id", None),
                 "share_group": getattr(args, "share_group", None)},
        "store": {"url": getattr(args, "db", None)},
        "web": {"listen": getattr(args, "listen", None)},
    })
    log.info("config %s", path or "(defaults)")
    return cfg


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
    if args.hub_command == "forget":
        return _forget(cfg, args)
    return _lecture(cfg, args)


def _serve(cfg) -> int:
    import uvicorn

    from emocast.core.broker import redact_url

    from .api import create_app
    from .config import parse_listen
    from .feed import ChangeFeed
    from .ingest import Ingest

    wait_for_database(cfg.db_url(), cfg.store.connect_wait_s)
    feed = ChangeFeed(cfg.web.max_streams)
    ingest = Ingest(cfg, feed=feed)
    app = create_app(cfg, ingest.health, feed)
    host, port = parse_listen(cfg.web.listen)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="off", timeout_graceful_shutdown=5))  # live pages' streams
    # uvicorn handles SIGINT/SIGTERM while serving, then restores the handlers it found and raises the
    # signal again: with Python's default there, the process would die before ingest commits and
    # acknowledges what it holds. These handlers make that second delivery a no-op (and SIGHUP a stop).
    def stop_serving(*_: object) -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop_serving)
    log.info("hub: database %s, web http://%s:%d/, topics %s", redact_url(ingest.store.url), host, port,
             ", ".join(ingest.topics()))
    ingest.start()
    threading.Thread(target=_tell_systemd, args=(server, ingest, host, port, cfg.token()), name="hub-sdnotify",
                     daemon=True).start()
    try:
        server.run()
    finally:
        sdnotify.notify("STOPPING=1")
        ingest.stop()
        log.info("hub stopped: %s", json.dumps(ingest.stats.as_dict()))
    return 0


def wait_for_database(url: str, wait_s: float) -> None:
    """Open the store, retrying with back-off while the database does not answer (a PostgreSQL still
    starting at boot) for up to ``wait_s``; then, or at once for a fault no wait can fix (a missing
    folder, a newer schema), StoreError (exit 9)."""
    from emocast.core.broker import Backoff, redact_url

    from .store import Store, StoreError

    deadline, backoff = time.monotonic() + wait_s, Backoff(1.0, 30.0)
    while True:
        try:
            Store(url).close()
            return
        except StoreError as exc:
            retry = type(exc.__cause__).__name__ in ("OperationalError", "ConnectionTimeout")
            pause = backoff.next()
            if not retry or time.monotonic() + pause > deadline:
                raise
            log.warning("database %s does not answer (%s); retrying in %.0f s", redact_url(url), exc, pause)
            time.sleep(pause)


def _tell_systemd(server, ingest, host: str, port: int, token: str) -> None:
    """``READY=1`` once the web server listens, then ``WATCHDOG=1`` every half ``WatchdogSec`` while
    the writer thread runs and is not stalled and the web side answers a health request: a wedged hub
    (ingest or API) is restarted by systemd; a broker or database outage is not (a restart cannot fix
    it, and the hub reconnects by itself; health answers 503 then, which is an answer)."""
    while not server.started and not server.should_exit:
        time.sleep(0.1)
    sdnotify.notify("READY=1")
    interval = sdnotify.watchdog_interval_s()
    while interval and not server.should_exit:
        ingest_ok = ingest.writer_alive() and not any(p.startswith("ingest:") for p in ingest.health()["problems"])
        if ingest_ok and web_answers(host, port, token, timeout_s=max(1.0, interval / 2)):
            sdnotify.notify("WATCHDOG=1")
        time.sleep(interval)


def web_answers(host: str, port: int, token: str, timeout_s: float) -> bool:
    """Whether the hub's own API answers ``/api/health`` within ``timeout_s`` (any status: 503 says the
    database is down, which a restart does not fix; no answer is a wedged web side)."""
    import http.client

    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    conn = http.client.HTTPConnection(target, port, timeout=timeout_s)
    try:
        conn.request("GET", "/api/health", headers={"Authorization": f"Bearer {token}"} if token else {})
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _import(cfg, args: argparse.Namespace) -> int:
    """Every file read and checked before anything is written: a file that is not analyze output
    creates no lecture (exit 10), and with ``--title`` files whose every event is already stored create
    none either (exit 2, naming the lecture that holds them)."""
    from emocast.core.broker import redact_url

    from .importer import ImportFileError, device_name_problem, events_from_records, media_facts
    from .payloads import clean_text
    from .privacy import Privacy
    from .store import Store, StoreError, database_error_types, new_lecture_id

    if args.device and len(args.files) > 1:
        raise UsageError(f"--device names one file's device; {len(args.files)} files were given")
    privacy = Privacy.of(cfg.privacy)  # emotion off: a log's emotion is not imported
    if args.title is not None and not (0 < len(args.title) <= 200 and clean_text(args.title)):
        raise UsageError("--title: 1-200 characters, without control characters, unpaired surrogates or "
                         "bidirectional overrides")
    store = Store(cfg.db_url())
    try:
        lecture = None
        if args.lecture:
            lecture = store.lecture(args.lecture)
            if lecture is None:
                raise UsageError(f"no lecture {args.lecture} (emocast hub lecture list)")
        offset = lecture["video_offset_s"] if lecture else args.video_offset
        # a new lecture is dated by --start, else by when its recordings were made (their files say,
        # where the camera wrote it), else now; it lasts as long as its longest recording
        facts = [] if lecture else [media_facts(p) for p in args.files]
        dates = [f.recorded for f in facts if f.recorded is not None]
        recorded = args.start - offset if args.start is not None else (min(dates) if dates else None)
        media_s = max((f.media_s for f in facts), default=0.0)
        start = lecture["start"] if lecture else (recorded + offset if recorded is not None else time.time())
        lecture_id = lecture["id"] if lecture else new_lecture_id()
        results = []
        for path in args.files:
            problem = device_name_problem(args.device or path.stem)
            if problem:
                raise ImportFileError(f"{path}: {problem}; nothing imported")
            try:
                found = events_from_records(path, args.device or path.stem, start, offset, lecture_id)
                found = dataclasses.replace(found, events=[e for e in found.events if privacy.reads(e.kind)])
                results.append(found)
            except ImportFileError as exc:
                raise ImportFileError(f"{exc}; nothing imported") from None
        _refuse_repeats(store, results, lecture["id"] if lecture else None)
        # one transaction: the lecture, its devices and every file's events, or nothing at all
        try:
            lecture, new = store.import_lecture([(r.device, r.events) for r in results], lecture_id, lecture is None,
                                                args.title or "", start, offset,
                                                _video_name(args.video) if lecture is None else None,
                                                recorded=recorded, media_s=media_s)
        except database_error_types() as exc:
            raise StoreError(f"{redact_url(store.url)}: the database refused the import ({type(exc).__name__}: "
                             f"{exc}); nothing imported") from exc
        for r, n in zip(results, new, strict=True):
            print(json.dumps({"file": str(r.path), "device": r.device, "records": r.records, "tracks": r.tracks,
                              "events": len(r.events), "new": n, "lecture": lecture["id"]}))
    finally:
        store.close()
    return 0


def _refuse_repeats(store, results, lecture_id: str | None) -> None:
    """UsageError when a file is already held by another lecture (known by its content, under any name):
    a recording belongs to one lecture. Held by two, the difference of the two lectures' charts would be
    that student's own record; and a lecture of nothing new would hold the same recordings twice. The
    message names the lectures that hold them."""
    origins = {r.events[0].origin: r.path for r in results if r.events}
    holders = store.lectures_holding(list(origins))
    # the same file into its own lecture again is stored once (the same ids); anywhere else, or under
    # another name in its own lecture, it would count twice
    clash = {o: {(i, t) for i, t, held_as in held if i != lecture_id or held_as != o} for o, held in holders.items()}
    clash = {o: held for o, held in clash.items() if held}
    if not clash:
        return
    where = ", ".join(f"lecture {i} ({t!r})" for i, t in sorted({x for h in clash.values() for x in h}))
    names = ", ".join(str(origins[o]) for o in origins if o in clash)
    every = len(clash) == len(origins)
    verb = "is" if every or len(clash) == 1 else "are"
    raise UsageError(f"{'every event of ' if every else ''}{names} {verb} already stored, in "
                     f"{where}: a recording belongs to one lecture (forget it there first: emocast hub forget "
                     f"--lecture ID); nothing imported")


def _video_name(name: str | None) -> str | None:
    """``--video``, refused (exit 2) unless a plain file name in ``[web] video_dir``."""
    from .payloads import video_name_problem

    problem = name is not None and video_name_problem(name)
    if problem:
        raise UsageError(f"--{problem}")
    return name


def _forget(cfg, args: argparse.Namespace) -> int:
    from .store import Store

    store = Store(cfg.db_url())
    try:
        removed = store.forget_device(args.device) if args.device else store.forget_lecture(args.lecture)
        if removed is None:
            raise UsageError(f"no lecture {args.lecture} (emocast hub lecture list)")
    finally:
        store.close()
    if args.device:  # else the broker's retained status and info bring the device back at the next start
        removed["retained_cleared"] = clear_retained(cfg, args.device)
    log.info("forgot %s %s: %s", "device" if args.device else "lecture", args.device or args.lecture, removed)
    print(json.dumps({"forgot": args.device or args.lecture, **removed}))
    return 0


def clear_retained(cfg, device: str, timeout_s: float = 10.0) -> bool:
    """Empty the device's retained ``status`` and ``info`` on the broker (an empty retained message
    deletes it). The hub's broker user needs write on those two topics (docs/hub.md); a broker that
    cannot be reached or refuses is logged, and the database's deletion stands."""
    from emocast.core.broker import make_client, parse_broker_url, tls_context

    m = cfg.mqtt
    broker = parse_broker_url(m.url)
    client = make_client(f"{m.client_id}-forget", broker, m.username, cfg.password(),
                         tls_context(m.ca_file, m.cert_file, m.key_file) if broker.tls else None)
    try:
        client.connect(broker.host, broker.port, keepalive=30)
        client.loop_start()
        infos = [client.publish(f"{m.prefix}/{device}/{suffix}", b"", qos=1, retain=True)
                 for suffix in ("status", "info")]
        for info in infos:
            info.wait_for_publish(timeout_s)
        ok = all(info.is_published() and info.rc == 0 for info in infos)
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("could not clear %s's retained status on %s (%s): clear it with mosquitto_pub -r -n -t "
                    "'%s/%s/status' (and .../info)", device, broker.redacted(), exc, m.prefix, device)
        return False
    finally:
        client.loop_stop()
        client.disconnect()
    if not ok:
        log.warning("the broker did not take the empty retained status of %s: may the hub's user write "
                    "%s/+/status and %s/+/info?", device, m.prefix, m.prefix)
    return ok


def _lecture(cfg, args: argparse.Namespace) -> int:
    from .store import Store

    store = Store(cfg.db_url())
    try:
        out: Any
        if args.lecture_command == "start":
            if not args.device:
                raise UsageError("hub lecture start: name the room's kiosks with --device (a live lecture with none "
                                 "would never get data)")
            out = store.create_lecture(args.title, args.device, None, args.video_offset, video=_video_name(args.video))
        elif args.lecture_command == "stop":
            out = store.stop_lecture(args.id)
            if out is None:
                raise UsageError(f"no lecture {args.id}")
        elif args.lecture_command == "video":
            out = store.set_video(args.id, None if args.none else _video_name(args.name))
            if out is None:
                raise UsageError(f"no lecture {args.id} (emocast hub lecture list)")
        else:
            for lecture in store.lectures():
                print(json.dumps(lecture))
            return 0
        print(json.dumps(out))
    finally:
        store.close()
    sys.stdout.flush()
    return 0
