"""The converter end to end on a few hundred FER2013 images: train -> int8 -> device interpreter."""

from __future__ import annotations

import csv
import shutil

import cv2
import numpy as np
import pytest

from emocast.convert.data import FER_LABELS, DataError, class_weights, load_split
from emocast.convert.metrics import score


def test_metrics_on_known_predictions():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    s = score(y, p, 3)
    assert s.accuracy == pytest.approx(4 / 6)
    assert s.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert s.recall.tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert s.precision.tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    f1 = [0.5, 0.8, 2 / 3]
    assert s.macro_f1 == pytest.approx(sum(f1) / 3)


def test_class_weights_favour_rare_classes_and_average_one():
    labels = np.array([0] * 90 + [1] * 10)
    w = class_weights(labels, 2, power=1.0)
    assert w[1] == pytest.approx(9 * w[0])
    assert (90 * w[0] + 10 * w[1]) / 100 == pytest.approx(1.0)


def _fake_faces(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n).astype(np.uint8)


def test_reads_the_kaggle_csv_layout(tmp_path):
    imgs, labels = _fake_faces(6)
    path = tmp_path / "fer2013.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for i, (im, lab) in enumerate(zip(imgs, labels, strict=True)):
            w.writerow([int(lab), " ".join(map(str, im.ravel())), "Training" if i < 4 else "PublicTest"])
    train = load_split(tmp_path, "train")
    val = load_split(path, "public_test")
    assert len(train) == 4 and len(val) == 2
    np.testing.assert_array_equal(train.images[1], imgs[1])
    np.testing.assert_array_equal(val.labels, labels[4:])


def test_reads_the_image_folder_layout(tmp_path):
    imgs, _ = _fake_faces(7)
    for i, name in enumerate(FER_LABELS):
        d = tmp_path / "train" / name
        d.mkdir(parents=True)
        cv2.imwrite(str(d / f"{i}.png"), imgs[i])
    split = load_split(tmp_path, "train")
    assert len(split) == 7 and split.labels.tolist() == list(range(7))
    np.testing.assert_array_equal(split.images[3], imgs[3])


def test_bad_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_split(tmp_path / "nothing", "train")
    with pytest.raises(DataError, match="no 'train' split"):
        load_split(tmp_path, "train")
    with pytest.raises(DataError, match="unknown split"):
        load_split(tmp_path, "holdout")


def _pack_module():
    import importlib.util

    from tests.support import REPO

    spec = importlib.util.spec_from_file_location("pack", REPO / "scripts" / "gpu" / "pack.py")
    pack = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(pack)  # type: ignore[union-attr]
    return pack


def test_gpu_packing_round_trips_a_split(tmp_path):
    """scripts/gpu/pack.py squeezes FER under the device tool's 64 MiB; the device unpacks it exactly."""
    pack = _pack_module()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, 50, dtype=np.uint8)
    np.savez(tmp_path / "train.npz", images=images, labels=labels)
    pack.pack_split(tmp_path / "train.npz", tmp_path / "train.xz")
    (tmp_path / "out").mkdir()
    pack.unpack_split(tmp_path / "train.xz", tmp_path / "out" / "train.npz")
    split = load_split(tmp_path / "out", "train")
    assert np.array_equal(split.images, images) and np.array_equal(split.labels, labels)
    pack.pack_split(tmp_path / "train.npz", tmp_path / "few.xz", limit=20)  # the validation faces carried
    pack.unpack_split(tmp_path / "few.xz", tmp_path / "out" / "public_test.npz")
    few = load_split(tmp_path / "out", "public_test")
    assert len(few) == 20 and all(any(np.array_equal(f, g) for g in images) for f in few.images)


def test_gpu_packing_splits_into_parts_that_each_fit_a_call(tmp_path, monkeypatch, capsys):
    """Once the repository is too big for everything to travel in one call, the train split goes in
    parts; on the device, each call unpacks what it carried, and the split is joined, exactly, only
    when the last part has come (before that: exit 3, naming the chunks still missing)."""
    pack = _pack_module()
    monkeypatch.setattr(pack, "CHUNK", 100)
    rng = np.random.default_rng(1)
    # noise does not compress: each chunk of 100 faces is about 230 KB
    images = rng.integers(0, 256, (450, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, 450, dtype=np.uint8)
    data = tmp_path / "fer"
    data.mkdir()
    np.savez(data / "train.npz", images=images, labels=labels)
    np.savez(data / "public_test.npz", images=images[:60], labels=labels[:60])
    gpu = tmp_path / ".gpu"
    folders = pack.pack(data, gpu, room=500_000, val_limit=40, wheels=False)
    assert [f.name for f in folders] == ["part1", "part2", "part3"]
    for folder in folders:
        assert sum(f.stat().st_size for f in folder.iterdir()) <= 500_000
    assert (gpu / "part1" / "manifest.json").is_file() and (gpu / "part1" / "public_test.xz").is_file()
    chunks = sorted(c.name for c in gpu.glob("part*/train_*.xz"))
    assert chunks == [f"train_{i:02d}.xz" for i in range(5)]

    # the device: a fresh machine gets part 1, then (still warm) the others, one call each
    device = tmp_path / "device" / ".gpu"
    device.mkdir(parents=True)
    shutil.copytree(gpu / "part1", device / "part1")
    assert pack.unpack(device) == pack.MISSING
    assert "still to come" in capsys.readouterr().out
    assert not (device / "fer" / "train.npz").exists()
    assert load_split(device / "fer", "public_test").images.shape == (40, 48, 48)
    shutil.copytree(gpu / "part2", device / "part2")
    assert pack.unpack(device) == pack.MISSING
    shutil.copytree(gpu / "part3", device / "part3")
    assert pack.unpack(device) == 0
    joined = load_split(device / "fer", "train")
    assert np.array_equal(joined.images, images) and np.array_equal(joined.labels, labels)


def test_gpu_packing_refuses_a_chunk_no_call_can_carry():
    pack = _pack_module()
    with pytest.raises(SystemExit, match="cannot travel"):
        pack.deal({"whl": 10, "train_00.xz": 500}, ["whl"], room=100)
    with pytest.raises(SystemExit, match="leave no room"):
        pack.deal({"whl": 200}, ["whl"], room=100)
    assert pack.deal({"a": 40, "b": 50, "c": 50, "d": 10}, ["a"], room=100) == [["a", "b", "d"], ["c"]]
