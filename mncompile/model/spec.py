"""What a MobileNet is: the frozen description every other module reads.

`MobileNetSpec` names a network (version, width multiplier, resolution,
input channels, classes). `layers(spec)` expands it into the exact list of
layers, with shapes and channel counts, once; both the analytic counter
(`analytic.py`) and the Keras builder (`builder.py`) walk that same list, and
a test checks the built Keras model against the analytic numbers.

Channel rules follow the reference implementations:
- V1: ``max(1, int(c * alpha))`` per layer (TF-slim / Keras, with a floor of
  one channel so tiny alphas still give a valid network);
- V2: ``make_divisible(c * alpha, 8)``, and the last 1x1 convolution keeps
  1280 channels unless alpha > 1 (MobileNetV2 paper, section 5).
All stride-2 layers use SAME padding, so a side of ``R`` becomes ``ceil(R/2)``
and the TFLite graph needs no PAD operators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mncompile.errors import InvalidOptionError

ARCHES = ("v1", "v2")
MIN_RESOLUTION = 32
MAX_RESOLUTION = 1024
MAX_ALPHA = 1.4
PAPER_RESOLUTION = 224  # rho = 1 in the MobileNet paper


@dataclass(frozen=True)
class MobileNetSpec:
    arch: str = "v1"
    alpha: float = 0.25
    resolution: int = 96
    channels: int = 3
    classes: int = 1000

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise InvalidOptionError(f"unknown architecture {self.arch!r}",
                                     hint="use --arch v1 or --arch v2")
        if not (0.0 < self.alpha <= MAX_ALPHA):
            raise InvalidOptionError(
                f"width multiplier alpha={self.alpha} is outside (0, {MAX_ALPHA}]",
                hint="the paper's values are 0.25, 0.5, 0.75 and 1.0 (V2 also 0.35, 1.3, 1.4)")
        if not (MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION):
            raise InvalidOptionError(
                f"resolution {self.resolution} px is outside [{MIN_RESOLUTION}, {MAX_RESOLUTION}]",
                hint="MobileNets downsample 32x; common choices are 96, 128, 160, 192 and 224")
        if self.channels not in (1, 3):
            raise InvalidOptionError(f"input channels must be 1 or 3, not {self.channels}",
                                     hint="use --channels 1 for grayscale or 3 for RGB")
        if self.classes < 2:
            raise InvalidOptionError(f"a classifier needs at least 2 classes, not {self.classes}")

    @property
    def name(self) -> str:
        return f"mobilenet_{self.arch}_{self.alpha:g}_{self.resolution}"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.resolution, self.resolution, self.channels)


def resolution_from_rho(rho: float) -> int:
    """The paper's resolution multiplier: input side = round(224 * rho)."""
    if not (0.0 < rho <= MAX_RESOLUTION / PAPER_RESOLUTION):
        raise InvalidOptionError(f"resolution multiplier rho={rho} must be > 0",
                                 hint="the paper uses rho = 1, 0.857, 0.714, 0.571 (224..128 px)")
    return int(round(PAPER_RESOLUTION * rho))


@dataclass(frozen=True)
class Layer:
    """One layer with a known shape. `kind` is one of KINDS.

    For convolutions `kernel` is the square kernel side; `in_hw`/`out_hw` are
    square feature-map sides. `relu6` says whether ReLU6 follows (after batch
    normalization for convolutions). `residual` names the layer whose output
    an "add" layer adds to its input (V2 only). `block` groups the layers of
    one depthwise-separable or inverted-residual block.
    """

    name: str
    kind: str
    in_ch: int
    out_ch: int
    in_hw: int
    out_hw: int
    kernel: int = 1
    stride: int = 1
    relu6: bool = False
    batchnorm: bool = False
    bias: bool = False
    residual: str | None = None
    block: str | None = None


KINDS = ("conv", "depthwise", "pointwise", "avgpool", "fc", "add", "softmax")

_V1_BODY = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
            (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# (expansion t, channels c, repeats n, first stride s): MobileNetV2 paper, Table 2
_V2_BODY = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of `divisor`, never dropping below 90 %."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _down(hw: int, stride: int) -> int:
    return math.ceil(hw / stride)


def layers(spec: MobileNetSpec) -> tuple[Layer, ...]:
    return _v1_layers(spec) if spec.arch == "v1" else _v2_layers(spec)


def _head(out: list[Layer], ch: int, hw: int, spec: MobileNetSpec) -> None:
    out.append(Layer("global_pool", "avgpool", ch, ch, hw, 1, kernel=hw))
    out.append(Layer("classifier", "fc", ch, spec.classes, 1, 1, bias=True))
    out.append(Layer("softmax", "softmax", spec.classes, spec.classes, 1, 1))


def _v1_layers(spec: MobileNetSpec) -> tuple[Layer, ...]:
    def width(c: int) -> int:
        return max(1, int(c * spec.alpha))

    out: list[Layer] = []
    hw = _down(spec.resolution, 2)
    ch = width(32)
    out.append(Layer("conv1", "conv", spec.channels, ch, spec.resolution, hw,
                     kernel=3, stride=2, relu6=True, batchnorm=True))
    for i, (filters, stride) in enumerate(_V1_BODY, start=1):
        new_hw, new_ch, block = _down(hw, stride), width(filters), f"block{i}"
        out.append(Layer(f"conv_dw_{i}", "depthwise", ch, ch, hw, new_hw, kernel=3,
                         stride=stride, relu6=True, batchnorm=True, block=block))
        out.append(Layer(f"conv_pw_{i}", "pointwise", ch, new_ch, new_hw, new_hw,
                         relu6=True, batchnorm=True, block=block))
        hw, ch = new_hw, new_ch
    _head(out, ch, hw, spec)
    return tuple(out)


def _v2_layers(spec: MobileNetSpec) -> tuple[Layer, ...]:
    out: list[Layer] = []
    hw = _down(spec.resolution, 2)
    ch = make_divisible(32 * spec.alpha)
    out.append(Layer("conv1", "conv", spec.channels, ch, spec.resolution, hw,
                     kernel=3, stride=2, relu6=True, batchnorm=True))
    index = 0
    for t, c, n, s in _V2_BODY:
        out_ch = make_divisible(c * spec.alpha)
        for r in range(n):
            stride = s if r == 0 else 1
            block = f"block{index}"
            block_input = out[-1].name
            expanded = ch * t
            if t != 1:
                out.append(Layer(f"{block}_expand", "pointwise", ch, expanded, hw, hw,
                                 relu6=True, batchnorm=True, block=block))
            new_hw = _down(hw, stride)
            out.append(Layer(f"{block}_dw", "depthwise", expanded, expanded, hw, new_hw,
                             kernel=3, stride=stride, relu6=True, batchnorm=True, block=block))
            out.append(Layer(f"{block}_project", "pointwise", expanded, out_ch, new_hw, new_hw,
                             batchnorm=True, block=block))
            if stride == 1 and ch == out_ch:
                out.append(Layer(f"{block}_add", "add", out_ch, out_ch, new_hw, new_hw,
                                 residual=block_input, block=block))
            hw, ch = new_hw, out_ch
            index += 1
    last = make_divisible(1280 * spec.alpha) if spec.alpha > 1.0 else 1280
    out.append(Layer("conv_last", "pointwise", ch, last, hw, hw, relu6=True, batchnorm=True))
    _head(out, last, hw, spec)
    return tuple(out)
