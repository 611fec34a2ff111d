"""Labels people agree with: crowd votes (FER+) or a user's own soft labels, as per-class targets.

FER2013's labels came from image-search keywords, one per face; the FER+ relabelling (Barsoum et al.
2016) asked ten annotators per face. A model learns what people see from the *share* of votes per
class (FER+'s "probability distribution" scheme), and is judged against the majority of them.

Two sources, one result (``Votes``: per-image vote counts or probabilities over named classes):
- FER+'s vote table as this project's ``ferplus_votes.npz`` (one ``(N, 10)`` array per split, row for
  row with the split's ``.npz``; ``columns`` names them), or FER+'s own ``fer2013new.csv`` (columns
  ``Usage``, ``Image name``, then the ten), row for row with Kaggle's ``fer2013.csv`` within a split;
- a soft-label CSV of one's own: a column ``image`` (the file's path below the split's folder, or the
  row number in the split) and one column per class (names read with the usual synonyms), holding
  votes or probabilities. Every refusal names the file and the row.

Turning votes into targets for the seven classes the model learns (``targets_for``): rows without
votes, and rows whose most-voted column (ties included) is ``unknown``, not a face (``NF``) or a class
the model does not have (``contempt``) are left out and counted; the rest keep their vote shares over
the model's classes. The majority (``majority_labels``) is the single most-voted column: ties and
rows whose majority is not one of the model's classes have none, and are left out of scoring.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import FER_LABELS, DataError, canonical_label

log = logging.getLogger(__name__)

# Columns that say "no emotion can be read here" rather than naming one.
REJECT_COLUMNS = ("unknown", "nf")
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                   "unknown", "NF")
_SPLIT_KEYS = {"train": ("train", "training"), "public_test": ("public_test", "publictest", "val", "test"),
               "private_test": ("private_test", "privatetest")}
_CSV_USAGE = {"train": "Training", "public_test": "PublicTest", "private_test": "PrivateTest"}


class VoteError(DataError):
    """A votes or soft-label file we cannot use; the message names the file and, where one is at fault, the row."""


@dataclass(frozen=True)
class Votes:
    """Per-image votes (counts, or probabilities) over ``columns``, row for row with a split's images."""

    counts: np.ndarray  # (N, C) float32, >= 0
    columns: tuple[str, ...]  # canonical names (canonical_label), e.g. neutral, happy, ..., unknown, nf
    source: str  # the file, for messages and recipes

    def __len__(self) -> int:
        return int(self.counts.shape[0])


def _canonical_columns(names, path: Path) -> tuple[str, ...]:
    cols = tuple(canonical_label(str(n)) for n in names)
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise VoteError(f"{path}: columns {list(names)} name {', '.join(dup)} twice")
    return cols


def _check_rows(counts: np.ndarray, path: Path, where: Callable[[int], str] = "row {}".format) -> None:
    """Refuse what no target can come from: NaN, negative values; the first faulty row is named by
    ``where`` (its row in an array, its line in a CSV). All-zero rows mean "no votes" in FER+'s table
    (no match was found) and are left out later, so they pass here."""
    not_number = ~np.isfinite(counts).all(axis=1)
    bad = not_number | (np.nan_to_num(counts) < 0).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        why = "a value that is not a number" if not_number[i] else "a negative vote"
        raise VoteError(f"{path}: {where(i)} holds {why}")


def load_votes(path: Path, split: str, n_images: int, image_names: list[str] | None = None) -> Votes:
    """The votes for ``split`` in ``path`` (``.npz`` or ``.csv``), checked against the split's
    ``n_images`` rows (and, for a CSV keyed by file name, the split's ``image_names``)."""
    path = Path(path)
    if not path.is_file():
        raise VoteError(f"votes file not found: {path}")
    if path.suffix == ".npz":
        votes = _from_npz(path, split)
    elif path.suffix == ".csv":
        votes = _from_csv(path, split, n_images, image_names)
    else:
        raise VoteError(f"{path}: votes come as .npz (FER+ table per split) or .csv (soft labels)")
    if len(votes) != n_images:
        raise VoteError(f"{path}: {len(votes)} rows of votes for {split}, but the split has {n_images} images")
    return votes


def _from_npz(path: Path, split: str) -> Votes:
    with np.load(path) as data:
        key = next((k for k in _SPLIT_KEYS.get(split, (split,)) if k in data), None)
        if key is None:
            raise VoteError(f"{path}: no array for split {split!r} (has {', '.join(data.files)})")
        if "columns" not in data:
            raise VoteError(f"{path}: no 'columns' array naming the classes voted on")
        counts = np.asarray(data[key], dtype=np.float32)
        names = [str(c) for c in data["columns"]]
    if counts.ndim != 2 or counts.shape[1] != len(names):
        raise VoteError(f"{path}: key {key!r} has shape {counts.shape}, expected (N, {len(names)}) for columns {names}")
    _check_rows(counts, path)
    return Votes(counts, _canonical_columns(names, path), str(path))


def _from_csv(path: Path, split: str, n_images: int, image_names: list[str] | None) -> Votes:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise VoteError(f"{path}: empty file")
        rows = list(reader)
    header = [h.strip() for h in header]
    if "Usage" in header and "Image name" in header:  # FER+'s fer2013new.csv, row for row with fer2013.csv
        usage, name_col = header.index("Usage"), header.index("Image name")
        value_cols = [i for i in range(len(header)) if i not in (usage, name_col)]
        want = _CSV_USAGE.get(split, split)
        picked = [(r + 2, row) for r, row in enumerate(rows) if len(row) > usage and row[usage] == want]
        keys = None
    else:
        if "image" not in header:
            raise VoteError(f"{path}: a soft-label CSV needs a column 'image' (file name or row number) and one "
                            f"column per class; header is {header}")
        key_col = header.index("image")
        value_cols = [i for i in range(len(header)) if i != key_col]
        picked = [(r + 2, row) for r, row in enumerate(rows)]
        keys = [row[key_col].strip() if len(row) > key_col else "" for _, row in picked]
    names = [header[i] for i in value_cols]
    columns = _canonical_columns(names, path)
    known = (*FER_LABELS, "contempt", *REJECT_COLUMNS)
    unknown = [n for n, c in zip(names, columns, strict=True) if c not in known]
    if unknown:
        raise VoteError(f"{path}: unknown class column(s) {unknown}; use {', '.join(FER_LABELS)}, contempt, "
                        "unknown or NF (or their synonyms)")
    counts = np.zeros((len(picked), len(value_cols)), np.float32)
    for j, (line, row) in enumerate(picked):
        if len(row) != len(header):
            raise VoteError(f"{path}: line {line} has {len(row)} fields, the header {len(header)}")
        try:
            counts[j] = [float(row[i]) for i in value_cols]
        except ValueError:
            raise VoteError(f"{path}: line {line} holds a value that is not a number") from None
        _check_rows(counts[j:j + 1], path, lambda _i, line=line: f"line {line}")
        if keys is not None and not counts[j].any():
            raise VoteError(f"{path}: line {line} ({keys[j]}) has no votes: every class is 0")
    if keys is not None:
        counts = _align(path, keys, counts, n_images, image_names, [line for line, _ in picked])
    return Votes(counts, columns, str(path))


def _align(path: Path, keys: list[str], counts: np.ndarray, n_images: int, image_names: list[str] | None,
           lines: list[int]) -> np.ndarray:
    """Rows of a soft-label CSV put in the split's order, by file name or by row number; images the
    CSV does not name get no votes (left out of training, counted)."""
    if image_names is not None:
        index = {name: i for i, name in enumerate(image_names)}
        index.update({Path(name).name: i for i, name in enumerate(image_names) if Path(name).name not in index})
    out = np.zeros((n_images, counts.shape[1]), np.float32)
    seen = np.zeros(n_images, bool)
    for key, row, line in zip(keys, counts, lines, strict=True):
        if image_names is not None and key in index:
            i = index[key]
        elif key.isdigit() and int(key) < n_images:
            i = int(key)
        else:
            raise VoteError(f"{path}: line {line}: image {key!r} is not in the split"
                            + ("" if image_names is not None else " (row numbers 0 to "
                               f"{n_images - 1} name its images)"))
        if seen[i]:
            raise VoteError(f"{path}: line {line}: image {key!r} has a second row")
        seen[i] = True
        out[i] = row
    return out


def targets_for(votes: Votes, classes: tuple[str, ...] = FER_LABELS) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Vote shares over ``classes`` (N, len(classes)), the mask of usable rows, and the count of rows
    left out per reason (no votes; most votes for unknown, not a face, or a class the model lacks)."""
    idx = [votes.columns.index(c) if c in votes.columns else -1 for c in classes]
    counts = votes.counts
    has = counts.sum(axis=1) > 0
    top = counts.max(axis=1, keepdims=True)
    at_top = (counts == top) & has[:, None]
    ours = np.zeros(counts.shape[1], bool)
    ours[[i for i in idx if i >= 0]] = True
    foreign = (at_top & ~ours).any(axis=1)  # a rejecting or unknown class shares the top
    sub = np.stack([counts[:, i] if i >= 0 else np.zeros(len(counts), np.float32) for i in idx], axis=1)
    total = sub.sum(axis=1, keepdims=True)
    keep = has & ~foreign & (total[:, 0] > 0)
    targets = np.where(total > 0, sub / np.maximum(total, 1e-12), 0.0).astype(np.float32)
    left_out = {"no votes": int((~has).sum())}
    for c, name in enumerate(votes.columns):
        if not ours[c]:
            n = int((has & at_top[:, c]).sum())
            if n:
                left_out[f"most votes {name}"] = n
    return targets, keep, left_out


def majority_labels(votes: Votes, classes: tuple[str, ...] = FER_LABELS) -> np.ndarray:
    """Each row's majority class as an index into ``classes``, or -1 where there is none that counts:
    no votes, a tie at the top, or a majority for a column the model does not have (unknown, NF,
    contempt for a seven-class model)."""
    counts = votes.counts
    top = counts.max(axis=1)
    single = ((counts == top[:, None]).sum(axis=1) == 1) & (top > 0)
    winner = counts.argmax(axis=1)
    to_ours = np.array([classes.index(c) if c in classes else -1 for c in votes.columns], np.int64)
    return np.where(single, to_ours[winner], -1)


def with_votes(split, votes_path: Path, scoring: bool = False, label_weight: float = 0.0):
    """``split`` with people's votes as its targets: for training, the rows with usable votes and
    their vote shares (labels = the most-voted class); for ``scoring``, only the rows with a clear
    majority among the split's classes (labels = that majority). ``label_weight`` mixes the split's
    own one label per face into the training targets at that share (FER2013's keyword labels carry
    what the votes lack on some faces, fear most). Returns the split and what was left out."""
    if not 0.0 <= label_weight <= 1.0:
        raise VoteError(f"the given labels' share of the targets must be 0 to 1, not {label_weight}")
    votes = load_votes(votes_path, split.name.split("[")[0], len(split), split.files)
    targets, keep, left_out = targets_for(votes, split.classes)
    if label_weight and not scoring:
        own = np.eye(len(split.classes), dtype=np.float32)[split.labels.astype(np.int64)]
        targets = ((1.0 - label_weight) * targets + label_weight * own).astype(np.float32)
    if scoring:
        majority = majority_labels(votes, split.classes)
        ties = int((keep & (majority < 0)).sum())
        if ties:
            left_out["tie at the top"] = ties
        keep = majority >= 0
        labels = majority
    else:
        labels = targets.argmax(axis=1)
    out = split.take(keep)
    out.labels = labels[keep].astype(np.uint8)
    out.targets = targets[keep]
    log.info("%s: %d of %d faces carry %s votes%s; left out %s", split.name, len(out), len(split),
             Path(votes.source).name, " with a clear majority" if scoring else "",
             {k: v for k, v in left_out.items() if v})
    return out, left_out
