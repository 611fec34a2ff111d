"""Training an emotion model from scratch on FER2013, on a 2-core machine, across sessions.

A run lives in one folder: ``recipe.json`` (everything needed to reproduce it), ``backup/``
(Keras' BackupAndRestore state, written every epoch, so a killed run resumes where it stopped),
``best.keras`` (best validation accuracy so far), ``history.csv`` and ``curves.png``; with
``--keep-epochs N`` also ``epochs/`` (the last N epochs' weights, for ``convert average``).
Running the same command again on the same folder resumes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .data import FER_LABELS, Split, canonical_label, class_weights, load_split
from .errors import Refusal
from .votes import with_votes

log = logging.getLogger(__name__)


@dataclass
class Recipe:
    """Everything that decides the trained weights; stored in the run folder and in the model card."""

    architecture: str = "emocnn"
    width: float = 1.0
    stem_stride: int | None = None  # None: the architecture's own (see architectures.py)
    dropout: float = 0.3
    input_size: int = 48
    color: str = "gray"
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-3
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    class_weight_power: float = 0.5
    early_stop_patience: int = 15
    seed: int = 1234
    train_split: str = "train"
    val_split: str = "public_test"
    train_limit: int = 0  # 0 = all; a small number for smoke runs
    augment: dict[str, float] = field(
        default_factory=lambda: {
            "flip": 1.0,
            "shift": 0.1,
            "rotate_deg": 12.0,
            "zoom": 0.12,
            "brightness": 0.25,
            "contrast": 0.3,
            # the camera's faults (augment.corrupt): the share of faces that get each
            "dark": 0.15,
            "blur": 0.25,
            "downscale": 0.25,
            "noise": 0.2,
            "jpeg": 0.2,
        }
    )
    pixel_scale: float = 1.0 / 255.0
    pixel_offset: float = 0.0
    teacher: str = ""  # a trained model (.keras with its recipe.json beside it) whose probabilities are learned too
    teacher_weight: float = 0.0  # the teacher's share of each target (0.5-0.9 usual with a teacher)
    init: str = ""  # a trained model of the same architecture whose weights start the run (a longer run in parts)
    votes: str = ""  # people's votes per face (FER+ .npz or a soft-label CSV): targets are their shares (votes.py)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, 1 if self.color == "gray" else 3)


def lr_at(epoch: int, recipe: Recipe) -> float:
    """Linear warm-up, then cosine decay to 1% of the peak by the last epoch."""
    if epoch < recipe.warmup_epochs:
        return recipe.lr * (epoch + 1) / recipe.warmup_epochs
    span = max(1, recipe.epochs - recipe.warmup_epochs)
    t = min(1.0, (epoch - recipe.warmup_epochs) / span)
    return recipe.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def make_batches(split: Split, recipe: Recipe, training: bool, weights: dict[int, float] | None = None,
                 workers: int = 1, teacher=None):
    """The training (augmented, shuffled, class-weighted, distilled) or validation feed for ``fit``."""
    from .augment import FaceBatches

    return FaceBatches(split, len(FER_LABELS), recipe.batch_size, recipe.input_size, recipe.color,
                       recipe.pixel_scale, recipe.pixel_offset, recipe.augment if training else None,
                       weights if training else None, recipe.seed, workers=workers,
                       teacher=teacher if training else None, teacher_weight=recipe.teacher_weight)


def load_teacher(path: Path, threads: int = 0):
    """A trained model as a function of augmented faces (N, H, W, 0-255) -> probabilities, with the
    preprocessing its own recipe or card gives (it may read 64 px RGB where the student reads 48 px gray).

    A ``.tflite`` with its card (the shipped model, or any ``convert quantize`` output) teaches too, on
    the device's runtime: the int8 emocnn with its mirror view reads a batch of 64 in about a third of
    the float ensemble's time on two cores (52 ms against 168 on an AMD EPYC), the same accuracy, and a
    CPU run spends that time on every step."""
    if path.suffix == ".tflite":
        return _tflite_teacher(path, threads)
    import keras

    from ..device.perception.model_card import batch_to_model_input
    from . import architectures  # noqa: F401  (the Mirror layer of ensembles)
    from .quantize import preprocess_for

    stored = path.parent / "recipe.json"
    if not path.is_file() or not stored.is_file():
        raise Refusal(f"teacher {path}: needs the model file and its run folder's recipe.json beside it "
                         "(or a .tflite with its card)")
    model = keras.saving.load_model(path, compile=False)
    pre = preprocess_for(json.loads(stored.read_text()))
    if int(model.output_shape[-1]) != len(FER_LABELS):
        raise Refusal(f"teacher {path}: {model.output_shape[-1]} outputs, the student learns {len(FER_LABELS)}")
    log.info("distilling from %s (%s), %d parameters", path, model.name, model.count_params())
    # The batch workers are threads, and a Keras model's predict state is not theirs to share: on the
    # JAX backend two concurrent predict_on_batch calls fail ("Buffer has been deleted or donated").
    lock = threading.Lock()

    def read(faces: np.ndarray) -> np.ndarray:
        x = batch_to_model_input(faces, pre)
        with lock:
            return np.asarray(model.predict_on_batch(x))

    return read


def _tflite_teacher(path: Path, threads: int):
    """An int8 model and its card as a teacher: its labels are matched to the student's by name
    (synonyms included), so a card in another order still teaches; one it lacks is refused."""
    from ..device.perception.emotion import EmotionModel
    from ..device.perception.model_card import ModelError, batch_to_model_input

    try:
        model = EmotionModel(path, threads=threads or min(4, os.cpu_count() or 1))
    except (ModelError, OSError) as e:
        raise Refusal(f"teacher {path}: {e}") from e
    names = [canonical_label(label) for label in model.labels]
    missing = [label for label in FER_LABELS if label not in names]
    if missing:
        raise Refusal(f"teacher {path}: its card has no {', '.join(missing)} (labels {list(model.labels)}); "
                         f"the student learns {list(FER_LABELS)}")
    order = [names.index(label) for label in FER_LABELS]
    log.info("distilling from %s (%s, int8 on %s)", path, model.card.id, model.runtime)
    lock = threading.Lock()  # one interpreter: the batch workers take turns

    def read(faces: np.ndarray) -> np.ndarray:
        x = batch_to_model_input(faces, model.card.preprocess)
        with lock:
            probs = model.predict_batch(x)[:, order]
        # a card with classes beyond FER's: its share of them goes back to FER's seven, evenly where
        # it put everything on them
        total = probs.sum(axis=1, keepdims=True)
        return np.where(total > 0, probs / np.maximum(total, 1e-12), 1.0 / len(FER_LABELS)).astype(np.float32)

    return read


def init_weights(model, path: Path) -> None:
    """Start ``model`` from the weights of the trained model in ``path`` (same architecture, width and
    input): a run continued on another lent machine, with a fresh schedule, where the first one's time
    ran out. Anything else is refused, naming both networks."""
    import keras

    from . import architectures  # noqa: F401  (custom layers)

    if not path.is_file():
        raise Refusal(f"--init {path}: no such model file")
    source = keras.saving.load_model(path, compile=False)
    ours = [tuple(w.shape) for w in model.weights]
    theirs = [tuple(w.shape) for w in source.weights]
    if ours != theirs:
        raise Refusal(f"--init {path}: {source.name} ({source.count_params()} parameters) does not match "
                         f"{model.name} ({model.count_params()} parameters): same --arch, --width, --stem-stride, "
                         "--size and --color needed")
    model.set_weights(source.get_weights())
    log.info("weights from %s (%s)", path, source.name)


def plot_curves(history_csv: Path, out_png: Path) -> None:
    """Loss and accuracy per epoch, train vs validation, as a PNG a person can read at a glance."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(history_csv.open()))
    if not rows:
        return
    ep = [int(r["epoch"]) + 1 for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        if key in rows[0]:
            ax1.plot(ep, [float(r[key]) for r in rows], label=label)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation")):
        if key in rows[0]:
            ax2.plot(ep, [float(r[key]) for r in rows], label=label)
    ax1.set(title="loss", xlabel="epoch")
    ax2.set(title="accuracy", xlabel="epoch")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def slim_checkpoint(path: Path) -> None:
    """Rewrite a ``.keras`` checkpoint without its optimizer state (a third of the size with Adam's
    two slots gone): what quantize, ensemble and the repository need is the weights."""
    import keras

    model = keras.saving.load_model(path, compile=False)
    tmp = path.with_name(path.stem + ".slim.keras")
    model.save(tmp)
    tmp.replace(path)


class EpochBudget:
    """Fit a run's epoch count into a wall-clock budget, as on a lent GPU with minutes to spare, so
    the learning-rate schedule runs to its end inside it.

    Nothing is decided during warm-up (its rates do not depend on the count; the first epoch also
    pays for start-up and compilation). From the last warm-up epoch on, each epoch's duration judges
    the count again, until half the budget is spent; then it stays. Judging once was not enough:
    runs started together slow each other's first epochs (one's XLA compile takes the CPUs from the
    others), and on a lent H200 the pace after that was a third of the one judged, so the
    runs ended at half their budget. A count that grows moves the cosine's later rates a little later;
    early in the run that is a small change. Each count chosen goes into the stored recipe, so the
    run can be repeated exactly without a budget."""

    def __init__(self, recipe: Recipe, budget_s: float, recipe_path: Path) -> None:
        self.recipe, self.budget_s, self.recipe_path = recipe, budget_s, recipe_path
        self.most = recipe.epochs
        self.started = self.epoch_started = time.monotonic()

    def epoch_begin(self) -> None:
        self.epoch_started = time.monotonic()

    def epoch_end(self, epoch: int) -> None:
        now = time.monotonic()
        spent = now - self.started
        if epoch < max(0, self.recipe.warmup_epochs - 1) or spent > self.budget_s / 2:
            return
        pace = now - self.epoch_started
        fits = epoch + 1 + int(0.97 * (self.budget_s - spent) / pace)
        epochs = max(epoch + 2, min(self.most, fits))
        if epochs == self.recipe.epochs:
            return
        log.info("%.1f s an epoch; %d epochs fit in %.0f s (asked for at most %d)",
                 pace, epochs, self.budget_s, self.most)
        self.recipe.epochs = epochs
        self.recipe_path.write_text(json.dumps(asdict(self.recipe), indent=2) + "\n")


def _limit_threads(backend: str, threads: int) -> None:
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already ran in this process (a caller that trains twice)
            log.warning("TensorFlow's thread pools are already set in this process; --threads %d not applied",
                        threads)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)


def _stored_recipe(recipe_path: Path) -> dict:
    """A run folder's recipe, with fields added since it was written at their defaults (which
    reproduce what the run did before they existed)."""
    return {**asdict(Recipe()), **json.loads(recipe_path.read_text())}


def train(data: Path, run_dir: Path, recipe: Recipe, threads: int = 0, workers: int = 1,
          time_budget_s: float = 0.0, keep_epochs: int = 0) -> Path:
    """Train (or resume) in ``run_dir``; returns the path of the best checkpoint.

    ``keep_epochs`` N keeps the weights of the last N epochs in ``run_dir/epochs/`` for a weight
    average (``convert average``); it does not change the training, so it is not in the recipe.

    ``time_budget_s`` (a fresh run only) lets the first epoch's duration decide the epoch count,
    at most ``recipe.epochs`` (see ``EpochBudget``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from .architectures import build

    if threads:
        _limit_threads(keras.backend.backend(), threads)
    log.info("Keras %s on the %s backend", keras.__version__, keras.backend.backend())
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe_path = run_dir / "recipe.json"
    budget = None
    if recipe_path.exists():
        stored = _stored_recipe(recipe_path)
        if time_budget_s and stored["epochs"] <= recipe.epochs:  # the budget chose the count before
            recipe.epochs = stored["epochs"]
        if stored != asdict(recipe):
            diff = sorted(k for k in stored if stored.get(k) != asdict(recipe).get(k))
            raise Refusal(f"{run_dir} holds a run with another recipe (differs in {diff}); use a new folder")
        log.info("resuming the run in %s", run_dir)
    else:
        recipe_path.write_text(json.dumps(asdict(recipe), indent=2) + "\n")
        if time_budget_s:
            budget = EpochBudget(recipe, time_budget_s, recipe_path)

    keras.utils.set_random_seed(recipe.seed)
    train_split = load_split(data, recipe.train_split)
    val_split = load_split(data, recipe.val_split)
    if recipe.votes:  # learn the share of votes; validate against the majority of them
        train_split, _ = with_votes(train_split, Path(recipe.votes))
        val_split, _ = with_votes(val_split, Path(recipe.votes), scoring=True)
    if recipe.train_limit:
        train_split = train_split.subset(recipe.train_limit, recipe.seed)
        val_split = val_split.subset(max(64, recipe.train_limit // 4), recipe.seed)
    log.info("train %d images, validation %d; class counts %s", len(train_split), len(val_split),
             train_split.class_counts().tolist())

    model = build(recipe.architecture, recipe.input_shape, len(FER_LABELS), width=recipe.width,
                  dropout=recipe.dropout, stem_stride=recipe.stem_stride)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=recipe.lr, weight_decay=recipe.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    log.info("%s: %d parameters", model.name, model.count_params())
    if recipe.init:
        init_weights(model, Path(recipe.init))  # a resumed run then takes its backup's weights over these
    weights = class_weights(train_split.labels, len(FER_LABELS), recipe.class_weight_power)
    teacher = load_teacher(Path(recipe.teacher), threads) if recipe.teacher else None

    class Curves(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if budget is not None:
                budget.epoch_begin()

        def on_epoch_end(self, epoch, logs=None):
            plot_curves(run_dir / "history.csv", run_dir / "curves.png")
            if budget is not None:
                budget.epoch_end(epoch)
            if epoch + 1 >= recipe.epochs:  # the budget may have shortened the run
                self.model.stop_training = True

    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.LearningRateScheduler(lambda e: lr_at(e, recipe)),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_accuracy", save_best_only=True),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=recipe.early_stop_patience,
                                      restore_best_weights=False),
        Curves(),
    ]
    if keep_epochs > 0:
        from .weight_average import keep_epochs_callback

        callbacks.append(keep_epochs_callback(run_dir, keep_epochs))
    model.fit(
        make_batches(train_split, recipe, training=True, weights=weights, workers=workers, teacher=teacher),
        validation_data=make_batches(val_split, recipe, training=False, workers=workers),
        epochs=recipe.epochs,
        shuffle=False,  # the batches reshuffle each epoch themselves, from the recipe's seed
        callbacks=callbacks,
        verbose=1 if os.isatty(1) else 2,
    )
    best = run_dir / "best.keras"
    slim_checkpoint(best)
    (run_dir / "DONE").write_text("finished\n")
    return best
