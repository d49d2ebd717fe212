"""SOFTMAX along the last dimension."""

from __future__ import annotations

import math

import numpy as np

from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops.registry import Allocations, KernelCall, OpSpec, TflmOp, register

STRUCTS = {
    "TfLiteSoftmaxParams": (("beta", "float"),),  # compiler/mlir/lite/core/c/builtin_op_data.h
    # kernels/internal/types.h: the reference kernel's OpData
    "SoftmaxParams": (("beta", "double"), ("input_multiplier", "int32"), ("input_left_shift", "int32"),
                      ("reverse_scaling_divisor", "int32"), ("reverse_scaling_right_shift", "int32"),
                      ("diff_min", "int"), ("zero_point", "int32"), ("scale", "float"), ("table", "ptr"),
                      ("exp_lut", "ptr"), ("one_over_one_plus_x_lut", "ptr"), ("uint8_table1", "ptr"),
                      ("uint8_table2", "ptr")),
    # micro/kernels/cmsis_nn/softmax.cc
    "CMSISNNSoftmaxParams": (("softmax_params", "SoftmaxParams"), ("num_rows", "int32"), ("row_size", "int32")),
}


def check(g: Graph, op: Op) -> None:
    c.arity(op, (1, 1))
    x, y = c.operand(g, op, 0), c.output(g, op)
    c.same_shape(x, y)
    c.need(x.dtype == y.dtype or (x.dtype == "INT8" and y.dtype == "INT16"),
           f"has a {x.dtype} input and a {y.dtype} output")
    beta = op.option("beta", 1.0)
    c.need(isinstance(beta, float) and math.isfinite(beta) and beta > 0, f"has beta {beta}; beta must be positive")
    c.per_tensor(x, y)


def allocations(g: Graph, op: Op, cmsis: bool) -> Allocations:
    from mncompile.errors import ModelError

    if g.tensors[op.inputs[0]].dtype == "INT16":
        raise ModelError(f"operator {op.index} (SOFTMAX) has int16 input; its lookup tables are not modelled")
    return Allocations()


def lower(g: Graph, op: Op) -> KernelCall:
    """mn_softmax_s8 (firmware/kernels/mn_softmax.c)."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not x.shape or tuple(x.shape) != tuple(y.shape):
        raise lo.unsupported(op, "input and output shapes differ")
    out_s, out_zp = lo.quant(op, y, "output")
    if out_zp != -128 or abs(float(np.float32(out_s)) - 1.0 / 256.0) > 1e-9:
        raise lo.unsupported(op, "int8 output must have scale 1/256 and zero point -128")
    depth = int(x.shape[-1])
    try:
        sp = qm.softmax_params(lo.quant(op, x, "input")[0], float(op.option("beta", 1.0)))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    fields = (("outer", x.nbytes // depth), ("depth", depth), ("input_multiplier", sp.input_multiplier),
              ("input_left_shift", sp.input_left_shift), ("diff_min", sp.diff_min))
    return KernelCall(op.index, op.kind, "mn_softmax_s8", "mn_softmax_params", fields, (),
                      (lo.tensor(x), lo.tensor(y)))


register(OpSpec("SOFTMAX", "SoftmaxOptions", True, check,
                TflmOp("TfLiteSoftmaxParams", "SoftmaxParams", "CMSISNNSoftmaxParams", allocations, STRUCTS),
                lower=lower, summary="softmax over the last dimension (int8 output scale 1/256, zero point -128)"))
