"""The hub without a broker: timelines against a hand-computed case, imports of analyze logs, the
store's migrations and de-duplication, the REST API (FastAPI's TestClient) and the hub's config."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")

from fastapi.testclient import TestClient  # noqa: E402

from emocast.cli import main  # noqa: E402
from emocast.contract.events import load_schema  # noqa: E402
from emocast.core.errors import ExitCode  # noqa: E402
from emocast.device.config import ConfigError  # noqa: E402
from emocast.hub import config as hubconfig  # noqa: E402
from emocast.hub.importer import ImportFileError, events_from_records  # noqa: E402
from emocast.hub.migrations import LATEST  # noqa: E402
from emocast.hub.moments import moments  # noqa: E402
from emocast.hub.store import Batch, Store  # noqa: E402
from emocast.hub.stories import build_stories  # noqa: E402
from emocast.hub.timeline import lecture_timeline  # noqa: E402
from tests.helpers.hub_timeline import (  # noqa: E402
    T0,
    Segment,
    analyze_records,
    attention,
    bins,
    emotion,
    event,
    hand_case,
    rows,
    segment_list,
    segments_of,
)
from tests.hub_support import hub_app  # noqa: E402


def test_timeline_shares_match_the_hand_computed_case():
    stories = build_stories(rows(hand_case()), horizon={"k1": T0 + 120})
    b = bins(stories, T0, T0 + 120, 60.0)
    assert [x["t"] for x in b] == [0.0, 60.0]
    first, second = b
    # bin 1: track 1 attentive 30 + away 30; track 2 attentive 45 + closed 15 -> 120 s of faces
    assert first["face_time_s"] == pytest.approx(120.0) and first["faces"] == pytest.approx(2.0)
    assert first["attentive_share"] == pytest.approx(75 / 120, abs=1e-4)
    assert first["looking_away_share"] == pytest.approx(30 / 120, abs=1e-4)
    assert first["eyes_closed_share"] == pytest.approx(15 / 120, abs=1e-4)
    # attentive time with an emotion: track 1 happy 30 s, track 2 neutral 45 s
    assert first["emotion_shares"] == pytest.approx({"happy": 30 / 75, "neutral": 45 / 75}, abs=1e-4)
    assert first["devices"] == 1
    # the summary's 21 blinks over 105 face-seconds, all inside bin 1
    assert first["blinks_per_min"] == pytest.approx(21 / (105 / 60), abs=0.01)
    # bin 2: track 1 alone, attentive throughout; happy 60-90, neutral 90-120
    assert second["face_time_s"] == pytest.approx(60.0) and second["faces"] == pytest.approx(1.0)
    assert second["attentive_share"] == 1.0 and second["looking_away_share"] == 0.0
    assert second["emotion_shares"] == pytest.approx({"happy": 0.5, "neutral": 0.5})
    assert second["blinks_per_min"] is None
    # half of the peak attendance (2 faces) left
    assert first["absent_share"] == 0.0 and second["absent_share"] == pytest.approx(0.5)


def test_bins_size_themselves_to_the_lecture(tmp_path):
    from emocast.hub.timeline import auto_bin_s

    assert [auto_bin_s(s) for s in (15, 600, 3000, 3600, 86400)] == [5.0, 15.0, 120.0, 120.0, 3600.0]
    store = Store(str(tmp_path / "hub.sqlite"))
    short = store.create_lecture("A 15 s recording", ["k1"], T0, 0.0, T0 + 15)
    client = TestClient(hub_app(str(tmp_path / "hub.sqlite")), base_url="http://127.0.0.1")
    data = client.get(f"/api/lectures/{short['id']}/timeline").json()
    assert data["bin_s"] == 5.0 and len(data["bins"]) == 3  # not one 60 s bin
    assert client.get(f"/api/lectures/{short['id']}/timeline", params={"bin_s": 60}).json()["bin_s"] == 60.0


def test_a_kiosk_restarted_mid_lecture_keeps_its_faces():
    """Track numbers start again at 1 when a kiosk restarts: the faces after it are new faces, not the
    end of the story. Stopped cleanly (absent published) or killed (nothing published: its open faces
    end when it was last heard from before the restart)."""
    d = "k1"
    clean = [attention(d, 1, T0, 1, "attentive"),
             attention(d, 2, T0 + 50, 1, "absent", "attentive", 40.0),   # stopped: gone at 40
             attention(d, 3, T0 + 70, 1, "attentive"),                    # the restarted kiosk's first face
             attention(d, 4, T0 + 100, 1, "looking_away", "attentive", 30.0)]
    b = bins(build_stories(rows(clean), {d: T0 + 120}), T0, T0 + 120, 60.0)
    assert b[0]["face_time_s"] == pytest.approx(40 + 0) and b[1]["face_time_s"] == pytest.approx(50.0)
    assert b[1]["attentive_share"] == pytest.approx(30 / 50) and b[1]["looking_away_share"] == pytest.approx(20 / 50)
    killed = [attention(d, 1, T0, 1, "attentive"), attention(d, 2, T0 + 5, 2, "attentive"),
              emotion(d, 3, T0 + 5, 2, "happy"),
              event("summary", d, 4, T0 + 30, window_s=30.0, blinks=0, face_time_s=55.0),  # last heard at 30
              attention(d, 5, T0 + 80, 1, "attentive"),                    # restarted: track 1 again
              emotion(d, 6, T0 + 80, 1, "neutral")]
    stories = build_stories(rows(killed), {d: T0 + 120})
    faces = sorted((s.track, s.start - T0, s.end - T0) for s in segment_list(stories.attention))
    assert faces == [(1, 0.0, 30.0), (1, 80.0, 120.0), (2, 5.0, 30.0)]
    assert sorted((s.value, s.start - T0, s.end - T0) for s in segment_list(stories.emotion)) == [("happy", 5.0, 30.0),
                                                                                    ("neutral", 80.0, 120.0)]


def test_a_silent_online_kiosk_does_not_hold_its_faces_to_the_end(tmp_path):
    """A retained ``online`` (stale, or forged by another client) holds a kiosk's open faces only
    ``ONLINE_SILENCE_S`` past when it was last heard from, not until the lecture ends."""
    from emocast.hub.stories import ONLINE_SILENCE_S, heard_until

    store = Store(str(tmp_path / "hub.sqlite"))
    batch = Batch.empty()
    batch.messages = [attention("k1", 1, T0, 1, "attentive"), attention("k2", 1, T0, 1, "attentive")]
    batch.statuses = {"k1": ("online", T0), "k2": ("online", T0)}
    batch.last_seen = {"k1": T0 + 3500, "k2": T0 + 10}
    store.write_batch(batch)
    horizon = heard_until(store.presence(["k1", "k2"]), T0 + 3600)
    assert horizon == {"k1": T0 + 3600, "k2": T0 + 10 + ONLINE_SILENCE_S}
    store.close()


def test_moments_find_the_drop_and_the_recovery():
    timeline = [{"t": float(i * 60), "start": T0 + i * 60, "face_time_s": 600.0, "faces": 10.0,
                 "attentive_share": s, "emotion_shares": e, "emotion_face_time_s": 400.0}
                for i, (s, e) in enumerate([
                    (0.9, {"neutral": 1.0}), (0.4, {"neutral": 1.0}), (0.5, {"happy": 0.8, "neutral": 0.2}),
                    (0.95, {"happy": 0.8, "neutral": 0.2})])]
    m = moments(timeline)
    assert m["attention_drops"][0]["t"] == 60.0 and m["attention_drops"][0]["change"] == pytest.approx(-0.5)
    assert m["attention_drops"][0]["faces"] == 10.0 and m["attention_drops"][0]["face_time_moved_s"] == 300.0
    assert m["attention_recoveries"][0]["t"] == 180.0 and m["attention_recoveries"][0]["change"] == pytest.approx(0.45)
    assert m["emotion_swings"][0]["t"] == 120.0 and m["emotion_swings"][0]["toward"] == "happy"
    # 0.4 -> 0.5 is ten points: under the threshold, so not among the recoveries
    assert [r["t"] for r in m["attention_recoveries"]] == [180.0]
    assert m["attention_drops"][0]["points"] == -50.0 and m["attention_recoveries"][0]["points"] == 45.0
    assert m["rules"] == {"min_change_points": 15.0, "min_face_time_s": 15.0} and m["none_because"] == {}


def test_a_rise_with_no_drop_before_it_is_no_recovery_and_the_page_is_told_why():
    timeline = [{"t": float(i * 60), "start": T0 + i * 60, "face_time_s": 600.0, "faces": 10.0,
                 "attentive_share": s, "emotion_shares": {}, "emotion_face_time_s": 0.0}
                for i, s in enumerate([0.5, 0.85, 0.9])]  # the room settling in
    m = moments(timeline)
    assert m["attention_recoveries"] == [] and m["attention_drops"] == []
    assert m["none_because"]["attention_recoveries"] == \
        "attention rose by 35 points at 1:00, but had not dropped before it: a recovery follows a drop"
    assert m["none_because"]["attention_drops"] == "it never fell between neighbouring bins"
    assert m["none_because"]["emotion_swings"] == "no two neighbouring bins both had expressions read"
    # a drop, then the same rise: now a recovery
    timeline[0]["attentive_share"], timeline[1]["attentive_share"] = 0.9, 0.5
    timeline[2]["attentive_share"] = 0.85
    m = moments(timeline)
    assert [r["t"] for r in m["attention_recoveries"]] == [120.0]


def test_a_small_move_or_one_face_for_a_moment_is_not_a_moment():
    def timeline(face_time_s, shares):
        return [{"t": float(i * 60), "start": T0 + i * 60, "face_time_s": face_time_s, "faces": face_time_s / 60,
                 "attentive_share": s, "emotion_shares": e, "emotion_face_time_s": face_time_s * s}
                for i, (s, e) in enumerate(shares)]

    # a whole room moving 5 points, and its emotion mix moving 5 points: nothing to show
    small = moments(timeline(1200.0, [(0.8, {"neutral": 1.0}), (0.75, {"neutral": 0.95, "happy": 0.05})]))
    assert (small["attention_drops"], small["attention_recoveries"], small["emotion_swings"]) == ([], [], [])
    assert small["none_because"]["attention_drops"] == "the largest move was 5 points at 1:00; a moment needs 15"
    assert small["none_because"]["emotion_swings"] == "the largest move was 5 points at 1:00; a moment needs 15"
    # one face for ten seconds of a bin: a 50-point move is 5 face-seconds, not a moment
    brief = moments(timeline(10.0, [(1.0, {"neutral": 1.0}), (0.5, {"happy": 1.0})]))
    assert brief["attention_drops"] == [] and brief["emotion_swings"] == []
    assert brief["none_because"]["attention_drops"] == \
        "50 points at 1:00 were carried by 5 s of faces' time; a moment needs 15 s"
    # the same move carried by a room of twenty faces is one
    room = moments(timeline(1200.0, [(1.0, {"neutral": 1.0}), (0.5, {"happy": 1.0})]))
    assert room["attention_drops"][0]["change"] == pytest.approx(-0.5)
    assert room["emotion_swings"][0]["toward"] == "happy"


def test_store_migrates_once_deduplicates_and_counts_missing_seq(tmp_path):
    url = str(tmp_path / "hub.sqlite")
    store = Store(url)
    assert store.schema_version() == LATEST == 8
    msgs = hand_case()
    batch = Batch.empty()
    batch.messages = msgs[:4] + msgs[6:]  # seq 5 and 6 never arrived
    assert store.write_batch(batch) == 8
    assert store.write_batch(batch) == 0  # a redelivery stores nothing twice
    store.close()
    store = Store(url)  # reopening does not migrate again
    (dev,) = store.devices()
    assert dev["device"] == "k1" and dev["events"] == 8 and dev["missing_seq"] == 2
    assert store.count_messages() == 8


def test_lecture_timeline_and_api(tmp_path):
    url = str(tmp_path / "hub.sqlite")
    store = Store(url)
    batch = Batch.empty()
    batch.messages = hand_case()
    batch.last_seen = {"k1": T0 + 120}
    store.write_batch(batch)
    client = TestClient(hub_app(url), base_url="http://127.0.0.1")
    assert client.get("/api/health").json()["ok"] is True
    live = client.post("/api/lectures", json={"title": "Now", "devices": ["k1"]})
    assert live.status_code == 201 and live.json()["live"]
    stopped = client.post(f"/api/lectures/{live.json()['id']}/stop", json={}).json()
    assert stopped["end"] is not None and not stopped["live"]
    created = client.post("/api/lectures", json={"title": "Biology", "devices": ["k1"], "start": T0,
                                                 "end": T0 + 120, "video_offset_s": 300})
    assert created.status_code == 201
    lid = created.json()["id"]
    assert {x["id"] for x in client.get("/api/lectures").json()} == {lid, live.json()["id"]}
    data = client.get(f"/api/lectures/{lid}/timeline", params={"bin_s": 60}).json()
    assert [b["t"] for b in data["bins"]] == [300.0, 360.0]  # minute 5 of the lecture video onwards
    assert data["bins"][0]["attentive_share"] == pytest.approx(0.625)
    direct = lecture_timeline(store, store.lecture(lid), 60.0, T0 + 500)
    assert direct["bins"] == data["bins"]
    res = client.get(f"/api/lectures/{lid}/export.csv", params={"bin_s": 60})
    assert res.headers["content-type"].startswith("text/csv") and "attachment" in res.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(res.text)))
    assert len(table) == 2 and float(table[0]["attentive_share"]) == pytest.approx(0.625)
    assert float(table[1]["emotion_happy"]) == pytest.approx(0.5)
    assert client.get("/api/lectures/nope/timeline").status_code == 404
    assert client.post("/api/lectures", json={"title": ""}).status_code == 422
    assert client.get("/docs").status_code == 404  # it would load Swagger UI from a CDN
    spec = client.get("/openapi.json").json()
    assert {"/api/health", "/api/devices", "/api/lectures", "/api/lectures/{lecture_id}/timeline",
            "/api/lectures/{lecture_id}/export.csv", "/api/lectures/{lecture_id}/stop"} <= set(spec["paths"])
    page = client.get(f"/lectures/{lid}")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for name in ("app.js", "chart.js", "dom.js", "style.css"):
        body = client.get(f"/static/{name}").text.replace("http://www.w3.org/2000/svg", "")  # a name, not a fetch
        assert "http://" not in body and "https://" not in body  # nothing from a CDN: a school may have no internet


def test_a_token_guards_every_route(tmp_path):
    client = TestClient(hub_app(str(tmp_path / "hub.sqlite"), token="s3cret-s3cret-s3cret"), base_url="http://127.0.0.1")
    assert client.get("/api/health").status_code == 401
    assert client.get("/").status_code == 401
    assert client.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/health", headers={"Authorization": "Bearer s3cret-s3cret-s3cret"}).status_code == 200
    assert client.get("/api/devices", auth=("teacher", "s3cret-s3cret-s3cret")).status_code == 200


def test_import_turns_records_into_the_events_a_device_would_publish(tmp_path):
    f = analyze_records(tmp_path / "student1.jsonl", {
        1: [(t / 10, "attentive" if t < 300 else "eyes_closed", "happy" if t < 150 else "neutral")
            for t in range(0, 600)],  # 60 s at 10 Hz
    })
    result = events_from_records(f, "student1", T0)
    kinds = [(e.kind, e.value) for e in result.events]
    assert kinds == [("attention", "attentive"), ("emotion", "happy"), ("emotion", "neutral"),
                     ("attention", "eyes_closed"), ("attention", "absent")]
    for e in result.events:
        payload = json.loads(e.payload)
        import jsonschema

        jsonschema.validate(payload, load_schema(e.kind))
        assert "box" not in payload  # nothing of the record's geometry reaches the hub
    assert result.events[-1].ts == pytest.approx(T0 + 60.0)
    # importing the same file again is the same ids: stored once
    again = events_from_records(f, "student1", T0)
    assert [e.id for e in again.events] == [e.id for e in result.events]


def test_import_cli_builds_a_lecture_and_refuses_other_files(tmp_path, capsys, caplog):
    db = str(tmp_path / "hub.sqlite")
    a = analyze_records(tmp_path / "alice.jsonl", {1: [(t / 10, "attentive", "happy") for t in range(1200)]})
    b = analyze_records(tmp_path / "bob.jsonl", {
        1: [(t / 10, "attentive" if t < 600 else "looking_away", "neutral") for t in range(1200)]})
    assert main(["hub", "import", str(a), str(b), "--title", "Recorded lecture", "--start", str(T0),
                 "--db", db]) == ExitCode.OK
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["device"] for x in lines] == ["alice", "bob"] and all(x["new"] == x["events"] for x in lines)
    store = Store(db)
    (lecture,) = store.lectures()
    assert lecture["devices"] == ["alice", "bob"] and not lecture["live"]
    data = lecture_timeline(store, lecture, 60.0, T0 + 10_000)
    first, second = data["bins"][:2]
    assert first["faces"] == pytest.approx(2.0, abs=0.01) and first["attentive_share"] == pytest.approx(1.0)
    assert second["attentive_share"] == pytest.approx(0.5, abs=0.01)  # bob looked away from minute 1
    assert first["emotion_shares"] == pytest.approx({"happy": 0.5, "neutral": 0.5}, abs=0.01)
    # the same file again: nothing new
    assert main(["hub", "import", str(a), "--lecture", lecture["id"], "--db", db]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["new"] == 0
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"t": 1.0, "track": 1}\n')
    assert main(["hub", "import", str(bad), "--lecture", lecture["id"], "--db", db]) == ExitCode.IMPORT
    with pytest.raises(ImportFileError, match=r"notes.jsonl:1: .*frame"):
        events_from_records(bad, "x", T0)
    # a failed import, or one under a new title of files already stored, leaves no lecture behind
    assert main(["hub", "import", str(a), str(bad), "--title", "Broken", "--db", db]) == ExitCode.IMPORT
    caplog.clear()
    assert main(["hub", "import", str(a), "--title", "Again", "--db", db]) == ExitCode.USAGE
    said = caplog.text
    assert f"already stored, in lecture {lecture['id']} ('Recorded lecture')" in said and "nothing imported" in said
    assert [x["id"] for x in store.lectures()] == [lecture["id"]]


HOSTILE_RECORDS = [  # (what replaces part of a good record's line, what the refusal names)
    ('"t": 1e20', "t: 1e+20"), ('"t": NaN', "NaN is not JSON"), ('"t": Infinity', "Infinity is not JSON"),
    ('"t": 3000000000.0', "t: 3000000000.0"), ('"track": 1180591620717411303424', "outside 64 bits"),
    ('"track": 1099511627776', "track: 1099511627776 is outside"),
    ('"attention": "attentive\\u0000"', "U+0000"), ('"attention": "\\ud800"', "U+D800"),
    ('"attention": "att\\u202eevitne"', "U+202E"), ('"attention": "' + "a" * 300 + '"', "more than 256"),
    ('"attention": "' + "a" * 100_000 + '"', "bytes, more than"),
]


@pytest.mark.parametrize(("change", "says"), HOSTILE_RECORDS, ids=[c[:24] for c, _ in HOSTILE_RECORDS])
def test_import_refuses_what_ingest_refuses_and_leaves_nothing(tmp_path, capsys, caplog, change, says):
    """A record ingest would refuse from a kiosk is refused from a file too (exit 10, naming file, line
    and key), with a good file before it: no lecture, and none of the good file's events, is left."""
    db = str(tmp_path / "hub.sqlite")
    good = analyze_records(tmp_path / "good.jsonl", {1: [(t / 10, "attentive", None) for t in range(50)]})
    bad = analyze_records(tmp_path / "bad.jsonl", {1: [(t / 10, "attentive", None) for t in range(5)]})
    lines = bad.read_text().splitlines()
    key = change.split(":", 1)[0]
    lines[2] = re.sub(key + r': (?:"[^"]*"|[^,}]+)', lambda _: change, lines[2], count=1)
    bad.write_text("\n".join(lines) + "\n")
    caplog.clear()
    assert main(["hub", "import", str(good), str(bad), "--title", "Hostile", "--db", db]) == ExitCode.IMPORT
    assert "bad.jsonl:3" in caplog.text and says in caplog.text, caplog.text[-600:]
    store = Store(db)
    assert store.lectures() == [] and store.count_messages() == 0


def test_an_import_the_database_fails_midway_leaves_nothing(tmp_path):
    """Every file of an import in one transaction: a row the database refuses in the second file takes
    the lecture and the first file's events with it."""
    db = str(tmp_path / "hub.sqlite")
    good = analyze_records(tmp_path / "good.jsonl", {1: [(t / 10, "attentive", None) for t in range(50)]})
    other = analyze_records(tmp_path / "other.jsonl", {1: [(t / 10, "looking_away", None) for t in range(50)]})
    store = Store(db)
    store._execute("CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.device = 'other' "
                   "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    assert main(["hub", "import", str(good), str(other), "--title", "Half", "--db", db]) != ExitCode.OK
    assert store.lectures() == [] and store.count_messages() == 0


def test_hub_config_is_checked_like_the_devices(tmp_path):
    cfg = hubconfig.load(None)
    assert cfg.web.listen == "127.0.0.1:8080" and cfg.mqtt.client_id == "emocast-hub"
    with pytest.raises(ConfigError, match=r"\[web\] listen 0.0.0.0:8080 is not a loopback address"):
        hubconfig.load(None, {"web": {"listen": "0.0.0.0:8080"}})
    token = tmp_path / "token"
    token.write_text("abcdefghijklmnop\n")
    token.chmod(0o600)
    cfg = hubconfig.load(None, {"web": {"listen": "10.0.0.5:8080", "token_file": str(token)}})
    assert cfg.token() == "abcdefghijklmnop"
    p = tmp_path / "hub.toml"
    p.write_text("[store]\nretention_days = -1\n")
    with pytest.raises(ConfigError, match=r"hub.toml: \[store\] retention_days: -1(.0)? is below"):
        hubconfig.load(p)
    p.write_text("[mqtt]\nshare_group = \"a/b\"\n")
    with pytest.raises(ConfigError, match="share_group"):
        hubconfig.load(p)
    assert main(["hub", "--config", str(p), "--db", str(tmp_path / "h.sqlite")]) == ExitCode.CONFIG
    assert main(["hub", "lecture", "list", "--db", str(tmp_path / "missing" / "h.sqlite")]) == ExitCode.STORE


def test_the_example_hub_config_lists_every_key_with_its_real_default():
    import dataclasses
    import sys

    from tests.support import REPO

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    example = tomllib.loads((REPO / "systemd" / "hub.toml").read_text())
    defaults = hubconfig.HubConfig()
    for section in hubconfig.SECTIONS:
        expected = dataclasses.asdict(getattr(defaults, section))
        assert example.get(section) == expected, section
    hubconfig.load(REPO / "systemd" / "hub.toml")


def test_retention_removes_only_old_messages(tmp_path):
    """By the time the hub received them, not by the kiosk's stamp: a kiosk whose clock is years off
    cannot have its events purged at once or kept for ever."""
    store = Store(str(tmp_path / "hub.sqlite"))
    for i, m in enumerate(hand_case()):
        batch = Batch.empty()
        batch.messages = [dataclasses.replace(m, ts=m.ts - 10 * 365 * 86400 if i % 2 else m.ts + 3 * 365 * 86400)]
        store.write_batch(batch, received=m.ts)  # stamped by a wrong clock, received when it happened
    assert store.purge(T0 + 45) == 5  # the five messages received before 45 s
    assert store.count_messages() == 5 and store.purge(T0 + 45) == 0


def test_a_real_analyze_log_imports_into_a_timeline(tmp_path, demo_clip, capsys):
    log = tmp_path / "student.jsonl"
    assert main(["analyze", str(demo_clip), "--out", str(log), "--quiet"]) == ExitCode.OK
    db = str(tmp_path / "hub.sqlite")
    assert main(["hub", "import", str(log), "--title", "Demo recording", "--start", str(T0), "--db", db]) == 0
    imported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert imported["events"] > 0 and imported["tracks"] >= 1
    store = Store(db)
    (lecture,) = store.lectures()
    data = lecture_timeline(store, lecture, 5.0, T0 + 1000)
    # the demo clip: a face for 3 s, nobody for 3.5 s, a face for 4 s, nobody, a face
    faces = [b["faces"] for b in data["bins"]]
    assert max(faces) > 0.5 and min(faces) < 0.5
    assert all(b["attentive_share"] is None or 0 <= b["attentive_share"] <= 1 for b in data["bins"])
    assert any(b["emotion_shares"] for b in data["bins"])


def test_a_kiosks_fresh_outbox_start_is_unknown_not_missing(tmp_path):
    """A kiosk whose corrupt outbox was moved aside goes on at seq 1001 (info's seq_restarts): the seqs
    between its last delivered event and 1001 are unknown, not missing; a real gap still counts."""
    store = Store(str(tmp_path / "hub.sqlite"))
    batch = Batch.empty()
    batch.messages = [attention("k1", seq, T0 + seq, 1, "attentive") for seq in (1, 2, 3, 5, 1001, 1002)]
    batch.infos = {"k1": (json.dumps({"seq_restarts": [1001]}), T0)}
    store.write_batch(batch)
    (device,) = store.devices()
    assert device["missing_seq"] == 1 and device["unknown_seq"] == 1001 - 5 - 1  # seq 4 lost; 6..1000 unknown
    store.close()


def test_spreading_intervals_over_bins_equals_their_plain_overlaps():
    """Every figure of a bin comes from ``spread`` (each interval's seconds in each bin, summed per row,
    the whole bins between its ends by a running sum): on random intervals (some before the lecture,
    some past its end, some spanning hundreds of bins) it equals the plain overlaps, weighted too."""
    import random

    import numpy as np

    from emocast.hub.binning import Grid, spread

    rng = random.Random(7)
    starts = np.array([T0 + rng.uniform(-100, 3700) for _ in range(600)])
    ends = starts + np.array([rng.expovariate(1 / 40) if i % 10 else rng.uniform(0, 3000) for i in range(600)])
    rows_of = np.array([i % 3 for i in range(600)])
    weights = np.array([rng.uniform(0.1, 3) for _ in range(600)])
    grid = Grid(T0, T0 + 3603, 5.0)
    fast = spread(grid, starts, ends, rows_of, 3, weights)
    assert fast.shape == (3, grid.n)
    for k in range(grid.n):
        b0, b1 = grid.bounds(k)
        for r in range(3):
            plain = sum(max(0.0, min(b1, e) - max(b0, s)) * w
                        for s, e, rr, w in zip(starts, ends, rows_of, weights, strict=True) if rr == r)
            assert fast[r, k] == pytest.approx(plain, abs=1e-6)


def test_bins_on_random_faces_equal_sums_over_their_segments():
    """The arrays' bins against sums written out segment by segment: per bin, each state's face time,
    and each emotion's attentive time (an emotion segment against the same face's attentive ones),
    over random faces on three kiosks (``min_faces`` 1: nothing withheld)."""
    import random

    from emocast.hub.stories import Stories, Summaries

    rng = random.Random(11)
    att, emo = [], []
    for device in ("a", "b", "c"):
        for track in range(1, 8):
            t = T0 + rng.uniform(-60, 300)
            while t < T0 + 700:
                d = rng.expovariate(1 / 30)
                att.append(Segment(device, track, rng.choice(["attentive", "looking_away", "eyes_closed"]), t, t + d))
                t += d + (rng.expovariate(1 / 20) if rng.random() < 0.3 else 0.0)
            t = T0 + rng.uniform(-60, 300)
            while t < T0 + 700:
                d = rng.expovariate(1 / 45)
                emo.append(Segment(device, track, rng.choice(["happy", "sad", "neutral"]), t, t + d))
                t += d
    none = np.zeros(0)
    stories = Stories(segments_of(att), segments_of(emo), Summaries([], none.astype(int), none, none, none, none))
    got = bins(stories, T0, T0 + 600, 60.0)
    assert len(got) == 10
    for i, b in enumerate(got):
        b0, b1 = T0 + 60 * i, T0 + 60 * (i + 1)

        def inside(s0: float, s1: float, lo: float = b0, hi: float = b1) -> float:
            return max(0.0, min(hi, s1) - max(lo, s0))

        state = {k: sum(inside(s.start, s.end) for s in att if s.value == k)
                 for k in ("attentive", "looking_away", "eyes_closed")}
        face = sum(state.values())
        assert b["face_time_s"] == pytest.approx(face, abs=1e-3)
        assert b["attentive_share"] == pytest.approx(state["attentive"] / face, abs=1e-4)
        assert b["devices"] == 3
        read = {}
        for e in emo:
            for a in att:
                if a.value == "attentive" and (a.device, a.track) == (e.device, e.track):
                    lo, hi = max(e.start, a.start), min(e.end, a.end)
                    read[e.value] = read.get(e.value, 0.0) + (inside(lo, hi) if hi > lo else 0.0)
        total = sum(read.values())
        assert b["emotion_face_time_s"] == pytest.approx(total, abs=1e-3)
        assert b["emotion_shares"] == pytest.approx({k: v / total for k, v in read.items() if v > 0}, abs=1e-4)


def test_the_fewest_faces_in_a_bin_are_the_fewest_at_any_moment_of_it():
    """``least_faces`` (the privacy rule's count) against a count taken at every moment that matters:
    each bin's start and every face's start and end inside it, on random faces of three devices,
    some abutting (a face's next state starts where the last ended), some before or past the lecture."""
    import random

    from emocast.hub.binning import Grid, least_faces

    rng = random.Random(5)
    starts, ends, rows_of = [], [], []
    for row in range(3):
        for _ in range(40):
            t = T0 + rng.uniform(-50, 650)
            for _ in range(rng.randint(1, 4)):  # a face's states, end to end
                d = rng.choice([0.5, 2.5, 10.0, rng.expovariate(1 / 60)])
                starts.append(t)
                ends.append(t + d)
                rows_of.append(row)
                t += d
    grid = Grid(T0, T0 + 600, 30.0)
    got = least_faces(grid, np.array(starts), np.array(ends), np.array(rows_of), 3)
    for k in range(grid.n):
        b0, b1 = grid.bounds(k)
        for row in range(3):
            mine = [(s, e) for s, e, r in zip(starts, ends, rows_of, strict=True) if r == row]
            moments = [b0] + [x for s, e in mine for x in (s, e) if b0 < x < b1]
            fewest = min(sum(1 for s, e in mine if s <= m < e) for m in moments)
            assert got[row, k] == fewest, (row, k)
