"""A model from PyTorch: a small CNN trained here on FER faces, exported to ONNX and as a torch.export
program, converted to int8 TFLite and run by the device's EmotionModel; a MobileNetV2 as torchvision
builds it converts and runs; each refusal names the file and the cause and leaves nothing at --out."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'emocast[torch]')")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'emocast[onnx]')")
pytest.importorskip("onnx2tf", reason="onnx2tf is not installed (pip install 'emocast[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'emocast[onnx]')")
pytest.importorskip("tensorflow", reason="the converter needs emocast[convert]")

from torch import nn  # noqa: E402

from emocast.convert.data import FER_LABELS, load_split  # noqa: E402
from emocast.convert.errors import ModelSourceError  # noqa: E402
from emocast.convert.quantize import QuantizationError, quantize  # noqa: E402
from emocast.device.perception.emotion import EmotionModel  # noqa: E402
from tests.support import FER_DIR, needs_fer  # noqa: E402

FIVE = ("happy", "sad", "surprise", "angry", "neutral")


def small_cnn(classes: int = 7) -> nn.Module:
    """Conv, batch norm, ReLU6, a depthwise conv, pooling, a linear head: the operators of mobile CNNs."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU6(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Conv2d(32, 48, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, classes), nn.Softmax(dim=1))


def trained_on_fer(steps: int = 150) -> nn.Module:
    """A few steps of Adam on FER2013's training faces, as ``x / 255`` (the converter's default)."""
    train = load_split(FER_DIR, "train")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = small_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        idx = rng.integers(0, len(train), 64)
        x = torch.from_numpy(train.images[idx].astype(np.float32)[:, None] / 255.0)
        y = torch.from_numpy(train.labels[idx].astype(np.int64))
        probs = model(x)
        loss = nn.functional.nll_loss(torch.log(probs + 1e-7), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def to_onnx(model: nn.Module, path, size: int = 48, channels: int = 1, **kwargs) -> None:
    torch.onnx.export(model, (torch.zeros(1, channels, size, size),), str(path), dynamo=False,
                      input_names=["face"], output_names=["probs"], **kwargs)


def with_metadata(path, **props: str) -> None:
    m = onnx.load(str(path))
    onnx.helper.set_model_props(m, {f"emocast.{k}": v for k, v in props.items()})
    onnx.save(m, str(path))


@needs_fer()
def test_a_small_torch_cnn_as_onnx_and_as_a_program_converts_and_the_device_agrees(tmp_path):
    model = trained_on_fer()
    onnx_file = tmp_path / "small.onnx"
    to_onnx(model, onnx_file)
    with_metadata(onnx_file, labels=",".join(FER_LABELS))  # the graph says its classes
    program = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 48, 48),)), str(program))
    faces = load_split(FER_DIR, "public_test").subset(600, 0)
    with torch.no_grad():
        torch_probs = model(torch.from_numpy(faces.images.astype(np.float32)[:, None] / 255.0)).numpy()
    for source, fmt in ((onnx_file, "onnx"), (program, "pt2")):
        out = tmp_path / f"{fmt}.tflite"
        card = quantize(source, FER_DIR, out, calib_size=200, eval_limit=600, robust=False)
        saved = json.loads(out.with_suffix(".json").read_text())
        assert saved["recipe"]["source"]["format"] == fmt and saved["recipe"]["source"]["input_layout"] == "NCHW"
        assert saved["recipe"]["source"]["opset"] >= 13 and saved["recipe"]["source"]["converter"].startswith("onnx2tf")
        assert card.labels == FER_LABELS and card.preprocess.size == (48, 48) and card.preprocess.color == "gray"
        assert saved["agreement"] >= 0.95, saved["agreement"]  # int8 and float give the same class
        assert abs(saved["int8"]["accuracy"] - saved["float"]["accuracy"]) <= 0.03
        # the device reads the faces as the model in torch does
        dev = EmotionModel(out)
        device_top = np.array([int(np.argmax(dev.classify(f, (0, 0, 48, 48)).probs)) for f in faces.images])
        assert (device_top == torch_probs.argmax(axis=1)).mean() >= 0.95


class InvertedResidual(nn.Module):
    """torchvision's MobileNetV2 block: expand 1x1, depthwise 3x3, project 1x1, residual where it fits."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def mobilenet_v2(classes: int = 7, channels: int = 1) -> nn.Module:
    """torchvision.models.mobilenet_v2's layout (width 1.0, its inverted-residual settings, dropout and a
    linear head), untrained: enough to prove the conversion and the layout."""
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
    layers: list[nn.Module] = [nn.Conv2d(channels, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
    cin = 32
    for t, c, n, s in settings:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += [nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
               nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, classes), nn.Softmax(dim=1)]
    return nn.Sequential(*layers)


def test_a_mobilenet_v2_as_torchvision_builds_it_converts_and_runs_on_the_device(image_tree, tmp_path):
    torch.manual_seed(0)
    model = mobilenet_v2(len(FIVE), channels=3)
    # a few steps on the tree's faces: from random weights the pooled features of any two faces are the same
    # to 1e-8, a model that does not read its input, which the converter refuses
    train, _ = load_split(image_tree, "train").for_labels(FIVE)
    faces = np.stack([cv2.cvtColor(cv2.resize(f, (64, 64)), cv2.COLOR_GRAY2RGB) for f in train.images])
    x = torch.from_numpy(faces.transpose(0, 3, 1, 2).astype(np.float32) * 2 / 255 - 1)
    y = torch.from_numpy(train.labels.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(15):
        loss = nn.functional.nll_loss(torch.log(model(x) + 1e-7), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    path = tmp_path / "mnv2.onnx"
    to_onnx(model, path, size=64, channels=3)
    with_metadata(path, pixel_scale=str(2 / 255), pixel_offset="-1")
    out = tmp_path / "mnv2.tflite"
    card = quantize(path, image_tree, out, calib_size=30, labels=FIVE, accept_drop=True, robust=False)
    assert card.preprocess.size == (64, 64) and card.preprocess.color == "rgb"
    assert card.preprocess.pixel_scale == pytest.approx(2 / 255) and card.preprocess.pixel_offset == -1
    dev = EmotionModel(out)
    x = np.random.default_rng(1).uniform(-1, 1, (64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x.transpose(2, 0, 1)[None])).numpy()[0]
    got = dev.predict_input(x)
    assert got.shape == (5,) and abs(float(got.sum()) - 1) < 0.03
    assert np.abs(got - want).max() < 0.1  # the layout is right: NCHW weights read as NHWC


def test_a_graph_that_takes_nhwc_faces_keeps_its_layout(image_tree, tmp_path):
    """A graph whose input is (N, H, W, C), as exporters from TensorFlow write them, is read as such."""

    class ChannelsLast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = small_cnn(len(FIVE))

        def forward(self, x):
            return self.net(x.permute(0, 3, 1, 2))

    torch.manual_seed(0)
    model = ChannelsLast().eval()
    path = tmp_path / "nhwc.onnx"
    torch.onnx.export(model, (torch.zeros(1, 48, 48, 1),), str(path), dynamo=False, input_names=["face"])
    out = tmp_path / "nhwc.tflite"
    quantize(path, image_tree, out, calib_size=30, labels=FIVE, accept_drop=True, robust=False)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["recipe"]["source"]["input_layout"] == "NHWC" and saved["preprocess"]["size"] == [48, 48]
    faces = load_split(image_tree, "test").images[:12]
    with torch.no_grad():
        want = model(torch.from_numpy(faces.astype(np.float32)[..., None] / 255)).numpy().argmax(axis=1)
    dev = EmotionModel(out)
    got = np.array([int(np.argmax(dev.classify(f, (0, 0, 48, 48)).probs)) for f in faces])
    assert (got == want).mean() >= 0.9


def _tf_same(x, k: int, s: int) -> list:
    """TensorFlow's "same" padding computed from the tensor's shape at run time, as timm's Conv2dSame and
    MaxPool2dSame do (left, right, top, bottom): a traced export turns it into shape arithmetic."""
    import math

    ih, iw = x.shape[-2:]
    ph, pw = (max((math.ceil(n / s) - 1) * s + k - n, 0) for n in (ih, iw))
    return [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]


def test_tensorflow_same_padding_from_shape_arithmetic_and_a_minus_infinity_pad_convert(image_tree, tmp_path):
    """The pads fold to constants and the -inf pad before the max pool becomes the pool's own padding:
    without either the converted graph is wrong or the int8 file aborts the device's interpreter."""
    import math

    class TfSame(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem, self.head = nn.Conv2d(1, 8, 3, 2), nn.Conv2d(8, len(FIVE), 1)

        def forward(self, x):
            x = torch.relu(self.stem(nn.functional.pad(x, _tf_same(x, 3, 2))))
            x = nn.functional.max_pool2d(nn.functional.pad(x, _tf_same(x, 3, 2), value=-math.inf), 3, 2)
            return torch.softmax(self.head(x).mean(dim=(2, 3)), dim=1)

    torch.manual_seed(0)
    model = TfSame().eval()
    path = tmp_path / "tf_same.onnx"
    to_onnx(model, path)
    assert {"Shape", "Pad"} <= {n.op_type for n in onnx.load(str(path)).graph.node}  # what a trace writes
    out = tmp_path / "tf_same.tflite"
    quantize(path, image_tree, out, calib_size=30, labels=FIVE, accept_drop=True, robust=False)
    dev = EmotionModel(out)
    faces = load_split(image_tree, "test").images[:12]
    with torch.no_grad():
        want = model(torch.from_numpy(faces.astype(np.float32)[:, None] / 255)).numpy()
    got = np.stack([dev.classify(f, (0, 0, 48, 48)).probs for f in faces])
    assert np.abs(got - want).max() < 0.1


def test_a_file_the_interpreter_crashes_on_or_cannot_load_is_refused_and_removed(tmp_path, monkeypatch):
    """As quantize calls it: the check refuses, and quantize's one clean-up takes the file and card back."""
    from emocast.convert import device_check
    from emocast.convert.quantize import nothing_left_on_failure

    out = tmp_path / "m.tflite"
    out.write_bytes(b"not a flatbuffer" * 8)
    out.with_suffix(".json").write_text("{}")
    unreadable = r"m.onnx: the converted file .* cannot run it .*not a valid Flatbuffer"
    with pytest.raises(ModelSourceError, match=unreadable), nothing_left_on_failure(out):
        device_check.check_runs_on_device(tmp_path / "m.onnx", out)
    assert not out.exists() and not out.with_suffix(".json").exists()
    out.write_bytes(b"x")
    monkeypatch.setattr(device_check, "TRY", "import os; os.abort()")  # as the interpreter aborts on a bad file
    crashes = r"m.onnx: .* crashes on it \(SIGABRT\): nothing written"
    with pytest.raises(ModelSourceError, match=crashes), nothing_left_on_failure(out):
        device_check.check_runs_on_device(tmp_path / "m.onnx", out)
    assert not out.exists()


def test_refusals_name_the_file_and_the_cause_and_write_nothing(image_tree, tmp_path):
    torch.manual_seed(0)
    model = small_cnn(len(FIVE)).eval()
    dynamic = tmp_path / "dynamic.onnx"
    to_onnx(model, dynamic, dynamic_axes={"face": {0: "n", 2: "h", 3: "w"}})
    with pytest.raises(ModelSourceError, match=r"dynamic.onnx: input 'face' has a dynamic size .* --size"):
        quantize(dynamic, image_tree, tmp_path / "a.tflite", labels=FIVE)
    # fixed by --size, the same graph converts (batch and spatial dimensions set to one face)
    quantize(dynamic, image_tree, tmp_path / "fixed.tflite", labels=FIVE, preprocess={"input_size": 48},
             calib_size=30, accept_drop=True, robust=False)
    assert EmotionModel(tmp_path / "fixed.tflite").predict_input(np.zeros((48, 48, 1), np.float32)).shape == (5,)

    plain = tmp_path / "plain.onnx"
    to_onnx(model, plain)
    custom = tmp_path / "custom.onnx"
    m = onnx.load(str(plain))
    node = onnx.helper.make_node("FancyNorm", [m.graph.node[0].output[0]], ["fancy"], name="my_fancy_norm",
                                 domain="com.example")
    m.graph.node.insert(1, node)
    m.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    onnx.save(m, str(custom))
    with pytest.raises(ModelSourceError, match=r"custom.onnx: onnx2tf cannot map 1 operator.*'my_fancy_norm' "
                                               r"\(com.example.FancyNorm\)"):
        quantize(custom, image_tree, tmp_path / "b.tflite", labels=FIVE)

    with pytest.raises(QuantizationError, match="plain.onnx: 5 outputs, but 7 labels"):
        quantize(plain, image_tree, tmp_path / "c.tflite")

    class Broken(nn.Module):
        def __init__(self, nan: bool) -> None:
            super().__init__()
            self.nan, self.bias = nan, nn.Parameter(torch.arange(5.0))

        def forward(self, x):
            z = x.mean(dim=(1, 2, 3))[:, None] * 0 + self.bias  # the face does not matter
            return torch.softmax(z * float("nan") if self.nan else z, dim=1)

    for nan, says in ((True, "NaN"), (False, "the same output for every calibration face")):
        path = tmp_path / f"broken_{nan}.onnx"
        to_onnx(Broken(nan).eval(), path)
        with pytest.raises(ModelSourceError, match=f"broken_{nan}.onnx: .*{says}"):
            quantize(path, image_tree, tmp_path / "d.tflite", labels=FIVE)
    with pytest.raises(ModelSourceError, match=r"plain.onnx: the converted model is .* MB, over the kiosk's budget"):
        quantize(plain, image_tree, tmp_path / "e.tflite", labels=FIVE, calib_size=30, accept_drop=True, robust=False,
                 max_mb=0.001)
    assert not any(tmp_path.glob("[abcde].*"))


def test_the_command_line_refuses_a_model_over_the_kiosks_budget_and_prints_the_agreement(image_tree, tmp_path,
                                                                                        caplog):
    from emocast.cli import main
    from emocast.core.errors import ExitCode

    torch.manual_seed(0)
    path = tmp_path / "big.onnx"
    to_onnx(small_cnn(len(FIVE)).eval(), path)
    out = tmp_path / "big.tflite"
    args = ["convert", "quantize", str(path), "--labels", ",".join(FIVE), "--data", str(image_tree), "--out", str(out),
            "--calib", "30", "--accept-drop"]

    assert main([*args, "--max-face-ms", "0.0001"]) == ExitCode.MODEL
    assert "big.onnx" in caplog.text and "over the kiosk's budget" in caplog.text and "ms a face" in caplog.text
    assert not out.exists() and not out.with_suffix(".json").exists()
    # as a shell sees it: exit 0, and stdout holds the answer as JSON alone (onnx2tf's prints go to stderr)
    res = subprocess.run([sys.executable, "-m", "emocast", *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and out.is_file(), res.stderr
    assert json.loads(res.stdout)["agreement"] >= 0.0
