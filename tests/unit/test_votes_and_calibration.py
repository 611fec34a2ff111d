"""Labels people agree with: FER+ vote tables and soft-label CSVs (with their refusals), targets and
majorities, the temperature that makes probabilities honest, the unsure rule on the device, and a
tiny model fine-tuned on vote shares end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from emocast.convert.calibration import calibrate, fit_temperature, nll, plot_reliability, reliability
from emocast.convert.data import FER_LABELS, Split, load_split
from emocast.convert.votes import (
    FERPLUS_COLUMNS,
    VoteError,
    load_votes,
    majority_labels,
    targets_for,
    with_votes,
)
from emocast.device.perception.emotion import EmotionSmoother, apply_temperature

# FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
VOTES = np.array([
    [8, 2, 0, 0, 0, 0, 0, 0, 0, 0],  # neutral, clear
    [0, 5, 5, 0, 0, 0, 0, 0, 0, 0],  # happy / surprise tie: trains on both, scored on neither
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # no votes: left out
    [1, 0, 0, 0, 0, 0, 0, 0, 9, 0],  # unknown: left out
    [2, 0, 0, 0, 0, 0, 0, 6, 0, 2],  # contempt (a class the model lacks): left out
    [0, 0, 0, 1, 7, 0, 0, 0, 0, 2],  # anger, with two "not a face"
], np.float32)


def ferplus_npz(path: Path, train: np.ndarray = VOTES, public_test: np.ndarray | None = None) -> Path:
    np.savez(path, train=train, public_test=train if public_test is None else public_test,
             columns=np.array(FERPLUS_COLUMNS))
    return path


def split_of(n: int, name: str = "train") -> Split:
    rng = np.random.default_rng(n)
    return Split(rng.integers(0, 255, (n, 48, 48), dtype=np.uint8), np.zeros(n, np.uint8), name)


def test_ferplus_votes_become_shares_over_the_seven_classes_and_leave_out_what_no_emotion_is(tmp_path):
    votes = load_votes(ferplus_npz(tmp_path / "v.npz"), "train", len(VOTES))
    assert votes.columns[:3] == ("neutral", "happy", "surprise") and votes.columns[-2:] == ("unknown", "nf")
    targets, keep, left_out = targets_for(votes)
    assert keep.tolist() == [True, True, False, False, False, True]
    assert left_out == {"no votes": 1, "most votes unknown": 1, "most votes contempt": 1}
    neutral, happy, surprise, angry = (FER_LABELS.index(c) for c in ("neutral", "happy", "surprise", "angry"))
    assert targets[0, neutral] == pytest.approx(0.8) and targets[0, happy] == pytest.approx(0.2)
    assert targets[1, happy] == targets[1, surprise] == pytest.approx(0.5)
    # "not a face" votes are not an emotion: the anger face's shares are over its emotion votes
    assert targets[5, angry] == pytest.approx(7 / 8) and targets[5].sum() == pytest.approx(1.0)
    # majority: ties and the left-out rows have none
    assert majority_labels(votes).tolist() == [neutral, -1, -1, -1, -1, angry]


def test_with_votes_trains_on_shares_and_scores_on_clear_majorities_only(tmp_path):
    path = ferplus_npz(tmp_path / "v.npz")
    train, left = with_votes(split_of(6), path)
    assert len(train) == 3 and train.targets.shape == (3, 7) and left["no votes"] == 1
    assert train.labels.tolist() == [FER_LABELS.index("neutral"), FER_LABELS.index("happy"), FER_LABELS.index("angry")]
    scored, left = with_votes(split_of(6, "public_test"), path, scoring=True)
    assert len(scored) == 2 and left["tie at the top"] == 1
    # the rows kept are the split's own images, in order
    np.testing.assert_array_equal(scored.images[1], split_of(6, "public_test").images[5])


def test_the_data_sets_own_label_can_take_a_share_of_each_training_target(tmp_path):
    path = ferplus_npz(tmp_path / "v.npz")
    split = split_of(6)
    split.labels = np.full(6, FER_LABELS.index("fear"), np.uint8)  # FER2013 said fear on every face
    mixed, _ = with_votes(split, path, label_weight=0.25)
    neutral, fear = FER_LABELS.index("neutral"), FER_LABELS.index("fear")
    assert mixed.targets[0, neutral] == pytest.approx(0.75 * 0.8) and mixed.targets[0, fear] == pytest.approx(0.25)
    assert np.allclose(mixed.targets.sum(axis=1), 1.0)
    scored, _ = with_votes(split_of(6, "public_test"), path, scoring=True, label_weight=0.25)
    assert scored.targets[0, neutral] == pytest.approx(0.8)  # scoring is against people alone
    with pytest.raises(VoteError, match="must be 0 to 1"):
        with_votes(split, path, label_weight=1.5)


def test_vote_tables_that_do_not_fit_are_refused_naming_the_file(tmp_path):
    path = ferplus_npz(tmp_path / "v.npz")
    with pytest.raises(VoteError, match=r"v\.npz: 6 rows of votes for train, but the split has 7"):
        load_votes(path, "train", 7)
    with pytest.raises(VoteError, match="no array for split 'private_test'"):
        load_votes(path, "private_test", 6)
    bad = VOTES.copy()
    bad[4, 2] = -1
    with pytest.raises(VoteError, match="row 4 holds a negative vote"):
        load_votes(ferplus_npz(tmp_path / "neg.npz", bad), "train", 6)
    np.savez(tmp_path / "shape.npz", train=VOTES[:, :9], public_test=VOTES, columns=np.array(FERPLUS_COLUMNS))
    with pytest.raises(VoteError, match=r"shape.npz: key 'train' has shape \(6, 9\)"):
        load_votes(tmp_path / "shape.npz", "train", 6)
    with pytest.raises(VoteError, match="not found"):
        load_votes(tmp_path / "missing.npz", "train", 6)
    (tmp_path / "v.txt").write_text("x")
    with pytest.raises(VoteError, match=r"\.npz .* or \.csv"):
        load_votes(tmp_path / "v.txt", "train", 6)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_a_soft_label_csv_by_row_number_with_synonyms_and_probabilities(tmp_path):
    path = write_csv(tmp_path / "soft.csv", ["image", "Happiness", "neutral", "anger"],
                     [[2, 0.7, 0.3, 0.0], [0, 0.0, 0.0, 1.0]])
    split, _ = with_votes(split_of(3), path)
    assert len(split) == 2  # row 1 has no votes: left out
    happy, neutral, angry = (FER_LABELS.index(c) for c in ("happy", "neutral", "angry"))
    assert split.targets[0, angry] == 1.0
    assert split.targets[1, happy] == pytest.approx(0.7) and split.targets[1, neutral] == pytest.approx(0.3)


def test_a_soft_label_csv_by_file_name_for_an_image_tree(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("happy", "sad"):
        folder = tmp_path / "data" / "train" / name
        folder.mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(folder / f"{name}{i}.png"), rng.integers(0, 255, (48, 48), dtype=np.uint8))
    split = load_split(tmp_path / "data", "train")
    assert split.files == ["happy/happy0.png", "happy/happy1.png", "sad/sad0.png", "sad/sad1.png"]
    path = write_csv(tmp_path / "soft.csv", ["image", "happy", "sad", "neutral"],
                     [["sad/sad1.png", 0, 6, 4], ["happy0.png", 9, 0, 1]])
    voted, left = with_votes(split, path)
    assert voted.files == ["happy/happy0.png", "sad/sad1.png"] and left["no votes"] == 2
    # a tree of two classes: a neutral vote has no class to go to, so the shares are over happy and sad
    assert voted.classes == ("happy", "sad") and voted.targets.tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("header, rows, message", [
    (["image", "happy", "glee"], [[0, 1, 0]], r"unknown class column\(s\) \['glee'\]"),
    (["picture", "happy"], [[0, 1]], "needs a column 'image'"),
    (["image", "happy", "sad"], [[0, 1, -2]], "line 2 holds a negative vote"),
    (["image", "happy", "sad"], [[0, 1, 0], [1, 0, 0]], r"line 3 \(1\) has no votes"),
    (["image", "happy", "sad"], [[0, "x", 0]], "line 2 holds a value that is not a number"),
    (["image", "happy", "sad"], [[0, "nan", 1]], "line 2 holds a value that is not a number"),
    (["image", "happy", "sad"], [[0, 1]], "line 2 has 2 fields, the header 3"),
    (["image", "happy", "sad"], [[9, 1, 0]], r"line 2: image '9' is not in the split"),
    (["image", "happy", "sad"], [[0, 1, 0], [0, 0, 1]], r"line 3: image '0' has a second row"),
    (["image", "happy", "Happiness"], [[0, 1, 0]], "name happy twice"),
])
def test_soft_label_csv_refusals_name_the_file_and_the_line(tmp_path, header, rows, message):
    path = write_csv(tmp_path / "soft.csv", header, rows)
    with pytest.raises(VoteError, match=message) as err:
        load_votes(path, "train", 3)
    assert "soft.csv" in str(err.value)


def test_ferplus_own_csv_is_read_row_for_row_within_its_split(tmp_path):
    header = ["Usage", "Image name", *FERPLUS_COLUMNS]
    rows = [["Training", "fer0000000.png", *VOTES[0].astype(int)],
            ["PublicTest", "fer0000001.png", *VOTES[1].astype(int)],
            ["Training", "fer0000002.png", *VOTES[5].astype(int)]]
    path = write_csv(tmp_path / "fer2013new.csv", header, rows)
    votes = load_votes(path, "train", 2)
    np.testing.assert_array_equal(votes.counts, VOTES[[0, 5]])
    assert len(load_votes(path, "public_test", 1)) == 1


def test_temperature_recovers_the_softening_that_made_a_model_overconfident():
    rng = np.random.default_rng(0)
    n, k = 4000, 7
    logits = rng.normal(0, 1.5, (n, k))
    honest = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in honest])  # the world draws from the honest probabilities
    overconfident = apply_temperature(honest, 0.5)  # as if its logits were doubled
    t = fit_temperature(overconfident, np.eye(k)[labels])
    assert t == pytest.approx(2.0, rel=0.15)
    result = calibrate(overconfident, np.eye(k)[labels])
    assert result["ece_after"] < result["ece_before"] / 2 and result["nll_after"] < result["nll_before"]
    # temperature never changes the top class, so accuracy stays what it was
    assert (apply_temperature(overconfident, t).argmax(1) == overconfident.argmax(1)).all()
    assert nll(honest, np.eye(k)[labels]) <= result["nll_after"] + 0.01


def test_reliability_bins_and_diagram(tmp_path):
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.55, 0.45], [0.65, 0.35]])
    labels = np.array([0, 0, 1, 0])
    r = reliability(probs, np.eye(2)[labels], bins=10)
    assert r.counts.sum() == 4 and r.counts[9] == 2 and r.accuracy[9] == 1.0
    assert r.ece == pytest.approx((2 * 0.075 + 1 * 0.55 + 1 * 0.35) / 4)
    png = tmp_path / "rel.png"
    plot_reliability(probs, np.eye(2)[labels], 1.3, "test", png)
    # with vote shares, a bin's agreement is the mean share of votes for the top class
    shares = np.array([[0.7, 0.3], [0.6, 0.4]])
    soft = reliability(np.array([[0.95, 0.05], [0.91, 0.09]]), shares, bins=10)
    assert soft.accuracy[9] == pytest.approx(0.65) and soft.ece == pytest.approx(0.93 - 0.65)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_card_temperature_reaches_every_reading_and_a_bad_one_is_refused(tmp_path):
    from emocast.contract.model_card import ModelError
    from emocast.device.perception.emotion import EmotionModel, default_model_path

    src = default_model_path()
    model, card = tmp_path / src.name, tmp_path / src.with_suffix(".json").name
    model.write_bytes(src.read_bytes())
    data = json.loads(src.with_suffix(".json").read_text())
    data["calibration"] = {"temperature": 2.0}
    card.write_text(json.dumps(data))
    face = np.random.default_rng(1).integers(0, 255, (48, 48)).astype(np.float32)[..., None] / 255.0
    warm = EmotionModel(model)
    data["calibration"] = {"temperature": 1.0}
    card.write_text(json.dumps(data))
    plain = EmotionModel(model)
    p1, p2 = plain.predict_input(face), warm.predict_input(face)
    assert warm.temperature == 2.0 and p2.argmax() == p1.argmax() and p2.max() < p1.max()
    np.testing.assert_allclose(p2, apply_temperature(p1, 2.0), atol=1e-6)
    data["calibration"] = {"temperature": 0}
    card.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="temperature must be above 0"):
        EmotionModel(model)


def test_an_unsure_reading_neither_changes_the_emotion_nor_is_called():
    labels = ("happy", "neutral", "sad")
    s = EmotionSmoother(labels, smoothing=0.0, min_confidence=0.5)
    assert s.update(np.array([0.2, 0.7, 0.1])) == ("neutral", None)
    assert s.called == "neutral" and not s.unsure
    # a muddled face: sad leads, but not by enough to call
    assert s.update(np.array([0.3, 0.3, 0.4])) is None
    assert s.unsure and s.called is None and s.current == "neutral" and s.unsure_samples == 1
    assert s.update(np.array([0.1, 0.2, 0.7])) == ("sad", "neutral")
    assert s.called == "sad" and s.samples == 3
