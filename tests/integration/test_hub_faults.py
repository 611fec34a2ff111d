"""The hub under a school day's faults, as real processes on a real Mosquitto and real SQLite and
PostgreSQL: readers and bad requests at once never share (or close) each other's connections; the
database's sessions killed under readers and ingest lose nothing; a database that fails for its own
reasons (a table gone, a permission revoked) makes ingest wait and retry, never quarantine; the
watchdog asks the web side too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.hub_support import (
    EMOCAST,
    HubProcess,
    attention_payload,
    hammer,
    hub_app,
    kill_sessions,
    pg_admin,
    pg_database,
    stored_seqs,
)
from tests.support import free_port

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


DEVICE = "k-faults"


class Sender:
    """A kiosk stand-in: QoS 1 events on its own connection, each waited for (PUBACK from the broker)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"s-{uuid.uuid4().hex}")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, seqs: range) -> None:
        for seq in seqs:
            info = self.client.publish(f"emocast/{DEVICE}/events/attention", attention_payload(DEVICE, seq), qos=1)
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def quarantined(db: str) -> int:
    from emocast.hub.store import Store

    s = Store(db, migrate=False)
    try:
        return int(s._query("SELECT COUNT(*) FROM rejects")[0][0])
    finally:
        s.close()


def wait_seqs(db: str, n: int, hub: HubProcess, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    got: list[int] = []
    while time.monotonic() < deadline:
        try:
            got = stored_seqs(db, DEVICE)
        except Exception:  # the table is away: not yet
            got = []
        if len(got) >= n:
            return got
        time.sleep(0.3)
    raise AssertionError(f"stored {len(got)} of {n}\n{hub.log_text()}")


def execute(db: str, sql: str) -> None:
    """One statement on a connection of the test's own (the database's administrator)."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(sql)
    else:
        import sqlite3

        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute(sql)
        finally:
            conn.close()


def problems_while(hub: HubProcess, predicate, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems = (hub.health().get("problems") or [])
        if predicate(problems):
            return problems
        time.sleep(0.2)
    raise AssertionError(f"health said {problems}\n{hub.log_text()}")


def waits_through(hub: HubProcess, db: str, break_it: str, heal: str, says: str) -> None:
    """Events before a fault the database makes (``break_it``), events during it (acknowledged by the
    broker), health naming it (``says``), then ``heal``: every event stored once, none quarantined."""
    sender = Sender(hub_broker_port(hub))
    try:
        sender.send(range(1, 4))
        wait_seqs(db, 3, hub)
        execute(db, break_it)
        sender.send(range(4, 14))  # acknowledged by the broker: the hub must not lose them
        problems = problems_while(hub, lambda p: any(x.startswith("database:") for x in p))
        assert any(says in p for p in problems), problems
        time.sleep(2.0)
        execute(db, heal)
        assert wait_seqs(db, 13, hub) == list(range(1, 14))
        assert quarantined(db) == 0
        problems_while(hub, lambda p: not p)
    finally:
        sender.close()


def hub_broker_port(hub: HubProcess) -> int:
    return int(hub.broker_url.rsplit(":", 1)[1])


def test_a_table_taken_away_makes_ingest_wait_not_discard(mosquitto, db_url, tmp_path):
    """The messages table renamed (a migration gone wrong, an operator's mistake) for a few seconds."""
    hub = HubProcess(tmp_path, mosquitto.url, db_url)
    hub.start()
    try:
        waits_through(hub, db_url, "ALTER TABLE messages RENAME TO messages_away",
                      "ALTER TABLE messages_away RENAME TO messages", "messages")
    finally:
        assert hub.stop() == 0


def test_a_revoked_permission_makes_ingest_wait_not_discard(mosquitto, tmp_path):
    """PostgreSQL: the hub's role loses INSERT on its table (a DBA's mistake) and gets it back."""
    role = f"emocast_hub_{uuid.uuid4().hex[:8]}"
    admin = pg_admin()
    with pg_database() as db:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f'ALTER DATABASE "{db.rsplit("/", 1)[1]}" OWNER TO {role}')
        hub = HubProcess(tmp_path, mosquitto.url, db.replace("postgres@", f"{role}@"))
        hub.start()
        try:
            waits_through(hub, db, f"REVOKE INSERT ON messages FROM {role}", f"GRANT INSERT ON messages TO {role}",
                          "permission")
        finally:
            assert hub.stop() == 0
    admin.execute(f"DROP ROLE IF EXISTS {role}")
    admin.close()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_readers_and_bad_requests_at_once_share_no_connection(mosquitto, db_url, tmp_path):
    """Eight readers while ids and names with NUL and unpaired surrogates arrive: each bad request is
    a 4xx of its own, no reader sees a 5xx, the hub lives, and another process can open the database
    at once (no lock left held)."""
    hub = HubProcess(tmp_path, mosquitto.url, db_url)
    hub.start()
    try:
        lecture = hub.post("/api/lectures", {"title": "physics", "devices": [DEVICE]})
        paths = ["/api/lectures", f"/api/lectures/{lecture['id']}", f"/api/lectures/{lecture['id']}/timeline",
                 "/api/devices", "/api/health"]
        codes: Counter = Counter()
        lock = threading.Lock()
        readers = [threading.Thread(target=hammer, args=(hub.port, paths, 4.0, codes, lock)) for _ in range(8)]
        for t in readers:
            t.start()
        bad = []
        for _ in range(5):
            bad += [request(hub.port, "GET", "/api/lectures/%00"),
                    request(hub.port, "GET", "/api/lectures/%00/timeline"),
                    request(hub.port, "GET", "/api/lectures/a%00b/export.csv"),
                    request(hub.port, "POST", "/api/lectures", json.dumps({"title": "a\u0000b"}).encode()),
                    request(hub.port, "POST", "/api/lectures", b'{"title": "x", "video": "a\\ud800.mp4"}'),
                    request(hub.port, "POST", "/api/lectures", json.dumps({"title": "x", "devices": ["a\0"]}).encode())]
        for t in readers:
            t.join()
        assert set(bad) <= {404, 422}, Counter(bad)
        assert set(codes) == {200}, codes
        assert hub.proc.poll() is None
        done = subprocess.run(EMOCAST + ["hub", "lecture", "list", "--db", db_url], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "EMOCAST_HUB_CONFIG": ""})
        assert done.returncode == 0 and lecture["id"] in done.stdout
        assert "Traceback" not in hub.log_text()
    finally:
        assert hub.stop() == 0


def test_killed_database_sessions_under_readers_and_ingest_lose_nothing(mosquitto, tmp_path):
    """PostgreSQL restarting or failing over, as the hub sees it: its sessions terminated every 0.5 s for
    6 s while six readers read and a kiosk sends. Readers get answers (200, or 503 while the database
    is away), the hub lives, and every event sent is stored once."""
    admin = pg_admin()
    with pg_database() as db:
        name = db.rsplit("/", 1)[1]
        hub = HubProcess(tmp_path, mosquitto.url, db)
        hub.start()
        sender = Sender(mosquitto.port)
        stop = threading.Event()

        try:
            lecture = hub.post("/api/lectures", {"title": "chemistry", "devices": [DEVICE]})
            paths = ["/api/lectures", f"/api/lectures/{lecture['id']}/timeline", "/api/devices"]
            codes: Counter = Counter()
            lock = threading.Lock()
            killer = threading.Thread(target=kill_sessions, args=(admin, name, stop))
            readers = [threading.Thread(target=hammer, args=(hub.port, paths, 6.0, codes, lock)) for _ in range(6)]
            killer.start()
            for t in readers:
                t.start()
            sender.send(range(1, 41))
            for t in readers:
                t.join()
            stop.set()
            killer.join()
            assert set(codes) <= {200, 503} and codes[200] > 0, codes
            assert hub.proc.poll() is None, hub.log_text()
            assert wait_seqs(db, 40, hub) == list(range(1, 41))
            deadline = time.monotonic() + 20
            while request(hub.port, "GET", "/api/lectures") != 200:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        finally:
            stop.set()
            sender.close()
            assert hub.stop() == 0
    admin.close()


def test_the_watchdog_asks_the_web_side(tmp_path):
    """``web_answers``: an HTTP answer of any status is an answer; a port that accepts and says nothing
    (a wedged server) is not, within the timeout."""
    from emocast.hub.commands import web_answers

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        t0 = time.monotonic()
        assert web_answers("127.0.0.1", silent.getsockname()[1], "", timeout_s=0.5) is False
        assert time.monotonic() - t0 < 3
    finally:
        silent.close()
    assert web_answers("127.0.0.1", free_port(), "", timeout_s=0.5) is False  # nothing listens


def test_bytes_in_the_authorization_header_are_a_wrong_token(tmp_path):
    from fastapi.testclient import TestClient


    client = TestClient(hub_app(str(tmp_path / "hub.sqlite"), token="a-long-enough-token-0123"),
                        base_url="http://127.0.0.1")
    for value in (b"Bearer \xc3\xa9\xff", b"Basic \xff\xfe", "Basic " + "w6k6w6k=", b"\xff"):
        assert client.get("/api/lectures", headers={"Authorization": value}).status_code == 401
    assert client.get("/api/lectures", headers={"Authorization": "Bearer a-long-enough-token-0123"}).status_code == 200


def test_live_streams_are_told_by_ingest_and_capped(tmp_path):
    """A live page's stream says ``changed`` when this process's ingest commits an event of its devices
    (no query needed), ``ended`` when the lecture is stopped; one stream past ``max_streams`` is 503."""
    from fastapi.testclient import TestClient

    from emocast.hub.feed import ChangeFeed

    feed = ChangeFeed(max_streams=1)
    client = TestClient(hub_app(str(tmp_path / "hub.sqlite"), feed=feed), base_url="http://127.0.0.1")
    lecture = client.post("/api/lectures", json={"title": "live", "devices": ["d1"]}).json()
    url = f"/api/lectures/{lecture['id']}/stream"
    with client.stream("GET", url) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        assert client.get(url).status_code == 503 and feed.streams == 1  # the one place is taken
        feed.stored(["d2"])  # another room's device: nothing to say
        feed.stored(["d1"])
        assert next(line for line in lines if line.startswith("event:")) == "event: changed"
        client.post(f"/api/lectures/{lecture['id']}/stop", json={})
        assert next(line for line in lines if line.startswith("event:")) == "event: ended"
    deadline = time.monotonic() + 5
    while feed.streams and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.streams == 0  # the place is given back when a stream ends


def test_a_burst_of_timeline_requests_costs_one_computation_at_a_time(tmp_path, monkeypatch):
    """Eight pages asking for one lecture at once: computations never overlap, a waiting request shares
    the one that began after it arrived, and a lecture named twice in a comparison is refused."""
    from fastapi.testclient import TestClient

    from emocast.hub import routes

    running, overlaps, calls = [0], [0], [0]
    real = routes.lecture_timeline

    def slow(*args, **kwargs):
        running[0] += 1
        calls[0] += 1
        overlaps[0] = max(overlaps[0], running[0])
        time.sleep(0.3)
        try:
            return real(*args, **kwargs)
        finally:
            running[0] -= 1

    monkeypatch.setattr(routes, "lecture_timeline", slow)
    client = TestClient(hub_app(str(tmp_path / "hub.sqlite")), base_url="http://127.0.0.1")
    lecture = client.post("/api/lectures", json={"title": "busy", "devices": ["d1"]}).json()
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(
        client.get(f"/api/lectures/{lecture['id']}/timeline").status_code)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 8 and overlaps[0] == 1 and calls[0] <= 3
    same = f"{lecture['id']},{lecture['id']}"
    assert client.get(f"/api/compare?ids={same}").status_code == 422


def test_a_missing_postgresql_database_is_created_or_refused_at_once(tmp_path):
    """``--db postgresql://.../name`` where the database does not exist: made when the role may, else
    exit 9 at once naming the command (not five minutes of waiting for a server that answers)."""
    from emocast.cli import main
    from emocast.core.errors import ExitCode

    admin = pg_admin()
    name = f"emocast_new_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        assert main(["hub", "lecture", "list", "--db", url]) == ExitCode.OK  # made, migrated, empty
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    role = f"emocast_nocreate_{uuid.uuid4().hex[:6]}"
    admin.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB")
    try:
        t0 = time.monotonic()
        code = main(["hub", "lecture", "list", "--db", f"postgresql://{role}@127.0.0.1:5432/{name}"])
        assert code == ExitCode.STORE and time.monotonic() - t0 < 20
    finally:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_small_things_a_teacher_meets(tmp_path, capsys):
    """HEAD on a lecture's video, a favicon, a live lecture without kiosks refused (API and CLI), and a
    video given to ``hub import`` told what to do with it."""
    from fastapi.testclient import TestClient

    from emocast.cli import main
    from emocast.core.errors import ExitCode

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "lesson.mp4").write_bytes(b"\x00" * 2048)
    db = str(tmp_path / "hub.sqlite")
    client = TestClient(hub_app(db, video_dir=str(videos)), base_url="http://127.0.0.1")
    lecture = client.post("/api/lectures", json={"title": "t", "devices": ["k1"], "video": "lesson.mp4"}).json()
    head = client.head(f"/api/lectures/{lecture['id']}/video")
    assert head.status_code == 200 and head.headers["content-length"] == "2048" and not head.content
    assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg+xml")
    assert client.get("/static/favicon.svg").status_code == 200
    assert client.post("/api/lectures", json={"title": "empty room"}).status_code == 422
    assert main(["hub", "lecture", "start", "--title", "empty", "--db", db]) == ExitCode.USAGE
    assert main(["hub", "import", str(videos / "lesson.mp4"), "--title", "x", "--db", db]) == ExitCode.IMPORT
