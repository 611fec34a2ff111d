"""Hub benchmark: ingest rate on one core into SQLite and PostgreSQL, publish-to-queryable latency,
and the hub's memory, with 200 simulated kiosks.

    python benchmarks/bench_hub.py                       # SQLite, and PostgreSQL if one answers
    python benchmarks/bench_hub.py --devices 200 --flood 20000 --rate 400 --seconds 30

A real Mosquitto (started here, on a free port) and a real ``emocast hub`` process pinned to one core
(``taskset -c 0``); the simulated kiosks publish from this process on the other core.
- Flood: ``--flood`` QoS 1 messages (attention, emotion, a summary per 60 device-seconds) as fast
  as the broker takes them; the rate is messages committed per second of the hub's work, from the
  first message stored to the last.
- Steady: ``--rate`` messages a second in all (a classroom kiosk publishes 0.2-2 a second) for
  ``--seconds``; each payload's ``ts`` is its publish time and the store records the commit time,
  so commit - publish is the latency to queryable (p50, p95, p99).
Memory: the hub's peak resident set (VmHWM) after both phases. Nothing is asserted; compare
SQLite and PostgreSQL within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from emocast.contract.events import SCHEMAS, utc_timestamp
from emocast.hub.store import Store

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.hub_support import PG_ADMIN  # noqa: E402
from tests.support import Broker, free_port, wait_port  # noqa: E402

STATES = ("attentive", "looking_away", "eyes_closed")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class Kiosks:
    """Payloads as N kiosks would publish them: seq per device, a few tracks each, summaries."""

    def __init__(self, n: int) -> None:
        self.devices = [f"kiosk-{i:03d}" for i in range(n)]
        self.seq = dict.fromkeys(self.devices, 0)
        self.rng = random.Random(7)

    def next(self) -> tuple[str, bytes]:
        d = self.rng.choice(self.devices)
        self.seq[d] += 1
        now = time.time()
        common = {"id": str(uuid.uuid4()), "seq": self.seq[d], "ts": utc_timestamp(now), "device": d}
        roll = self.rng.random()
        track = self.rng.randint(1, 30)
        if roll < 0.6:
            kind, body = "attention", {"track": track, "state": self.rng.choice(STATES), "previous": "attentive",
                                       "previous_duration_s": round(self.rng.uniform(1, 60), 2), "source_t": 1.0}
            topic = f"emocast/{d}/events/attention"
        elif roll < 0.97:
            probs = {k: round(1 / len(LABELS), 4) for k in LABELS}
            kind, body = "emotion", {"track": track, "emotion": self.rng.choice(LABELS), "previous": "neutral",
                                     "confidence": 0.6, "probs": probs, "source_t": 1.0}
            topic = f"emocast/{d}/events/emotion"
        else:
            kind, body = "summary", {
                "window_s": 60.0, "frames": 600, "faces_seen": 4, "faces_now": 3, "faces_read": 3, "faces_turned": 1,
                "faces_too_small": 0, "face_time_s": 200.0, "attentive_share": 0.7, "looking_away_share": 0.2,
                "eyes_closed_share": 0.1, "blinks": 40, "blink_rate_per_min": 12.0,
                "emotion_share": {"neutral": 0.8, "happy": 0.2}, "final": False, "dropped_frames": 0,
                "dropped_events": 0}
            topic = f"emocast/{d}/summary"
        return topic, json.dumps({"schema": SCHEMAS[kind], **common, **body}).encode()


def publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def stored(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as r:
        return json.loads(r.read())["ingest"]["stored"]


def vm(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(db: str, label: str, args: argparse.Namespace, workdir: Path) -> dict:
    broker = Broker(workdir, free_port(), extra_conf="max_inflight_messages 1000\nmax_queued_messages 1000000\n")
    broker.start()
    http = free_port()
    cmd = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    hub = subprocess.Popen(cmd + [sys.executable, "-m", "emocast", "hub", "--broker", broker.url, "--db", db,
                                  "--listen", f"127.0.0.1:{http}", "--client-id", f"bench-hub-{label}",
                                  "--log-level", "WARNING"],
                           stderr=(workdir / f"hub-{label}.log").open("w"))
    try:
        wait_port(http, 30)
        time.sleep(1.0)
        kiosks = Kiosks(args.devices)
        pub = publisher(broker.port)
        # flood
        t_pub = time.perf_counter()
        for _ in range(args.flood):
            topic, payload = kiosks.next()
            pub.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 600
        while stored(http) < args.flood and time.monotonic() < deadline:
            time.sleep(0.2)
        flood_s = time.perf_counter() - t_pub
        store = Store(db)
        first, last = store._query("SELECT MIN(received), MAX(received) FROM messages")[0]
        n_flood = store.count_messages()
        # steady
        t_start = time.time()
        period = 1.0 / args.rate
        next_t = time.perf_counter()
        sent = 0
        while time.perf_counter() - next_t < args.seconds and sent < args.rate * args.seconds:
            topic, payload = kiosks.next()
            pub.publish(topic, payload, qos=1)
            sent += 1
            wait_s = next_t + sent * period - time.perf_counter()
            if wait_s > 0:
                time.sleep(wait_s)
        while stored(http) < n_flood + sent and time.monotonic() < deadline:
            time.sleep(0.2)
        lat = sorted((r - ts) * 1000 for r, ts in store._query(
            "SELECT received, ts FROM messages WHERE received >= ?", (t_start,)))
        hwm = vm(hub.pid, "VmHWM")
        store.close()
        pub.loop_stop()
        pub.disconnect()
        q = statistics.quantiles(lat, n=100) if len(lat) > 10 else [float("nan")] * 99
        return {"db": label, "flood_msgs": n_flood, "flood_rate": n_flood / max(1e-9, last - first),
                "flood_wall_s": flood_s, "steady_msgs": len(lat), "p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98],
                "peak_rss_mib": hwm}
    finally:
        hub.terminate()
        hub.wait(30)
        broker.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--flood", type=int, default=20000)
    p.add_argument("--rate", type=float, default=400.0, help="messages per second in all, steady phase")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--no-postgres", action="store_true")
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "sqlite").mkdir()
        results.append(run(str(work / "sqlite" / "hub.sqlite"), "sqlite", args, work / "sqlite"))
        if not args.no_postgres:
            try:
                import psycopg

                admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
            except Exception as exc:  # no server: SQLite only
                print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
            else:
                name = f"emocast_bench_{uuid.uuid4().hex[:8]}"
                admin.execute(f'CREATE DATABASE "{name}"')
                try:
                    (work / "pg").mkdir()
                    results.append(run(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", "postgresql", args, work / "pg"))
                finally:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"{args.devices} simulated kiosks; flood {args.flood} messages; steady {args.rate:g}/s for "
          f"{args.seconds:g} s; hub on one core")
    print(f"{'database':<11} {'ingest msg/s':>12} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'peak RSS MiB':>13}")
    for r in results:
        print(f"{r['db']:<11} {r['flood_rate']:>12.0f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
              f"{r['peak_rss_mib']:>13.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
