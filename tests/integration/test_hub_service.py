"""``emocast hub serve`` as systemd runs it: it says READY=1 and keeps the watchdog fed on a real
notify socket, takes its options after ``serve``, waits for a database that is not there yet at boot,
and gives up with exit 9 only after ``[store] connect_wait_s``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from emocast.core.errors import ExitCode
from tests.hub_support import EMOCAST, pg_admin, pg_database
from tests.support import free_port, wait_port

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


def notifications(sock: socket.socket, until: set[str], timeout: float = 30.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    sock.settimeout(0.5)
    while not until <= set(got) and time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return got


def test_serve_tells_systemd_it_is_ready_and_feeds_the_watchdog(mosquitto, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "EMOCAST_HUB_CONFIG": ""}
    proc = subprocess.Popen(EMOCAST + ["hub", "serve", "--listen", f"127.0.0.1:{port}", "--broker", mosquitto.url,
                                       "--db", str(tmp_path / "hub.sqlite")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        got = notifications(sock, {"READY=1", "WATCHDOG=1"})
        assert "READY=1" in got and got.count("WATCHDOG=1") >= 1, got
        wait_port(port, 5)  # READY=1 came once the web server listened
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert "STOPPING=1" in notifications(sock, {"STOPPING=1"}, 5)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


def test_a_database_that_is_not_there_yet_is_created(mosquitto, tmp_path):
    """A fresh install pointed at a PostgreSQL database nobody made yet: the hub makes it (its role may)
    and serves, instead of waiting for something no wait brings."""
    with pg_database(create=False) as url:
        port = free_port()
        log = (tmp_path / "hub.log").open("w")
        proc = subprocess.Popen(EMOCAST + ["hub", "serve", "--listen", f"127.0.0.1:{port}", "--broker",
                                           mosquitto.url, "--db", url], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "EMOCAST_HUB_CONFIG": ""})
        try:
            wait_port(port, 60)
            assert "did not exist: created" in (tmp_path / "hub.log").read_text()
            admin = pg_admin()
            assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.rsplit("/", 1)[1],)).fetchone()
            admin.close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_a_database_that_never_answers_is_exit_9_after_the_wait(mosquitto, tmp_path):
    pytest.importorskip("psycopg")
    conf = tmp_path / "hub.toml"
    conf.write_text("[store]\nconnect_wait_s = 3.0\n")
    t0 = time.monotonic()
    done = subprocess.run(EMOCAST + ["hub", "serve", "--config", str(conf), "--broker", mosquitto.url,
                                     "--db", f"postgresql://nobody@127.0.0.1:{free_port()}/none"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.STORE, done.stderr
    assert time.monotonic() - t0 >= 1.0 and "retrying in" in done.stderr
