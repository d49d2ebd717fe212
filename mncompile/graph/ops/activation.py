"""Standalone activations: RELU, RELU6, LOGISTIC, HARD_SWISH, TANH."""

from __future__ import annotations

from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops import quantmath_elementwise as qe
from mncompile.graph.ops.registry import KernelCall, OpSpec, TflmOp, register

# What TFLM allocates (tflite-micro 90b983c2, paths under tensorflow/lite/): none of these parse
# builtin options (ParseRelu, ParseRelu6, ParseLogistic, ParseHardSwish, ParseTanh allocate
# nothing); each Init allocates its OpData; no Prepare allocates or requests anything.
STRUCTS = {
    # kernels/internal/types.h (FusedActivationFunctionType is an enum class of uint8_t)
    "ActivationParams": (("activation_type", "uint8"), ("quantized_activation_min", "int32"),
                         ("quantized_activation_max", "int32")),
    "ReluParams": (("base", "ActivationParams"), ("input_offset", "int32"), ("output_offset", "int32"),
                   ("output_multiplier", "int32"), ("output_shift", "int")),
    "HardSwishParams": (("input_zero_point", "int16"), ("output_zero_point", "int16"),
                        ("reluish_multiplier_fixedpoint_int16", "int16"), ("reluish_multiplier_exponent", "int"),
                        ("output_multiplier_fixedpoint_int16", "int16"), ("output_multiplier_exponent", "int")),
    # micro/kernels/activations.h
    "ReluOpData": (("params", "ReluParams"),),
    "Relu6OpData": (("six", "int32"), ("zero", "int32")),
    # micro/kernels/logistic.h; micro/kernels/tanh.cc's OpData has the same members
    "OpDataLogistic": (("input_zero_point", "int32"), ("input_range_radius", "int32"),
                       ("input_multiplier", "int32"), ("input_left_shift", "int")),
    "OpDataTanh": (("input_zero_point", "int32"), ("input_range_radius", "int32"), ("input_multiplier", "int32"),
                   ("input_left_shift", "int")),
}


def check(g: Graph, op: Op) -> None:
    c.arity(op, (1, 1))
    x, y = c.operand(g, op, 0), c.output(g, op)
    c.same_shape(x, y)
    c.same_type(x, y)
    c.per_tensor(x, y)


def _unary(g: Graph, op: Op):
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if x.dtype != "INT8" or y.dtype != "INT8":
        raise lo.unsupported(op, f"{x.dtype} -> {y.dtype} (the AOT kernel is int8 -> int8)")
    if x.nbytes != y.nbytes:
        raise lo.unsupported(op, "input and output sizes differ")
    return x, y, (lo.tensor(x), lo.tensor(y))


def lower_relu(g: Graph, op: Op) -> KernelCall:
    """mn_relu_s8 (firmware/kernels/mn_activation.c): requantizes, as TFLM does."""
    x, y, args = _unary(g, op)
    try:
        p = qe.relu_params(*lo.quant(op, x, "input"), *lo.quant(op, y, "output"))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    fields = (("size", x.nbytes), ("in_zp", p.in_zp), ("out_zp", p.out_zp), ("out_mult", p.out_mult),
              ("out_shift", p.out_shift), ("act_min", p.act_min), ("act_max", p.act_max))
    return KernelCall(op.index, op.kind, "mn_relu_s8", "mn_relu_params", fields, (), args)


def lower_relu6(g: Graph, op: Op) -> KernelCall:
    """mn_relu6_s8: a clamp in the input's quantization (TFLM's RELU6 ignores the output's)."""
    x, y, args = _unary(g, op)
    try:
        p = qe.relu6_params(*lo.quant(op, x, "input"), *lo.quant(op, y, "output"))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    fields = (("size", x.nbytes), ("act_min", p.act_min), ("act_max", p.act_max))
    return KernelCall(op.index, op.kind, "mn_relu6_s8", "mn_relu6_params", fields, (), args)


def lower_logistic(g: Graph, op: Op) -> KernelCall:
    """mn_logistic_s8: output zero point -128 (TFLM's Prepare requires it; the scale is not read)."""
    x, y, args = _unary(g, op)
    try:
        p = qe.logistic_params(*lo.quant(op, x, "input"), *lo.quant(op, y, "output"))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    fields = (("size", x.nbytes), ("in_zp", p.in_zp), ("input_range_radius", p.input_range_radius),
              ("input_multiplier", p.input_multiplier), ("input_left_shift", p.input_left_shift))
    return KernelCall(op.index, op.kind, "mn_logistic_s8", "mn_logistic_params", fields, (), args)


def lower_hard_swish(g: Graph, op: Op) -> KernelCall:
    """mn_hard_swish_s8 (TFLM's 16-bit fixed-point HardSwish)."""
    x, y, args = _unary(g, op)
    try:
        p = qe.hard_swish_params(*lo.quant(op, x, "input"), *lo.quant(op, y, "output"))
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    fields = (("size", x.nbytes), ("in_zp", p.in_zp), ("out_zp", p.out_zp), ("reluish_mult", p.reluish_mult),
              ("reluish_shift", p.reluish_shift), ("out_mult", p.out_mult), ("out_shift", p.out_shift))
    return KernelCall(op.index, op.kind, "mn_hard_swish_s8", "mn_hard_swish_params", fields, (), args)


def unary_inplace(g: Graph, op: Op) -> int | None:
    return 0  # every element is read before its output is written: no scratch


register(
    OpSpec("RELU", None, False, check, TflmOp(None, "ReluOpData", None, None, STRUCTS), lower=lower_relu,
           inplace=unary_inplace, summary="max(x, 0), requantized to the output's quantization"),
    OpSpec("RELU6", None, False, check, TflmOp(None, "Relu6OpData"), lower=lower_relu6, inplace=unary_inplace,
           summary="min(max(x, 0), 6) in the input's quantization (as TFLM)"),
    OpSpec("LOGISTIC", None, False, check, TflmOp(None, "OpDataLogistic"), lower=lower_logistic,
           inplace=unary_inplace, summary="sigmoid (output zero point -128, Q0.8)"),
    OpSpec("HARD_SWISH", "HardSwishOptions", False, check, TflmOp(None, "HardSwishParams"), lower=lower_hard_swish,
           inplace=unary_inplace, summary="x * relu6(x + 3) / 6 (MobileNetV3), TFLM's 16-bit fixed point"),
    OpSpec("TANH", None, False, check, TflmOp(None, "OpDataTanh"), summary="hyperbolic tangent"),
)
