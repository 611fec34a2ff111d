"""The hub without a broker: timelines against a hand-computed case, imports of analyze logs, the
store's migrations and de-duplication, the REST API (FastAPI's TestClient) and the hub's config."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


from emocast.cli import main  # noqa: E402
from emocast.core.errors import ExitCode  # noqa: E402
from emocast.hub.migrations import LATEST  # noqa: E402
from emocast.hub.store import Batch, Store  # noqa: E402
from emocast.hub.stories import KINDS, NO_TRACK, Rows  # noqa: E402
from emocast.hub.timeline import lecture_timeline  # noqa: E402
from tests.helpers.hub_timeline import T0, analyze_records, hand_case, rows


def as_tuples(r: Rows) -> list[tuple]:
    """Each row as a tuple of plain values, to compare two ``Rows``."""
    return [(r.devices[d], KINDS[k], float(t), None if tr == NO_TRACK else int(tr), r.values[v], bool(f), float(n),
             float(b), float(s))
            for d, k, t, tr, v, f, n, b, s in zip(r.device, r.kind, r.ts, r.track, r.value, r.first, r.number,
                                                  r.blinks, r.face_s, strict=True)]


def test_the_hub_imports_no_camera_model_or_landmark_code():
    """The hub runs where there is no camera: importing it must not load OpenCV, dlib, TFLite or
    TensorFlow (numpy it does use: timelines are computed as arrays)."""
    import subprocess
    import sys

    code = ("import sys; import emocast.cli, emocast.hub.commands, emocast.hub.api, emocast.hub.ingest, "
            "emocast.hub.importer, emocast.hub.timeline; emocast.cli.build_parser(); "
            "heavy = [m for m in ('cv2', 'dlib', 'tensorflow', 'ai_edge_litert', 'keras') if m in sys.modules]; "
            "print(','.join(heavy))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_the_columns_a_timeline_reads_hold_what_the_payloads_say(db_url, monkeypatch):
    """A timeline reads columns, never payloads: what ingest writes in them, and what migration 8 fills
    in for the events of a database from before it (from each payload's JSON, on SQLite and on
    PostgreSQL), is what parsing each payload in Python gives."""
    from emocast.hub import store as store_module
    from emocast.hub.migrations import MIGRATIONS

    store = Store(db_url)
    batch = Batch.empty()
    batch.messages = hand_case()
    store.write_batch(batch)
    assert as_tuples(Rows.of(store.timeline_rows(["k1"], T0 - 10, T0 + 200))) == as_tuples(rows(hand_case()))
    store._transaction([("DELETE FROM messages", ())])
    store._transaction([(f"DROP TABLE {t}", ()) for t in ("messages", "devices", "lectures", "rejects", "quarantine",
                                                          "schema_version")])
    store.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:7])
    monkeypatch.setattr(store_module, "LATEST", 7)
    old = Store(db_url)
    assert old.schema_version() == 7
    old._transaction([("INSERT INTO messages (id, device, kind, seq, ts, track, value, payload, received, origin) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(m.id, m.device, m.kind, m.seq, m.ts, m.track, m.value, m.payload, T0, "mqtt")
                        for m in hand_case()])])
    old.close()
    monkeypatch.undo()
    migrated = Store(db_url)
    try:
        assert migrated.schema_version() == LATEST
        assert as_tuples(Rows.of(migrated.timeline_rows(["k1"], T0 - 10, T0 + 200))) == as_tuples(rows(hand_case()))
    finally:
        migrated.close()


def test_two_lectures_imported_together_with_the_same_file_names_never_mix(db_url, tmp_path, capsys):
    """Period 3 and period 5, each with two students' recordings named student1 and student2, imported a
    few seconds apart: each lecture's timeline equals the one it has when imported alone, on SQLite and
    PostgreSQL alike; the devices page lists each lecture's recordings apart."""
    p3, p5 = tmp_path / "p3", tmp_path / "p5"
    p3.mkdir()
    p5.mkdir()
    files3 = [analyze_records(p3 / "student1.jsonl", {1: [(t / 10, "attentive", "happy") for t in range(600)]}),
              analyze_records(p3 / "student2.jsonl", {1: [(t / 10, "attentive", None) for t in range(600)]})]
    files5 = [analyze_records(p5 / "student1.jsonl", {1: [(t / 10, "looking_away", "sad") for t in range(600)]}),
              analyze_records(p5 / "student2.jsonl", {2: [(t / 10, "eyes_closed", None) for t in range(600)]})]

    def timeline_of(db: str, lecture_id: str) -> list:
        store = Store(db)
        try:
            data = lecture_timeline(store, store.lecture(lecture_id), 30.0, T0 + 10_000)
            return [{k: v for k, v in b.items()} for b in data["bins"]]
        finally:
            store.close()

    def imported(db: str, files: list, title: str, start: float) -> str:
        assert main(["hub", "import", *map(str, files), "--title", title, "--start", str(start),
                     "--db", db]) == ExitCode.OK
        return json.loads(capsys.readouterr().out.splitlines()[0])["lecture"]

    alone3 = str(tmp_path / "alone3.sqlite")
    alone5 = str(tmp_path / "alone5.sqlite")
    a3, a5 = imported(alone3, files3, "Period 3", T0), imported(alone5, files5, "Period 5", T0 + 5)
    l3, l5 = imported(db_url, files3, "Period 3", T0), imported(db_url, files5, "Period 5", T0 + 5)
    assert timeline_of(db_url, l3) == timeline_of(alone3, a3)
    assert timeline_of(db_url, l5) == timeline_of(alone5, a5)
    assert timeline_of(db_url, l3)[0]["attentive_share"] == 1.0  # none of period 5's looking away or closed eyes
    store = Store(db_url)
    recordings = [(d["device"], d["lecture"]) for d in store.devices() if d["source"] == "recording"]
    store.close()
    assert sorted(recordings) == sorted([("student1", l3), ("student2", l3), ("student1", l5), ("student2", l5)])
