"""What a run folder keeps and how: its curves, a slim checkpoint, the epoch count fitted to a time
budget, and the last epochs' weights for ``convert average`` (``--keep-epochs``)."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .recipe import Recipe

log = logging.getLogger(__name__)

EPOCHS_DIR = "epochs"
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.weights\.npz$")


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


def epoch_number(path: Path) -> int:
    """The epoch a kept weights file is of (``epoch_file``'s inverse)."""
    m = _EPOCH_FILE.search(path.name)
    if not m:
        raise ValueError(f"{path}: not a kept epoch's weights file")
    return int(m.group(1))


def epoch_file(run_dir: Path, epoch: int) -> Path:
    """Where ``--keep-epochs`` keeps the weights after ``epoch`` (counted from 1, as the logs do)."""
    return run_dir / EPOCHS_DIR / f"epoch_{epoch:03d}.weights.npz"


def kept_epochs(run_dir: Path) -> dict[int, Path]:
    """The epoch weights a run folder holds, by epoch number."""
    found = {}
    for p in sorted((run_dir / EPOCHS_DIR).glob("epoch_*.weights.npz")):
        m = _EPOCH_FILE.search(p.name)
        if m:
            found[int(m.group(1))] = p
    return found


def save_epoch(model, path: Path) -> None:
    """The network's weights alone, in ``model.weights`` order (Keras' own ``save_weights`` also
    writes the optimizer's slots: three times the size, and nothing an average needs)."""
    tmp = path.with_name(path.name.replace(".weights.npz", ".tmp.npz"))
    with tmp.open("wb") as fh:  # a kill mid-write leaves no half file under the real name
        np.savez(fh, *[np.asarray(w) for w in model.weights])
    tmp.replace(path)


def load_epoch(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def keep_epochs_callback(run_dir: Path, keep: int):
    """A Keras callback that saves each epoch's weights and deletes all but the last ``keep``."""
    import keras

    class KeepEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            path = epoch_file(run_dir, epoch + 1)
            path.parent.mkdir(exist_ok=True)
            save_epoch(self.model, path)
            kept = kept_epochs(run_dir)
            for old in sorted(kept)[:-keep]:
                kept[old].unlink()

    return KeepEpochs()
