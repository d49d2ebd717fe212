"""Ahead-of-time C code generation: an int8 .tflite becomes `model.c` / `model.h`.

The generated code has no interpreter, no flatbuffer, no heap and no Prepare step:

- one function, ``int model_invoke(const int8_t *in, int8_t *out)``, calls the kernels of
  ``firmware/kernels`` (``mn_kernels.h``) layer by layer. An int8 model converted with float
  I/O (a QUANTIZE float32 -> int8 op on the graph input, a DEQUANTIZE int8 -> float32 op making
  the graph output) takes and returns float there instead, e.g.
  ``int model_invoke(const float *in, float *out)``: those two ops run as
  ``mn_quantize_f32_s8`` reading ``in`` and ``mn_dequantize_s8_f32`` writing ``out``, and the
  float buffers are the caller's (only int8 tensors live in the arena);
- every constant is folded at generation time: weights, biases, per-channel multipliers and
  shifts are ``static const`` tables (flash: the linker script's ``.model`` section, like the TFLM
  backend's flatbuffer), and each layer's parameter struct is a
  ``static const`` designated initialiser pointing at them. All parameter arithmetic is
  `mncompile.aot.quantmath`, which reproduces TFLM's Prepare bit for bit;
- activations live in ONE static arena, ``static uint8_t arena[N]``, 16-byte aligned, in the
  linker script's ``.tensor_arena`` section, at offsets from the AOT memory plan
  (`mncompile.aot.memory`: RESHAPE is a view, depthwise runs in place where its input dies).

``model_invoke`` copies an int8 ``in`` into the arena's input tensor (skipped when ``in`` is
``model_input()``, the arena's own input buffer), runs every layer, and copies an int8 output
tensor to ``out``. It returns 0, or ``k + 1`` when the kernel of node ``k`` rejected its
parameters (which generated parameters never make it do).

Operators: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MEAN (over H and W),
SOFTMAX, ADD, PAD and RESHAPE, int8 activations, symmetric int8 weights; QUANTIZE and DEQUANTIZE
at the float I/O edges only (`float_edges`). Anything else, a float32 tensor anywhere else
included, is an `UnsupportedOpError` naming the op and the node; the TFLM backend runs it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from mncompile.aot import quantmath as qm
from mncompile.aot.memory import AotMemory, plan_aot
from mncompile.ctext import c_comment_text, c_float
from mncompile.errors import ModelError, QuantizationError, UnsupportedOpError
from mncompile.graph.ir import Graph, Op, Tensor
from mncompile.graph.verified import VerifiedModel

SUPPORTED_OPS = ("ADD", "AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "FULLY_CONNECTED", "MEAN",
                 "PAD", "QUANTIZE", "RESHAPE", "SOFTMAX")  # QUANTIZE/DEQUANTIZE: at float I/O edges only
FALLBACK_HINT = "use --backend tflm (the TensorFlow Lite Micro interpreter runs every op TFLM has)"
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
_PADDINGS = {0: "SAME", 1: "VALID"}
_KERNEL = {"CONV_2D": "mn_conv2d_s8", "DEPTHWISE_CONV_2D": "mn_depthwise_conv_s8",
           "FULLY_CONNECTED": "mn_fully_connected_s8", "AVERAGE_POOL_2D": "mn_avgpool_s8", "MEAN": "mn_mean_hw_s8",
           "SOFTMAX": "mn_softmax_s8", "PAD": "mn_pad_s8", "QUANTIZE": "mn_quantize_f32_s8",
           "DEQUANTIZE": "mn_dequantize_s8_f32"}
_C_TYPES = {"INT8": "int8_t", "FLOAT32": "float"}
INTS_PER_LINE = 16


@dataclass(frozen=True)
class AotLayer:
    index: int  # node index in the .tflite
    kind: str
    name: str  # the Keras layer (or tensor) name, for comments
    kernel: str | None  # the mn_* function; None for a view (RESHAPE)
    inplace: bool = False


@dataclass(frozen=True)
class AotProgram:
    """The generated sources and what they need."""

    model_c: str
    model_h: str
    memory: AotMemory
    layers: tuple[AotLayer, ...]
    constant_bytes: int  # static const tables and parameter structs (flash)
    input_bytes: int  # model_invoke() reads this many bytes from `in` (and writes output_bytes to `out`)
    output_bytes: int
    input_offset: int | None  # in the arena; None for a float input (the caller's buffer, quantized by node 0)
    output_offset: int | None  # None for a float output (DEQUANTIZE writes the caller's buffer)
    input_dtype: str = "INT8"  # INT8, or FLOAT32 at a float I/O edge
    output_dtype: str = "INT8"

    @property
    def arena_bytes(self) -> int:
        return self.memory.arena_bytes

    @property
    def kernels(self) -> tuple[str, ...]:
        return tuple(sorted({layer.kernel for layer in self.layers if layer.kernel}))

    def to_json(self) -> dict:
        return {"arena_bytes": self.arena_bytes, "constant_bytes": self.constant_bytes,
                "input": {"bytes": self.input_bytes, "offset": self.input_offset,
                          "dtype": self.input_dtype.lower()},
                "output": {"bytes": self.output_bytes, "offset": self.output_offset,
                           "dtype": self.output_dtype.lower()},
                "kernels": list(self.kernels),
                "layers": [{"node": layer.index, "op": layer.kind, "name": layer.name, "kernel": layer.kernel,
                            "in_place": layer.inplace} for layer in self.layers],
                "memory": self.memory.to_json()}


# ---------------------------------------------------------------------------------------------
# reading constants


def _array(graph: Graph, t: Tensor) -> np.ndarray:
    """A constant operand's data (verified: exactly shape x dtype)."""
    if not t.is_constant or t.dtype not in ("INT8", "INT32", "INT64", "UINT8"):
        raise ModelError(f"tensor {t.index} ({t.name}) has no {t.dtype} data the AOT backend can read",
                         hint=FALLBACK_HINT)
    return graph.constant(t.index)


def _unsupported(op: Op, why: str = "") -> UnsupportedOpError:
    return UnsupportedOpError(f"unsupported op {op.kind} at node {op.index}" + (f": {why}" if why else ""),
                              hint=FALLBACK_HINT)


# ---------------------------------------------------------------------------------------------
# C text


def _c_int(v: int) -> str:
    v = int(v)
    return "(-2147483647 - 1)" if v == -(1 << 31) else str(v)


def _rows(values: np.ndarray, indent: str = "    ") -> str:
    flat = [_c_int(v) for v in np.asarray(values).reshape(-1)]
    return "\n".join(indent + ", ".join(flat[i:i + INTS_PER_LINE]) + ","
                     for i in range(0, len(flat), INTS_PER_LINE))


@dataclass
class _Emitter:
    decls: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    constant_bytes: int = 0

    def table(self, name: str, ctype: str, values: np.ndarray, comment: str) -> str:
        values = np.asarray(values).reshape(-1)
        size = {"int8_t": 1, "int32_t": 4}[ctype]
        self.constant_bytes += size * max(values.size, 1)
        self.decls.append(f"/* {comment} */\nstatic const {ctype} {name}[{max(values.size, 1)}] MN_CONST = {{\n"
                          f"{_rows(values) if values.size else '    0,'}\n}};\n")
        return name

    def struct(self, name: str, ctype: str, fields: list[tuple[str, object]], comment: str) -> str:
        parts = []
        for key, value in fields:
            if isinstance(value, (tuple, list)):
                text = "{" + ", ".join(_c_int(v) for v in value) + "}"
                self.constant_bytes += 4 * len(value)
            elif isinstance(value, str):
                text = value
                self.constant_bytes += 4  # a pointer
            elif isinstance(value, float):
                text = c_float(value)  # reads back to the same float32
                self.constant_bytes += 4
            else:
                text = _c_int(value)
                self.constant_bytes += 4
            parts.append(f"    .{key} = {text},")
        self.decls.append(f"/* {comment} */\nstatic const {ctype} {name} = {{\n" + "\n".join(parts) + "\n};\n")
        return name


# ---------------------------------------------------------------------------------------------
# the generator


def _act(op: Op) -> str:
    code = int(op.option("fusedActivationFunction", 0) or 0)
    if code not in _ACTIVATIONS:
        raise _unsupported(op, f"fused activation {code} (only NONE, RELU, RELU_N1_TO_1 and RELU6)")
    return _ACTIVATIONS[code]


def _padding(op: Op) -> str:
    code = int(op.option("padding", 0) or 0)
    if code not in _PADDINGS:
        raise _unsupported(op, f"padding {code}")
    return _PADDINGS[code]


def _q(op: Op, t: Tensor, what: str) -> tuple[float, int]:
    if t.quant is None or t.quant.per_channel:
        raise _unsupported(op, f"{what} tensor {t.index} is not quantized per tensor")
    return t.quant.scale, t.quant.zero_point


def _symmetric(op: Op, w: Tensor) -> None:
    if w.quant is None or any(z != 0 for z in w.quant.zero_points):
        raise _unsupported(op, f"weights tensor {w.index} is not symmetric int8 (zero points must be 0)")


@dataclass(frozen=True)
class FloatEdges:
    """The float I/O edges of an int8 model converted with float input and/or output: the
    TFLite converter's default (``inference_input_type``/``inference_output_type`` left float32)
    puts a QUANTIZE float32 -> int8 op on the graph input and a DEQUANTIZE int8 -> float32 op
    before the graph output. None where the edge is int8 (or not of that form)."""

    input: int | None = None  # the FLOAT32 graph input tensor
    quantize: int | None = None  # the QUANTIZE op that reads it (its only reader)
    output: int | None = None  # the FLOAT32 graph output tensor
    dequantize: int | None = None  # the DEQUANTIZE op that writes it

    @property
    def any(self) -> bool:
        return self.quantize is not None or self.dequantize is not None

    @property
    def tensors(self) -> frozenset[int]:
        """The float tensors the caller owns (not in the arena)."""
        return frozenset(t for t in (self.input, self.output) if t is not None)


def _readers(graph: Graph, tensor: int) -> list[Op]:
    return [op for op in graph.ops if tensor in graph.activation_inputs(op)]


def _writer(graph: Graph, tensor: int) -> Op | None:
    return next((op for op in graph.ops if tensor in op.outputs), None)


def float_edges(graph: Graph) -> FloatEdges:
    """Which of the graph's (single) input and output are float I/O edges (`FloatEdges`)."""
    found = {}
    if len(graph.inputs) == 1:
        tin = graph.tensors[graph.inputs[0]]
        readers = _readers(graph, tin.index)
        if (tin.dtype == "FLOAT32" and tin.index not in graph.outputs and len(readers) == 1
                and readers[0].kind == "QUANTIZE" and len(readers[0].outputs) == 1
                and graph.tensors[readers[0].outputs[0]].dtype == "INT8"):
            found.update(input=tin.index, quantize=readers[0].index)
    if len(graph.outputs) == 1:
        tout = graph.tensors[graph.outputs[0]]
        op = _writer(graph, tout.index)
        if (tout.dtype == "FLOAT32" and op is not None and op.kind == "DEQUANTIZE"
                and len(graph.activation_inputs(op)) == 1
                and graph.tensors[graph.activation_inputs(op)[0]].dtype == "INT8"):
            found.update(output=tout.index, dequantize=op.index)
    return FloatEdges(**found)


def has_float_io_edges(graph: Graph) -> bool:
    """True for an int8 model converted with float input and/or output (`float_edges`): a
    "tflite-float" model by its input type that the AOT backend still compiles."""
    return float_edges(graph).any


class _Generator:
    def __init__(self, graph: Graph, memory: AotMemory):
        self.g = graph
        self.mem = memory
        self.edges = float_edges(self.g)
        self.e = _Emitter()
        self.layers: list[AotLayer] = []

    def t(self, i: int) -> Tensor:
        return self.g.tensors[i]

    def ptr(self, tensor: int) -> str:
        return f"MN_T({self.mem.offset(tensor)})"

    def name(self, op: Op) -> str:
        return c_comment_text(self.g.layer_name(op.outputs[0]))

    def requant(self, prefix: str, p: qm.ChannelRequant, what: str) -> tuple[str, str]:
        m = self.e.table(f"{prefix}_mult", "int32_t", np.array(p.multipliers, dtype=np.int64),
                         f"{what}: requantization multipliers")
        s = self.e.table(f"{prefix}_shift", "int32_t", np.array(p.shifts, dtype=np.int64),
                         f"{what}: requantization shifts (> 0: left)")
        return m, s

    def call(self, op: Op, kernel: str, args: str, inplace: bool = False) -> None:
        label = f"node {op.index}: {op.kind} {self.name(op)}" + (" (in place)" if inplace else "")
        self.body_line(f"/* {label} */")
        self.body_line(f"if ({kernel}({args}) != MN_OK) return {op.index + 1};")
        self.layers.append(AotLayer(op.index, op.kind, self.name(op), kernel, inplace))

    def body_line(self, text: str) -> None:
        self.e.body.append("    " + text)

    # -- operators ---------------------------------------------------------------------------

    def conv(self, op: Op) -> None:
        x, w, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        bias = self.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise _unsupported(op, "input and filter must be 4-D")
        n, h, wd, c = x.shape
        o, kh, kw, ci = w.shape
        if ci != c:
            raise _unsupported(op, f"grouped convolution (filter depth {ci}, input depth {c})")
        _symmetric(op, w)
        geo, p = self._window(op, h, wd, kh, kw)
        if tuple(y.shape) != (n, geo.out_h, geo.out_w, o):
            raise _unsupported(op, f"output shape {y.shape} is not {(n, geo.out_h, geo.out_w, o)}")
        req = qm.conv_params(*_q(op, x, "input"), w.quant.scales, *_q(op, y, "output"), _act(op), channels=o)
        pre = f"L{op.index}"
        filt = self.e.table(f"{pre}_filter", "int8_t", _array(self.g, w), f"node {op.index}: filter {w.shape}")
        b = self._bias(op, bias, pre, o)
        mult, shift = self.requant(pre, req, f"node {op.index}")
        params = self.e.struct(pre, "mn_conv_params", [
            ("batches", n), ("in_h", h), ("in_w", wd), ("in_c", c), ("out_h", geo.out_h), ("out_w", geo.out_w),
            ("out_c", o), ("k_h", kh), ("k_w", kw), *p, ("pad_top", geo.pad_top), ("pad_left", geo.pad_left),
            ("in_offset", req.in_offset), ("out_offset", req.out_offset), ("act_min", req.act_min),
            ("act_max", req.act_max), ("filter", filt), ("bias", b), ("out_mult", mult), ("out_shift", shift)],
            f"node {op.index}: CONV_2D {self.name(op)}, {_act(op)}")
        self.call(op, "mn_conv2d_s8", f"&{params}, {self.ptr(x.index)}, {self.ptr(y.index)}")

    def depthwise(self, op: Op) -> None:
        x, w, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        bias = self.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        n, h, wd, c, o, kh, kw, dm, geo, p = self._dw_geometry(op)
        _symmetric(op, w)
        req = qm.conv_params(*_q(op, x, "input"), w.quant.scales, *_q(op, y, "output"), _act(op), channels=o)
        pre = f"L{op.index}"
        filt = self.e.table(f"{pre}_filter", "int8_t", _array(self.g, w), f"node {op.index}: filter {w.shape}")
        b = self._bias(op, bias, pre, o)
        mult, shift = self.requant(pre, req, f"node {op.index}")
        params = self.e.struct(pre, "mn_dw_params", [
            ("batches", n), ("in_h", h), ("in_w", wd), ("in_c", c), ("out_h", geo.out_h), ("out_w", geo.out_w),
            ("out_c", o), ("depth_mult", dm), ("k_h", kh), ("k_w", kw), *p, ("pad_top", geo.pad_top),
            ("pad_left", geo.pad_left), ("in_offset", req.in_offset), ("out_offset", req.out_offset),
            ("act_min", req.act_min), ("act_max", req.act_max), ("filter", filt), ("bias", b), ("out_mult", mult),
            ("out_shift", shift)], f"node {op.index}: DEPTHWISE_CONV_2D {self.name(op)}, {_act(op)}")
        inplace = op.index in self.mem.inplace
        if inplace:
            if self.mem.offset(x.index) != self.mem.offset(y.index):
                raise AssertionError("in-place depthwise with distinct buffers")  # a planner bug
            scratch = f"MN_T({self.mem.scratch_offset(op.index)})"
        else:
            scratch = "NULL"
        self.call(op, "mn_depthwise_conv_s8", f"&{params}, {self.ptr(x.index)}, {self.ptr(y.index)}, {scratch}",
                  inplace=inplace)

    def _dw_geometry(self, op: Op):
        x, w, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
            raise _unsupported(op, "input and filter must be 4-D, filter [1, KH, KW, C]")
        n, h, wd, c = x.shape
        _, kh, kw, o = w.shape
        if o % c:
            raise _unsupported(op, f"{o} output channels for {c} input channels")
        dm = o // c
        geo, p = self._window(op, h, wd, kh, kw)
        if tuple(y.shape) != (n, geo.out_h, geo.out_w, o):
            raise _unsupported(op, f"output shape {y.shape} is not {(n, geo.out_h, geo.out_w, o)}")
        return n, h, wd, c, o, kh, kw, dm, geo, p

    def inplace_scratch(self, op: Op) -> int | None:
        """Scratch bytes of `op` run in place, or None when it cannot run in place."""
        try:
            _, h, wd, _, _, _, _, dm, geo, _ = self._dw_geometry(op)
        except UnsupportedOpError:
            return None
        if dm != 1 or geo.out_h > h or geo.out_w > wd:
            return None
        return h * wd  # mn_depthwise_scratch_bytes

    def _window(self, op: Op, h: int, w: int, kh: int, kw: int):
        sh, sw = int(op.option("strideH", 1)), int(op.option("strideW", 1))
        dh, dw = int(op.option("dilationHFactor", 1) or 1), int(op.option("dilationWFactor", 1) or 1)
        try:
            geo = qm.window_geometry(_padding(op), h, w, kh, kw, sh, sw, dh, dw)
        except qm.QuantMathError as exc:
            raise _unsupported(op, str(exc)) from None
        return geo, [("stride_h", sh), ("stride_w", sw), ("dilation_h", dh), ("dilation_w", dw)]

    def _bias(self, op: Op, bias: Tensor | None, pre: str, channels: int) -> str:
        if bias is None:
            return "NULL"
        if bias.dtype != "INT32" or int(np.prod(bias.shape)) != channels:
            raise _unsupported(op, f"bias tensor {bias.index} is not int32 with {channels} values")
        return self.e.table(f"{pre}_bias", "int32_t", _array(self.g, bias).astype(np.int64),
                            f"node {op.index}: bias")

    def fully_connected(self, op: Op) -> None:
        x, w, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        bias = self.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if len(w.shape) != 2:
            raise _unsupported(op, "weights must be 2-D")
        o, depth = w.shape
        if x.nbytes % depth or y.nbytes != x.nbytes // depth * o:
            raise _unsupported(op, f"input {x.shape} and output {y.shape} do not match weights {w.shape}")
        if int(op.option("weightsFormat", 0) or 0) != 0:
            raise _unsupported(op, "shuffled weights")
        _symmetric(op, w)
        batches = x.nbytes // depth
        bias_scale = bias.quant.scale if bias is not None and bias.quant is not None else None
        try:
            req = qm.fully_connected_params(*_q(op, x, "input"), w.quant.scales, *_q(op, y, "output"), _act(op),
                                            bias_scale=bias_scale if not w.quant.per_channel else None)
        except qm.QuantMathError as exc:
            raise _unsupported(op, str(exc)) from None
        pre = f"L{op.index}"
        weights = self.e.table(f"{pre}_weights", "int8_t", _array(self.g, w), f"node {op.index}: weights {w.shape}")
        b = self._bias(op, bias, pre, o)
        mult, shift = self.requant(pre, req, f"node {op.index}")
        params = self.e.struct(pre, "mn_fc_params", [
            ("batches", batches), ("in_depth", depth), ("out_depth", o), ("in_offset", req.in_offset),
            ("out_offset", req.out_offset), ("act_min", req.act_min), ("act_max", req.act_max),
            ("per_channel", int(req.per_channel)), ("weights", weights), ("bias", b), ("out_mult", mult),
            ("out_shift", shift)], f"node {op.index}: FULLY_CONNECTED {self.name(op)}, {_act(op)}")
        self.call(op, "mn_fully_connected_s8", f"&{params}, {self.ptr(x.index)}, {self.ptr(y.index)}")

    def average_pool(self, op: Op) -> None:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if len(x.shape) != 4:
            raise _unsupported(op, "input must be 4-D")
        if _q(op, x, "input") != _q(op, y, "output"):
            raise _unsupported(op, "input and output quantization differ (TFLM requires them equal)")
        n, h, wd, c = x.shape
        kh, kw = int(op.option("filterHeight", 1)), int(op.option("filterWidth", 1))
        sh, sw = int(op.option("strideH", 1)), int(op.option("strideW", 1))
        try:
            geo = qm.window_geometry(_padding(op), h, wd, kh, kw, sh, sw)
        except qm.QuantMathError as exc:
            raise _unsupported(op, str(exc)) from None
        if tuple(y.shape) != (n, geo.out_h, geo.out_w, c):
            raise _unsupported(op, f"output shape {y.shape}")
        lo, hi = qm.activation_range(_act(op), *_q(op, y, "output"))
        params = self.e.struct(f"L{op.index}", "mn_pool_params", [
            ("batches", n), ("in_h", h), ("in_w", wd), ("channels", c), ("out_h", geo.out_h), ("out_w", geo.out_w),
            ("k_h", kh), ("k_w", kw), ("stride_h", sh), ("stride_w", sw), ("pad_top", geo.pad_top),
            ("pad_left", geo.pad_left), ("act_min", lo), ("act_max", hi)],
            f"node {op.index}: AVERAGE_POOL_2D {self.name(op)}")
        self.call(op, "mn_avgpool_s8", f"&{params}, {self.ptr(x.index)}, {self.ptr(y.index)}")

    def mean(self, op: Op) -> None:
        x, axes_t, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        if len(x.shape) != 4 or not axes_t.is_constant:
            raise _unsupported(op, "only MEAN of a 4-D tensor over constant axes")
        axes = sorted({int(a) % 4 for a in _array(self.g, axes_t).reshape(-1)})
        if axes != [1, 2]:
            raise _unsupported(op, f"reduces axes {axes}; the AOT backend reduces H and W (axes 1, 2) only")
        n, h, wd, c = x.shape
        (in_s, in_zp), (out_s, out_zp) = _q(op, x, "input"), _q(op, y, "output")
        mult, shift = qm.mean_params(in_s, out_s, h * wd)
        params = self.e.struct(f"L{op.index}", "mn_mean_params", [
            ("batches", n), ("h", h), ("w", wd), ("channels", c), ("in_zp", in_zp), ("out_zp", out_zp),
            ("mult", mult), ("shift", shift)], f"node {op.index}: MEAN over H, W {self.name(op)}")
        self.call(op, "mn_mean_hw_s8", f"&{params}, {self.ptr(x.index)}, {self.ptr(y.index)}")

    def softmax(self, op: Op) -> None:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if not x.shape or tuple(x.shape) != tuple(y.shape):
            raise _unsupported(op, "input and output shapes differ")
        out_s, out_zp = _q(op, y, "output")
        if out_zp != -128 or abs(float(np.float32(out_s)) - 1.0 / 256.0) > 1e-9:
            raise _unsupported(op, "int8 output must have scale 1/256 and zero point -128")
        depth = int(x.shape[-1])
        try:
            sp = qm.softmax_params(_q(op, x, "input")[0], float(op.option("beta", 1.0)))
        except qm.QuantMathError as exc:
            raise _unsupported(op, str(exc)) from None
        params = self.e.struct(f"L{op.index}", "mn_softmax_params", [
            ("outer", x.nbytes // depth), ("depth", depth), ("input_multiplier", sp.input_multiplier),
            ("input_left_shift", sp.input_left_shift), ("diff_min", sp.diff_min)],
            f"node {op.index}: SOFTMAX {self.name(op)}")
        self.call(op, "mn_softmax_s8", f"&{params}, {self.ptr(x.index)}, {self.ptr(y.index)}")

    def add(self, op: Op) -> None:
        a, b, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        try:
            p = qm.add_params(*_q(op, a, "input 1"), *_q(op, b, "input 2"), *_q(op, y, "output"), _act(op))
            dims, st1, st2 = qm.broadcast_strides(a.shape, b.shape)
        except qm.QuantMathError as exc:
            raise _unsupported(op, str(exc)) from None
        if int(np.prod(dims)) != y.nbytes:
            raise _unsupported(op, f"output shape {y.shape}")
        pre = f"L{op.index}"
        operands = []
        for k, t in enumerate((a, b), start=1):
            if t.is_constant:
                operands.append(self.e.table(f"{pre}_in{k}", "int8_t", _array(self.g, t),
                                             f"node {op.index}: constant input {k}"))
            else:
                operands.append(self.ptr(t.index))
        params = self.e.struct(pre, "mn_add_params", [
            ("size", y.nbytes), ("in1_offset", p.in1_offset), ("in2_offset", p.in2_offset),
            ("out_offset", p.out_offset), ("left_shift", p.left_shift), ("in1_mult", p.in1_mult),
            ("in1_shift", p.in1_shift), ("in2_mult", p.in2_mult), ("in2_shift", p.in2_shift),
            ("out_mult", p.out_mult), ("out_shift", p.out_shift), ("act_min", p.act_min), ("act_max", p.act_max),
            ("out_dims", dims), ("in1_strides", st1), ("in2_strides", st2)],
            f"node {op.index}: ADD {self.name(op)}, {_act(op)}")
        kernel = "mn_add_s8" if tuple(a.shape) == tuple(b.shape) else "mn_add_broadcast_s8"
        self.call(op, kernel, f"&{params}, {operands[0]}, {operands[1]}, {self.ptr(y.index)}")

    def pad(self, op: Op) -> None:
        x, pads_t, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        rank = len(x.shape)
        if rank > 4 or not pads_t.is_constant:
            raise _unsupported(op, "only PAD of up to 4-D tensors with constant paddings")
        if _q(op, x, "input") != _q(op, y, "output"):
            raise _unsupported(op, "input and output quantization differ")
        pads = _array(self.g, pads_t).reshape(rank, 2).astype(np.int64)
        lead = 4 - rank
        dims = [1] * lead + [int(d) for d in x.shape]
        before = [0] * lead + [int(v) for v in pads[:, 0]]
        after = [0] * lead + [int(v) for v in pads[:, 1]]
        if min(before + after) < 0 or [d + b + a for d, b, a in zip(dims, before, after, strict=True)][lead:] != \
                [int(d) for d in y.shape]:
            raise _unsupported(op, f"paddings {pads.tolist()} do not give the output shape {y.shape}")
        params = self.e.struct(f"L{op.index}", "mn_pad_params", [
            ("in_dims", dims), ("pad_before", before), ("pad_after", after), ("pad_value", _q(op, y, "output")[1])],
            f"node {op.index}: PAD {self.name(op)}")
        self.call(op, "mn_pad_s8", f"&{params}, {self.ptr(x.index)}, {self.ptr(y.index)}")

    def reshape(self, op: Op) -> None:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if x.nbytes != y.nbytes:
            raise _unsupported(op, f"{x.shape} and {y.shape} differ in size")
        if self.mem.offset(x.index) != self.mem.offset(y.index):
            raise AssertionError("RESHAPE output not aliased to its input")  # a planner bug
        self.body_line(f"/* node {op.index}: RESHAPE {self.name(op)} {list(x.shape)} -> {list(y.shape)}: a view, "
                       f"nothing to run */")
        self.layers.append(AotLayer(op.index, op.kind, self.name(op), None))

    def _affine(self, op: Op, q: Tensor, what: str, size: int) -> str:
        scale, zp = _q(op, q, what)
        if not (np.isfinite(scale) and scale > 0):
            raise _unsupported(op, f"{what} scale {scale} is not finite and positive")
        return self.e.struct(f"L{op.index}", "mn_affine_params", [
            ("size", size), ("scale", float(np.float32(scale))), ("zero_point", zp)],
            f"node {op.index}: {op.kind} {self.name(op)}, scale {float(np.float32(scale)):.9g}, zero point {zp}")

    def quantize(self, op: Op) -> None:
        """QUANTIZE float32 -> int8 at the graph input: reads the caller's `in`."""
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if op.index != self.edges.quantize:
            raise AssertionError("QUANTIZE off the float input edge")  # check_supported refuses it
        if tuple(x.shape) != tuple(y.shape):
            raise _unsupported(op, f"input shape {x.shape} and output shape {y.shape} differ")
        params = self._affine(op, y, "output", y.nbytes)
        self.call(op, "mn_quantize_f32_s8", f"&{params}, in, {self.ptr(y.index)}")

    def dequantize(self, op: Op) -> None:
        """DEQUANTIZE int8 -> float32 making the graph output: writes the caller's `out`."""
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if op.index != self.edges.dequantize:
            raise AssertionError("DEQUANTIZE off the float output edge")  # check_supported refuses it
        if tuple(x.shape) != tuple(y.shape):
            raise _unsupported(op, f"input shape {x.shape} and output shape {y.shape} differ")
        params = self._affine(op, x, "input", x.nbytes)
        self.call(op, "mn_dequantize_s8_f32", f"&{params}, {self.ptr(x.index)}, out")

    HANDLERS = {"CONV_2D": conv, "DEPTHWISE_CONV_2D": depthwise, "FULLY_CONNECTED": fully_connected,
                "AVERAGE_POOL_2D": average_pool, "MEAN": mean, "SOFTMAX": softmax, "ADD": add, "PAD": pad,
                "RESHAPE": reshape, "QUANTIZE": quantize, "DEQUANTIZE": dequantize}


def check_supported(graph: Graph) -> None:
    """Raise UnsupportedOpError for the first op (or graph feature) the AOT backend cannot compile."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedOpError(f"the AOT backend compiles graphs with one input and one output, not "
                                 f"{len(graph.inputs)} and {len(graph.outputs)}", hint=FALLBACK_HINT)
    edges = float_edges(graph)
    for role, index, edge in (("input", graph.inputs[0], edges.input), ("output", graph.outputs[0], edges.output)):
        t = graph.tensors[index]
        if t.dtype == "INT8" or edge is not None:
            continue
        # A float edge of another form: name the op that reads (writes) it.
        op = (_readers(graph, index) or [None])[0] if role == "input" else _writer(graph, index)
        if t.dtype == "FLOAT32" and op is not None:
            raise _unsupported(op, f"the graph {role} (tensor {index}) is FLOAT32; the AOT backend takes a float32 "
                                   f"input only into one QUANTIZE op and makes a float32 output only with a "
                                   f"DEQUANTIZE op")
        raise UnsupportedOpError(f"the graph {role} is {t.dtype}; the AOT backend needs int8 input and output "
                                 "(or float32 through QUANTIZE/DEQUANTIZE at the edges)", hint=FALLBACK_HINT)
    for op in graph.ops:
        if op.kind not in SUPPORTED_OPS:
            raise _unsupported(op)
        activations = [graph.tensors[i] for i in (*graph.activation_inputs(op), *op.outputs)
                       if i not in edges.tensors]
        odd = [t for t in activations if t.dtype != "INT8"]
        if odd:
            why = (f"tensor {odd[0].index} is {odd[0].dtype}; the AOT kernels take int8 activations"
                   + ("; float32 only at the graph's edges (an input read by QUANTIZE, an output made by DEQUANTIZE)"
                      if odd[0].dtype == "FLOAT32" else ""))
            raise _unsupported(op, why)
        if op.kind == "QUANTIZE" and op.index != edges.quantize:
            raise _unsupported(op, "int8 -> int8 QUANTIZE (requantization); the AOT backend compiles QUANTIZE "
                                   "only as float32 -> int8 on the graph input")
        if op.kind == "DEQUANTIZE" and op.index != edges.dequantize:
            raise _unsupported(op, "the AOT backend compiles DEQUANTIZE only as int8 -> float32 making the graph "
                                   "output")
        if op.kind == "RESHAPE" and graph.tensors[op.inputs[0]].is_constant:
            raise _unsupported(op, "reshape of a constant")


def generate(model: VerifiedModel, *, inplace: str = "auto", version: str | None = None) -> AotProgram:
    """C sources for the verified int8 `model`. `inplace`: which depthwise layers run in place,
    "auto" (those that lower the arena), "all" (every one whose input dies there) or "off"
    (`mncompile.aot.memory.plan_aot`)."""
    from mncompile import __version__

    graph, name = model.graph, model.name
    check_supported(graph)
    probe = _Generator(graph, None)  # type: ignore[arg-type]
    memory = plan_aot(graph, inplace=inplace, inplace_ok=probe.inplace_scratch)
    gen = _Generator(graph, memory)
    for op in graph.ops:
        try:
            _Generator.HANDLERS[op.kind](gen, op)
        except qm.QuantMathError as exc:
            raise QuantizationError(f"operator {op.index} ({op.kind}) of {name}: {exc.message}",
                                    hint="TFLM's Prepare rejects this parameter too: check the model's scales "
                                         "(`mncompile quantize` on the float model makes valid ones)") from None
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    edges = gen.edges
    program = AotProgram("", "", memory, tuple(gen.layers), gen.e.constant_bytes, tin.nbytes, tout.nbytes,
                         None if edges.input is not None else memory.offset(tin.index),
                         None if edges.output is not None else memory.offset(tout.index), tin.dtype, tout.dtype)
    header = _header(program, graph, name, version or __version__)
    source = _source(program, gen.e, graph, name, version or __version__)
    return dataclasses.replace(program, model_c=source, model_h=header)


def _int8_side(graph: Graph, tensor: int) -> tuple[float, int]:
    """(scale, zero point) of the int8 tensor a float edge's QUANTIZE writes (DEQUANTIZE reads)."""
    q = graph.tensors[tensor].quant
    return float(np.float32(q.scale)), int(q.zero_point)


def _io_text(p: AotProgram, graph: Graph) -> tuple[str, str]:
    """The header's comments on the input and the output."""
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    shape_in = ", ".join(str(d) for d in tin.shape)
    shape_out = ", ".join(str(d) for d in tout.shape)
    edges = float_edges(graph)
    if edges.quantize is not None:
        k = edges.quantize
        scale, zp = _int8_side(graph, graph.ops[k].outputs[0])
        text_in = (f"/* Input: float32 [{shape_in}], the caller's buffer. Node {k} (QUANTIZE) turns it into the\n"
                   f" * model's int8 input: q = round(x / scale) + zero_point, saturated to int8 (scale {scale:.9g},\n"
                   f" * zero point {zp}). */")
    else:
        text_in = f"/* Input: int8 [{shape_in}], real = scale * (q - zero_point). */"
    if edges.dequantize is not None:
        k = edges.dequantize
        scale, zp = _int8_side(graph, graph.ops[k].inputs[0])
        text_out = (f"/* Output: float32 [{shape_out}], written to the caller's buffer by node {k} (DEQUANTIZE):\n"
                    f" * x = scale * (q - zero_point) of the model's int8 output q (scale {scale:.9g}, zero point "
                    f"{zp}). */")
    else:
        text_out = f"/* Output: int8 [{shape_out}]. */"
    return text_in, text_out


def _header(p: AotProgram, graph: Graph, name: str, version: str) -> str:
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    ctype_in, ctype_out = _C_TYPES[p.input_dtype], _C_TYPES[p.output_dtype]
    text_in, text_out = _io_text(p, graph)
    float_in, float_out = p.input_offset is None, p.output_offset is None
    n_in, n_out = tin.nbytes // (4 if float_in else 1), tout.nbytes // (4 if float_out else 1)
    if float_in:
        copy_in = "`in` is read by the QUANTIZE node (never copied\n * or written)"
    else:
        copy_in = "`in` is copied into the arena unless it is model_input()"
    if float_out:
        copy_out = "`out` is written by the DEQUANTIZE node and must not\n * overlap `in`"
    else:
        copy_out = "`out` may be any\n * buffer, or model_output() itself"
    what_in = "MODEL_INPUT_ELEMENTS float" if float_in else "MODEL_INPUT_BYTES int8"
    what_out = "MODEL_OUTPUT_ELEMENTS float" if float_out else "MODEL_OUTPUT_BYTES int8"
    accessors = []
    if not float_in:
        accessors.append("/* The arena's input tensor: write the input here and pass it to model_invoke() to save "
                         "the copy\n * (model_invoke() may overwrite it). */\nint8_t *model_input(void);\n")
    if not float_out:
        accessors.append("""/* The arena's output tensor, valid after model_invoke() until the next call. */
const int8_t *model_output(void);
""")
    return f"""/*
 * Generated by mncompile {version} from {c_comment_text(name)}: do not edit, run `mncompile emit` again.
 *
 * The model, compiled ahead of time: no interpreter, no flatbuffer, no heap. Every layer is a
 * call into mncompile's int8 kernels (mn_kernels.h) with constants folded at generation time;
 * activations live in one static arena of MODEL_ARENA_BYTES bytes (section .tensor_arena).
 */
#ifndef MNCOMPILE_MODEL_H
#define MNCOMPILE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

{text_in}
#define MODEL_INPUT_BYTES {p.input_bytes}
{text_out}
#define MODEL_OUTPUT_BYTES {p.output_bytes}
/* The static arena: every activation, the in-place depthwise scratch, input and output tensors. */
#define MODEL_ARENA_BYTES {p.arena_bytes}
/* Layers run by model_invoke() ({len(p.layers)} nodes, views included). */
#define MODEL_NODES {len(p.layers)}

/* The element types of model_invoke()'s `in` and `out` (float at a float I/O edge, else int8)
 * and how many elements each holds. */
typedef {ctype_in} model_input_t;
typedef {ctype_out} model_output_t;
#define MODEL_INPUT_IS_FLOAT {int(float_in)}
#define MODEL_OUTPUT_IS_FLOAT {int(float_out)}
#define MODEL_INPUT_ELEMENTS {n_in}
#define MODEL_OUTPUT_ELEMENTS {n_out}

/* Run the model on `in` ({what_in}) and write {what_out} to `out`.
 * Returns 0, or k + 1 when the kernel of node k rejected its parameters (generated parameters
 * never make it). {copy_in}; {copy_out}. Not reentrant: the arena is static. */
int model_invoke(const {ctype_in} *in, {ctype_out} *out);
{chr(10) + chr(10).join(accessors) if accessors else ""}
#ifdef __cplusplus
}}
#endif

#endif /* MNCOMPILE_MODEL_H */
"""


def _source(p: AotProgram, e: _Emitter, graph: Graph, name: str, version: str) -> str:
    mem = p.memory
    layout = []
    for b, off in sorted(zip(mem.buffers, mem.plan.offsets, strict=True), key=lambda x: (x[0].first, x[1])):
        if b.id < len(mem.groups):  # tensors sharing these bytes: views and in-place outputs
            what = " = ".join(f"t{t} {graph.layer_name(t)}" for t in mem.groups[b.id])
        else:
            what = b.name
        layout.append(f" *   [{off:>8}, {off + b.size:>8})  t={b.first:>3}..{b.last:<3} {c_comment_text(what)}")
    float_in, float_out = p.input_offset is None, p.output_offset is None
    outside = []
    if float_in:
        outside.append(f"input t{graph.inputs[0]} (float32, `in`)")
    if float_out:
        outside.append(f"output t{graph.outputs[0]} (float32, `out`)")
    if outside:
        layout.append(f" * Not in the arena (the caller's buffers): {c_comment_text(', '.join(outside))}.")
    inplace = ", ".join(str(k) for k in mem.inplace) or "none"
    body = "\n".join(e.body)
    ctype_in, ctype_out = _C_TYPES[p.input_dtype], _C_TYPES[p.output_dtype]
    defines, accessors, prologue, epilogue = [], [], "", ""
    if not float_in:
        defines.append(f"#define MODEL_INPUT_OFFSET {p.input_offset}")
        accessors.append("""int8_t *model_input(void)
{
    return MN_T(MODEL_INPUT_OFFSET);
}
""")
        prologue = """    if (in != MN_T(MODEL_INPUT_OFFSET)) {
        memcpy(MN_T(MODEL_INPUT_OFFSET), in, MODEL_INPUT_BYTES);
    }
"""
    if not float_out:
        defines.append(f"#define MODEL_OUTPUT_OFFSET {p.output_offset}")
        accessors.append("""const int8_t *model_output(void)
{
    return MN_T(MODEL_OUTPUT_OFFSET);
}
""")
        epilogue = """    if (out != MN_T(MODEL_OUTPUT_OFFSET)) {
        memcpy(out, MN_T(MODEL_OUTPUT_OFFSET), MODEL_OUTPUT_BYTES);
    }
"""
    includes = "#include <stddef.h>\n#include <stdint.h>\n" + ("#include <string.h>\n" if prologue or epilogue else "")
    return f"""/*
 * Generated by mncompile {version} from {c_comment_text(name)}: do not edit, run `mncompile emit` again.
 *
 * {len(p.layers)} nodes; constants {p.constant_bytes} bytes (flash); arena {p.arena_bytes} bytes (RAM).
 * Depthwise nodes run in place: {inplace}.
 * Arena plan (byte range; time steps: input at 0, node i at i + 1, the output to the end; tensors):
{chr(10).join(layout)}
 */
{includes}
#include "mn_kernels.h"
#include "model.h"

/* The one arena. Offsets come from mncompile's memory plan; the linker script places the
 * .tensor_arena section (not zeroed at start-up). */
static uint8_t arena[MODEL_ARENA_BYTES] __attribute__((aligned(16), section(".tensor_arena")));

#define MN_T(offset) ((int8_t *)(void *)(arena + (offset)))

/* Weights, biases, multipliers and shifts: in the linker script's .model section, read in place
 * from flash (on mps3-an547 the 2 MB code SRAM, where read-only data in ITCM would not fit). */
#define MN_CONST __attribute__((aligned(4), section(".model")))
{"".join(d + chr(10) for d in defines)}
{chr(10).join(e.decls)}
{"".join(a + chr(10) for a in accessors)}int model_invoke(const {ctype_in} *in, {ctype_out} *out)
{{
{prologue}{body}
{epilogue}    return 0;
}}
"""
