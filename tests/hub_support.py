"""What the hub's tests share: the hub as a real process, a PostgreSQL database of the test's own,
and a device service run against the test's broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import EMOCAST, free_port, wait_port

LOCAL = "http://127.0.0.1"  # the base URL of an in-process test client (a same-origin browser)
PG_ADMIN = os.environ.get("EMOCAST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_admin():
    """A connection to the test server's admin database; skips where no server answers."""
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_ADMIN} ({str(exc).strip().splitlines()[0]})")


@contextmanager
def pg_database(create: bool = True) -> Iterator[str]:
    """A PostgreSQL database of one test's own (made now, or by the test with ``create=False``),
    dropped after it; skips where no server answers."""
    admin = pg_admin()
    name = f"emocast_test_{uuid.uuid4().hex[:10]}"
    if create:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@dataclass
class HubProcess:
    """``emocast hub`` as its own process, so a test can SIGKILL it like a power cut would."""

    workdir: Path
    broker_url: str
    db: str
    client_id: str = "emocast-hub"
    share_group: str = ""
    port: int = field(default_factory=free_port)
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"hub-{self.client_id}-{self.starts}.log").open("w")
        args = EMOCAST + ["hub", "--broker", self.broker_url, "--db", self.db, "--listen", f"127.0.0.1:{self.port}",
                          "--client-id", self.client_id, "--log-level", "DEBUG", *self.extra]
        if self.share_group:
            args += ["--share-group", self.share_group]
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_port(self.port, 30)
        deadline = time.monotonic() + 20
        while not self.health().get("ingest", {}).get("mqtt_connected"):
            assert time.monotonic() < deadline, self.log_text()
            time.sleep(0.1)

    def log_text(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.workdir.glob(f"hub-{self.client_id}-*.log")))[-4000:]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict | None = None) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def health(self) -> dict:
        """/api/health's body, whether it says ok (200) or not (503); {} while nothing answers."""
        try:
            return self.get("/api/health")
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}") if exc.code == 503 else {}
        except OSError:
            return {}

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        return self.proc.wait(20)


def run_device(broker_url: str, device: str, clip: Path, workdir: Path, *extra: str,
               background: bool = False) -> subprocess.Popen | subprocess.CompletedProcess:
    """``emocast run`` on a clip against the test's broker, with its own outbox."""
    args = EMOCAST + ["run", "--broker", broker_url, "--device-id", device, "--source", str(clip),
                      "--outbox", str(workdir / f"outbox-{device}.sqlite"), "--summary-s", "2", "--metrics-s", "1",
                      *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if background:
        log = (workdir / f"device-{device}.log").open("w")
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


def published_seqs(workdir: Path, device: str) -> int:
    """How many durable events the device wrote (its outbox's next seq - 1): every one must reach the hub."""
    import sqlite3

    db = sqlite3.connect(workdir / f"outbox-{device}.sqlite")
    try:
        (next_seq,) = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        (left,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
    finally:
        db.close()
    assert left == 0, f"{device} still holds {left} undelivered events"
    return int(next_seq) - 1


def attention_payload(device: str, seq: int) -> bytes:
    """A valid attention event of ``device`` (a fresh id), dated now."""
    from emocast.contract.events import SCHEMAS, utc_timestamp

    return json.dumps({"schema": SCHEMAS["attention"], "id": uuid.uuid4().hex, "seq": seq,
                       "ts": utc_timestamp(time.time() - 1), "device": device, "track": 1, "state": "attentive",
                       "previous": None, "previous_duration_s": 0.0, "source_t": float(seq)}).encode()


def send_backlog(port: int, kiosks: int, events: int) -> None:
    """``kiosks`` kiosks (k0, k1, ...) each send ``events`` attention events at QoS 1 at once and wait
    for every PUBACK: all of them acknowledged by the broker."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    def kiosk(k: int) -> None:
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"kiosk-{k}")
        c.max_inflight_messages_set(50)
        c.connect("127.0.0.1", port)
        c.loop_start()
        try:
            infos = [c.publish(f"emocast/k{k}/events/attention", attention_payload(f"k{k}", seq), qos=1)
                     for seq in range(1, events + 1)]
            for info in infos:
                info.wait_for_publish(120)
                assert info.is_published()
        finally:
            c.loop_stop()
            c.disconnect()

    threads = [threading.Thread(target=kiosk, args=(k,)) for k in range(kiosks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def hammer(port: int, paths: list[str], seconds: float, codes: dict, lock) -> None:
    """GET ``paths`` in turn for ``seconds``, counting each answer's status (or the error's name)."""
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as r:
                r.read()
                code: int | str = r.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except OSError as exc:
            code = type(exc).__name__
        with lock:
            codes[code] = codes.get(code, 0) + 1


def kill_sessions(admin, database: str, stop, every_s: float = 0.5) -> None:
    """Terminate every session on ``database`` but the admin's own, every ``every_s``, until ``stop``
    is set: PostgreSQL restarting or failing over, as the hub sees it."""
    while not stop.wait(every_s):
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))


def stored_seqs(db: str, device: str) -> list[int]:
    """The seqs the hub's database holds of ``device``, sorted (a connection of the test's own)."""
    from emocast.hub.store import Store

    s = Store(db, migrate=False)
    try:
        return sorted(r[0] for r in s._query("SELECT seq FROM messages WHERE device = ?", (device,)))
    finally:
        s.close()


QUEUE_KEYS = ("autosave_interval", "max_queued_messages", "max_queued_bytes", "message_size_limit")


def documented_queue_lines() -> str:
    """The broker lines docs/kiosk.md gives for keeping an offline hub's queue (not its auth lines, nor
    persistence: a test's Broker writes its own)."""
    from tests.support import REPO

    block = (REPO / "docs" / "kiosk.md").read_text().split("# mosquitto.conf", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith(QUEUE_KEYS)]
    assert any(line.startswith("max_queued_messages") for line in lines), block
    return "\n".join(lines) + "\n"


def analyze_record(t: float, frame: int, track: int, state: str, emotion: str | None,
                   probs: dict[str, float] | None, reason: str = "") -> dict[str, Any]:
    """One face's record on one frame as `emocast analyze` writes it, a frontal face of fixed box."""
    return {"t": t, "frame": frame, "track": track, "box": [10, 10, 60, 60],
            "head_pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, "eye_openness": 1.0, "ear": 0.3,
            "eyes_closed": state == "eyes_closed", "gaze": None, "attention": state, "reason": reason,
            "emotion": emotion, "probs": probs, "emotion_skipped": None}


def class_recordings(folder: Path, students: int = 8, minutes: int = 20, step_s: float = 2.0,
                     seed: int = 3) -> list[Path]:
    """One `emocast analyze` log per student of a recorded lecture a teacher would recognise: most of
    the room attentive, half of it looking away from 6:00 to 8:00 (a drop, then a recovery), short
    glances away throughout, two students' eyes closed around 14:00, smiles from 10:00, and the room
    emptying from 17:00 (two stay: the last bins are withheld under the default [privacy] min_faces).
    Deterministic (``seed``); written as the analyze schema says, without the schema check per record."""
    import random

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for s in range(1, students + 1):
        media_s = minutes * 60 - 10.0  # the last bin a partial one
        leaves = media_s if s <= 2 else 60 * (17 + rng.random() * 2)
        lines = []
        away_until = -1.0
        for i in range(int(leaves / step_s)):
            t = i * step_s
            if t >= away_until and rng.random() < 0.015:
                away_until = t + rng.uniform(4, 20)
            state = "attentive"
            if (360 <= t < 480 and s % 2 == 0) or t < away_until:
                state = "looking_away"
            if 820 <= t < 880 and s in (3, 5):
                state = "eyes_closed"
            emotion = "happy" if 600 <= t < 700 and s % 3 else "neutral"
            rec = analyze_record(t, i, 1, state, emotion, {emotion: 0.8, "sad": 0.2},
                                 {"looking_away": "head_pose", "eyes_closed": "eyes"}.get(state, ""))
            if i == 0:
                rec["media_s"] = media_s
            lines.append(json.dumps(rec))
        path = folder / f"student{s}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        out.append(path)
    return out


SETTING_SECTION = {"min_faces": "privacy", "emotion": "privacy", "token": "web", "max_bins": "web",
                   "video_dir": "web", "allowed_hosts": "web", "default_bin_s": "web", "max_streams": "web"}


def hub_app(db: str, ingest_stats: Any = None, feed: Any = None, **settings: Any):
    """The hub's web app on ``db``, made as ``emocast hub serve`` makes it: from a config with these
    settings (named as in hub.toml: ``min_faces``, ``emotion``, ``token``, ...). ``min_faces`` is 1
    unless given: most tests' rooms are a face or two."""
    from emocast.hub import config as hubconfig
    from emocast.hub.api import create_app

    data: dict[str, dict[str, Any]] = {"store": {"url": db}, "privacy": {"min_faces": 1}}
    for name, value in settings.items():
        data.setdefault(SETTING_SECTION[name], {})[name] = value
    return create_app(hubconfig.from_mapping(data, "<test>"), ingest_stats, feed)
