"""MEAN, SUM and REDUCE_MAX over constant axes."""

from __future__ import annotations

import dataclasses
import math

from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops import quantmath_pool as qp
from mncompile.graph.ops.registry import Allocations, KernelCall, OpSpec, TflmOp, register

STRUCTS = {
    "TfLiteReducerParams": (("keep_dims", "bool"),),  # compiler/mlir/lite/core/c/builtin_op_data.h
    # micro/kernels/reduce.h: InitReduce (reduce.cc) allocates it for MEAN, SUM, REDUCE_MAX, REDUCE_MIN
    "OpDataReduce": (("multiplier", "int32"), ("shift", "int"), ("scratch_accumulator_idx", "int"),
                     ("scratch_resolved_axis_idx", "int"), ("scratch_input_iter_idx", "int"), ("input_zp", "int"),
                     ("input_scale", "float"), ("output_zp", "int"), ("output_scale", "float"),
                     ("num_output_elements", "int"), ("num_axis", "int")),
}


def check(g: Graph, op: Op) -> None:
    c.arity(op, (2, 2))
    x, axis, y = c.operand(g, op, 0), c.operand(g, op, 1), c.output(g, op)
    c.need(axis.is_constant and axis.dtype in ("INT32", "INT64"), "its axes (input 1) are not constant integers")
    c.same_type(x, y)
    rank = len(x.shape)
    axes = {int(a) for a in g.constant(axis.index).reshape(-1)}
    c.need(all(-rank <= a < rank for a in axes), f"reduces over axes {sorted(axes)} of a rank-{rank} input")
    axes = {a % rank for a in axes} if rank else set()
    keep = bool(c.option(op, "keepDims"))
    want = tuple(1 if k in axes else d for k, d in enumerate(x.shape)) if keep else tuple(
        d for k, d in enumerate(x.shape) if k not in axes)
    c.need(tuple(y.shape) == want, f"its output has shape {list(y.shape)}, and its input and axes give {list(want)}")
    c.per_tensor(x, y)


def mean_allocations(g: Graph, op: Op, cmsis: bool) -> Allocations:
    """reduce_common.cc's PrepareMeanOrSumHelper (MEAN and SUM): int8/int16 request an accumulator
    (one int32 per output element), then the input iterator (one int per input dimension) and the
    resolved axes (one int per axis entry)."""
    inp, axis, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    scratch = [4 * math.prod(out.shape)] if inp.dtype in ("INT8", "INT16") else []
    scratch += [4 * len(inp.shape), 4 * math.prod(axis.shape)]
    return Allocations(scratch=tuple(scratch))


def min_max_allocations(g: Graph, op: Op, cmsis: bool) -> Allocations:
    """reduce_common.cc's PrepareMinMaxHelper (REDUCE_MAX, REDUCE_MIN): the input iterator and the
    resolved axes, whatever the type (no accumulator)."""
    inp, axis = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    return Allocations(scratch=(4 * len(inp.shape), 4 * math.prod(axis.shape)))


REDUCE_KERNELS = {"MEAN": "mn_mean_s8", "SUM": "mn_sum_s8", "REDUCE_MAX": "mn_reduce_max_s8",
                  "REDUCE_MIN": "mn_reduce_min_s8"}


def lower_reduce(g: Graph, op: Op) -> KernelCall:
    """mn_mean_s8, mn_sum_s8, mn_reduce_max_s8, mn_reduce_min_s8 (firmware/kernels/mn_reduce.c): any
    constant axes of up to 4 groups of dimensions (TFLM's one QuantizedMeanOrSum path for MEAN)."""
    x, axes_t, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if not axes_t.is_constant:
        raise lo.unsupported(op, "axes computed at run time")
    axes = [int(a) for a in lo.constant(g, op, axes_t).reshape(-1)]
    make = {"MEAN": qp.mean_reduce_params, "SUM": qp.sum_reduce_params}.get(op.kind, qp.max_min_reduce_params)
    try:
        qp.reduce_groups(x.shape, axes)
        p = make(x.shape, axes, *lo.quant(op, x, "input"), *lo.quant(op, y, "output"))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    return KernelCall(op.index, op.kind, REDUCE_KERNELS[op.kind], "mn_reduce_params",
                      tuple(dataclasses.asdict(p).items()), (), (lo.tensor(x), lo.tensor(y)))


def reduce_inplace(g: Graph, op: Op) -> int | None:
    return 0  # the kernels may write the (smaller) output over their input: no scratch


register(
    OpSpec("MEAN", "ReducerOptions", False, check,
           TflmOp("TfLiteReducerParams", "OpDataReduce", None, mean_allocations, STRUCTS),
           lower=lower_reduce, inplace=reduce_inplace, summary="mean over constant axes"),
    OpSpec("SUM", "ReducerOptions", False, check, TflmOp("TfLiteReducerParams", "OpDataReduce", None, mean_allocations),
           lower=lower_reduce, inplace=reduce_inplace, summary="sum over constant axes"),
    OpSpec("REDUCE_MAX", "ReducerOptions", False, check,
           TflmOp("TfLiteReducerParams", "OpDataReduce", None, min_max_allocations),
           lower=lower_reduce, inplace=reduce_inplace, summary="maximum over constant axes"),
    OpSpec("REDUCE_MIN", "ReducerOptions", False, check,
           TflmOp("TfLiteReducerParams", "OpDataReduce", None, min_max_allocations),
           lower=lower_reduce, inplace=reduce_inplace, summary="minimum over constant axes"),
)
