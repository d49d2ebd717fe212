"""AVERAGE_POOL_2D and MAX_POOL_2D."""

from __future__ import annotations

import dataclasses

from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops import quantmath_pool as qp
from mncompile.graph.ops.registry import Allocations, KernelCall, OpSpec, TflmOp, register

STRUCTS = {
    # compiler/mlir/lite/core/c/builtin_op_data.h (TfLitePaddingValues: see conv)
    "TfLitePoolParams": (("padding", "enum"), ("stride_width", "int"), ("stride_height", "int"),
                         ("filter_width", "int"), ("filter_height", "int"), ("activation", "enum"),
                         ("computed.padding", "TfLitePaddingValues")),
    # micro/kernels/pooling.h
    "OpDataPooling": (("padding", "TfLitePaddingValues"), ("activation_min", "int32"), ("activation_max", "int32"),
                      ("activation_min_f32", "float"), ("activation_max_f32", "float")),
    # micro/kernels/cmsis_nn/pooling.cc (its MaxPrepare requests no buffer; AveragePrepare does)
    "CmsisNnPoolingOpData": (("reference_op_data", "OpDataPooling"), ("buffer_idx", "int")),
}


def check(g: Graph, op: Op) -> None:
    c.arity(op, (1, 1))
    x, y = c.operand(g, op, 0), c.output(g, op)
    c.rank(x, 4, "input")
    c.rank(y, 4, "output")
    c.same_type(x, y)
    kh, kw = c.option(op, "filterHeight"), c.option(op, "filterWidth")
    c.need(kh >= 1 and kw >= 1, f"has a {kh}x{kw} window")
    oh, ow = c.window(op, (x.shape[1], x.shape[2]), (kh, kw), dilated=False)
    want = (x.shape[0], oh, ow, x.shape[3])
    c.need(tuple(y.shape) == want, f"its output has shape {list(y.shape)}, and its input and options give {list(want)}")
    c.activation(op)
    c.per_tensor(x, y)


def average_allocations(g: Graph, op: Op, cmsis: bool, mve: bool = False) -> Allocations:
    """CMSIS-NN's int8 average pool requests arm_avgpool_s8_get_buffer_size: one int32 per channel
    on a DSP core, none on a Helium (MVE) core."""
    from mncompile.graph.ops import cmsis_nn

    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    size = cmsis_nn.avgpool_s8(out.shape[3], mve) if cmsis and inp.dtype == "INT8" else 0
    return Allocations(scratch=(size,) if size else ())


def average_allocations_mve(g: Graph, op: Op) -> Allocations:
    return average_allocations(g, op, True, mve=True)


def lower_average(g: Graph, op: Op) -> KernelCall:
    """mn_avgpool_s8 (firmware/kernels/mn_pool.c)."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if len(x.shape) != 4:
        raise lo.unsupported(op, "input must be 4-D")
    if lo.quant(op, x, "input") != lo.quant(op, y, "output"):
        raise lo.unsupported(op, "input and output quantization differ (TFLM requires them equal)")
    n, h, wd, ch = x.shape
    kh, kw = int(op.option("filterHeight", 1)), int(op.option("filterWidth", 1))
    geo, p = lo.window(op, h, wd, kh, kw, dilated=False)
    if tuple(y.shape) != (n, geo.out_h, geo.out_w, ch):
        raise lo.unsupported(op, f"output shape {y.shape}")
    lo_, hi = qm.activation_range(lo.act(op), *lo.quant(op, y, "output"))
    fields = (("batches", n), ("in_h", h), ("in_w", wd), ("channels", ch), ("out_h", geo.out_h), ("out_w", geo.out_w),
              ("k_h", kh), ("k_w", kw), p[0], p[1], ("pad_top", geo.pad_top), ("pad_left", geo.pad_left),
              ("act_min", lo_), ("act_max", hi))
    return KernelCall(op.index, op.kind, "mn_avgpool_s8", "mn_pool_params", fields, (),
                      (lo.tensor(x), lo.tensor(y)))


def lower_max(g: Graph, op: Op) -> KernelCall:
    """mn_maxpool_s8 (firmware/kernels/mn_maxpool.c), out of place."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if len(x.shape) != 4:
        raise lo.unsupported(op, "input must be 4-D")
    try:
        p = qp.pool_params(x.shape, (int(op.option("filterHeight", 1)), int(op.option("filterWidth", 1))),
                           (int(op.option("strideH", 1)), int(op.option("strideW", 1))), lo.padding(op), lo.act(op),
                           *lo.quant(op, x, "input"), *lo.quant(op, y, "output"))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    if tuple(y.shape) != (p.batches, p.out_h, p.out_w, p.channels):
        raise lo.unsupported(op, f"output shape {y.shape}")
    return KernelCall(op.index, op.kind, "mn_maxpool_s8", "mn_pool_params", tuple(dataclasses.asdict(p).items()),
                      (), (lo.tensor(x), lo.tensor(y)))


register(
    OpSpec("AVERAGE_POOL_2D", "Pool2DOptions", True, check,
           TflmOp("TfLitePoolParams", "OpDataPooling", "CmsisNnPoolingOpData", average_allocations, STRUCTS,
                  cmsis_mve=average_allocations_mve),
           lower=lower_average, summary="average pooling (SAME/VALID, strides)"),
    OpSpec("MAX_POOL_2D", "Pool2DOptions", True, check,
           TflmOp("TfLitePoolParams", "OpDataPooling", "CmsisNnPoolingOpData"), lower=lower_max,
           summary="max pooling (SAME/VALID, strides)"),
)
