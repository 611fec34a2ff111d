"""Teachers for distillation (``convert train --teacher``): a trained model as a function of augmented
faces -> probabilities over FER's seven classes, whatever its own input and label order."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from .data import FER_LABELS, canonical_label
from .errors import Refusal

log = logging.getLogger(__name__)


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

    from emocast.contract.model_card import batch_to_model_input

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
    from emocast.contract.model_card import ModelError, batch_to_model_input

    from ..device.perception.emotion import EmotionModel

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
