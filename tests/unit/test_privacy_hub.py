"""The hub's ``[privacy]``: with ``emotion = false`` a kiosk that does infer emotion leaves no emotion in
the database file, the API, the CSV or the page (real service, broker, hub, SQLite and PostgreSQL);
``min_faces`` withholds the shares of a bin with fewer faces; ``forget`` leaves no row of a device."""

from __future__ import annotations

import csv
import io
import json

import pytest

from emocast.cli import main
from emocast.core.errors import ExitCode
from tests.helpers.hub_timeline import T0, attention, event
from tests.hub_support import LOCAL, hub_app

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")

from fastapi.testclient import TestClient  # noqa: E402

from emocast.hub.store import Batch, Store  # noqa: E402
from tests.helpers.privacy_hub import all_rows, room


@pytest.mark.parametrize("faces,shown", [(1, False), (2, False), (3, True)])
def test_fewer_than_min_faces_show_no_shares(tmp_path, faces, shown):
    db = str(tmp_path / "hub.sqlite")
    store = Store(db)
    batch = Batch.empty()
    batch.messages = room(faces)
    batch.last_seen = {"k1": T0 + 120}
    store.write_batch(batch)
    lecture = store.create_lecture("Tutorial", ["k1"], T0, 0.0, T0 + 120)
    client = TestClient(hub_app(db, min_faces=3), base_url=LOCAL)
    data = client.get(f"/api/lectures/{lecture['id']}/timeline", params={"bin_s": 60, "per_device": True}).json()
    views = [data["bins"], data["per_device"]["k1"]]
    for bins in views:
        for b in bins:
            assert b["faces"] == pytest.approx(faces)
            if shown:
                assert b["attentive_share"] == 1.0 and b["emotion_shares"] == {"happy": 1.0} and "withheld" not in b
            else:
                assert b["attentive_share"] is None and b["emotion_shares"] == {}
                assert b["withheld"] == "fewer than 3 faces present"
    table = list(csv.DictReader(io.StringIO(client.get(f"/api/lectures/{lecture['id']}/export.csv").text)))
    assert all((row["attentive_share"] == "1.0") == shown for row in table)
    assert all(("emotion_happy" in row) == shown for row in table)


def room_of(device: str, states: list[str], first_seq: int = 1) -> list:
    """One face per state on ``device``, each held for two minutes."""
    out = []
    for track, state in enumerate(states, 1):
        out.append(attention(device, first_seq + track - 1, T0, track, state))
    return out


def test_no_difference_of_two_shown_views_singles_out_a_face(tmp_path):
    """Kiosk "front" sees 3 faces (attentive), "back" 1 face (looking away); min_faces 3. The room's
    share, times 4, less front's, times 3, once gave the lone student's state minute by minute; and so
    did a lecture of both kiosks less a lecture of front over the same time. Now a device with fewer
    than 3 faces adds nothing to any share: every view shown is of whole devices with 3 or more."""
    db = str(tmp_path / "hub.sqlite")
    store = Store(db)
    batch = Batch.empty()
    batch.messages = room_of("front", ["attentive"] * 3) + room_of("back", ["looking_away"], 10)
    batch.last_seen = {"front": T0 + 120, "back": T0 + 120}
    store.write_batch(batch)
    both = store.create_lecture("Both", ["front", "back"], T0, 0.0, T0 + 120)
    front_only = store.create_lecture("Front", ["front"], T0, 0.0, T0 + 120)
    client = TestClient(hub_app(db, min_faces=3), base_url=LOCAL)
    data = client.get(f"/api/lectures/{both['id']}/export.json", params={"bin_s": 60}).json()
    other = client.get(f"/api/lectures/{front_only['id']}/timeline", params={"bin_s": 60}).json()
    for whole, front, back, alone in zip(data["bins"], data["per_device"]["front"], data["per_device"]["back"],
                                        other["bins"], strict=True):
        assert whole["faces"] == pytest.approx(4.0) and whole["devices_withheld"] == 1
        assert back["attentive_share"] is None and back["looking_away_share"] is None  # withheld itself
        # the room's shares are front's: room x 4 - front x 3 recovers nothing of back's
        assert whole["attentive_share"] == front["attentive_share"] == alone["attentive_share"] == 1.0
        assert whole["looking_away_share"] == front["looking_away_share"] == alone["looking_away_share"] == 0.0
    csv_rows = list(csv.DictReader(io.StringIO(client.get(f"/api/lectures/{both['id']}/export.csv").text)))
    assert all(row["devices_withheld"] == "1" and row["looking_away_share"] == "0.0" for row in csv_rows)


def test_forget_leaves_no_row_of_the_device(tmp_path, capsys):
    db = str(tmp_path / "hub.sqlite")
    store = Store(db)
    batch = Batch.empty()
    batch.messages = room(3, "alice") + room(3, "bob")
    batch.last_seen = {"alice": T0 + 60, "bob": T0 + 60}
    batch.rejects = [("alice", "attention", "bad", T0, "{...}")]
    store.write_batch(batch)
    lec = store.create_lecture("Both", ["alice", "bob"], T0, 0.0, T0 + 120)
    assert main(["hub", "forget", "--device", "alice", "--db", db]) == ExitCode.OK
    said = json.loads(capsys.readouterr().out)
    assert said["forgot"] == "alice" and said["messages"] == 6 and said["quarantined"] == 1
    assert not [r for r in all_rows(db) if "alice" in r]
    assert store.lecture(lec["id"])["devices"] == ["bob"] and store.count_messages() == 6
    assert main(["hub", "forget", "--lecture", lec["id"], "--db", db]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["messages"] == 6
    assert store.lectures() == [] and store.count_messages() == 0
    assert main(["hub", "forget", "--lecture", "nope", "--db", db]) == ExitCode.USAGE
    store.close()
    # not in the file's free pages, not in the write-ahead log either
    for path in tmp_path.glob("hub.sqlite*"):
        assert b"alice" not in path.read_bytes(), path.name


def test_the_summary_keeps_its_attention_and_loses_its_emotion(tmp_path):
    from emocast.contract.events import SUMMARY, without_emotion

    summary = json.loads(event("summary", "k1", 1, T0, window_s=60.0, face_time_s=50.0, attentive_share=0.5,
                               emotion_share={"happy": 1.0}, emotion_readings=3, emotion_unsure=0,
                               emotion_unsure_s=0.0).payload)
    kept = without_emotion(SUMMARY, summary)
    assert kept["attentive_share"] == 0.5 and not [k for k in kept if k.startswith("emotion")]


def test_two_views_never_differ_by_a_few_faces(tmp_path):
    """Five faces for 60 s, then three of them leave and the two left look away for 60 s; min_faces 3.
    At 60 s bins the second is withheld. A 120 s bin (3.5 faces on average) would show a share from
    which, less the first 60 s bin, the two students' own minute follows; a lecture over the same time
    whose bins start 2.5 s later would show a first bin ending 2.5 s into the two students' minute, and
    less the first lecture's first bin, their 2.5 s (less 2.5 s of the five). Both are withheld: a
    device counts in a bin only where it never had fewer than min_faces faces in it, so any bin length
    goes."""
    db = str(tmp_path / "hub.sqlite")
    store = Store(db)
    batch = Batch.empty()
    for track in range(1, 6):
        batch.messages.append(attention("k1", track, T0, track, "attentive"))
    seq = 6
    for track in range(1, 6):
        if track <= 2:
            batch.messages.append(attention("k1", seq, T0 + 60, track, "looking_away", "attentive", 60.0))
        else:
            batch.messages.append(attention("k1", seq, T0 + 60, track, "absent", "attentive", 60.0))
        seq += 1
    batch.last_seen = {"k1": T0 + 120}
    store.write_batch(batch)
    lecture = store.create_lecture("Seminar", ["k1"], T0, 0.0, T0 + 120)
    later = store.create_lecture("Seminar, again", ["k1"], T0 + 2.5, 0.0, T0 + 120)
    store.close()
    client = TestClient(hub_app(db, min_faces=3), base_url=LOCAL)

    def timeline(lec: dict, bin_s: float) -> list[dict]:
        return client.get(f"/api/lectures/{lec['id']}/timeline", params={"bin_s": bin_s}).json()["bins"]

    sixty = timeline(lecture, 60)
    assert sixty[0]["attentive_share"] == 1.0 and sixty[1]["withheld"]
    whole = timeline(lecture, 120)
    assert whole[0]["faces"] == pytest.approx(3.5) and whole[0]["attentive_share"] is None and whole[0]["withheld"]
    shifted = timeline(later, 60)
    assert shifted[0]["faces"] > 4.5 and shifted[0]["attentive_share"] is None and shifted[0]["withheld"]
    assert timeline(lecture, 7)[0]["attentive_share"] == 1.0  # any bin length: 7 s bins of five faces
    # with min_faces 1 nothing is withheld
    open_hub = TestClient(hub_app(db, min_faces=1), base_url=LOCAL)
    got = open_hub.get(f"/api/lectures/{later['id']}/timeline", params={"bin_s": 60}).json()["bins"]
    assert got[0]["attentive_share"] < 1.0
