"""Emotion networks built from scratch: no pretrained weights can be fetched on the build machines.

Every builder takes the input shape and the class count and returns an uncompiled Keras model whose
output is softmax probabilities. Ops are kept to what full-integer TFLite kernels handle well
(Conv2D, DepthwiseConv2D, BatchNorm folded into convs, ReLU/ReLU6, Add, pooling, Dense).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from .errors import Refusal


@keras.saving.register_keras_serializable(package="emocast")
class Mirror(layers.Layer):
    """The face flipped left to right (TFLite REVERSE_V2, which has int8 kernels)."""

    def call(self, x):
        return keras.ops.flip(x, axis=2)


def _conv_bn(x, filters: int, kernel: int = 3, strides: int = 1, name: str = "", relu_max: float | None = None):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(relu_max, name=f"{name}_relu")(x)


def emocnn(input_shape: tuple[int, int, int], n_classes: int, width: float = 1.0, dropout: float = 0.3,
           stem_stride: int = 1) -> keras.Model:
    """A compact VGG-style CNN: four stages of two 3x3 convs; cheap on a Pi core, strong on FER.

    No dropout inside the conv stages: with BatchNorm after every conv, SpatialDropout2D there kept
    this net at chance on FER (train accuracy 0.26 after 4 epochs on 4,000 images, against 0.58
    without it). Augmentation and the head's dropout do the regularising."""
    widths = [max(8, int(round(c * width))) for c in (32, 64, 128, 256)]
    inp = keras.Input(input_shape, name="face")
    x = inp
    for stage, c in enumerate(widths):
        x = _conv_bn(x, c, strides=stem_stride if stage == 0 else 1, name=f"s{stage}a")
        x = _conv_bn(x, c, name=f"s{stage}b")
        x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    x = layers.Dense(widths[-1], use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(dropout / 2, name="drop2")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=f"emocnn_w{width:g}")


def _sep_bn(x, filters: int, name: str, relu_first: bool = True):
    if relu_first:
        x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep")(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def xception_reduced(
    input_shape: tuple[int, int, int], n_classes: int, width: float = 1.0, dropout: float = 0.3,
    stem_stride: int = 1,
) -> keras.Model:
    """A faithful reduced Xception: entry convs, then residual blocks of depthwise-separable convs
    with strided 1x1 shortcuts (as in Chollet 2017 and Arriaga et al.'s mini-Xception), a middle
    flow without downsampling, and global pooling into a softmax. The full Xception's stride-2 stem
    suits 299 px photos; 48 px faces keep full resolution there (``stem_stride=1``), and a stride of 2
    quarters the cost of everything after it."""
    c = lambda n: max(8, int(round(n * width)))  # noqa: E731
    inp = keras.Input(input_shape, name="face")
    x = _conv_bn(inp, c(32), strides=stem_stride, name="entry1")
    x = _conv_bn(x, c(64), name="entry2")
    for i, filters in enumerate((c(128), c(256), c(512))):
        residual = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False, name=f"b{i}_short")(x)
        residual = layers.BatchNormalization(name=f"b{i}_short_bn")(residual)
        x = _sep_bn(x, filters, f"b{i}_a", relu_first=i > 0)
        x = _sep_bn(x, filters, f"b{i}_b")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"b{i}_pool")(x)
        x = layers.Add(name=f"b{i}_add")([x, residual])
    for j in range(2):  # middle flow
        residual = x
        for k in range(3):
            x = _sep_bn(x, c(512), f"m{j}_{k}")
        x = layers.Add(name=f"m{j}_add")([x, residual])
    x = _sep_bn(x, c(512), "exit")
    x = layers.ReLU(name="exit_relu2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=f"xception_reduced_w{width:g}")


def _inverted_residual(x, expand: int, out_ch: int, strides: int, name: str):
    """MobileNetV2's block: 1x1 expansion, 3x3 depthwise, linear 1x1 projection; a residual add when
    shape allows (Sandler et al. 2018)."""
    in_ch = x.shape[-1]
    y = x
    if expand != 1:
        y = layers.Conv2D(in_ch * expand, 1, use_bias=False, name=f"{name}_expand")(y)
        y = layers.BatchNormalization(name=f"{name}_expand_bn")(y)
        y = layers.ReLU(6.0, name=f"{name}_expand_relu")(y)
    y = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = layers.BatchNormalization(name=f"{name}_dw_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_dw_relu")(y)
    y = layers.Conv2D(out_ch, 1, use_bias=False, name=f"{name}_project")(y)
    y = layers.BatchNormalization(name=f"{name}_project_bn")(y)
    if strides == 1 and in_ch == out_ch:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


# (expansion t, channels c, repeats n, first stride s) as in the paper's Table 2.
_MOBILENETV2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))


def _divisible(v: float, divisor: int = 8) -> int:
    """Channel counts rounded to a multiple of 8, never below 90% of the asked width (as the paper)."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def mobilenetv2(
    input_shape: tuple[int, int, int], n_classes: int, width: float = 1.0, dropout: float = 0.3,
    stem_stride: int = 2,
) -> keras.Model:
    """MobileNetV2 (inverted residuals, linear bottlenecks, ReLU6) with its width multiplier.

    Made for 224 px photos, it halves the image five times; a 48 px face would end at 2x2. With
    ``stem_stride=1`` the stem keeps full resolution, so a 48 px face ends at 3x3 after the same
    blocks, at roughly 4x the cost of the stride-2 stem (still tens of millions of MACs)."""
    inp = keras.Input(input_shape, name="face")
    x = _conv_bn(inp, _divisible(32 * width), strides=stem_stride, name="stem", relu_max=6.0)
    for b, (t, c, n, s) in enumerate(_MOBILENETV2_BLOCKS):
        for i in range(n):
            x = _inverted_residual(x, t, _divisible(c * width), s if i == 0 else 1, name=f"b{b}_{i}")
    head = _divisible(1280 * max(1.0, width))
    x = _conv_bn(x, head, kernel=1, name="head", relu_max=6.0)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=f"mobilenetv2_w{width:g}_s{stem_stride}")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "emocnn": emocnn,
    "xception": xception_reduced,
    "mobilenetv2": mobilenetv2,
}


def build(name: str, input_shape: tuple[int, int, int], n_classes: int, width: float = 1.0,
          dropout: float = 0.3, stem_stride: int | None = None) -> keras.Model:
    """The named network; ``stem_stride`` None keeps each architecture's own default."""
    try:
        builder = ARCHITECTURES[name]
    except KeyError:
        raise Refusal(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}") from None
    extra = {} if stem_stride is None else {"stem_stride": stem_stride}
    return builder(input_shape, n_classes, width=width, dropout=dropout, **extra)
