"""Training an emotion model on FER2013 (or from people's votes), on a 2-core machine or a lent GPU,
in parts: a killed or budgeted run resumes, a finished one can be continued (``--init``).

A run lives in one folder: ``recipe.json`` (everything needed to reproduce it), ``backup/``
(Keras' BackupAndRestore state, written every epoch, so a killed run resumes where it stopped),
``best.keras`` (best validation accuracy so far), ``history.csv`` and ``curves.png``; with
``--keep-epochs N`` also ``epochs/`` (the last N epochs' weights, for ``convert average``).
Running the same command again on the same folder resumes.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

from .data import FER_LABELS, Split, class_weights, load_split
from .errors import Refusal
from .recipe import Recipe, lr_at, make_batches, stored_recipe
from .run_folder import EpochBudget, keep_epochs_callback, plot_curves, slim_checkpoint
from .teachers import load_teacher
from .votes import with_votes

log = logging.getLogger(__name__)


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


def open_run(run_dir: Path, recipe: Recipe, time_budget_s: float = 0.0) -> EpochBudget | None:
    """Start a run folder with ``recipe``, or resume the one there if its recipe is the same (one that
    differs is refused: a new folder for a new recipe). A fresh run with a time budget gets the
    ``EpochBudget`` that fits its epoch count; a resumed one keeps the count its budget chose."""
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe_path = run_dir / "recipe.json"
    if recipe_path.exists():
        stored = stored_recipe(recipe_path)
        if time_budget_s and stored["epochs"] <= recipe.epochs:  # the budget chose the count before
            recipe.epochs = stored["epochs"]
        if stored != asdict(recipe):
            diff = sorted(k for k in stored if stored.get(k) != asdict(recipe).get(k))
            raise Refusal(f"{run_dir} holds a run with another recipe (differs in {diff}); use a new folder")
        log.info("resuming the run in %s", run_dir)
        return None
    recipe_path.write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    return EpochBudget(recipe, time_budget_s, recipe_path) if time_budget_s else None


def run_splits(data: Path, recipe: Recipe) -> tuple[Split, Split]:
    """The training and validation faces the recipe names: with ``votes``, the training faces with
    usable votes (their shares as targets) and the validation faces with a clear majority."""
    train_split = load_split(data, recipe.train_split)
    val_split = load_split(data, recipe.val_split)
    if recipe.votes:  # learn the share of votes; validate against the majority of them
        train_split, _ = with_votes(train_split, Path(recipe.votes), label_weight=recipe.label_weight)
        val_split, _ = with_votes(val_split, Path(recipe.votes), scoring=True)
    if recipe.train_limit:
        train_split = train_split.subset(recipe.train_limit, recipe.seed)
        val_split = val_split.subset(max(64, recipe.train_limit // 4), recipe.seed)
    log.info("train %d images, validation %d; class counts %s", len(train_split), len(val_split),
             train_split.class_counts().tolist())
    return train_split, val_split


def run_callbacks(run_dir: Path, recipe: Recipe, budget: EpochBudget | None, keep_epochs: int) -> list:
    """Backup every epoch (resume), the schedule, the best checkpoint, the history and its curves,
    early stopping, the time budget's count, and the last epochs' weights when asked for."""
    import keras

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
        callbacks.append(keep_epochs_callback(run_dir, keep_epochs))
    return callbacks


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
    budget = open_run(run_dir, recipe, time_budget_s)
    keras.utils.set_random_seed(recipe.seed)
    train_split, val_split = run_splits(data, recipe)
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
    model.fit(
        make_batches(train_split, recipe, training=True, weights=weights, workers=workers, teacher=teacher),
        validation_data=make_batches(val_split, recipe, training=False, workers=workers),
        epochs=recipe.epochs,
        shuffle=False,  # the batches reshuffle each epoch themselves, from the recipe's seed
        callbacks=run_callbacks(run_dir, recipe, budget, keep_epochs),
        verbose=1 if os.isatty(1) else 2,
    )
    best = run_dir / "best.keras"
    slim_checkpoint(best)
    (run_dir / "DONE").write_text("finished\n")
    return best
