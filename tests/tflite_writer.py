"""Building single-operator int8 .tflite models from scratch (NumPy arrays + quantization).

Each function returns the bytes of a valid flatbuffer (TFLM's own schema module, the object
API) holding one operator whose run-time inputs are the model inputs and whose output is the
model output, laid out as the TFLite converter lays out int8 models:

- int8 weights are symmetric per channel (zero points 0) along ``quantized_dimension`` 0 for
  CONV_2D and FULLY_CONNECTED and 3 for DEPTHWISE_CONV_2D; a single scale means per tensor;
- int32 bias has scale ``float32(in_scale * w_scale[c])`` and zero point 0;
- output shapes follow TFLM's own shape rules (``ComputeOutSizeChecked`` and friends).

The AOT kernel tests run these on the TFLM host interpreter as the independent reference.
Quantization is given as ``(scale, zero_point)`` or an :class:`mncompile.graph.ir.Quant`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mncompile.graph.ir import Quant
from mncompile.graph.reader import schema

QuantLike = Quant | tuple[float, int]

_ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
_PADDINGS = {"SAME": 0, "VALID": 1}


class WriterError(ValueError):
    """Arguments that cannot make a valid model."""


def _quant(q: QuantLike) -> Quant:
    if isinstance(q, Quant):
        return q
    scale, zero_point = q
    return Quant((float(scale),), (int(zero_point),))


def _activation(name: str) -> int:
    try:
        return _ACTIVATIONS[name.upper()]
    except KeyError:
        raise WriterError(f"unknown fused activation {name!r}") from None


def _padding(name: str) -> int:
    try:
        return _PADDINGS[name.upper()]
    except KeyError:
        raise WriterError(f"unknown padding {name!r}") from None


def windowed_out_size(padding: str, in_size: int, k: int, stride: int, dilation: int = 1) -> int:
    """TensorFlow's GetWindowedOutputSize, which TFLM's ComputeOutSizeChecked implements."""
    eff = (k - 1) * dilation + 1
    if padding.upper() == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - eff) // stride


class _Model:
    """One subgraph, one operator, tensors and their buffers."""

    def __init__(self):
        self.s = schema()
        self.tensors = []
        self.buffers = [self.s.BufferT()]  # buffer 0: empty, by convention

    def tensor(self, name: str, shape: Sequence[int], dtype: str, quant: Quant | None = None,
               data: np.ndarray | None = None) -> int:
        s = self.s
        t = s.TensorT()
        t.name = name.encode()
        t.shape = [int(d) for d in shape]
        t.type = getattr(s.TensorType, dtype)
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(np.float32(x)) for x in quant.scales]
            q.zeroPoint = [int(z) for z in quant.zero_points]
            q.quantizedDimension = int(quant.axis)
            t.quantization = q
        if data is not None:
            if tuple(data.shape) != tuple(t.shape):
                raise WriterError(f"{name}: data shape {data.shape} != tensor shape {tuple(t.shape)}")
            b = s.BufferT()
            b.data = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<"), copy=False).view(np.uint8).ravel()
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def finish(self, op: str, inputs: Sequence[int], outputs: Sequence[int], options_type: str | None = None,
               options=None, model_inputs: Sequence[int] | None = None) -> bytes:
        import flatbuffers

        s = self.s
        code = s.OperatorCodeT()
        code.builtinCode = getattr(s.BuiltinOperator, op)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        code.version = 1
        operator = s.OperatorT()
        operator.opcodeIndex = 0
        operator.inputs = [int(i) for i in inputs]
        operator.outputs = [int(i) for i in outputs]
        if options_type is not None:
            operator.builtinOptionsType = getattr(s.BuiltinOptions, options_type)
            operator.builtinOptions = options
        g = s.SubGraphT()
        g.tensors = self.tensors
        g.operators = [operator]
        if model_inputs is None:
            model_inputs = [i for i in inputs if i >= 0 and self.tensors[i].buffer == 0]
        g.inputs = [int(i) for i in model_inputs]
        g.outputs = [int(i) for i in outputs]
        g.name = b"main"
        m = s.ModelT()
        m.version = 3
        m.description = f"mncompile single-op {op}".encode()
        m.operatorCodes = [code]
        m.subgraphs = [g]
        m.buffers = self.buffers
        builder = flatbuffers.Builder(1024 + sum(len(b.data) for b in self.buffers if b.data is not None))
        _pack_aligned_buffers(builder, m)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _pack_aligned_buffers(builder, model) -> None:
    """Make every buffer's data vector start on a 16-byte boundary (int32 bias, float data),
    by swapping in the plan stage's aligned BufferT."""
    from mncompile.plan.offline import aligned_buffer_class

    aligned_type = aligned_buffer_class()
    for i, buf in enumerate(model.buffers):
        if buf.data is not None and len(buf.data) > 0:
            aligned = aligned_type()
            aligned.data = buf.data
            model.buffers[i] = aligned


def _weights_quant(scales: Sequence[float] | float, axis: int, channels: int) -> Quant:
    scales = (float(scales),) if np.isscalar(scales) else tuple(float(x) for x in scales)
    if len(scales) not in (1, channels):
        raise WriterError(f"{len(scales)} weight scales for {channels} output channels")
    return Quant(scales, (0,) * len(scales), axis if len(scales) > 1 else 0)


def _bias_quant(in_q: Quant, w_q: Quant) -> Quant:
    scales = tuple(float(np.float32(in_q.scale) * np.float32(w)) for w in w_q.scales)
    return Quant(scales, (0,) * len(scales), 0)


def _int8(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.int8:
        raise WriterError(f"{name} must be int8, not {a.dtype}")
    return a


def _bias(bias: np.ndarray | None, channels: int) -> np.ndarray | None:
    if bias is None:
        return None
    b = np.asarray(bias)
    if b.dtype != np.int32 or b.shape != (channels,):
        raise WriterError(f"bias must be int32 of shape ({channels},), not {b.dtype} {b.shape}")
    return b


# ---------------------------------------------------------------------------------------------
# operators


def conv2d(x_shape: Sequence[int], x_quant: QuantLike, weights: np.ndarray, weight_scales: Sequence[float] | float,
           bias: np.ndarray | None, out_quant: QuantLike, stride: tuple[int, int] = (1, 1), padding: str = "SAME",
           dilation: tuple[int, int] = (1, 1), activation: str = "NONE") -> bytes:
    """CONV_2D: x [N,H,W,C] int8, weights [O,KH,KW,C] int8, bias [O] int32 or None."""
    w = _int8(weights, "weights")
    n, h, wd, c = x_shape
    o, kh, kw, ci = w.shape
    if ci != c:
        raise WriterError(f"filter depth {ci} != input depth {c}")
    oh = windowed_out_size(padding, h, kh, stride[0], dilation[0])
    ow = windowed_out_size(padding, wd, kw, stride[1], dilation[1])
    if oh <= 0 or ow <= 0:
        raise WriterError("the window does not fit the input")
    xq, oq = _quant(x_quant), _quant(out_quant)
    wq = _weights_quant(weight_scales, 0, o)
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", xq)
    tw = m.tensor("filter", w.shape, "INT8", wq, w)
    b = _bias(bias, o)
    tb = m.tensor("bias", (o,), "INT32", _bias_quant(xq, wq), b) if b is not None else -1
    to = m.tensor("output", (n, oh, ow, o), "INT8", oq)
    opts = m.s.Conv2DOptionsT()
    opts.padding = _padding(padding)
    opts.strideH, opts.strideW = int(stride[0]), int(stride[1])
    opts.dilationHFactor, opts.dilationWFactor = int(dilation[0]), int(dilation[1])
    opts.fusedActivationFunction = _activation(activation)
    return m.finish("CONV_2D", [ti, tw, tb], [to], "Conv2DOptions", opts)


def depthwise_conv2d(x_shape: Sequence[int], x_quant: QuantLike, weights: np.ndarray,
                     weight_scales: Sequence[float] | float, bias: np.ndarray | None, out_quant: QuantLike,
                     stride: tuple[int, int] = (1, 1), padding: str = "SAME", dilation: tuple[int, int] = (1, 1),
                     depth_multiplier: int = 1, activation: str = "NONE") -> bytes:
    """DEPTHWISE_CONV_2D: x [N,H,W,C], weights [1,KH,KW,C*depth_multiplier] (per channel on axis 3).
    The bias is required: TFLM's depthwise kernel reads it unconditionally (it crashes without)."""
    w = _int8(weights, "weights")
    if bias is None:
        raise WriterError("DEPTHWISE_CONV_2D needs a bias tensor on TFLM (use zeros for none)")
    n, h, wd, c = x_shape
    one, kh, kw, o = w.shape
    if one != 1 or o != c * depth_multiplier:
        raise WriterError(f"depthwise filter shape {w.shape} does not fit {c} channels x {depth_multiplier}")
    oh = windowed_out_size(padding, h, kh, stride[0], dilation[0])
    ow = windowed_out_size(padding, wd, kw, stride[1], dilation[1])
    if oh <= 0 or ow <= 0:
        raise WriterError("the window does not fit the input")
    xq, oq = _quant(x_quant), _quant(out_quant)
    wq = _weights_quant(weight_scales, 3, o)
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", xq)
    tw = m.tensor("filter", w.shape, "INT8", wq, w)
    b = _bias(bias, o)
    tb = m.tensor("bias", (o,), "INT32", _bias_quant(xq, wq), b) if b is not None else -1
    to = m.tensor("output", (n, oh, ow, o), "INT8", oq)
    opts = m.s.DepthwiseConv2DOptionsT()
    opts.padding = _padding(padding)
    opts.strideH, opts.strideW = int(stride[0]), int(stride[1])
    opts.dilationHFactor, opts.dilationWFactor = int(dilation[0]), int(dilation[1])
    opts.depthMultiplier = int(depth_multiplier)
    opts.fusedActivationFunction = _activation(activation)
    return m.finish("DEPTHWISE_CONV_2D", [ti, tw, tb], [to], "DepthwiseConv2DOptions", opts)


def fully_connected(x_shape: Sequence[int], x_quant: QuantLike, weights: np.ndarray,
                    weight_scales: Sequence[float] | float, bias: np.ndarray | None, out_quant: QuantLike,
                    activation: str = "NONE") -> bytes:
    """FULLY_CONNECTED: weights [O, I]; x of any shape whose size is a multiple of I; output
    [size / I, O] (keep_num_dims false)."""
    w = _int8(weights, "weights")
    o, i = w.shape
    size = math.prod(x_shape)
    if size % i:
        raise WriterError(f"input of {size} elements is not a whole number of rows of {i}")
    xq, oq = _quant(x_quant), _quant(out_quant)
    wq = _weights_quant(weight_scales, 0, o)
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", xq)
    tw = m.tensor("weights", w.shape, "INT8", wq, w)
    b = _bias(bias, o)
    tb = m.tensor("bias", (o,), "INT32", _bias_quant(xq, wq), b) if b is not None else -1
    to = m.tensor("output", (size // i, o), "INT8", oq)
    opts = m.s.FullyConnectedOptionsT()
    opts.fusedActivationFunction = _activation(activation)
    return m.finish("FULLY_CONNECTED", [ti, tw, tb], [to], "FullyConnectedOptions", opts)


def average_pool2d(x_shape: Sequence[int], quant: QuantLike, filter_size: tuple[int, int],
                   stride: tuple[int, int] = (1, 1), padding: str = "VALID", activation: str = "NONE") -> bytes:
    """AVERAGE_POOL_2D; input and output share `quant` (TFLM requires it)."""
    n, h, w, c = x_shape
    oh = windowed_out_size(padding, h, filter_size[0], stride[0])
    ow = windowed_out_size(padding, w, filter_size[1], stride[1])
    if oh <= 0 or ow <= 0:
        raise WriterError("the window does not fit the input")
    q = _quant(quant)
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", q)
    to = m.tensor("output", (n, oh, ow, c), "INT8", q)
    opts = m.s.Pool2DOptionsT()
    opts.padding = _padding(padding)
    opts.strideH, opts.strideW = int(stride[0]), int(stride[1])
    opts.filterHeight, opts.filterWidth = int(filter_size[0]), int(filter_size[1])
    opts.fusedActivationFunction = _activation(activation)
    return m.finish("AVERAGE_POOL_2D", [ti], [to], "Pool2DOptions", opts)


def mean(x_shape: Sequence[int], x_quant: QuantLike, out_quant: QuantLike, axes: Sequence[int] = (1, 2),
         keep_dims: bool = True) -> bytes:
    """MEAN over `axes` (default H and W of NHWC)."""
    rank = len(x_shape)
    axes = sorted({a % rank for a in axes})
    if keep_dims:
        out_shape = [1 if d in axes else x_shape[d] for d in range(rank)]
    else:
        out_shape = [x_shape[d] for d in range(rank) if d not in axes]
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(x_quant))
    ta = m.tensor("axes", (len(axes),), "INT32", None, np.array(axes, dtype=np.int32))
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant))
    opts = m.s.ReducerOptionsT()
    opts.keepDims = bool(keep_dims)
    return m.finish("MEAN", [ti, ta], [to], "ReducerOptions", opts)


SOFTMAX_OUTPUT = Quant((1.0 / 256.0,), (-128,))


def softmax(x_shape: Sequence[int], x_quant: QuantLike, beta: float = 1.0) -> bytes:
    """SOFTMAX int8 -> int8 over the last axis; output scale 1/256, zero point -128 (TFLM's rule)."""
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(x_quant))
    to = m.tensor("output", x_shape, "INT8", SOFTMAX_OUTPUT)
    opts = m.s.SoftmaxOptionsT()
    opts.beta = float(beta)
    return m.finish("SOFTMAX", [ti], [to], "SoftmaxOptions", opts)


def add(shape1: Sequence[int], quant1: QuantLike, shape2: Sequence[int], quant2: QuantLike, out_quant: QuantLike,
        activation: str = "NONE") -> bytes:
    """ADD int8 with NumPy broadcasting of the two input shapes."""
    try:
        out_shape = np.broadcast_shapes(tuple(shape1), tuple(shape2))
    except ValueError as exc:
        raise WriterError(str(exc)) from None
    m = _Model()
    t1 = m.tensor("input1", shape1, "INT8", _quant(quant1))
    t2 = m.tensor("input2", shape2, "INT8", _quant(quant2))
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant))
    opts = m.s.AddOptionsT()
    opts.fusedActivationFunction = _activation(activation)
    return m.finish("ADD", [t1, t2], [to], "AddOptions", opts)


def pad(x_shape: Sequence[int], quant: QuantLike, paddings: Sequence[tuple[int, int]]) -> bytes:
    """PAD int8 with the zero point (no constant_values input); paddings: (before, after) per axis."""
    if len(paddings) != len(x_shape):
        raise WriterError("one (before, after) pair per input dimension")
    pads = np.array(paddings, dtype=np.int32).reshape(len(x_shape), 2)
    out_shape = [d + int(b) + int(a) for d, (b, a) in zip(x_shape, pads, strict=True)]
    q = _quant(quant)
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", q)
    tp = m.tensor("paddings", pads.shape, "INT32", None, pads)
    to = m.tensor("output", out_shape, "INT8", q)
    return m.finish("PAD", [ti, tp], [to], "PadOptions", m.s.PadOptionsT())


def reshape(x_shape: Sequence[int], quant: QuantLike, new_shape: Sequence[int]) -> bytes:
    """RESHAPE int8 (a view: same bytes, new shape)."""
    if math.prod(x_shape) != math.prod(new_shape):
        raise WriterError(f"cannot reshape {tuple(x_shape)} to {tuple(new_shape)}")
    q = _quant(quant)
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", q)
    ts = m.tensor("shape", (len(new_shape),), "INT32", None, np.array(new_shape, dtype=np.int32))
    to = m.tensor("output", new_shape, "INT8", q)
    opts = m.s.ReshapeOptionsT()
    opts.newShape = [int(d) for d in new_shape]
    return m.finish("RESHAPE", [ti, ts], [to], "ReshapeOptions", opts)


def quantize(shape: Sequence[int], out_quant: QuantLike) -> bytes:
    """QUANTIZE float32 -> int8."""
    m = _Model()
    ti = m.tensor("input", shape, "FLOAT32")
    to = m.tensor("output", shape, "INT8", _quant(out_quant))
    return m.finish("QUANTIZE", [ti], [to], "QuantizeOptions", m.s.QuantizeOptionsT())


def dequantize(shape: Sequence[int], in_quant: QuantLike) -> bytes:
    """DEQUANTIZE int8 -> float32."""
    m = _Model()
    ti = m.tensor("input", shape, "INT8", _quant(in_quant))
    to = m.tensor("output", shape, "FLOAT32")
    return m.finish("DEQUANTIZE", [ti], [to], "DequantizeOptions", m.s.DequantizeOptionsT())
