"""Operators that move bytes: RESHAPE, SQUEEZE and EXPAND_DIMS (views), PAD, PADV2, TRANSPOSE,
CONCATENATION, STRIDED_SLICE."""

from __future__ import annotations

import dataclasses
import math

from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops import quantmath_movement as qv
from mncompile.graph.ops.registry import Arg, ConstTable, KernelCall, OpSpec, TflmOp, register

# What TFLM allocates (tflite-micro 90b983c2, paths under tensorflow/lite/): TRANSPOSE and
# EXPAND_DIMS parse no options and have no Init (nothing at all, reference or CMSIS-NN); SQUEEZE
# only its parsed options; PAD and PADV2 parse none and allocate their OpData in PadInit
# (pad_common.cc, which the CMSIS-NN pad.cc reuses). No Prepare allocates or requests anything
# (CONCATENATION's AllocateDecompressionScratchBuffer requests only for compressed inputs).
STRUCTS = {
    # compiler/mlir/lite/core/c/builtin_op_data.h
    "TfLiteReshapeParams": (("shape", "int32[8]"), ("num_dimensions", "int")),
    "TfLiteSqueezeParams": (("squeeze_dims", "int32[8]"), ("num_squeeze_dims", "int")),
    "TfLiteConcatenationParams": (("axis", "int"), ("activation", "enum")),
    "TfLiteStridedSliceParams": (("begin_mask", "int"), ("end_mask", "int"), ("ellipsis_mask", "int"),
                                 ("new_axis_mask", "int"), ("shrink_axis_mask", "int"), ("offset", "bool")),
    # kernels/internal/types.h (ResizingCategory is an enum class of uint8_t)
    "PadParams": (("left_padding_count", "int8"), ("left_padding", "int32[5]"), ("right_padding_count", "int8"),
                  ("right_padding", "int32[5]"), ("resizing_category", "uint8")),
    "ConcatenationParams": (("axis", "int32"), ("input_zeropoint", "ptr"), ("input_scale", "ptr"),
                            ("inputs_count", "int32"), ("output_zeropoint", "int32"), ("output_scale", "float")),
    # the OpData StridedSliceInit (strided_slice_common.cc) allocates
    "StridedSliceParams": (("start_indices_count", "int8"), ("start_indices", "int32[5]"),
                           ("stop_indices_count", "int8"), ("stop_indices", "int32[5]"), ("strides_count", "int8"),
                           ("strides", "int32[5]"), ("begin_mask", "uint16"), ("ellipsis_mask", "uint16"),
                           ("end_mask", "uint16"), ("new_axis_mask", "uint16"), ("shrink_axis_mask", "uint16"),
                           ("offset", "bool")),
    # micro/kernels/pad.h
    "OpDataPad": (("params", "PadParams"), ("output_zero_point", "int32")),
    # micro/kernels/concatenation.cc (anonymous namespace): kMaxInputNum = 10 scratch indices
    # with USE_TFLM_COMPRESSION
    "OpDataConcatenation": (("params", "ConcatenationParams"), ("scratch_indices", "int[10]", "compression")),
}


def requested_shape(g: Graph, op: Op) -> tuple[int, ...] | None:
    """The shape a RESHAPE asks for, as TFLite's reshape.cc reads it: its shape operand when that is
    an int32 vector, else ReshapeOptions.new_shape ([] without options; a legacy [0] means a
    scalar). None when the operand is computed at run time."""
    shape_t = c.operand(g, op, 1)
    if shape_t is not None and len(shape_t.shape) == 1 and shape_t.dtype == "INT32":
        if not shape_t.is_constant:
            return None
        return tuple(int(v) for v in g.constant(shape_t.index))
    new = op.option("newShape")
    requested = tuple(int(v) for v in new) if isinstance(new, tuple) else ()
    return () if requested == (0,) and len(op.inputs) == 1 else requested


def check_reshape(g: Graph, op: Op) -> None:
    c.arity(op, (1, 2))
    x, y = c.operand(g, op, 0), c.output(g, op)
    c.same_type(x, y)
    n = math.prod(x.shape)
    c.need(n == math.prod(y.shape), f"reshapes {list(x.shape)} ({n} elements) to {list(y.shape)} "
                                    f"({math.prod(y.shape)})")
    requested = requested_shape(g, op)
    if requested is None:
        return
    stretch = [k for k, d in enumerate(requested) if d == -1]
    c.need(len(stretch) <= 1 and all(d >= 0 or d == -1 for d in requested),
           f"asks for the shape {list(requested)} (one -1 at most, no other negative dimension)")
    if stretch:
        known = math.prod(d for d in requested if d != -1)
        c.need(known > 0 and n % known == 0, f"asks for the shape {list(requested)}, which {n} elements do not fill")
        requested = tuple(n // known if d == -1 else d for d in requested)
    c.need(requested == tuple(y.shape), f"asks for the shape {list(requested)} (its shape operand or options), and "
                                        f"its output has shape {list(y.shape)}")


def check_pad(g: Graph, op: Op) -> None:
    c.arity(op, (2, 3) if op.kind == "PADV2" else (2, 2))
    x, pads, y = c.operand(g, op, 0), c.operand(g, op, 1), c.output(g, op)
    c.same_type(x, y)
    rank = len(x.shape)
    c.need(pads.is_constant and pads.dtype in ("INT32", "INT64") and tuple(pads.shape) == (rank, 2),
           f"its paddings (tensor {pads.index}, {pads.dtype} {list(pads.shape)}) are not a constant [{rank}, 2] table")
    table = g.constant(pads.index).reshape(rank, 2)
    c.need(bool((table >= 0).all()), f"has negative paddings {table.tolist()}")
    want = tuple(int(d + p[0] + p[1]) for d, p in zip(x.shape, table, strict=True))
    c.need(tuple(y.shape) == want, f"its output has shape {list(y.shape)}, and its input and paddings give "
                                   f"{list(want)}")
    c.per_tensor(x, y)


def lower_view(g: Graph, op: Op) -> KernelCall:
    """A view: the planner gives the output its input's bytes, nothing runs."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if x.nbytes != y.nbytes:
        raise lo.unsupported(op, f"{x.shape} and {y.shape} differ in size")
    if x.is_constant:
        raise lo.unsupported(op, "reshape of a constant")
    return KernelCall(op.index, op.kind, None, args=(lo.tensor(x), lo.tensor(y)),
                      comment=f" {list(x.shape)} -> {list(y.shape)}")


def _ints(g: Graph, op: Op, k: int, what: str) -> list[int]:
    t = c.operand(g, op, k)
    if t is None or not t.is_constant or t.dtype != "INT32":
        raise lo.unsupported(op, f"its {what} (input {k}) is not a constant int32 tensor")
    return [int(v) for v in g.constant(t.index).reshape(-1)]


def _movement(op: Op, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None


def _fields(params) -> tuple[tuple[str, object], ...]:
    return tuple((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in dataclasses.asdict(params).items())


def lower_pad(g: Graph, op: Op) -> KernelCall:
    """mn_pad_s8 (up to 4-D after folding) or mn_pad5_s8 (firmware/kernels/mn_pad.c, mn_pad5.c):
    PAD pads with the output zero point, PADV2 with its constant value."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    rank = len(x.shape)
    pads = _ints(g, op, 1, "paddings")
    value = quant = None
    if op.kind == "PADV2" and c.operand(g, op, 2) is not None:
        v = c.operand(g, op, 2)
        if not v.is_constant or v.dtype != "INT8":
            raise lo.unsupported(op, "its pad value is not a constant int8 tensor")
        value, quant = int(g.constant(v.index).reshape(-1)[0]), lo.quant(op, v, "pad value")
    p = _movement(op, qv.pad_params, x.shape, [pads[2 * d:2 * d + 2] for d in range(rank)],
                  *lo.quant(op, y, "output"), y.shape, constant_value=value, constant_quant=quant)
    kernel, params = ("mn_pad_s8", "mn_pad_params") if isinstance(p, qv.PadParams) else ("mn_pad5_s8", "mn_pad5_params")
    return KernelCall(op.index, op.kind, kernel, params, _fields(p), (), (lo.tensor(x), lo.tensor(y)))


@dataclasses.dataclass(frozen=True)
class PadFold:
    """A PAD/PADV2 folded into the convolution that reads its output (`mncompile.aot.lower.find_folds`):
    the convolution reads the PAD's input `source` instead of its output `padded`, with `top`/`left`
    more padding before its own; taps that fall outside `source` contribute nothing, as the padded
    zero points do in TFLM (each tap adds ``x + input_offset``, 0 for ``x`` the zero point)."""

    pad: int  # the PAD node
    conv: int  # the CONV_2D or DEPTHWISE_CONV_2D node reading `padded` (-1: not yet known)
    source: int  # the PAD's input tensor
    padded: int  # the PAD's output tensor, which then never exists
    top: int
    left: int
    bottom: int
    right: int


def pad_fold(g: Graph, op: Op) -> PadFold | None:
    """The fold of a PAD/PADV2 node as far as the node alone decides (the reader is the caller's):
    an NHWC int8 pad of H and W only (batch and channel paddings 0) with the zero point (PAD; PADV2
    with no value or a constant value equal to the zero point), whose input and output share their
    quantization, that the AOT backend would also run as a PAD (`lower_pad`, which raises what it
    refuses). None when it does not fold."""
    if op.kind not in ("PAD", "PADV2"):
        return None
    lower_pad(g, op)  # a PAD TFLM (or the AOT backend) refuses is not folded away
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if len(x.shape) != 4 or x.is_constant or x.dtype != "INT8" or y.dtype != "INT8":
        return None
    (scale_x, zp_x), (scale_y, zp_y) = lo.quant(op, x, "input"), lo.quant(op, y, "output")
    if qm.f32(scale_x) != qm.f32(scale_y) or zp_x != zp_y:
        return None
    if op.kind == "PADV2" and c.operand(g, op, 2) is not None:
        if int(g.constant(op.inputs[2]).reshape(-1)[0]) != zp_y:
            return None
    pads = _ints(g, op, 1, "paddings")
    if pads[0:2] != [0, 0] or pads[6:8] != [0, 0]:
        return None
    return PadFold(op.index, -1, x.index, y.index, pads[2], pads[4], pads[3], pads[5])


def lower_transpose(g: Graph, op: Op) -> KernelCall:
    """mn_transpose_s8 (firmware/kernels/mn_transpose.c), up to 5-D."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    p = _movement(op, qv.transpose_params, x.shape, _ints(g, op, 1, "permutation"), y.shape)
    return KernelCall(op.index, op.kind, "mn_transpose_s8", "mn_transpose_params", _fields(p), (),
                      (lo.tensor(x), lo.tensor(y)))


def lower_strided_slice(g: Graph, op: Op) -> KernelCall:
    """mn_strided_slice_s8 (firmware/kernels/mn_slice.c): TFLM's index resolution, done here."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    begin, end, strides = (_ints(g, op, k, what) for k, what in ((1, "begin"), (2, "end"), (3, "strides")))
    masks = {name: c.option(op, key) for name, key in (("begin_mask", "beginMask"), ("end_mask", "endMask"),
                                                       ("ellipsis_mask", "ellipsisMask"),
                                                       ("new_axis_mask", "newAxisMask"),
                                                       ("shrink_axis_mask", "shrinkAxisMask"))}
    p = _movement(op, qv.strided_slice_params, x.shape, begin, end, strides, **masks,
                  offset=bool(op.option("offset", False)), out_shape=y.shape)
    return KernelCall(op.index, op.kind, "mn_strided_slice_s8", "mn_strided_slice_params", _fields(p), (),
                      (lo.tensor(x), lo.tensor(y)))


def lower_concatenation(g: Graph, op: Op) -> KernelCall:
    """mn_concat_s8 (firmware/kernels/mn_concat.c), one call per input into its columns of the output."""
    y = g.tensors[op.outputs[0]]
    xs = [g.tensors[i] for i in op.inputs]
    parts = _movement(op, qv.concat_params, [x.shape for x in xs], c.option(op, "axis"),
                      [lo.quant(op, x, f"input {k}") for k, x in enumerate(xs)], lo.quant(op, y, "output"), y.shape,
                      lo.act(op))
    calls = []
    for k, (x, p) in enumerate(zip(xs, parts, strict=True)):
        tables, source = (), lo.tensor(x)
        if x.is_constant:
            tables, source = (ConstTable(f"in{k}", "int8_t", lo.constant(g, op, x), f"constant input {k}"),), \
                Arg(table=f"in{k}")
        calls.append(KernelCall(op.index, op.kind, "mn_concat_s8", "mn_concat_params", _fields(p), tables,
                                (source, lo.tensor(y)), f", input {k}"))
    return KernelCall(op.index, op.kind, "mn_concat_s8", parts=tuple(calls))


def lower_squeeze_or_expand(g: Graph, op: Op) -> KernelCall:
    """SQUEEZE and EXPAND_DIMS are views (the same bytes, the same quantization)."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    quants = {"in_quant": lo.quant(op, x, "input") if x.quant else None,
              "out_quant": lo.quant(op, y, "output") if y.quant else None}
    if op.kind == "SQUEEZE":
        dims = op.option("squeezeDims")
        _movement(op, qv.squeeze_view, x.shape, y.shape, tuple(dims) if isinstance(dims, tuple) else (), **quants)
    else:
        _movement(op, qv.expand_dims_view, x.shape, y.shape, _ints(g, op, 1, "axis"), **quants)
    return lower_view(g, op)


def check_view(g: Graph, op: Op) -> None:
    c.arity(op, (1, 2))
    x, y = c.operand(g, op, 0), c.output(g, op)
    c.same_type(x, y)
    c.need(math.prod(x.shape) == math.prod(y.shape), f"changes {list(x.shape)} into {list(y.shape)}")


def check_transpose(g: Graph, op: Op) -> None:
    c.arity(op, (2, 2))
    x, perm, y = c.operand(g, op, 0), c.operand(g, op, 1), c.output(g, op)
    c.same_type(x, y)
    c.need(perm.is_constant and perm.dtype == "INT32" and math.prod(perm.shape) == len(x.shape),
           f"its permutation (tensor {perm.index}) is not a constant int32 vector of {len(x.shape)} entries")
    order = [int(v) for v in g.constant(perm.index).reshape(-1)]
    c.need(sorted(order) == list(range(len(x.shape))), f"has the permutation {order}")
    want = tuple(x.shape[k] for k in order)
    c.need(tuple(y.shape) == want, f"its output has shape {list(y.shape)}, and the permutation gives {list(want)}")


def check_concatenation(g: Graph, op: Op) -> None:
    c.need(len(op.inputs) >= 1 and all(i >= 0 for i in op.inputs), "has an omitted input")
    y = c.output(g, op)
    xs = [g.tensors[i] for i in op.inputs]
    c.same_type(*xs, y)
    rank = len(y.shape)
    axis = c.option(op, "axis")
    c.need(-rank <= axis < rank, f"concatenates along axis {axis} of a rank-{rank} output")
    axis %= rank
    for x in xs:
        c.need(len(x.shape) == rank and all(d == e for k, (d, e) in enumerate(zip(x.shape, y.shape, strict=True))
                                            if k != axis),
               f"its input (tensor {x.index}) of shape {list(x.shape)} does not fit its output {list(y.shape)}")
    c.need(sum(x.shape[axis] for x in xs) == y.shape[axis], f"its inputs do not add up to its output {list(y.shape)}")
    c.activation(op)


register(
    OpSpec("RESHAPE", "ReshapeOptions", False, check_reshape, TflmOp("TfLiteReshapeParams", None, None, None, STRUCTS),
           lower=lower_view, view=True, summary="a view: the same bytes"),
    OpSpec("PAD", "PadOptions", False, check_pad, TflmOp(None, "OpDataPad", "OpDataPad"), lower=lower_pad,
           summary="constant padding with the zero point"),
    OpSpec("PADV2", "PadV2Options", False, check_pad, TflmOp(None, "OpDataPad", "OpDataPad"), lower=lower_pad,
           summary="constant padding with a given value"),
    OpSpec("SQUEEZE", "SqueezeOptions", False, check_view, TflmOp("TfLiteSqueezeParams", None),
           lower=lower_squeeze_or_expand, view=True, summary="a view: the same bytes"),
    OpSpec("EXPAND_DIMS", "ExpandDimsOptions", False, check_view, TflmOp(None, None), lower=lower_squeeze_or_expand,
           view=True, summary="a view: the same bytes"),
    OpSpec("TRANSPOSE", "TransposeOptions", False, check_transpose, TflmOp(None, None), lower=lower_transpose,
           summary="permutation of up to 5 dimensions"),
    OpSpec("CONCATENATION", "ConcatenationOptions", False, check_concatenation,
           TflmOp("TfLiteConcatenationParams", "OpDataConcatenation"), lower=lower_concatenation,
           summary="along any axis, inputs sharing the output's quantization"),
    OpSpec("STRIDED_SLICE", "StridedSliceOptions", False, None,
           TflmOp("TfLiteStridedSliceParams", "StridedSliceParams"), lower=lower_strided_slice,
           summary="up to 4-D, begin/end/shrink masks"),
)
