"""Trained models, and their view of the mirrored face, averaged inside one Keras model.

On this hardware training time and the file-size limit (4 MB) bind before latency: one view of the
shipped MobileNetV2 w1.0 reads a face in about 0.8 ms on one core against a 2 ms budget. Averaging
the probabilities for the face and for its mirror image (flip test-time augmentation), and those of
independently trained networks, is accuracy that spends latency instead of training time. Baked into
the graph, the device gets it from the file alone, and quantize, the card and evaluate treat the
result like any model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import keras
from keras import layers

from .architectures import Mirror
from .errors import MissingModelFile, Refusal

log = logging.getLogger(__name__)



def member_recipe(keras_path: Path) -> dict:
    """The recipe stored in a member's run folder; without it the input's meaning is unknown."""
    stored = keras_path.parent / "recipe.json"
    if not stored.is_file():
        raise Refusal(f"{keras_path}: no recipe.json beside it, so its preprocessing is unknown "
                         "(combine the best.keras of a run folder)")
    return json.loads(stored.read_text())


def combine(models: list[keras.Model], input_shape: tuple[int, int, int], mirror: bool) -> keras.Model:
    """One model whose output is the mean of every member's softmax, on the face and, with
    ``mirror``, on the face flipped left to right."""
    inp = keras.Input(input_shape, name="face")
    views = [inp, Mirror(name="mirror")(inp)] if mirror else [inp]
    outs = []
    for i, member in enumerate(models):
        member.name = f"member{i}_{member.name}"  # nested models need unique names in the graph
        outs.extend(member(v) for v in views)
    out = outs[0] if len(outs) == 1 else layers.Average(name="average")(outs)
    return keras.Model(inp, out, name="ensemble" if len(models) > 1 else f"{models[0].name}_mirrored")


def write_ensemble(members: list[Path], out_dir: Path, mirror: bool = True) -> Path:
    """Write ``out_dir/model.keras`` and the ``recipe.json`` that quantize reads (the members'
    recipes and training records in full, so the card says how each part was made)."""
    from .quantize import PREPROCESS_KEYS, preprocess_for, training_record

    if not members:
        raise Refusal("name at least one .keras model to combine")
    if len(members) == 1 and not mirror:
        raise Refusal("one model without --mirror is the model itself; nothing to combine")
    for p in members:
        if not p.is_file():
            raise MissingModelFile(f"{p}: no such model file")
    recipes = [member_recipe(p) for p in members]
    # compared as the quantizer (and so the card and the device) will read them, defaults included
    pres = [preprocess_for(r) for r in recipes]
    for path, pre in zip(members[1:], pres[1:], strict=True):
        differs = [f.name for f in dataclasses.fields(pre) if getattr(pre, f.name) != getattr(pres[0], f.name)]
        if differs:
            raise Refusal(f"{path}: its {', '.join(differs)} differ from {members[0]}'s; members must "
                             "read the same input")
    models = [keras.models.load_model(p, compile=False) for p in members]
    shape = (*pres[0].size, 1 if pres[0].color == "gray" else 3)
    model = combine(models, shape, mirror)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.keras"
    model.save(path)
    recipe = {
        **{k: recipes[0][k] for k in (*PREPROCESS_KEYS, "seed", "train_split", "val_split") if k in recipes[0]},
        "architecture": "ensemble",
        "mirror": mirror,
        "members": [
            {"file": str(p), "recipe": r, "training": training_record(p.parent / "history.csv")}
            for p, r in zip(members, recipes, strict=True)
        ],
    }
    (out_dir / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    log.info("%s: %d member(s)%s, %d parameters", path, len(models), " and their mirror views" if mirror else "",
             model.count_params())
    return path

