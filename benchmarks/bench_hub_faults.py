"""The hub through a school day's faults, at full size: what it keeps and whether it stays up.

    python benchmarks/bench_hub_faults.py                     # both parts (the second needs PostgreSQL)
    python benchmarks/bench_hub_faults.py --kiosks 20 --events 2000 --kill-s 40 --readers 12

A real Mosquitto with docs/kiosk.md's queue lines and a real ``emocast hub`` process:
1. **Backlog**: the hub stopped while ``--kiosks`` kiosks each send ``--events`` QoS 1 events (a network
   outage's flush), every one acknowledged by the broker; then the hub started: events stored of those
   sent, and how long the backlog took to drain.
2. **Session kills** (PostgreSQL): for ``--kill-s`` seconds the hub's database sessions are terminated
   every 0.5 s while ``--readers`` threads read a lecture's timeline and the devices page and a kiosk
   sends an event every 0.1 s: the readers' answers by status, events stored of those sent, whether the
   hub is still alive.
Nothing is asserted; the numbers are printed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hub_support import (  # noqa: E402
    PG_ADMIN,
    HubProcess,
    attention_payload,
    documented_queue_lines,
    hammer,
    kill_sessions,
    send_backlog,
)
from tests.support import Broker, free_port  # noqa: E402


def stored_total(hub: HubProcess, expected: int, timeout: float) -> tuple[int, float]:
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < timeout:
        n = sum(d["events"] for d in hub.get("/api/devices"))
        if n >= expected:
            break
        time.sleep(0.5)
    return n, time.monotonic() - t0


def backlog(workdir: Path, kiosks: int, events: int) -> None:
    broker = Broker(workdir, free_port(), extra_conf=documented_queue_lines(), persistent=True)
    broker.start()
    hub = HubProcess(workdir, broker.url, str(workdir / "backlog.sqlite"))
    try:
        hub.start()
        hub.stop()
        t0 = time.monotonic()
        send_backlog(broker.port, kiosks, events)
        print(f"backlog: {kiosks} kiosks x {events} events acknowledged by the broker in {time.monotonic() - t0:.0f} s"
              " with the hub stopped")
        hub.start()
        n, took = stored_total(hub, kiosks * events, 600)
        print(f"  stored {n} of {kiosks * events} ({kiosks * events - n} lost), drained in {took:.0f} s")
    finally:
        hub.stop()
        broker.stop()


def session_kills(workdir: Path, seconds: float, readers: int) -> None:
    import psycopg

    admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    name = f"emocast_bench_{int(time.time())}"
    admin.execute(f'CREATE DATABASE "{name}"')
    broker = Broker(workdir, free_port(), extra_conf=documented_queue_lines(), persistent=True)
    broker.start()
    hub = HubProcess(workdir, broker.url, PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", client_id="hub-kills")
    try:
        hub.start()
        lecture = hub.post("/api/lectures", {"title": "kills", "devices": ["k0"]})
        paths = [f"/api/lectures/{lecture['id']}/timeline", "/api/devices", "/api/lectures"]
        codes: dict = {}
        lock, stop = threading.Lock(), threading.Event()
        killer = threading.Thread(target=kill_sessions, args=(admin, name, stop))
        threads = [threading.Thread(target=hammer, args=(hub.port, paths, seconds, codes, lock))
                   for _ in range(readers)]

        kiosk = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="kiosk-kills")
        kiosk.connect("127.0.0.1", broker.port)
        kiosk.loop_start()
        killer.start()
        for t in threads:
            t.start()
        sent, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            sent += 1
            kiosk.publish("emocast/k0/events/attention", attention_payload("k0", sent), qos=1).wait_for_publish(30)
            time.sleep(0.1)
        for t in threads:
            t.join()
        stop.set()
        killer.join()
        kiosk.loop_stop()
        kiosk.disconnect()
        n, took = stored_total(hub, sent, 120)
        alive = hub.proc is not None and hub.proc.poll() is None
        print(f"session kills: {seconds:g} s, sessions killed every 0.5 s, {readers} readers: answers "
              + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items(), key=str)))
        print(f"  stored {n} of {sent} sent ({sent - n} lost), {took:.0f} s after the kills; hub alive: {alive}")
    finally:
        hub.stop()
        broker.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiosks", type=int, default=20)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--kill-s", type=float, default=40.0)
    ap.add_argument("--readers", type=int, default=12)
    args = ap.parse_args()
    if shutil.which("mosquitto") is None:
        print("mosquitto is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        backlog(Path(tmp), args.kiosks, args.events)
        try:
            session_kills(Path(tmp), args.kill_s, args.readers)
        except ImportError:
            print("session kills: psycopg is not installed (pip install 'emocast[hub]')")
        except Exception as exc:  # no PostgreSQL server
            print(f"session kills: skipped ({type(exc).__name__}: {exc})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
