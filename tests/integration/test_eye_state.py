"""The eye-state classifier: the shipped int8 model, how the eye monitor judges its readings, the
fallbacks where it cannot load, its labels and training, and what it reads on real photos."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.support import FER_DIR, MEDIA, needs_fer, needs_media


def test_the_projects_labels_are_read_and_counted():
    from emocast.convert.eye_state import LABELS_FILE, read_labels

    labels = read_labels(LABELS_FILE)
    by = {(lab.state, lab.how) for lab in labels}
    assert by == {("closed", "by_eye"), ("open", "by_eye"), ("unclear", "by_eye"), ("open", "iris_wide_open")}
    closed = sum(lab.state == "closed" for lab in labels)
    assert closed >= 700 and all(len(lab.digest) == 8 for lab in labels)
    assert len({lab.index for lab in labels}) == len(labels)  # one row a face


def test_bad_label_rows_are_errors_naming_the_file_and_line(tmp_path):
    from emocast.convert.data import DataError
    from emocast.convert.eye_state import read_labels

    bad = tmp_path / "labels.csv"
    bad.write_text("index,sha1_8,eye_state,how\n3,abcdef12,open,by_eye\n4,abcdef13,squint,by_eye\n")
    with pytest.raises(DataError, match=r"labels\.csv: line 3: eye_state 'squint'"):
        read_labels(bad)
    bad.write_text("index,eye_state\n3,open\n")
    with pytest.raises(DataError, match="missing column"):
        read_labels(bad)
    with pytest.raises(DataError, match="cannot read"):
        read_labels(tmp_path / "none.csv")


def test_labels_find_their_faces_by_content_in_another_order_and_refuse_another_data_set():
    from emocast.convert.data import DataError, Split
    from emocast.convert.eye_state import EyeLabel, face_digest, match_labels

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    states = ["open", "closed", "unclear", "closed", "open", "open"]
    labels = [EyeLabel(i, face_digest(f), s, "by_eye") for i, (f, s) in enumerate(zip(faces, states, strict=True))]
    split = Split(faces, np.zeros(6, np.uint8), "train")
    idx, closed = match_labels(split, labels, FER_DIR)
    assert idx.tolist() == [0, 1, 3, 4, 5] and closed.tolist() == [0, 1, 1, 0, 0]  # unclear left out
    order = np.array([5, 4, 3, 2, 1, 0])
    shuffled = Split(faces[order], np.zeros(6, np.uint8), "train")  # the CSV layout's order, say
    idx, closed = match_labels(shuffled, labels, FER_DIR)
    assert [int(order[i]) for i in idx] == [0, 1, 3, 4, 5] and closed.tolist() == [0, 1, 1, 0, 0]
    other = Split(rng.integers(0, 256, (6, 48, 48), dtype=np.uint8), np.zeros(6, np.uint8), "train")
    with pytest.raises(DataError, match="5 of the labelled faces are not in this train split"):
        match_labels(other, labels, FER_DIR)


@pytest.mark.slow
@needs_fer()
def test_training_on_a_few_labelled_faces_gives_an_int8_model_the_device_runs(tmp_path):
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    from emocast.convert.eye_state import LABELS_FILE, train_eye_state
    from emocast.device.perception.eyes import EyeStateModel

    rows = list(csv.DictReader(LABELS_FILE.open()))
    few = [r for r in rows if r["eye_state"] == "closed"][:40] + [r for r in rows if r["eye_state"] == "open"][:40]
    labels = tmp_path / "few.csv"
    with labels.open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(few)
    out = tmp_path / "eyes.tflite"
    card = train_eye_state(FER_DIR, out, tmp_path / "ckpt", labels_path=labels, epochs=2, progress=False)
    assert out.is_file() and (tmp_path / "ckpt" / "best.keras").is_file()
    assert json.loads(out.with_suffix(".json").read_text()) == card
    assert set(card["int8"]) == {"accuracy", "closed_recall", "open_recall"} and card["held_out_faces"] > 0
    model = EyeStateModel(out)
    assert 0.0 <= model.closed_of(np.full((64, 64), 100, np.uint8)) <= 1.0


def test_convert_eyes_with_no_data_exits_3_naming_it(tmp_path, capsys):
    pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")
    from emocast.cli import main

    code = main(["convert", "eyes", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "e.tflite"),
                 "--checkpoint", str(tmp_path / "c")])
    assert code == 3


@needs_media("eyestate", "labels.csv")
@needs_media("multiface", "insightface_t1.jpg")
def test_real_photos_open_closed_and_the_group_photos_smiles():
    """The issue's aims with a margin: eye state right on 95% of the eyestate photos (0.96 measured),
    and on the group photos no clearly open eyes read closed (0 of 38 measured; 1 allowed) while the
    faces shut by eye read closed (4 of 4 measured)."""
    import sys

    from emocast.device.analyze import analyze
    from emocast.device.config import from_mapping
    from emocast.device.perception.face_reading import FaceReader
    from tests.support import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_perception import BY_EYE, eyes_by_eye

    cfg = from_mapping({"emotion": {"emotion_hz": 0}})
    reader = FaceReader()
    right = total = 0
    for row in csv.DictReader((MEDIA / "eyestate" / "labels.csv").open()):
        records: list[dict] = []
        analyze(MEDIA / "eyestate" / row["file"], cfg, None, records.append, progress=False, reader=reader)
        if not records or records[0]["eyes_closed"] is None:
            continue
        face = max(records, key=lambda r: r["box"][2] * r["box"][3])
        total += 1
        right += face["eyes_closed"] == (row["eye_state"] == "closed")
    assert total > 260 and right / total >= 0.94
    read = {"open": [], "closed": []}
    for name in BY_EYE:
        records = []
        analyze(MEDIA / "multiface" / name, cfg, None, records.append, progress=False, reader=reader)
        for r in records:
            read.setdefault(eyes_by_eye(name, r["box"]), []).append(bool(r["eyes_closed"]))
    assert len(read["open"]) >= 36 and sum(read["open"]) <= 1
    assert len(read["closed"]) == 4 and sum(read["closed"]) >= 3
