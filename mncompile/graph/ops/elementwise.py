"""ADD, SUB and MUL, with NumPy broadcasting."""

from __future__ import annotations

import numpy as np

from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops import quantmath_elementwise as qe
from mncompile.graph.ops.registry import Arg, ConstTable, KernelCall, OpSpec, TflmOp, register

STRUCTS = {
    "TfLiteAddParams": (("activation", "enum"), ("pot_scale_int16", "bool")),  # builtin_op_data.h
    # micro/kernels/add.h (kernels/cmsis_nn/add.cc's OpData has the same members)
    "OpDataAdd": (("requires_broadcast", "bool"), ("input1_shift", "int"), ("input2_shift", "int"),
                  ("output_activation_min", "int32"), ("output_activation_max", "int32"),
                  ("input1_multiplier", "int32"), ("input2_multiplier", "int32"), ("output_multiplier", "int32"),
                  ("output_shift", "int"), ("left_shift", "int"), ("input1_offset", "int32"),
                  ("input2_offset", "int32"), ("output_offset", "int32"), ("output_activation_min_f32", "float"),
                  ("output_activation_max_f32", "float")),
    "TfLiteMulParams": (("activation", "enum"),),  # builtin_op_data.h
    "TfLiteSubParams": (("activation", "enum"), ("pot_scale_int16", "bool")),  # builtin_op_data.h
    # micro/kernels/mul.h: MulInit (mul_common.cc) allocates it for the reference and the CMSIS-NN
    # kernel (kernels/cmsis_nn/mul.cc reuses MulInit and MulPrepare); neither Prepare allocates more
    "OpDataMul": (("input1_zero_point", "int32"), ("input2_zero_point", "int32"),
                  ("output_activation_min", "int32"), ("output_activation_max", "int32"),
                  ("output_zero_point", "int32"), ("output_multiplier", "int32"), ("output_shift", "int"),
                  ("output_activation_min_f32", "float"), ("output_activation_max_f32", "float")),
    # micro/kernels/sub.h (no CMSIS-NN kernel)
    "OpDataSub": (("requires_broadcast", "bool"), ("input1_shift", "int"), ("input2_shift", "int"),
                  ("output_activation_min", "int32"), ("output_activation_max", "int32"),
                  ("input1_multiplier", "int32"), ("input2_multiplier", "int32"), ("output_multiplier", "int32"),
                  ("output_shift", "int"), ("left_shift", "int"), ("input1_offset", "int32"),
                  ("input2_offset", "int32"), ("output_offset", "int32")),
}


def check(g: Graph, op: Op) -> None:
    c.arity(op, (2, 2))
    a, b, y = c.operand(g, op, 0), c.operand(g, op, 1), c.output(g, op)
    c.same_type(a, b, y)
    shape = c.broadcast(a.shape, b.shape)
    c.need(shape is not None and shape == tuple(y.shape),
           f"its inputs {list(a.shape)} and {list(b.shape)} do not broadcast to its output {list(y.shape)}")
    c.activation(op)
    c.per_tensor(a, b, y)


def _binary_operands(g: Graph, op: Op):
    """(dims, strides1, strides2, tables, args) shared by ADD-like lowerings; constants become tables."""
    a, b, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    try:
        dims, st1, st2 = qm.broadcast_strides(a.shape, b.shape)
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    if int(np.prod(dims)) != y.nbytes:
        raise lo.unsupported(op, f"output shape {y.shape}")
    tables, args = [], []
    for k, t in enumerate((a, b), start=1):
        if t.is_constant:
            tables.append(ConstTable(f"in{k}", "int8_t", lo.constant(g, op, t), f"constant input {k}"))
            args.append(Arg(table=f"in{k}"))
        else:
            args.append(lo.tensor(t))
    return dims, st1, st2, tuple(tables), (*args, lo.tensor(y))


def lower_add(g: Graph, op: Op) -> KernelCall:
    """mn_add_s8 / mn_add_broadcast_s8 (firmware/kernels/mn_add.c); a constant operand is a table."""
    a, b, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    try:
        p = qm.add_params(*lo.quant(op, a, "input 1"), *lo.quant(op, b, "input 2"), *lo.quant(op, y, "output"),
                          lo.act(op))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    dims, st1, st2, tables, args = _binary_operands(g, op)
    fields = (("size", y.nbytes), ("in1_offset", p.in1_offset), ("in2_offset", p.in2_offset),
              ("out_offset", p.out_offset), ("left_shift", p.left_shift), ("in1_mult", p.in1_mult),
              ("in1_shift", p.in1_shift), ("in2_mult", p.in2_mult), ("in2_shift", p.in2_shift),
              ("out_mult", p.out_mult), ("out_shift", p.out_shift), ("act_min", p.act_min), ("act_max", p.act_max),
              ("out_dims", dims), ("in1_strides", st1), ("in2_strides", st2))
    kernel = "mn_add_s8" if tuple(a.shape) == tuple(b.shape) else "mn_add_broadcast_s8"
    return KernelCall(op.index, op.kind, kernel, "mn_add_params", fields, tables, args, f", {lo.act(op)}")




def lower_mul(g: Graph, op: Op) -> KernelCall:
    """mn_mul_s8 / mn_mul_broadcast_s8 (firmware/kernels/mn_mul.c)."""
    a, b, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    try:
        p = qe.mul_params(*lo.quant(op, a, "input 1"), *lo.quant(op, b, "input 2"), *lo.quant(op, y, "output"),
                          lo.act(op))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    dims, st1, st2, tables, args = _binary_operands(g, op)
    fields = (("size", y.nbytes), ("in1_offset", p.in1_offset), ("in2_offset", p.in2_offset),
              ("out_offset", p.out_offset), ("out_mult", p.out_mult), ("out_shift", p.out_shift),
              ("act_min", p.act_min), ("act_max", p.act_max), ("out_dims", dims), ("in1_strides", st1),
              ("in2_strides", st2))
    kernel = "mn_mul_s8" if tuple(a.shape) == tuple(b.shape) else "mn_mul_broadcast_s8"
    return KernelCall(op.index, op.kind, kernel, "mn_mul_params", fields, tables, args, f", {lo.act(op)}")


def lower_sub(g: Graph, op: Op) -> KernelCall:
    """mn_sub_s8 / mn_sub_broadcast_s8 (firmware/kernels/mn_sub.c), with ADD's parameter struct."""
    a, b, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    try:
        p = qe.sub_params(*lo.quant(op, a, "input 1"), *lo.quant(op, b, "input 2"), *lo.quant(op, y, "output"),
                          lo.act(op))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    dims, st1, st2, tables, args = _binary_operands(g, op)
    fields = (("size", y.nbytes), ("in1_offset", p.in1_offset), ("in2_offset", p.in2_offset),
              ("out_offset", p.out_offset), ("left_shift", p.left_shift), ("in1_mult", p.in1_mult),
              ("in1_shift", p.in1_shift), ("in2_mult", p.in2_mult), ("in2_shift", p.in2_shift),
              ("out_mult", p.out_mult), ("out_shift", p.out_shift), ("act_min", p.act_min), ("act_max", p.act_max),
              ("out_dims", dims), ("in1_strides", st1), ("in2_strides", st2))
    kernel = "mn_sub_s8" if tuple(a.shape) == tuple(b.shape) else "mn_sub_broadcast_s8"
    return KernelCall(op.index, op.kind, kernel, "mn_add_params", fields, tables, args, f", {lo.act(op)}")


def binary_inplace(g: Graph, op: Op) -> int | None:
    """The output may overwrite input 1 when input 1 has the output's shape (no scratch)."""
    a, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    return 0 if not a.is_constant and a.nbytes == y.nbytes else None


register(
    OpSpec("ADD", "AddOptions", False, check, TflmOp("TfLiteAddParams", "OpDataAdd", "OpDataAdd", None, STRUCTS),
           lower=lower_add, summary="addition, with broadcasting"),
    OpSpec("SUB", "SubOptions", False, check, TflmOp("TfLiteSubParams", "OpDataSub"), lower=lower_sub,
           inplace=binary_inplace, summary="subtraction, with broadcasting"),
    OpSpec("MUL", "MulOptions", False, check, TflmOp("TfLiteMulParams", "OpDataMul", "OpDataMul"), lower=lower_mul,
           inplace=binary_inplace, summary="multiplication, with broadcasting (squeeze-excite)"),
)
