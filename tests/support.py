"""What tests share that is not a fixture: where the data is, a real Mosquitto on a free loopback
port, a recording subscriber, skip markers for data that lives beside the repository, and a detector
that returns scripted boxes. Tests import these from here; conftest.py holds only fixtures."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]


SHARED = REPO.parent / "shared"
EMOCAST = [sys.executable, "-m", "emocast"]  # the CLI as a process


FER_DIR = SHARED / "data" / "fer2013"


MEDIA = SHARED / "media"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Broker:
    """A mosquitto process the test owns: it can be stopped and started again on the same port."""

    workdir: Path
    port: int
    extra_conf: str = ""
    anonymous: bool = True
    persistent: bool = False  # keep sessions and queued messages across a clean stop/start
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous {str(self.anonymous).lower()}\n"
            + (f"persistence true\npersistence_location {self.workdir}/\n" if self.persistent
               else "persistence false\n")
            + self.extra_conf
            # started as root, mosquitto drops to its own user, which cannot read pytest's private tmp dirs
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        log = (self.workdir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.port)

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@dataclass
class Recorder:
    """A paho subscriber that keeps every message it gets, in arrival order."""

    port: int
    topic: str | list[str]
    # persistent: a fixed client id and clean_session false, so the broker queues what arrives while
    # the recorder is away (a broker restart included): it can then prove that nothing was lost
    persistent: bool = False
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> None:
        topics = [self.topic] if isinstance(self.topic, str) else self.topic
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id="rec-durable" if self.persistent else f"rec-{time.time_ns()}",
                                  clean_session=not self.persistent)
        self.client.reconnect_delay_set(0.2, 1)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert subscribed.wait(10), "subscriber could not subscribe"

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def payloads(self, suffix: str) -> list[dict]:
        return [json.loads(p) for t, p, _ in self.messages if t.endswith(suffix)]

    def texts(self, suffix: str) -> list[str]:
        return [p.decode() for t, p, _ in self.messages if t.endswith(suffix)]

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def needs_fer() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not (FER_DIR / "train.npz").is_file(),
                              reason=f"FER2013 not found at {FER_DIR} (../shared/data is only beside the repo in CI)")


def needs_media(*parts: str) -> pytest.MarkDecorator:
    path = MEDIA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(),
                              reason=f"{path} not found (../shared/media is only beside the repo in CI)")


class ScriptedDetector:
    """Returns the boxes a script gives for each detection call, for tests of what comes after
    detection (tracking, absence timing, emotion gating), not of a detector."""

    name = "scripted"
    full_frame = True  # boxes are in the frame's own pixels

    def __init__(self, script):
        self.script = iter(script)

    def detect(self, gray, min_size):
        return next(self.script)


def bodies(events, kind: str) -> list[dict]:
    """The payload bodies of the analysis' events of one kind (``attention``, ``emotion``, ``summary``)."""
    return [e.body() for e in events if e.kind == kind]


@functools.cache
def schema_validator(kind: str):
    """One validator per shipped schema, built once (building one costs ~40x a validation)."""
    import jsonschema

    from emocast.contract.events import load_schema

    schema = load_schema(kind)
    return jsonschema.validators.validator_for(schema)(schema)
