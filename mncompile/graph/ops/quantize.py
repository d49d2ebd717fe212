"""QUANTIZE and DEQUANTIZE: the float I/O edges of an int8 model (and requantization)."""

from __future__ import annotations

import numpy as np

from mncompile.graph.ir import Graph, Op, Tensor
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops.registry import Arg, KernelCall, OpSpec, TflmOp, register

STRUCTS = {
    "QuantizationParams": (("zero_point", "int32"), ("scale", "double")),  # kernels/internal/types.h
    "DequantizationParams": (("scale", "double"), ("zero_point", "int32")),  # kernels/internal/types.h
    # micro/kernels/quantize.h, micro/kernels/dequantize.h
    "OpDataQuantizeReference": (("quantization_params", "QuantizationParams"),
                                ("requantize_output_multiplier", "int32"), ("requantize_output_shift", "int"),
                                ("input_zero_point", "int32")),
    "DequantizeOpData": (("quantization_params", "DequantizationParams"), ("output_multiplier", "int32"),
                         ("output_shift", "int"), ("output_zero_point", "int32")),
}


def check_quantize(g: Graph, op: Op) -> None:
    c.arity(op, (1, 1))
    x, y = c.operand(g, op, 0), c.output(g, op)
    c.same_shape(x, y)
    c.need(y.dtype in ("INT8", "UINT8", "INT16"), f"quantizes to {y.dtype}")
    c.need(x.dtype in ("FLOAT32", "INT8", "UINT8", "INT16"), f"quantizes a {x.dtype} input")
    c.per_tensor(x, y)


def check_dequantize(g: Graph, op: Op) -> None:
    c.arity(op, (1, 1))
    x, y = c.operand(g, op, 0), c.output(g, op)
    c.same_shape(x, y)
    c.need(y.dtype == "FLOAT32", f"dequantizes to {y.dtype}, not FLOAT32")
    c.need(x.dtype in ("INT8", "UINT8", "INT16", "FLOAT16"), f"dequantizes a {x.dtype} input")
    c.per_tensor(x)


def _affine(op: Op, q: Tensor, what: str, size: int) -> tuple[tuple, str]:
    scale, zp = lo.quant(op, q, what)
    if not (np.isfinite(scale) and scale > 0):
        raise lo.unsupported(op, f"{what} scale {scale} is not finite and positive")
    s = float(np.float32(scale))
    return (("size", size), ("scale", s), ("zero_point", zp)), f", scale {s:.9g}, zero point {zp}"


def lower_quantize(g: Graph, op: Op) -> KernelCall:
    """mn_quantize_f32_s8 (firmware/kernels/mn_quantize.c) on the float input edge: it reads the
    caller's `in` (the AOT walker allows QUANTIZE only there)."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if tuple(x.shape) != tuple(y.shape):
        raise lo.unsupported(op, f"input shape {x.shape} and output shape {y.shape} differ")
    fields, comment = _affine(op, y, "output", y.nbytes)
    return KernelCall(op.index, op.kind, "mn_quantize_f32_s8", "mn_affine_params", fields, (),
                      (Arg(io="in"), lo.tensor(y)), comment)


def lower_dequantize(g: Graph, op: Op) -> KernelCall:
    """mn_dequantize_s8_f32 making the float output edge: it writes the caller's `out`."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if tuple(x.shape) != tuple(y.shape):
        raise lo.unsupported(op, f"input shape {x.shape} and output shape {y.shape} differ")
    fields, comment = _affine(op, x, "input", x.nbytes)
    return KernelCall(op.index, op.kind, "mn_dequantize_s8_f32", "mn_affine_params", fields, (),
                      (lo.tensor(x), Arg(io="out")), comment)


register(
    # QUANTIZE and DEQUANTIZE parse no options in TFLM (no builtin struct)
    OpSpec("QUANTIZE", "QuantizeOptions", False, check_quantize,
           TflmOp(None, "OpDataQuantizeReference", None, None, STRUCTS), lower=lower_quantize,
           summary="float32 to int8 at the input edge"),
    OpSpec("DEQUANTIZE", "DequantizeOptions", False, check_dequantize, TflmOp(None, "DequantizeOpData"),
           lower=lower_dequantize, summary="int8 to float32 at the output edge"),
)
