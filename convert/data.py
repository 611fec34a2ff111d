"""FER2013 in the three layouts engineers actually have on disk.

Everything comes out as one shape, ``Split(images uint8 (N, 48, 48), labels uint8 (N,), classes)``,
so the trainer and the evaluator never care where the data came from:
- the ``.npz`` archives (``images``, ``labels``, ``classes``), one per split;
- Kaggle's ``fer2013.csv`` (columns ``emotion``, ``pixels``, ``Usage``), all splits in one file;
- an image-folder tree ``<root>/<split>/<class>/*.{jpg,png}`` (Kaggle's image version, CK+, or any
  set of class folders: names are read with the usual synonyms, anger = angry, happiness = happy).

A model with other classes (five without neutral and disgust, a happy/neutral pair) is scored and
calibrated on ``Split.for_labels(its labels)``: images of classes it lacks are left out and counted.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emocast.core.errors import EmocastError, ExitCode

log = logging.getLogger(__name__)

FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_SIZE = 48

# Kaggle's CSV calls the splits Training / PublicTest / PrivateTest; folder trees say train / test.
_SPLIT_ALIASES = {
    "train": ("train", "training"),
    "public_test": ("public_test", "publictest", "val", "valid", "validation", "test"),
    "private_test": ("private_test", "privatetest"),
}


# Names data sets and published models use for the same expression, mapped to FER2013's.
SYNONYMS: dict[str, str] = {
    "anger": "angry", "angry": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "smile": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
    "contempt": "contempt",
}


def canonical_label(name: str) -> str:
    """A class name as emocast spells it (``Happiness`` -> ``happy``); unknown names lower-cased."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return SYNONYMS.get(key, key)


class DataError(EmocastError):
    """The data set is missing or not in a layout we read."""

    exit_code = ExitCode.CONFIG


@dataclass
class Split:
    images: np.ndarray  # (N, H, W) uint8
    labels: np.ndarray  # (N,) uint8, indices into ``classes``
    name: str
    classes: tuple[str, ...] = FER_LABELS
    targets: np.ndarray | None = None  # (N, len(classes)) float32 vote shares, where people's votes are known
    files: list[str] | None = None  # each image's path below the split's folder (image-tree layout only)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))

    def subset(self, n: int, seed: int = 0) -> Split:
        """A stratified-ish random subset of ``n`` images, for smoke runs and tests."""
        if n >= len(self):
            return self
        idx = np.random.default_rng(seed).permutation(len(self))[:n]
        return self.take(idx, f"{self.name}[{n}]")

    def take(self, idx: np.ndarray, name: str | None = None) -> Split:
        """The images at ``idx`` (indices or a mask), with their labels, targets and file names."""
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx
        return Split(self.images[idx], self.labels[idx], name or self.name, self.classes,
                     None if self.targets is None else self.targets[idx],
                     None if self.files is None else [self.files[i] for i in idx])

    def for_labels(self, labels: tuple[str, ...]) -> tuple[Split, dict[str, int]]:
        """The images of the classes a model has, relabelled in the model's output order (names
        matched with synonyms), and the count of images left out per class the model lacks."""
        wanted = {canonical_label(lab): i for i, lab in enumerate(labels)}
        mapping = np.full(len(self.classes), -1, np.int64)
        for c, name in enumerate(self.classes):
            mapping[c] = wanted.get(canonical_label(name), -1)
        new = mapping[self.labels.astype(np.int64)]
        keep = new >= 0
        counts = self.class_counts()
        left_out = {name: int(counts[c]) for c, name in enumerate(self.classes) if mapping[c] < 0 and counts[c]}
        targets = None
        if self.targets is not None:  # the vote shares, in the model's order (its extra classes get none)
            targets = np.zeros((len(self), len(labels)), np.float32)
            for c in range(len(self.classes)):
                if mapping[c] >= 0:
                    targets[:, mapping[c]] = self.targets[:, c]
            targets = targets[keep] / np.maximum(targets[keep].sum(axis=1, keepdims=True), 1e-12)
        files = None if self.files is None else [f for f, k in zip(self.files, keep, strict=True) if k]
        return Split(self.images[keep], new[keep].astype(np.uint8), self.name, tuple(labels), targets,
                     files), left_out


def _canonical_split(name: str) -> str:
    key = name.lower().replace("-", "_")
    for canon, aliases in _SPLIT_ALIASES.items():
        if key in aliases or key.replace("_", "") in aliases:
            return canon
    raise DataError(f"unknown split {name!r}; use one of {', '.join(_SPLIT_ALIASES)}")


def load_split(source: Path, split: str) -> Split:
    """Load ``split`` (train, public_test, private_test) from a file or folder in any known layout."""
    source = Path(source)
    canon = _canonical_split(split)
    if not source.exists():
        raise DataError(f"data not found: {source}")
    if source.is_file() and source.suffix == ".npz":
        return _from_npz(source, canon)
    if source.is_file() and source.suffix == ".csv":
        return _from_csv(source, canon)
    if source.is_dir():
        for alias in (canon, *_SPLIT_ALIASES[canon]):
            npz = source / f"{alias}.npz"
            if npz.is_file():
                return _from_npz(npz, canon)
        csv_path = source / "fer2013.csv"
        if csv_path.is_file():
            return _from_csv(csv_path, canon)
        for alias in _SPLIT_ALIASES[canon]:
            for cand in (source / alias, source / alias.capitalize()):
                if cand.is_dir():
                    return _from_folders(cand, canon)
    raise DataError(
        f"{source}: no {canon!r} split found (looked for {canon}.npz, fer2013.csv and "
        f"a {canon}/<class>/ image tree)"
    )


def _from_npz(path: Path, split: str) -> Split:
    with np.load(path) as data:
        if "images" not in data or "labels" not in data:
            raise DataError(f"{path}: an .npz needs 'images' and 'labels' arrays")
        images = np.asarray(data["images"], dtype=np.uint8)
        labels = np.asarray(data["labels"], dtype=np.uint8)
        if "classes" in data and tuple(str(c) for c in data["classes"]) != FER_LABELS:
            raise DataError(f"{path}: classes {list(data['classes'])} are not FER2013's order")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    log.info("loaded %s: %d images from %s", split, len(labels), path)
    return Split(images, labels, split)


_CSV_USAGE = {"train": "Training", "public_test": "PublicTest", "private_test": "PrivateTest"}


def _from_csv(path: Path, split: str) -> Split:
    want = _CSV_USAGE[split]
    images, labels = [], []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            if row["Usage"] != want:
                continue
            pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            if pixels.size != FER_SIZE * FER_SIZE:
                raise DataError(f"{path}: line {reader.line_num} has {pixels.size} pixels, not 2304")
            images.append(pixels.reshape(FER_SIZE, FER_SIZE))
            labels.append(int(row["emotion"]))
    if not images:
        raise DataError(f"{path}: no rows with Usage={want}")
    log.info("loaded %s: %d images from %s", split, len(labels), path)
    return Split(np.stack(images), np.array(labels, dtype=np.uint8), split)


def _from_folders(root: Path, split: str) -> Split:
    """Class folders by name: FER2013's seven in FER order when they are all there (as in Kaggle's
    image version), else the classes found (FER's first, in FER order, then others by name)."""
    folders: dict[str, Path] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = canonical_label(folder.name)
        if name in folders:
            raise DataError(f"{root}: folders {folders[name].name!r} and {folder.name!r} are both {name!r}")
        folders[name] = folder
    if not folders:
        raise DataError(f"{root}: no class folders")
    classes = tuple([c for c in FER_LABELS if c in folders] + sorted(c for c in folders if c not in FER_LABELS))
    images, labels, files = [], [], []
    for label, name in enumerate(classes):
        folder = folders[name]
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp"):
                continue
            img = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise DataError(f"{file}: not a readable image")
            if img.shape != (FER_SIZE, FER_SIZE):
                img = cv2.resize(img, (FER_SIZE, FER_SIZE), interpolation=cv2.INTER_AREA)
            images.append(img)
            labels.append(label)
            files.append(f"{folder.name}/{file.name}")
    if not images:
        raise DataError(f"{root}: no images found")
    log.info("loaded %s: %d images of %s from %s", split, len(labels), ", ".join(classes), root)
    return Split(np.stack(images), np.array(labels, dtype=np.uint8), split, classes, files=files)


def class_weights(labels: np.ndarray, n_classes: int, power: float = 0.5) -> dict[int, float]:
    """Inverse-frequency weights raised to ``power`` (0.5 tempers 'disgust' x16 to x4), mean 1."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    w = (counts.sum() / counts) ** power
    w = w / (w * counts).sum() * counts.sum()
    return {i: float(w[i]) for i in range(n_classes)}
