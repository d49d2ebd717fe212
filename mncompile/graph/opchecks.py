"""Per-operator validity: the shape, type and quantization rules TFLite's kernels assume.

`OP_CHECKS` maps an operator type to a function that raises `OpCheckError` with what is wrong;
`mncompile.graph.verify` names the operator. The rules are those of TFLite's kernels' Prepare
(and the converter's output): output shapes follow from the input shapes and the options (SAME
and VALID padding as TFLite's ``ComputeOutSize``), filters have the layouts TFLite uses (CONV_2D
``[out, kh, kw, in]``, DEPTHWISE_CONV_2D ``[1, kh, kw, out]``, FULLY_CONNECTED ``[out, in]``),
per-channel scales run along the output channels, activations are quantized per tensor.
Operator types without an entry get the generic checks of `verify` only.

`OPTIONS_TYPES` says which BuiltinOptions union member an operator's options must be, and
whether TFLite needs them (a CONV_2D without Conv2DOptions would run with stride 0).
"""

from __future__ import annotations

import math

from mncompile.graph.ir import Graph, Op, Tensor


class OpCheckError(Exception):
    """What is wrong with one operator (verify adds which operator)."""


OPTIONS_TYPES: dict[str, tuple[str, bool]] = {
    "CONV_2D": ("Conv2DOptions", True), "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", True),
    "FULLY_CONNECTED": ("FullyConnectedOptions", False), "AVERAGE_POOL_2D": ("Pool2DOptions", True),
    "MAX_POOL_2D": ("Pool2DOptions", True), "MEAN": ("ReducerOptions", False), "SUM": ("ReducerOptions", False),
    "REDUCE_MAX": ("ReducerOptions", False), "SOFTMAX": ("SoftmaxOptions", True), "ADD": ("AddOptions", False),
    "SUB": ("SubOptions", False), "MUL": ("MulOptions", False), "RESHAPE": ("ReshapeOptions", False),
    "PAD": ("PadOptions", False), "PADV2": ("PadV2Options", False), "QUANTIZE": ("QuantizeOptions", False),
    "DEQUANTIZE": ("DequantizeOptions", False), "CONCATENATION": ("ConcatenationOptions", False),
    "TRANSPOSE": ("TransposeOptions", False), "HARD_SWISH": ("HardSwishOptions", False),
}
ACTIVATIONS = range(6)  # ActivationFunctionType: NONE, RELU, RELU_N1_TO_1, RELU6, TANH, SIGN_BIT
PADDINGS = (0, 1)  # Padding: SAME, VALID
QUANTIZED = ("INT8", "UINT8", "INT16", "INT4")


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise OpCheckError(message)


def _arity(op: Op, inputs: tuple[int, int], outputs: int = 1) -> None:
    lo, hi = inputs
    _need(lo <= len(op.inputs) <= hi, f"has {len(op.inputs)} inputs, not {lo}" + (f" to {hi}" if hi != lo else ""))
    _need(len(op.outputs) == outputs, f"has {len(op.outputs)} outputs, not {outputs}")
    for k in range(lo):
        _need(op.inputs[k] >= 0, f"input {k} is omitted (-1), and it is required")


def _input(g: Graph, op: Op, k: int) -> Tensor | None:
    return g.tensors[op.inputs[k]] if k < len(op.inputs) and op.inputs[k] >= 0 else None


def _rank(t: Tensor, rank: int, role: str) -> None:
    _need(len(t.shape) == rank, f"its {role} (tensor {t.index}) has shape {list(t.shape)}, not rank {rank}")


def _per_tensor(*tensors: Tensor) -> None:
    for t in tensors:
        if t.dtype in QUANTIZED:
            _need(t.quant is not None, f"tensor {t.index} is a {t.dtype} activation without quantization parameters")
            _need(not t.quant.per_channel, f"tensor {t.index} is a {t.dtype} activation quantized per channel; "
                                           "activations are quantized per tensor")


def _per_channel_axis(w: Tensor, axis: int) -> None:
    if w.quant is not None and w.quant.per_channel:
        _need(w.quant.axis == axis, f"its weights (tensor {w.index}) are quantized along dimension {w.quant.axis}, "
                                    f"not {axis} (the output channels)")


def _opt(op: Op, name: str, default: int = 0) -> int:
    value = op.option(name, default)
    return int(value) if isinstance(value, (int, bool)) else default


def _activation(op: Op) -> None:
    act = _opt(op, "fusedActivationFunction")
    _need(act in ACTIVATIONS, f"has the fused activation {act}, which the TFLite schema does not define")


def _window(op: Op, size: tuple[int, int], kernel: tuple[int, int], dilated: bool = True) -> tuple[int, int]:
    padding = _opt(op, "padding")
    _need(padding in PADDINGS, f"has padding {padding}; the TFLite schema has SAME (0) and VALID (1)")
    out = []
    for axis, n, k in (("H", size[0], kernel[0]), ("W", size[1], kernel[1])):
        stride = _opt(op, f"stride{axis}")
        dilation = _opt(op, f"dilation{axis}Factor", 1) if dilated else 1
        _need(stride >= 1, f"has stride_{axis.lower()} {stride}; strides are 1 or more")
        _need(dilation >= 1, f"has dilation_{axis.lower()} {dilation}; dilations are 1 or more")
        effective = (k - 1) * dilation + 1
        out.append((n + stride - 1) // stride if padding == 0 else (n + stride - effective) // stride)
    _need(min(out) >= 1, f"its window {kernel} does not fit its input {size} with VALID padding")
    return out[0], out[1]


def _same_type(*tensors: Tensor) -> None:
    kinds = {t.dtype for t in tensors}
    _need(len(kinds) == 1, "mixes the types " + ", ".join(f"{t.dtype} (tensor {t.index})" for t in tensors))


def _weights_types(x: Tensor, w: Tensor, b: Tensor | None, y: Tensor) -> None:
    allowed = {"INT8": (("INT8", "INT4"), ("INT32",), "INT8"), "INT16": (("INT8",), ("INT64", "INT32"), "INT16"),
               "FLOAT32": (("FLOAT32",), ("FLOAT32",), "FLOAT32"), "UINT8": (("UINT8",), ("INT32",), "UINT8")}
    _need(x.dtype in allowed, f"has a {x.dtype} input; TFLite runs it on int8, int16, uint8 or float32")
    weights, biases, out = allowed[x.dtype]
    _need(w.dtype in weights, f"has {w.dtype} weights with a {x.dtype} input (hybrid models are not supported)")
    _need(b is None or b.dtype in biases, f"has a {b.dtype if b else ''} bias with a {x.dtype} input")
    _need(y.dtype == out, f"has a {y.dtype} output with a {x.dtype} input")
    if x.dtype in QUANTIZED:
        _need(w.quant is not None, f"its {w.dtype} weights (tensor {w.index}) have no quantization parameters")


def _bias(b: Tensor | None, channels: int) -> None:
    if b is not None:
        _need(len(b.shape) == 1, f"its bias (tensor {b.index}) has shape {list(b.shape)}; a bias is one-dimensional")
        _need(math.prod(b.shape) == channels, f"its bias (tensor {b.index}) has {math.prod(b.shape)} elements, "
                                              f"not one per output channel ({channels})")


def _convolution(g: Graph, op: Op) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """The checks CONV_2D and DEPTHWISE_CONV_2D share: operands, ranks, types, activation."""
    _arity(op, (2, 3))
    x, w, b, y = _input(g, op, 0), _input(g, op, 1), _input(g, op, 2), g.tensors[op.outputs[0]]
    for t, role in ((x, "input"), (w, "filter"), (y, "output")):
        _rank(t, 4, role)
    _weights_types(x, w, b, y)
    # TFLite's quantized convolutions require a bias (lite/kernels/conv.cc, depthwise_conv.cc Prepare)
    _need(b is not None or x.dtype not in QUANTIZED, f"is a {x.dtype} convolution without a bias (input 2)")
    _activation(op)
    _per_tensor(x, y)
    return x, w, b, y


def _conv_output(op: Op, x: Tensor, y: Tensor, kernel: tuple[int, int], channels: int, b: Tensor | None) -> None:
    n, h, wd, _ = x.shape
    oh, ow = _window(op, (h, wd), kernel)
    _need(tuple(y.shape) == (n, oh, ow, channels), f"its output has shape {list(y.shape)}, and its input, filter "
                                                   f"and options give {[n, oh, ow, channels]}")
    _bias(b, channels)


def conv_2d(g: Graph, op: Op) -> None:
    x, w, b, y = _convolution(g, op)
    c = x.shape[3]
    o, kh, kw, ci = w.shape
    _need(c % ci == 0, f"its filter depth {ci} does not divide its input depth {c}")
    _need(o % (c // ci) == 0, f"its {o} output channels do not split into {c // ci} groups")
    _conv_output(op, x, y, (kh, kw), o, b)
    _per_channel_axis(w, 0)


def depthwise_conv_2d(g: Graph, op: Op) -> None:
    x, w, b, y = _convolution(g, op)
    c = x.shape[3]
    one, kh, kw, o = w.shape
    _need(one == 1, f"its filter has shape {list(w.shape)}; a depthwise filter is [1, kh, kw, channels]")
    multiplier = _opt(op, "depthMultiplier")
    _need(o == c * multiplier, f"its filter has {o} channels, and its input's {c} channels times its depth "
                               f"multiplier {multiplier} make {c * multiplier}")
    _conv_output(op, x, y, (kh, kw), o, b)
    _per_channel_axis(w, 3)


def fully_connected(g: Graph, op: Op) -> None:
    _arity(op, (2, 3))
    x, w, b, y = _input(g, op, 0), _input(g, op, 1), _input(g, op, 2), g.tensors[op.outputs[0]]
    _rank(w, 2, "weights")
    _weights_types(x, w, b, y)
    o, depth = w.shape
    _need(_opt(op, "weightsFormat") == 0, "uses shuffled weights, which TFLM does not run")
    elements = math.prod(x.shape)
    _need(elements % depth == 0, f"its input of {elements} elements is not a whole number of rows of {depth}")
    want = (*x.shape[:-1], o) if _opt(op, "keepNumDims") else (elements // depth, o)
    _need(tuple(y.shape) == tuple(want) or (not _opt(op, "keepNumDims") and math.prod(y.shape) == math.prod(want)
                                            and y.shape and y.shape[-1] == o),
          f"its output has shape {list(y.shape)}, and its input and weights give {list(want)}")
    _bias(b, o)
    _activation(op)
    _per_tensor(x, y)
    _per_channel_axis(w, 0)


def pool_2d(g: Graph, op: Op) -> None:
    _arity(op, (1, 1))
    x, y = _input(g, op, 0), g.tensors[op.outputs[0]]
    _rank(x, 4, "input")
    _rank(y, 4, "output")
    _same_type(x, y)
    kh, kw = _opt(op, "filterHeight"), _opt(op, "filterWidth")
    _need(kh >= 1 and kw >= 1, f"has a {kh}x{kw} window")
    oh, ow = _window(op, (x.shape[1], x.shape[2]), (kh, kw), dilated=False)
    want = (x.shape[0], oh, ow, x.shape[3])
    _need(tuple(y.shape) == want, f"its output has shape {list(y.shape)}, and its input and options give {list(want)}")
    _activation(op)
    _per_tensor(x, y)


def reduce(g: Graph, op: Op) -> None:
    _arity(op, (2, 2))
    x, axis, y = _input(g, op, 0), _input(g, op, 1), g.tensors[op.outputs[0]]
    _need(axis.is_constant and axis.dtype in ("INT32", "INT64"), "its axes (input 1) are not constant integers")
    _same_type(x, y)
    rank = len(x.shape)
    axes = {int(a) for a in g.constant(axis.index).reshape(-1)}
    _need(all(-rank <= a < rank for a in axes), f"reduces over axes {sorted(axes)} of a rank-{rank} input")
    axes = {a % rank for a in axes} if rank else set()
    keep = bool(_opt(op, "keepDims"))
    want = tuple(1 if k in axes else d for k, d in enumerate(x.shape)) if keep else tuple(
        d for k, d in enumerate(x.shape) if k not in axes)
    _need(tuple(y.shape) == want, f"its output has shape {list(y.shape)}, and its input and axes give {list(want)}")
    _per_tensor(x, y)


def softmax(g: Graph, op: Op) -> None:
    _arity(op, (1, 1))
    x, y = _input(g, op, 0), g.tensors[op.outputs[0]]
    _need(tuple(x.shape) == tuple(y.shape), f"its input {list(x.shape)} and output {list(y.shape)} differ in shape")
    _need(x.dtype == y.dtype or (x.dtype == "INT8" and y.dtype == "INT16"),
          f"has a {x.dtype} input and a {y.dtype} output")
    beta = op.option("beta", 1.0)
    _need(isinstance(beta, float) and math.isfinite(beta) and beta > 0, f"has beta {beta}; beta must be positive")
    _per_tensor(x, y)


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    out = []
    for k in range(max(len(a), len(b))):
        da = a[len(a) - 1 - k] if k < len(a) else 1
        db = b[len(b) - 1 - k] if k < len(b) else 1
        if da != db and 1 not in (da, db):
            return None
        out.append(max(da, db))
    return tuple(reversed(out))


def elementwise_binary(g: Graph, op: Op) -> None:
    _arity(op, (2, 2))
    a, b, y = _input(g, op, 0), _input(g, op, 1), g.tensors[op.outputs[0]]
    _same_type(a, b, y)
    shape = _broadcast(a.shape, b.shape)
    _need(shape is not None and shape == tuple(y.shape),
          f"its inputs {list(a.shape)} and {list(b.shape)} do not broadcast to its output {list(y.shape)}")
    _activation(op)
    _per_tensor(a, b, y)


def elementwise_unary(g: Graph, op: Op) -> None:
    _arity(op, (1, 1))
    x, y = _input(g, op, 0), g.tensors[op.outputs[0]]
    _need(tuple(x.shape) == tuple(y.shape), f"its input {list(x.shape)} and output {list(y.shape)} differ in shape")
    _same_type(x, y)
    _per_tensor(x, y)


def reshape(g: Graph, op: Op) -> None:
    _arity(op, (1, 2))
    x, y = _input(g, op, 0), g.tensors[op.outputs[0]]
    _same_type(x, y)
    _need(math.prod(x.shape) == math.prod(y.shape),
          f"reshapes {list(x.shape)} ({math.prod(x.shape)} elements) to {list(y.shape)} ({math.prod(y.shape)})")


def pad(g: Graph, op: Op) -> None:
    _arity(op, (2, 3) if op.kind == "PADV2" else (2, 2))
    x, pads, y = _input(g, op, 0), _input(g, op, 1), g.tensors[op.outputs[0]]
    _same_type(x, y)
    rank = len(x.shape)
    _need(pads.is_constant and pads.dtype in ("INT32", "INT64") and tuple(pads.shape) == (rank, 2),
          f"its paddings (tensor {pads.index}, {pads.dtype} {list(pads.shape)}) are not a constant [{rank}, 2] table")
    table = g.constant(pads.index).reshape(rank, 2)
    _need(bool((table >= 0).all()), f"has negative paddings {table.tolist()}")
    want = tuple(int(d + p[0] + p[1]) for d, p in zip(x.shape, table, strict=True))
    _need(tuple(y.shape) == want, f"its output has shape {list(y.shape)}, and its input and paddings give "
                                  f"{list(want)}")
    _per_tensor(x, y)


def quantize(g: Graph, op: Op) -> None:
    _arity(op, (1, 1))
    x, y = _input(g, op, 0), g.tensors[op.outputs[0]]
    _need(tuple(x.shape) == tuple(y.shape), f"its input {list(x.shape)} and output {list(y.shape)} differ in shape")
    _need(y.dtype in ("INT8", "UINT8", "INT16"), f"quantizes to {y.dtype}")
    _need(x.dtype in ("FLOAT32", "INT8", "UINT8", "INT16"), f"quantizes a {x.dtype} input")
    _per_tensor(x, y)


def dequantize(g: Graph, op: Op) -> None:
    _arity(op, (1, 1))
    x, y = _input(g, op, 0), g.tensors[op.outputs[0]]
    _need(tuple(x.shape) == tuple(y.shape), f"its input {list(x.shape)} and output {list(y.shape)} differ in shape")
    _need(y.dtype == "FLOAT32", f"dequantizes to {y.dtype}, not FLOAT32")
    _need(x.dtype in ("INT8", "UINT8", "INT16", "FLOAT16"), f"dequantizes a {x.dtype} input")
    _per_tensor(x)


OP_CHECKS = {
    "CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d, "FULLY_CONNECTED": fully_connected,
    "AVERAGE_POOL_2D": pool_2d, "MAX_POOL_2D": pool_2d, "MEAN": reduce, "SUM": reduce, "REDUCE_MAX": reduce,
    "SOFTMAX": softmax, "ADD": elementwise_binary, "SUB": elementwise_binary, "MUL": elementwise_binary,
    "RESHAPE": reshape, "PAD": pad, "PADV2": pad, "QUANTIZE": quantize, "DEQUANTIZE": dequantize,
    "RELU": elementwise_unary, "RELU6": elementwise_unary, "LOGISTIC": elementwise_unary,
    "HARD_SWISH": elementwise_unary, "TANH": elementwise_unary,
}
