"""A model to convert, in whichever format an engineer brings it.

- a Keras 3 ``.keras`` file (our run folders' ``best.keras``, or anyone's);
- a legacy Keras 2 / tf.keras ``.h5`` / ``.hdf5`` full model (how most published FER models are saved);
- a TensorFlow SavedModel directory (``saved_model.pb`` inside), converted from its serving signature;
- an ONNX graph (``.onnx``) or a ``torch.export`` program (``.pt2``): see ``onnx_source``.

Each comes out as a ``ModelSource`` that the quantizer converts and the evaluator runs in float, so
the int8 file is always checked against the model it came from.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import ModelSourceError

log = logging.getLogger(__name__)


@dataclass
class ModelSource:
    foreign: ClassVar[bool] = False  # a graph from another framework (onnx_source.OnnxSource): True
    path: Path
    kind: str  # "keras", "h5" or "savedmodel"
    keras_model: Any = None  # a Keras model (keras, h5)
    signature: Any = None  # a SavedModel's serving function (savedmodel)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        if self.keras_model is not None:
            return tuple(self.keras_model.input_shape)
        spec = next(iter(self.signature.structured_input_signature[1].values()))
        return tuple(spec.shape.as_list())

    @property
    def outputs(self) -> int:
        if self.keras_model is not None:
            return int(self.keras_model.output_shape[-1])
        spec = next(iter(self.signature.structured_outputs.values()))
        return int(spec.shape[-1])

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Float outputs for a batch of model inputs."""
        if self.keras_model is not None:
            return np.asarray(self.keras_model.predict(x, batch_size=batch_size, verbose=0))
        import tensorflow as tf

        key = next(iter(self.signature.structured_input_signature[1]))
        out = []
        for i in range(0, len(x), batch_size):
            res = self.signature(**{key: tf.constant(x[i:i + batch_size], tf.float32)})
            out.append(next(iter(res.values())).numpy())
        return np.concatenate(out)


FOREIGN_SUFFIXES = (".onnx", ".pt2")


def load_source(path: Path, size: tuple[int, int] | None = None, color: str | None = None):
    """The model at ``path`` as a ``ModelSource`` (Keras, SavedModel) or an ``onnx_source.OnnxSource``
    (ONNX, torch.export); ``size`` and ``color`` (the flags) fix a graph's dynamic input."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = Path(path)
    if not path.exists():
        raise ModelSourceError(f"{path}: no such file or directory")
    if path.suffix.lower() in FOREIGN_SUFFIXES:
        from .onnx_source import load_onnx, load_program

        return (load_onnx if path.suffix.lower() == ".onnx" else load_program)(path, size, color)
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ModelSourceError(f"{path}: a directory, but not a TensorFlow SavedModel (no saved_model.pb)")
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:
            raise ModelSourceError(f"{path}: TensorFlow cannot load this SavedModel: {exc}") from exc
        signatures = dict(loaded.signatures)
        sig = signatures.get("serving_default") or next(iter(signatures.values()), None)
        if sig is None:
            raise ModelSourceError(f"{path}: the SavedModel has no serving signature to convert")
        source = ModelSource(path, "savedmodel", signature=sig)
        source._keep = loaded  # type: ignore[attr-defined]  # the signature needs its object alive
        return source
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelSourceError(f"{path}: not a .keras, .h5, .onnx, .pt2 or SavedModel directory")
    import keras

    from . import architectures  # noqa: F401  (registers the layers our own models use)

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:
        hint = " (an .h5 must hold the whole model, not only weights)" if suffix != ".keras" else ""
        raise ModelSourceError(f"{path}: Keras cannot load it{hint}: {exc}") from exc
    return ModelSource(path, "keras" if suffix == ".keras" else "h5", keras_model=model)


def check_probabilities(source, x: np.ndarray) -> None:
    """The device treats outputs as class probabilities (it smooths and thresholds them): logits or
    sigmoid scores would make every figure wrong, so they are refused with the fix; so are NaN and an
    output that does not depend on the face (a broken export, or weights that never trained)."""
    y = np.asarray(source.predict(x), np.float64)
    if not np.isfinite(y).all():
        raise ModelSourceError(f"{source.path}: NaN or infinite outputs on {int((~np.isfinite(y)).any(axis=1).sum())} "
                               f"of {len(y)} calibration faces")
    if len(y) > 1 and float(np.ptp(y, axis=0).max()) < 1e-6:
        raise ModelSourceError(f"{source.path}: the same output for every calibration face ({len(y)} faces): "
                               "the model does not read its input")
    sums = y.sum(axis=1)
    if y.min() < -1e-4 or np.abs(sums - 1.0).max() > 1e-2:
        raise ModelSourceError(f"{source.path}: its outputs are not probabilities (row sums "
                               f"{sums.min():.3f}-{sums.max():.3f}); end the model with a softmax")
