"""A training run's recipe: everything that decides the trained weights, stored in the run folder
(``recipe.json``) and in the model card, and the learning-rate schedule and batches it implies."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .data import FER_LABELS, Split


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
    label_weight: float = 0.0  # with votes: the share of each target given to the data set's own label

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


def stored_recipe(recipe_path: Path) -> dict:
    """A run folder's recipe, with fields added since it was written at their defaults (which
    reproduce what the run did before they existed)."""
    return {**asdict(Recipe()), **json.loads(recipe_path.read_text())}
