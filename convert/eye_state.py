"""``emocast convert eyes``: train the device's eye-state classifier and quantize it to int8.

Why a classifier: a lid-gap threshold (dlib's EAR, the iris model's gap) cannot tell the narrow open
eyes of a smile or a downward glance from shut ones; the pixels can (a dark iris or a glint between
the lids, against a line of lashes). Why these labels: no eye-state data set had open and closed eyes
from one source (a classifier trained on two sources learns their crop styles), so the team labelled
FER2013's own faces by eye (``labels/fer2013_eye_state.csv``):

- ``by_eye``: faces the iris model read narrow (the 1476 with the smallest lid gap, and 240 drawn at
  random with a gap of 0.15-0.20, where smiles and squints sit), each looked at on contact sheets of
  the eye band at 5x and marked ``closed``, ``open`` or ``unclear`` (unclear ones are not trained on);
- ``iris_wide_open``: 2500 faces drawn at random among those the iris model reads wide open (mean lid
  gap >= 0.22, Face Mesh presence >= 0.5); 60 of them looked at by eye were all open or unclear.

Each row names the face by its index in the train split and the first 8 hex digits of the SHA-1 of
its 48x48 pixels, so a copy of FER2013 in another layout (the Kaggle CSV) is matched by content and a
different copy is refused rather than silently mislabelled.

The eyes are cut exactly as the device cuts them (``eyes.eye_patches`` on Face Mesh landmarks, then
``eyes.classifier_input``): the face is enlarged 4x with a border first so that the landmark model
sees it as it sees a face in a frame.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .data import DataError, Split, load_split

log = logging.getLogger(__name__)

LABELS_FILE = Path(__file__).with_name("labels") / "fer2013_eye_state.csv"
STATES = ("open", "closed", "unclear")
ENLARGE = 4  # FER faces are 48 px: Face Mesh reads them enlarged, with a border
BORDER = 48


@dataclass(frozen=True)
class EyeLabel:
    index: int
    digest: str
    state: str  # open, closed or unclear
    how: str  # by_eye or iris_wide_open


def face_digest(face: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(face, dtype=np.uint8).tobytes()).hexdigest()[:8]


def read_labels(path: Path = LABELS_FILE) -> list[EyeLabel]:
    """The label file's rows; a bad row is an error naming the file, line and column."""
    rows: list[EyeLabel] = []
    try:
        fh = path.open(newline="")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the eye-state labels: {exc}") from exc
    with fh:
        reader = csv.DictReader(fh)
        missing = {"index", "sha1_8", "eye_state", "how"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            if row["eye_state"] not in STATES:
                raise DataError(f"{path}: line {reader.line_num}: eye_state {row['eye_state']!r} is not one of "
                                f"{', '.join(STATES)}")
            try:
                index = int(row["index"])
            except ValueError:
                raise DataError(f"{path}: line {reader.line_num}: index {row['index']!r} is not a number") from None
            rows.append(EyeLabel(index, row["sha1_8"], row["eye_state"], row["how"]))
    return rows


def match_labels(split: Split, labels: list[EyeLabel], source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``split`` and closed (1) / open (0) targets of the labelled faces (unclear left out).
    A face is found at its index when the pixels agree, else by its digest anywhere in the split; a
    label whose face is nowhere is an error (another copy of FER2013, or not FER2013's train split)."""
    by_digest: dict[str, int] | None = None
    idx, target, lost = [], [], 0
    for lab in labels:
        if lab.state == "unclear":
            continue
        i = lab.index
        if not (0 <= i < len(split) and face_digest(split.images[i]) == lab.digest):
            if by_digest is None:
                by_digest = {face_digest(f): k for k, f in enumerate(split.images)}
            found = by_digest.get(lab.digest)
            if found is None:
                lost += 1
                continue
            i = found
        idx.append(i)
        target.append(1 if lab.state == "closed" else 0)
    if lost:
        raise DataError(f"{source}: {lost} of the labelled faces are not in this train split (the labels are "
                        f"for FER2013's train split, as fer2013.csv or the project's .npz)")
    return np.array(idx, np.int64), np.array(target, np.int64)


def eye_inputs(faces: np.ndarray, size: int, progress: bool = True) -> np.ndarray:
    """(N, 2, size, size) uint8: each 48x48 face's right (mirrored) and left eye as the classifier reads
    them, cut on Face Mesh's landmarks of the face enlarged (see ``enlarge``) as on the device."""
    from tqdm import tqdm

    from ..device.perception.detectors import make_detector
    from ..device.perception.eyes import classifier_input, eye_patches
    from ..device.perception.faces import detect_faces
    from ..device.perception.landmarks import FaceMeshLandmarks

    detector = make_detector("blazeface", fallback=None)
    mesh = FaceMeshLandmarks()
    side = faces.shape[1] * ENLARGE
    whole = (BORDER + side // 12, BORDER + side // 8, side * 5 // 6, side * 5 // 6)  # the crop is the face
    out = np.empty((len(faces), 2, size, size), np.uint8)
    for k, face in enumerate(tqdm(faces, desc="eyes", unit="face", disable=not progress)):
        big = enlarge(face)
        boxes = detect_faces(detector, big, 320, 40)
        box = max(boxes, key=lambda b: b[2] * b[3]) if boxes else whole
        right, left = eye_patches(big, mesh.read(big, box).points)
        out[k, 0], out[k, 1] = classifier_input(right, size), classifier_input(left, size)
    return out


def enlarge(face: np.ndarray) -> np.ndarray:
    big = cv2.resize(face, None, fx=ENLARGE, fy=ENLARGE, interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(big, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_REPLICATE)


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Eye patches (N, S, S) float in [0, 1] as a camera and a landmark model may give them: the crop
    off by a few pixels, turned and scaled; blur, a smaller eye enlarged back, light, noise."""
    n, s = x.shape[:2]
    out = np.empty_like(x)
    for k in range(n):
        m = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-12, 12), rng.uniform(0.88, 1.12))
        m[:, 2] += rng.uniform(-0.08, 0.08, 2) * s
        im = cv2.warpAffine(x[k], m, (s, s), borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.3:
            im = cv2.GaussianBlur(im, (0, 0), rng.uniform(0.5, 1.2))
        if rng.random() < 0.3:
            f = rng.uniform(0.4, 0.8)
            im = cv2.resize(cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_AREA), (s, s))
        im = np.clip(im, 0.0, 1.0) ** rng.uniform(0.7, 1.4) * rng.uniform(0.6, 1.4) + rng.uniform(-0.2, 0.2)
        out[k] = np.clip(im + rng.normal(0.0, 0.02, im.shape), 0.0, 1.0)
    return out


def build_model(size: int):
    """Three conv blocks (16, 32, 64 filters) and a sigmoid: about 65 k parameters, tens of
    microseconds an eye on one core in int8."""
    import keras

    layers = keras.layers
    inp = keras.Input((size, size, 1))
    h = inp
    for filters in (16, 32, 64):
        for _ in range(2):
            h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
            h = layers.BatchNormalization()(h)
            h = layers.ReLU()(h)
        h = layers.MaxPooling2D()(h)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(0.3)(h)
    return keras.Model(inp, layers.Dense(1, activation="sigmoid")(h), name="eye_state")


def scores(p_closed: np.ndarray, closed: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, and each class's recall, of per-eye probabilities against per-face targets."""
    said = p_closed >= threshold
    truth = closed.astype(bool)
    return {"accuracy": round(float(np.mean(said == truth)), 4),
            "closed_recall": round(float(np.mean(said[truth])), 4) if truth.any() else float("nan"),
            "open_recall": round(float(np.mean(~said[~truth])), 4) if (~truth).any() else float("nan")}


def eye_batches(x: np.ndarray, y: np.ndarray, w: np.ndarray, rng: np.random.Generator, batch_size: int = 64):
    """Training eyes for ``fit``: shuffled and augmented afresh each epoch (``augment``), with their
    sample weights."""
    import keras

    class EyeBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.on_epoch_end()

        def __len__(self) -> int:
            return -(-len(x) // batch_size)

        def on_epoch_end(self) -> None:
            order = rng.permutation(len(x))
            self.x, self.y, self.w = augment(x[order], rng)[..., None], y[order], w[order]

        def __getitem__(self, i: int):
            part = slice(i * batch_size, (i + 1) * batch_size)
            return self.x[part], self.y[part], self.w[part]

    return EyeBatches()


def held_out_scores(xv: np.ndarray, yv: np.ndarray, threshold: float):
    """A callback that adds the held-out eyes' accuracy and each class's recall to each epoch's logs
    (and so to ``history.csv`` through ``CSVLogger``)."""
    import keras

    class HeldOut(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pv = self.model.predict(xv[..., None], verbose=0).reshape(-1)
            if logs is not None:
                logs.update({f"val_{k}": v for k, v in scores(pv, yv, threshold).items()})

    return HeldOut()


def _eyes_of(x: np.ndarray, closed: np.ndarray, idx: np.ndarray, hard_open: set[int], mask: np.ndarray,
             size: int, hard_open_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two eyes a face, each with the face's label; hard open faces weigh more (they are few)."""
    xs = x[mask].reshape(-1, size, size)
    ys = np.repeat(closed[mask], 2).astype(np.float32)
    ws = np.repeat(np.where(np.isin(idx[mask], list(hard_open)), hard_open_weight, 1.0), 2)
    return xs, ys, ws


def _write_int8(model, out: Path, xt: np.ndarray, rng: np.random.Generator, size: int, card: dict,
                xv: np.ndarray, yv: np.ndarray, threshold: float) -> dict:
    """Quantize to int8 (calibrated on training eyes), write ``out`` and its card, and score the file
    through the device's own class and quantization on the held-out eyes."""
    from emocast.contract.model_card import Preprocess, sha256_of

    from ..device.perception.eyes import EyeStateModel
    from .quantize import convert_keras

    pre = Preprocess(color="gray", size=(size, size), pixel_scale=1.0 / 255.0, pixel_offset=0.0, crop_margin=0.0)
    calib = (xt[rng.permutation(len(xt))[:400]] * 255.0).round().astype(np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(convert_keras(model, pre, "int8", calib))
    card = {"schema": "emocast.eye_model/1", "file": out.name, "sha256": sha256_of(out), "input_size": size,
            "closed_p": threshold, **card}
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    device_model = EyeStateModel(out)
    p8 = np.array([device_model.closed_of(cv2.resize((e * 255).round().astype(np.uint8), (64, 64),
                                                     interpolation=cv2.INTER_NEAREST)) for e in xv])
    card["int8"] = scores(p8, yv, threshold)
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def train_eye_state(data: Path, out: Path, checkpoint_dir: Path, labels_path: Path = LABELS_FILE,
                    epochs: int = 30, size: int = 32, seed: int = 1, held_out: float = 0.15,
                    hard_open_weight: float = 3.0, threshold: float = 0.5, progress: bool = True) -> dict:
    """Train on the labelled train-split faces but a held-out share (grouped by face), score that
    share, quantize to int8 and write ``out`` (.tflite) with its card (.json) beside it, and the float
    model and its history to ``checkpoint_dir``. Returns the card."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from .run_folder import plot_curves, slim_checkpoint

    split = load_split(data, "train")
    labels = read_labels(labels_path)
    idx, closed = match_labels(split, labels, data)
    hard_open = {lab.index for lab in labels if lab.how == "by_eye" and lab.state == "open"}
    log.info("%d labelled faces: %d closed, %d open (%d of them narrow-looking, labelled by eye)",
             len(idx), int(closed.sum()), int((closed == 0).sum()), len(hard_open))
    x = eye_inputs(split.images[idx], size, progress).astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    test = rng.random(len(idx)) < held_out
    xt, yt, wt = _eyes_of(x, closed, idx, hard_open, ~test, size, hard_open_weight)
    xv, yv, _ = _eyes_of(x, closed, idx, hard_open, test, size, hard_open_weight)
    wt = wt * np.where(yt == 1, (yt == 0).sum() / max(1, (yt == 1).sum()), 1.0)  # classes balanced
    model = build_model(size)
    steps = epochs * (len(xt) // 64 + 1)
    model.compile(keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(2e-3, steps), weight_decay=1e-3),
                  "binary_crossentropy", metrics=["accuracy"])
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (checkpoint_dir / "history.csv").unlink(missing_ok=True)
    model.fit(eye_batches(xt, yt, wt, rng), epochs=epochs, verbose=1 if progress and os.isatty(2) else 0,
              callbacks=[held_out_scores(xv, yv, threshold),
                         keras.callbacks.CSVLogger(str(checkpoint_dir / "history.csv"))])
    model.save(checkpoint_dir / "best.keras")
    slim_checkpoint(checkpoint_dir / "best.keras")  # the weights are what the repository keeps
    plot_curves(checkpoint_dir / "history.csv", checkpoint_dir / "curves.png")
    pv = model.predict(xv[..., None], verbose=0).reshape(-1)
    card = {"labels": f"{labels_path.name}: {int(closed.sum())} closed and {int((closed == 0).sum())} open FER2013 "
                      f"train faces ({len(hard_open)} narrow-looking open ones labelled by eye)",
            "held_out_faces": int(test.sum()), "float": scores(pv, yv, threshold)}
    return _write_int8(model, out, xt, rng, size, card, xv, yv, threshold)
