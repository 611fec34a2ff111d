"""Models from PyTorch and ONNX: an ONNX graph (``.onnx``) or a ``torch.export`` program (``.pt2``).

The graph is read and checked before anything is converted (one image input whose size can be fixed,
operators the converter maps, named with their node where it cannot), run in float by its own runtime
(onnxruntime for ONNX, torch for a program) so the int8 file is checked against the model as its
engineer ran it, and turned into a TensorFlow SavedModel by onnx2tf (NCHW to NHWC, weights and all),
from which the TFLite converter quantizes exactly as for any SavedModel. A program is exported to ONNX
by torch first (``torch.onnx.export``), so both formats share one path; docs/model-engineer.md says why
this converter and not the others measured.

What a graph says about its input is read from it: size, channels and layout from the input's shape,
and colour, pixel scale and offset, crop margin and labels from its metadata (``emocast.*`` keys)
where the exporter wrote them; the command line's flags fill in the rest and may not contradict it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import ModelSourceError

log = logging.getLogger(__name__)

CONVERTER = "onnx2tf"
INSTALL = "pip install 'emocast[onnx]'"
# metadata an exporter may write into the graph (onnx.helper.set_model_props), as the recipe's keys
METADATA_KEYS = {"emocast.color": "color", "emocast.pixel_scale": "pixel_scale",
                 "emocast.pixel_offset": "pixel_offset", "emocast.crop_margin": "crop_margin",
                 "emocast.labels": "labels"}
STANDARD_DOMAINS = ("", "ai.onnx")


def _require(module: str, path: Path, extra: str = INSTALL) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelSourceError(f"{path}: reading this model needs {module.split('.')[0]} ({extra}): {exc}") from exc


@dataclass(frozen=True)
class GraphInput:
    """The graph's one image input, as the converter will fix it."""

    name: str
    layout: str  # "NCHW" (PyTorch's) or "NHWC"
    size: tuple[int, int]
    channels: int
    batch_is_free: bool  # a symbolic batch dimension: the float runtime may take whole batches

    @property
    def fixed_shape(self) -> list[int]:
        h, w = self.size
        return [1, self.channels, h, w] if self.layout == "NCHW" else [1, h, w, self.channels]


def _dims(value_info) -> list[int | str | None]:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return dims


def read_input(model, path: Path, size: tuple[int, int] | None, color: str | None) -> GraphInput:
    """The graph's image input; a dynamic height, width or channel count is fixed from ``size`` and
    ``color`` (the flags) where given, else refused: the int8 file has one input shape."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelSourceError(f"{path}: {len(inputs)} graph inputs ({', '.join(i.name for i in inputs)}); "
                               "an emotion model takes one image")
    dims = _dims(inputs[0])
    if len(dims) != 4:
        raise ModelSourceError(f"{path}: input {inputs[0].name!r} has {len(dims)} dimensions {dims}; an emotion "
                               "model takes one image batch (N, C, H, W) or (N, H, W, C)")
    nhwc = dims[3] in (1, 3) and dims[1] not in (1, 3)
    layout = "NHWC" if nhwc else "NCHW"
    c, h, w = (dims[3], dims[1], dims[2]) if nhwc else (dims[1], dims[2], dims[3])
    if not isinstance(h, int) or not isinstance(w, int):
        if size is None:
            raise ModelSourceError(f"{path}: input {inputs[0].name!r} has a dynamic size {dims} that cannot be "
                                   "fixed without --size (the int8 file has one input shape)")
        h, w = size
    if not isinstance(c, int):
        if color is None:
            raise ModelSourceError(f"{path}: input {inputs[0].name!r} has a dynamic channel count {dims}; "
                                   "give --color gray or rgb")
        c = 1 if color == "gray" else 3
    if c not in (1, 3):
        raise ModelSourceError(f"{path}: input {inputs[0].name!r} has {c} channels {dims}; a face is 1 (gray) "
                               "or 3 (rgb)")
    return GraphInput(inputs[0].name, layout, (int(h), int(w)), int(c), not isinstance(dims[0], int))


def unmapped_operators(model) -> list[str]:
    """Each node the converter has no mapping for, as ``'name' (OpType)``: a custom domain's operator,
    or a standard one onnx2tf does not implement."""
    missing = []
    for i, node in enumerate(model.graph.node):
        domain_ok = node.domain in STANDARD_DOMAINS
        mapped = domain_ok and importlib.util.find_spec(f"onnx2tf.ops.{node.op_type}") is not None
        if not mapped:
            where = f"{node.domain}." if not domain_ok else ""
            missing.append(f"{node.name or f'node {i}'!r} ({where}{node.op_type})")
    return missing


def opset_of(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), 0)


def declared_preprocessing(model, graph_input: GraphInput) -> dict:
    """What the graph says about its input, in the recipe's keys (see METADATA_KEYS)."""
    said: dict[str, Any] = {"input_size": list(graph_input.size),
                            "color": "gray" if graph_input.channels == 1 else "rgb"}
    for prop in model.metadata_props:
        key = METADATA_KEYS.get(prop.key)
        if key == "labels":
            said[key] = [x.strip() for x in prop.value.split(",") if x.strip()]
        elif key in ("pixel_scale", "pixel_offset", "crop_margin"):
            said[key] = float(prop.value)
        elif key == "color":
            said[key] = prop.value.strip()
    return said


@dataclass
class OnnxSource:
    """A model brought as ONNX (or exported to it from a program), with the same face as ``ModelSource``:
    ``input_shape`` and ``predict`` are NHWC whatever the graph's layout."""

    foreign: ClassVar[bool] = True  # converted through onnx2tf, its float side run in its own runtime
    path: Path  # what the engineer gave: the .onnx or the .pt2
    kind: str  # "onnx" or "pt2"
    onnx_path: Path
    graph_input: GraphInput
    opset: int
    outputs: int
    declared: dict
    program: Any = None  # the torch.export program (pt2): the float reference runs it in torch
    _session: Any = None
    _workdir: Any = field(default=None, repr=False)  # keeps a program's exported graph alive

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        h, w = self.graph_input.size
        return (None, h, w, self.graph_input.channels)

    def _to_graph_layout(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self.graph_input.layout == "NCHW" else x

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Float outputs for NHWC model inputs, from the model's own runtime."""
        x = self._to_graph_layout(np.asarray(x, np.float32))
        if self.program is not None:
            import torch

            module = self.program.module()
            with torch.no_grad():
                return np.concatenate([module(torch.from_numpy(x[i:i + 1])).numpy() for i in range(len(x))])
        if self._session is None:
            ort = _require("onnxruntime", self.path)
            self._session = ort.InferenceSession(str(self.onnx_path), providers=["CPUExecutionProvider"])
        step = batch_size if self.graph_input.batch_is_free else 1
        name = self.graph_input.name
        return np.concatenate([self._session.run(None, {name: x[i:i + step]})[0] for i in range(0, len(x), step)])

    def record(self) -> dict:
        """The card's ``source`` entry: what came in, and how."""
        import onnx2tf

        return {"file": self.path.name, "format": self.kind, "opset": self.opset,
                "input_layout": self.graph_input.layout, "converter": f"{CONVERTER} {onnx2tf.__version__}"}

    def saved_model(self, out_dir: Path, faces: np.ndarray | None = None) -> Path:
        """The graph as a TensorFlow SavedModel with an NHWC input of one face (onnx2tf), its input first
        fixed to that one shape in the graph itself, so every tensor's shape is known. ``faces`` (uint8,
        the calibration faces) are what onnx2tf checks a three-channel graph on, in place of the sample
        images it would otherwise download."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        onnx = _require("onnx", self.path)
        onnx2tf = _require("onnx2tf", self.path)
        gi = self.graph_input
        model = onnx.load(str(self.onnx_path))
        graph_in = next(i for i in model.graph.input if i.name == gi.name)
        for dim, value in zip(graph_in.type.tensor_type.shape.dim, gi.fixed_shape, strict=True):
            dim.Clear()
            dim.dim_value = value
        for out in model.graph.output:  # the batch of one flows to the output
            dims = out.type.tensor_type.shape.dim
            if dims and not dims[0].HasField("dim_value"):
                dims[0].Clear()
                dims[0].dim_value = 1
        fixed = out_dir.parent / "fixed.onnx"
        onnx.save(onnx.shape_inference.infer_shapes(model), str(fixed))
        fixed = fold_constants(fixed, out_dir.parent / "folded.onnx", self.path)
        keep = {"keep_nwc_or_nhwc_or_ndhwc_input_names": [gi.name]} if gi.layout == "NHWC" else {}
        _write_sample_images(out_dir.parent, faces)
        here = os.getcwd()
        try:  # what onnx2tf and Keras print goes to the log's stream: stdout is the command's answer
            os.chdir(out_dir.parent)  # where onnx2tf looks for its sample images
            with contextlib.redirect_stdout(sys.stderr):
                onnx2tf.convert(input_onnx_file_path=str(fixed), output_folder_path=str(out_dir),
                                output_signaturedefs=True, non_verbose=True, not_use_onnxsim=True, **keep)
        except SystemExit as exc:  # onnx2tf exits on what it cannot convert, after logging it
            raise ModelSourceError(f"{self.path}: {CONVERTER} could not convert the graph (exit {exc.code}); "
                                   "its log above names the node") from exc
        except Exception as exc:
            raise ModelSourceError(f"{self.path}: {CONVERTER} could not convert the graph: {exc}") from exc
        finally:
            os.chdir(here)
        if not (out_dir / "saved_model.pb").is_file():
            raise ModelSourceError(f"{self.path}: {CONVERTER} wrote no SavedModel")
        return out_dir


def fold_constants(graph: Path, out: Path, named: Path) -> Path:
    """``graph`` with what its fixed input shape makes constant computed once: onnxruntime's basic
    optimisations (constant folding, shape arithmetic, batch norm into the convolution before it;
    ONNX's own operators only), written to ``out``. A traced PyTorch export computes "same" padding from
    the tensor's shape at run time (timm's ``Conv2dSame``, ports of TensorFlow networks): onnx2tf cannot
    tell such a ``Pad``'s layout from a chain of ``Shape``, ``Gather`` and ``Concat`` and builds a wrong
    graph, while the folded graph holds plain pads. Where onnxruntime cannot fold, the graph goes on as
    it came (logged)."""
    ort = _require("onnxruntime", named)
    onnx = _require("onnx", named)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(out)
    try:
        ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        model = onnx.load(str(out))
    except Exception as exc:
        log.warning("%s: onnxruntime could not fold the graph's constants (%s); converting it as it is", named, exc)
        return graph
    pools = pads_into_pools(model)
    used = {node.domain for node in model.graph.node}  # onnxruntime lists every domain it knows
    kept = [o for o in model.opset_import if o.domain in STANDARD_DOMAINS or o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.save(model, str(out))
    log.debug("%s: %d nodes after folding the graph's constants, %d pads taken into pools", named,
              len(model.graph.node), pools)
    return out


def pads_into_pools(model) -> int:
    """Each ``Pad`` with -inf whose only reader is a ``MaxPool`` without pads of its own made that pool's
    own (asymmetric) padding, in place; the count. TensorFlow's "same" max pooling in PyTorch is written
    this way (timm's ``MaxPool2dSame``): left as a pad, the int8 file holds a pad value of -inf, which
    the device's interpreter aborts on, while a pool's padding is never read as a value."""
    from onnx import helper, numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    fused = []
    for pad in model.graph.node:
        found = _pool_after(pad, readers, consts) if pad.op_type == "Pad" else None
        if found is None:
            continue
        pool, spatial = found
        kept = [a for a in pool.attribute if a.name not in ("pads", "auto_pad")]
        del pool.attribute[:]
        pool.attribute.extend([*kept, helper.make_attribute("pads", spatial)])
        pool.input[0] = pad.input[0]
        fused.append(pad)
    for pad in fused:
        model.graph.node.remove(pad)
    return len(fused)


def _pool_after(pad, readers: dict[str, list], consts: dict[str, np.ndarray]):
    """(the max pool, its pads as ONNX orders them: top, left, bottom, right) where ``pad`` is a constant
    -inf pad of height and width only, read by that one pool, which pads nothing itself; else None."""
    from onnx import helper

    if len(pad.input) != 3 or any(a.name == "mode" and a.s not in (b"", b"constant") for a in pad.attribute):
        return None
    value, pads = consts.get(pad.input[2]), consts.get(pad.input[1])
    pools = readers.get(pad.output[0], [])
    if value is None or not np.isneginf(value).all() or len(pools) != 1 or pools[0].op_type != "MaxPool":
        return None
    if pads is None or pads.size != 8 or pads[[0, 1, 4, 5]].any() or (pads < 0).any():  # N, C padded: not a pool's
        return None
    own = {a.name: helper.get_attribute_value(a) for a in pools[0].attribute}
    if own.get("auto_pad", b"NOTSET") != b"NOTSET" or any(own.get("pads", [])):
        return None
    return pools[0], [int(v) for v in pads[[2, 3, 6, 7]]]


# onnx2tf checks a graph with three-channel inputs on 20 sample images, which it downloads unless this
# file is in the working directory (it never is offline): the calibration faces are written there instead
SAMPLE_IMAGES = "calibration_image_sample_data_20x128x128x3_float32.npy"


def _write_sample_images(folder: Path, faces: np.ndarray | None) -> None:
    import cv2

    if faces is None or not len(faces):
        faces = np.full((1, 48, 48), 128, np.uint8)
    picks = [faces[i % len(faces)] for i in range(20)]
    rgb = [cv2.resize(f if f.ndim == 3 else cv2.cvtColor(f, cv2.COLOR_GRAY2RGB), (128, 128)) for f in picks]
    np.save(folder / SAMPLE_IMAGES, (np.stack(rgb).astype(np.float32) / 255.0))


def load_onnx(path: Path, size: tuple[int, int] | None = None, color: str | None = None,
              kind: str = "onnx", program: Any = None, workdir: Any = None, named: Path | None = None) -> OnnxSource:
    """Read and check an ONNX file: one image input fixed to one shape, operators the converter maps,
    one output of class scores. Messages name ``named`` (the engineer's file) where the graph was
    exported from it."""
    where = Path(named or path)
    onnx = _require("onnx", where)
    _require("onnx2tf", where)
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelSourceError(f"{where}: not a valid ONNX model: {exc}") from exc
    graph_input = read_input(model, where, size, color)
    missing = unmapped_operators(model)
    if missing:
        raise ModelSourceError(f"{where}: {CONVERTER} cannot map {len(missing)} operator(s): "
                               f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if len(model.graph.output) != 1:
        raise ModelSourceError(f"{where}: {len(model.graph.output)} outputs; an emotion model has one (its "
                               "class probabilities)")
    out_dims = _dims(model.graph.output[0])
    if not out_dims or not isinstance(out_dims[-1], int):
        raise ModelSourceError(f"{where}: the output's class count is not fixed ({out_dims})")
    return OnnxSource(where, kind, Path(path), graph_input, opset_of(model), int(out_dims[-1]),
                      declared_preprocessing(model, graph_input), program=program, _workdir=workdir)


def load_program(path: Path, size: tuple[int, int] | None = None, color: str | None = None) -> OnnxSource:
    """A ``torch.export`` program (``torch.export.save``), exported to ONNX by torch and read as ONNX;
    its float figures come from the program itself, run in torch."""
    torch = _require("torch", path, "pip install 'emocast[torch]'")
    _require("onnxscript", path, "pip install 'emocast[torch]'")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelSourceError(f"{path}: torch cannot load this program (torch.export.save output?): {exc}") from exc
    workdir = tempfile.TemporaryDirectory(prefix="emocast-pt2-")
    onnx_path = Path(workdir.name) / (Path(path).stem + ".onnx")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            torch.onnx.export(program, (), str(onnx_path), dynamo=True, external_data=False, verbose=False)
    except Exception as exc:
        workdir.cleanup()
        raise ModelSourceError(f"{path}: torch could not export the program to ONNX: {exc}") from exc
    return load_onnx(onnx_path, size, color, kind="pt2", program=program, workdir=workdir, named=Path(path))
