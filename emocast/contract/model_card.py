"""Model cards: the contract between the converter that writes a model and the device that runs it.

The device trusts nothing about a model file it has not read from the card beside it, and it refuses
a file whose SHA-256 differs from the card's: a half-copied or swapped model must fail loudly at start,
not produce plausible nonsense for months. The preprocessing lives here too, so that training,
evaluation and the device turn a face crop into model input with one piece of code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emocast.core.errors import EmocastError, ExitCode

CARD_SCHEMA = "emocast.model_card/1"


class ModelError(EmocastError):
    """A model file or its card is missing, corrupt, or they disagree."""

    exit_code = ExitCode.MODEL


@dataclass(frozen=True)
class Preprocess:
    """How a face crop becomes the float input: ``pixel * pixel_scale + pixel_offset``."""

    color: str  # "gray" or "rgb"
    size: tuple[int, int]  # (H, W)
    pixel_scale: float
    pixel_offset: float
    crop_margin: float = 0.0  # fraction of the face box added on each side before resizing

    def to_json(self) -> dict[str, Any]:
        return {
            "color": self.color,
            "size": list(self.size),
            "pixel_scale": self.pixel_scale,
            "pixel_offset": self.pixel_offset,
            "crop_margin": self.crop_margin,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> Preprocess:
        try:
            color = str(data["color"])
            size = (int(data["size"][0]), int(data["size"][1]))
            scale = float(data["pixel_scale"])
            offset = float(data["pixel_offset"])
            margin = float(data.get("crop_margin", 0.0))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"{where}: bad 'preprocess' section: {exc!r}") from exc
        if color not in ("gray", "rgb"):
            raise ModelError(f"{where}: preprocess.color must be 'gray' or 'rgb', not {color!r}")
        return cls(color, size, scale, offset, margin)


@dataclass(frozen=True)
class ModelCard:
    """What the device needs to know about a model, read from ``<model>.json``."""

    id: str
    file: str
    sha256: str
    labels: tuple[str, ...]
    preprocess: Preprocess
    architecture: str
    dataset: str
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": CARD_SCHEMA,
            "id": self.id,
            "file": self.file,
            "sha256": self.sha256,
            "labels": list(self.labels),
            "preprocess": self.preprocess.to_json(),
            "architecture": self.architecture,
            "dataset": self.dataset,
            **self.metrics,
        }
        out.update(self.extra)
        return out


def shipped_model_file(name: str) -> Path:
    """Where the installed package keeps a model it ships (``emocast.models``), read at run time so
    an installed wheel and a checkout find the same file."""
    return Path(str(resources.files("emocast.models").joinpath(name)))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path_for(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


_CARD_KEYS = {"schema", "id", "file", "sha256", "labels", "preprocess", "architecture", "dataset"}


def load_card(model_path: Path, verify_hash: bool = True) -> ModelCard:
    """Read and check the card beside ``model_path``; raise ModelError naming the file otherwise."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    card_path = card_path_for(model_path)
    if not card_path.is_file():
        raise ModelError(f"model card not found: {card_path} (every model needs its card beside it)")
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelError(f"{card_path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{card_path}: a card is a JSON object")
    missing = sorted(k for k in ("file", "sha256", "labels", "preprocess") if k not in data)
    if missing:
        raise ModelError(f"{card_path}: missing key(s) {', '.join(missing)}")
    labels = data["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{card_path}: 'labels' must be a non-empty list of strings")
    if data["file"] != model_path.name:
        raise ModelError(f"{card_path}: card is for {data['file']!r}, not {model_path.name!r}")
    if verify_hash:
        actual = sha256_of(model_path)
        if actual != data["sha256"]:
            raise ModelError(
                f"{model_path}: SHA-256 {actual[:12]}... does not match its card "
                f"({str(data['sha256'])[:12]}...); the file is corrupt or not the model the card describes"
            )
    extra = {k: v for k, v in data.items() if k not in _CARD_KEYS}
    metrics = {k: extra.pop(k) for k in list(extra) if k in ("float", "int8", "validation")}
    return ModelCard(
        id=str(data.get("id", model_path.stem)),
        file=data["file"],
        sha256=data["sha256"],
        labels=tuple(labels),
        preprocess=Preprocess.from_json(data["preprocess"], str(card_path)),
        architecture=str(data.get("architecture", "unknown")),
        dataset=str(data.get("dataset", "unknown")),
        metrics=metrics,
        extra=extra,
    )


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], margin: float) -> np.ndarray:
    """Cut ``box`` (x, y, w, h) out of ``image`` with ``margin`` added per side, clipped to the frame."""
    x, y, w, h = box
    mx, my = int(round(w * margin)), int(round(h * margin))
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(image.shape[1], x + w + mx), min(image.shape[0], y + h + my)
    return image[y0:y1, x0:x1]


def to_model_input(crop: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Resize a face crop (gray HxW or BGR HxWx3 uint8) into the float input of one image, HxWxC."""
    if pre.color == "gray" and crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    elif pre.color == "rgb" and crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB)
    elif pre.color == "rgb":
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    h, w = pre.size
    if crop.shape[:2] != (h, w):
        interp = cv2.INTER_AREA if crop.shape[0] > h else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (w, h), interpolation=interp)
    x = crop.astype(np.float32) * pre.pixel_scale + pre.pixel_offset
    if x.ndim == 2:
        x = x[..., None]
    return x


def batch_to_model_input(images: np.ndarray, pre: Preprocess) -> np.ndarray:
    """The same mapping for a batch of gray uint8 crops (N, H, W), e.g. FER2013's 48x48 faces:
    resized to the model's size and made RGB where the card says so."""
    h, w = pre.size
    if images.shape[1:3] != (h, w):
        images = np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR) for im in images])
    x = images.astype(np.float32) * pre.pixel_scale + pre.pixel_offset
    if x.ndim == 3:
        x = x[..., None]
    if pre.color == "rgb" and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x
