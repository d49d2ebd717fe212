"""Helpers the operator entries share: checks (`need`, `arity`, ...) and TFLM's window geometry."""

from __future__ import annotations

import math

from mncompile.graph.ir import Graph, Op, Tensor
from mncompile.graph.ops.registry import OpCheckError

# ActivationFunctionType's NONE, RELU, RELU_N1_TO_1, RELU6: the fused activations TFLite's kernels
# run (TANH and SIGN_BIT exist in the schema; CalculateActivationRange rejects them)
ACTIVATIONS = range(4)
PADDINGS = (0, 1)  # Padding: SAME, VALID
QUANTIZED = ("INT8", "UINT8", "INT16", "INT4")


def need(condition: bool, message: str) -> None:
    if not condition:
        raise OpCheckError(message)


def arity(op: Op, inputs: tuple[int, int], outputs: int = 1) -> None:
    lo, hi = inputs
    need(lo <= len(op.inputs) <= hi, f"has {len(op.inputs)} inputs, not {lo}" + (f" to {hi}" if hi != lo else ""))
    need(len(op.outputs) == outputs, f"has {len(op.outputs)} outputs, not {outputs}")
    for k in range(lo):
        need(op.inputs[k] >= 0, f"input {k} is omitted (-1), and it is required")


def operand(g: Graph, op: Op, k: int) -> Tensor | None:
    """Input `k` of `op`, or None when it is omitted."""
    return g.tensors[op.inputs[k]] if k < len(op.inputs) and op.inputs[k] >= 0 else None


def output(g: Graph, op: Op, k: int = 0) -> Tensor:
    return g.tensors[op.outputs[k]]


def rank(t: Tensor, n: int, role: str) -> None:
    need(len(t.shape) == n, f"its {role} (tensor {t.index}) has shape {list(t.shape)}, not rank {n}")


def per_tensor(*tensors: Tensor) -> None:
    """Quantized activations carry one scale and zero point (TFLM reads params.scale only)."""
    for t in tensors:
        if t.dtype in QUANTIZED:
            need(t.quant is not None, f"tensor {t.index} is a {t.dtype} activation without quantization parameters")
            need(not t.quant.per_channel, f"tensor {t.index} is a {t.dtype} activation quantized per channel; "
                                          "activations are quantized per tensor")


def per_channel_axis(w: Tensor, axis: int) -> None:
    if w.quant is not None and w.quant.per_channel:
        need(w.quant.axis == axis, f"its weights (tensor {w.index}) are quantized along dimension {w.quant.axis}, "
                                   f"not {axis} (the output channels)")


def option(op: Op, name: str, default: int = 0) -> int:
    value = op.option(name, default)
    return int(value) if isinstance(value, (int, bool)) else default


def activation(op: Op) -> None:
    act = option(op, "fusedActivationFunction")
    need(act in ACTIVATIONS, f"has the fused activation {act}; TFLite's kernels fuse NONE (0), RELU (1), "
                             "RELU_N1_TO_1 (2) and RELU6 (3)")


def window(op: Op, size: tuple[int, int], kernel: tuple[int, int], dilated: bool = True) -> tuple[int, int]:
    """The output (height, width) of a SAME/VALID window (TFLite's ComputeOutSize); checks the options."""
    padding = option(op, "padding")
    need(padding in PADDINGS, f"has padding {padding}; the TFLite schema has SAME (0) and VALID (1)")
    out = []
    for axis, n, k in (("H", size[0], kernel[0]), ("W", size[1], kernel[1])):
        stride = option(op, f"stride{axis}")
        dilation = option(op, f"dilation{axis}Factor", 1) if dilated else 1
        need(stride >= 1, f"has stride_{axis.lower()} {stride}; strides are 1 or more")
        need(dilation >= 1, f"has dilation_{axis.lower()} {dilation}; dilations are 1 or more")
        effective = (k - 1) * dilation + 1
        out.append((n + stride - 1) // stride if padding == 0 else (n + stride - effective) // stride)
    need(min(out) >= 1, f"its window {kernel} does not fit its input {size} with VALID padding")
    return out[0], out[1]


def tflm_padding(op: Op, in_hw: tuple[int, int], filter_hw: tuple[int, int]) -> tuple[int, int]:
    """TFLM's ComputePaddingHeightWidth (kernels/padding.h): the (height, width) padding."""
    same = op.option("padding", 0) == 0  # schema Padding: SAME = 0, VALID = 1
    strides = (op.option("strideH", 1), op.option("strideW", 1))
    dilations = (op.option("dilationHFactor", 1), op.option("dilationWFactor", 1))
    pads = []
    for size, k, s, d in zip(in_hw, filter_hw, strides, dilations, strict=True):
        effective = (k - 1) * d + 1
        out = (size + s - 1) // s if same else (size + s - effective) // s
        pads.append(max((out - 1) * s + effective - size, 0) // 2)
    return pads[0], pads[1]


def same_type(*tensors: Tensor) -> None:
    kinds = {t.dtype for t in tensors}
    need(len(kinds) == 1, "mixes the types " + ", ".join(f"{t.dtype} (tensor {t.index})" for t in tensors))


def same_shape(x: Tensor, y: Tensor) -> None:
    need(tuple(x.shape) == tuple(y.shape), f"its input {list(x.shape)} and output {list(y.shape)} differ in shape")


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The NumPy broadcast of two shapes, or None."""
    out = []
    for k in range(max(len(a), len(b))):
        da = a[len(a) - 1 - k] if k < len(a) else 1
        db = b[len(b) - 1 - k] if k < len(b) else 1
        if da != db and 1 not in (da, db):
            return None
        out.append(max(da, db))
    return tuple(reversed(out))


def elements(t: Tensor) -> int:
    return math.prod(t.shape)


def per_channel_buffers(channels: int) -> tuple[tuple[str, str, int], ...]:
    """The two persistent arrays a per-channel kernel's Prepare allocates: multipliers and shifts."""
    return (("per_channel_quantization", "per_channel_output_multiplier", 4 * channels),
            ("per_channel_quantization", "per_channel_output_shift", 4 * channels))
