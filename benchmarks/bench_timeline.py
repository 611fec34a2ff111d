"""Timeline benchmark: how long a big lecture's timeline takes the hub, and how much memory it costs.

    python benchmarks/bench_timeline.py                          # 150,000 events, SQLite (and PostgreSQL)
    python benchmarks/bench_timeline.py --events 1000000 --hours 144

Builds a lecture of ``--devices`` classroom kiosks over ``--hours`` with ``--events`` stored events in
all (attention changes of ~30 faces a kiosk, their emotions, a summary a minute each), as ingest would
have stored them, then asks for the lecture's timeline and its per-device export, each in a fresh
process: wall time, and resident memory before and at the peak (VmRSS, VmHWM). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from emocast.contract.events import SCHEMAS, utc_timestamp
from emocast.hub.store import Batch, Store, StoredMessage

T0 = 1_780_000_000.0
STATES = ("attentive", "attentive", "attentive", "looking_away", "eyes_closed")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

MEASURE = r"""
import json, sys, time
from emocast.hub.store import Store
from emocast.hub.privacy import Privacy
from emocast.hub.timeline import lecture_timeline

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
store = Store(sys.argv[1], migrate=False)
lecture = store.lecture(sys.argv[2])
rss0 = status("VmRSS")
t0 = time.perf_counter()
data = lecture_timeline(store, lecture, float(sys.argv[3]), lecture["end"], per_device=sys.argv[4] == "1",
                        privacy=Privacy(emotion=True, min_faces=3))
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "rss0": rss0, "peak": status("VmHWM"), "bins": len(data["bins"])}))
"""


def stored(kind: str, device: str, seq: int, ts: float, body: dict) -> StoredMessage:
    """An event as ingest stores it."""
    payload = {"schema": SCHEMAS[kind], "id": str(uuid.uuid4()), "seq": seq, "ts": utc_timestamp(ts),
               "device": device, **body}
    return StoredMessage.event(kind, payload, json.dumps(payload, separators=(",", ":")), ts)


def build(db: str, events: int, devices: int, hours: float) -> str:
    """A lecture with about ``events`` events; its id."""
    rng = random.Random(7)
    store = Store(db)
    span = hours * 3600
    per_device = events // devices
    for d in range(devices):
        device = f"room-{d:02d}"
        batch = Batch.empty()
        seq, state = 0, {}
        summaries = int(span // 60)
        changes = max(1, per_device - summaries)
        times = sorted(rng.uniform(0, span) for _ in range(changes))
        for t in times:
            seq += 1
            track = rng.randint(1, 30)
            ts = T0 + t
            if rng.random() < 0.6:
                new = rng.choice(STATES)
                body = {"track": track, "state": new, "previous": state.get(track), "previous_duration_s": 12.5,
                        "source_t": t}
                if new != "attentive":
                    body["reason"] = "gaze"
                state[track] = new
                batch.messages.append(stored("attention", device, seq, ts, body))
            else:
                label = rng.choice(LABELS)
                probs = {k: round(rng.random() / 7, 4) for k in LABELS}
                body = {"track": track, "emotion": label, "previous": None, "confidence": 0.6, "probs": probs,
                        "source_t": t}
                batch.messages.append(stored("emotion", device, seq, ts, body))
        for k in range(summaries):
            seq += 1
            ts = T0 + (k + 1) * 60
            body = {"window_s": 60.0, "frames": 600, "faces_seen": 30, "faces_now": 29, "face_time_s": 1750.0,
                    "attentive_share": 0.7, "looking_away_share": 0.2, "eyes_closed_share": 0.1, "blinks": 400,
                    "blink_rate_per_min": 14.0, "emotion_share": {k2: 1 / 7 for k2 in LABELS}, "final": False}
            batch.messages.append(stored("summary", device, seq, ts, body))
        batch.last_seen = {device: T0 + span}
        store.write_batch(batch)
    lecture = store.create_lecture("benchmark", [f"room-{d:02d}" for d in range(devices)], T0, 0.0, T0 + span)
    n = store.count_messages()
    store.close()
    print(f"  built: {n} events, {devices} kiosks, {hours:g} h")
    return lecture["id"]


def measure(db: str, lecture: str, bin_s: float, per_device: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, db, lecture, str(bin_s), "1" if per_device else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--devices", type=int, default=30)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--bin-s", type=float, default=60.0)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                    help="a PostgreSQL server to run it on too (a database is made and dropped); '' for none")
    args = ap.parse_args()
    targets = []
    with tempfile.TemporaryDirectory() as tmp:
        targets.append(("SQLite", str(Path(tmp) / "hub.sqlite"), None))
        if args.pg:
            try:
                import psycopg

                admin = psycopg.connect(args.pg, autocommit=True, connect_timeout=3)
                name = f"emocast_bench_{uuid.uuid4().hex[:8]}"
                admin.execute(f'CREATE DATABASE "{name}"')
                targets.append(("PostgreSQL", args.pg.rsplit("/", 1)[0] + f"/{name}", (admin, name)))
            except Exception as exc:  # no server: SQLite only
                print(f"PostgreSQL skipped: {exc}")
        try:
            for label, db, _ in targets:
                print(f"{label}:")
                t0 = time.perf_counter()
                lecture = build(db, args.events, args.devices, args.hours)
                print(f"  (built in {time.perf_counter() - t0:.0f} s)")
                for per_device in (False, True):
                    m = measure(db, lecture, args.bin_s, per_device)
                    what = "timeline + per-device export" if per_device else "timeline"
                    print(f"  {what:<30} {m['wall_s']:6.2f} s   RSS {m['rss0']:.0f} MiB before, "
                          f"peak {m['peak']:.0f} MiB "
                          f"(+{m['peak'] - m['rss0']:.0f})   {m['bins']} bins")
        finally:
            for _, _, pg in targets:
                if pg is not None:
                    pg[0].execute(f'DROP DATABASE IF EXISTS "{pg[1]}" WITH (FORCE)')
                    pg[0].close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
