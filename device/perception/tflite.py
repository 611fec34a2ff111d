"""The TFLite interpreter every model of the device runs on (emotion, eye state, Face Mesh, BlazeFace),
and the int8 quantization of their inputs and outputs.

The interpreter comes from ``ai_edge_litert`` (works with numpy 2, fastest measured), else
``tflite_runtime``, else ``tensorflow.lite``: the device never needs TensorFlow itself.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np

from emocast.contract.model_card import ModelError

from .native_output import native_stderr_to_log

log = logging.getLogger(__name__)

# (name shown in logs and info, module to import, attribute path to the Interpreter class).
# TensorFlow's public ``tf.lite`` is an attribute of the package: importing the module
# ``tensorflow.lite`` gives an object without ``Interpreter``.
_RUNTIMES = (
    ("ai_edge_litert.interpreter", "ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime.interpreter", "tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow.lite", "tensorflow", "lite.Interpreter"),
)


def interpreter_class() -> tuple[type, str]:
    """The first TFLite interpreter that imports, and its module name (see ``load_interpreter``)."""
    errors = []
    for name, module, attr in _RUNTIMES:
        try:
            return _runtime_class(module, attr), name
        except Exception as exc:  # a broken install raises more than ImportError (numpy ABI errors)
            errors.append(f"{name}: {exc}")
    raise ModelError("no TFLite interpreter could be imported; install ai-edge-litert. Tried: " + "; ".join(errors))


def _runtime_class(module: str, attr: str) -> type:
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]


def load_interpreter(model_path: Path, threads: int = 1):
    """An interpreter with ``model_path`` loaded and its tensors allocated, from the first runtime
    that can actually run it, and that runtime's name.

    Importing is not enough: tflite-runtime 2.14 imports under numpy 2 and then fails at
    ``Interpreter()`` (``_ARRAY_API not found``); a runtime too old for a model's ops fails at
    ``allocate_tensors``. Each is tried for real, the reasons kept for the error if none works."""
    errors = []
    for name, module, attr in _RUNTIMES:
        try:
            cls = _runtime_class(module, attr)
            with native_stderr_to_log(log):
                interp = cls(model_path=str(model_path), num_threads=threads)
                interp.allocate_tensors()
        except Exception as exc:  # ImportError, numpy ABI errors, unsupported ops: try the next one
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            log.debug("TFLite runtime %s cannot run %s: %s", name, model_path, exc)
            continue
        if errors:
            log.info("TFLite runtime %s runs %s (%s)", name, Path(model_path).name, "; ".join(errors))
        return interp, name
    raise ModelError(f"{model_path}: the TFLite runtimes cannot load it (a corrupt file, or no working "
                     f"runtime: pip install ai-edge-litert). Tried: " + "; ".join(errors))


def quantize_input(x: np.ndarray, dtype: np.dtype, quantization: tuple[float, int]) -> np.ndarray:
    """A float input as an int8/uint8 model takes it (its input tensor's scale and zero point)."""
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero = quantization
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, dtype: np.dtype, quantization: tuple[float, int]) -> np.ndarray:
    """A quantized model's output back in floats."""
    if dtype == np.float32:
        return y.astype(np.float32)
    scale, zero = quantization
    return (y.astype(np.float32) - zero) * scale
