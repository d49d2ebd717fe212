"""FULLY_CONNECTED: weights ``[out, in]``, the input read as rows of ``in`` values."""

from __future__ import annotations

import math

from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops.conv import bias_shape, weights_types
from mncompile.graph.ops.registry import Allocations, ConstTable, KernelCall, OpSpec, Table, TflmOp, register

STRUCTS = {
    # compiler/mlir/lite/core/c/builtin_op_data.h. The last two members are newer than the TFLM
    # commit read (FullyConnectedOptions.quant_spec): only the installed wheel has them; its
    # ParseFullyConnected allocates 32 bytes, 8-aligned.
    "TfLiteFullyConnectedParams": (("activation", "enum"), ("weights_format", "enum"), ("keep_num_dims", "bool"),
                                   ("asymmetric_quantize_inputs", "bool"), ("quantized_bias_type", "enum"),
                                   ("quant_spec", "ptr", "wheel"), ("quant_spec_size", "int", "wheel")),
    # micro/kernels/fully_connected.h
    "OpDataFullyConnected": (("output_multiplier", "int32"), ("output_shift", "int"),
                             ("output_activation_min", "int32"), ("output_activation_max", "int32"),
                             ("input_quantized_index", "int"), ("input_zero_point", "int32"),
                             ("filter_zero_point", "int32"), ("output_zero_point", "int32"),
                             ("filter_buffer_index", "int"), ("per_channel_output_multiplier", "ptr"),
                             ("per_channel_output_shift", "ptr"), ("is_per_channel", "bool"),
                             ("weights_scratch_index", "int", "compression"),
                             ("bias_scratch_index", "int", "compression")),
    # micro/kernels/cmsis_nn/fully_connected.cc
    "CmsisNnFullyConnectedOpData": (("reference_op_data", "OpDataFullyConnected"),
                                    ("buffer_conv_1x1_idx", "int"), ("buffer_idx", "int"), ("kernel_sums", "ptr"),
                                    ("batches", "int32"), ("accum_depth", "int32"), ("output_depth", "int32")),
}


def check(g: Graph, op: Op) -> None:
    c.arity(op, (2, 3))
    x, w, b, y = c.operand(g, op, 0), c.operand(g, op, 1), c.operand(g, op, 2), c.output(g, op)
    c.rank(w, 2, "weights")
    weights_types(x, w, b, y)
    o, depth = w.shape
    c.need(c.option(op, "weightsFormat") == 0, "uses shuffled weights, which TFLM does not run")
    n = math.prod(x.shape)
    c.need(n % depth == 0, f"its input of {n} elements is not a whole number of rows of {depth}")
    keep = c.option(op, "keepNumDims")
    want = (*x.shape[:-1], o) if keep else (n // depth, o)
    c.need(tuple(y.shape) == tuple(want) or (not keep and math.prod(y.shape) == math.prod(want)
                                             and y.shape and y.shape[-1] == o),
           f"its output has shape {list(y.shape)}, and its input and weights give {list(want)}")
    bias_shape(b, o)
    c.activation(op)
    c.per_tensor(x, y)
    c.per_channel_axis(w, 0)


def allocations(g: Graph, op: Op, cmsis: bool, mve: bool = False) -> Allocations:
    """Prepare (fully_connected_common.cc): per-channel multipliers and shifts; int4 weights an
    unpack buffer. CMSIS-NN's int8 kernel (kernels/cmsis_nn/fully_connected.cc): its conv 1x1 path
    (outputs of rank > 2, accumulation depth % 4 == 0) a per-tensor buffer, its 1x1 fast buffer
    being 0 bytes (gcc); otherwise arm_fully_connected_s8_get_buffer_size, 0 bytes on a DSP core and
    on a Helium core (`mve`) the kernel sums, which with KERNELS_OPTIMIZED_FOR_SPEED (TFLM's default,
    templates/tflm/cmake/tflm.cmake) and constant weights and bias are a persistent buffer."""
    from mncompile.errors import ModelError
    from mncompile.graph.ops import cmsis_nn

    inp, filt, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if cmsis and filt.dtype == "INT4":
        raise ModelError(f"operator {op.index} ({op.kind}) has int4 weights; CMSIS-NN's int4 buffers are not "
                         "modelled", hint="predict with kernels='reference'")
    per_channel = filt.quant is not None and filt.quant.per_channel
    prepare = c.per_channel_buffers(len(filt.quant.scales)) if per_channel else ()
    scratch: tuple[int, ...] = ()
    if filt.dtype == "INT4":
        scratch = (math.prod(filt.shape),)
    elif cmsis and inp.dtype == "INT8" and len(out.shape) > 2 and filt.shape[-1] % 4 == 0:
        scratch = () if per_channel else (out.shape[-1] * 4 * 2,)
    elif cmsis and inp.dtype == "INT8":
        size = cmsis_nn.fully_connected_s8(out.shape[-1], mve)
        bias = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if size and filt.is_constant and (bias is None or bias.is_constant):
            prepare += (("kernel_sums", "kernel_sums (CMSIS-NN, MVE)", size),)
        elif size:
            scratch = (size,)
    return Allocations(prepare, scratch)


def allocations_mve(g: Graph, op: Op) -> Allocations:
    """The CMSIS-NN kernel's allocations on a Helium (MVE) core."""
    return allocations(g, op, True, mve=True)


def lower(g: Graph, op: Op) -> KernelCall:
    """mn_fully_connected_s8 (firmware/kernels/mn_fc.c)."""
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    bias = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    if len(w.shape) != 2:
        raise lo.unsupported(op, "weights must be 2-D")
    o, depth = w.shape
    if x.nbytes % depth or y.nbytes != x.nbytes // depth * o:
        raise lo.unsupported(op, f"input {x.shape} and output {y.shape} do not match weights {w.shape}")
    if int(op.option("weightsFormat", 0) or 0) != 0:
        raise lo.unsupported(op, "shuffled weights")
    lo.symmetric(op, w)
    bias_scale = bias.quant.scale if bias is not None and bias.quant is not None else None
    try:
        req = qm.fully_connected_params(*lo.quant(op, x, "input"), w.quant.scales, *lo.quant(op, y, "output"),
                                        lo.act(op), bias_scale=bias_scale if not w.quant.per_channel else None)
    except qm.QuantMathError as exc:
        raise lo.unsupported(op, str(exc)) from None
    biases = lo.bias_table(g, op, bias, o)
    tables = [ConstTable("weights", "int8_t", lo.constant(g, op, w), f"weights {w.shape}"), *biases,
              *lo.requant_tables(req)]
    fields = (("batches", x.nbytes // depth), ("in_depth", depth), ("out_depth", o), ("in_offset", req.in_offset),
              ("out_offset", req.out_offset), ("act_min", req.act_min), ("act_max", req.act_max),
              ("per_channel", int(req.per_channel)), ("weights", Table("weights")),
              ("bias", Table("bias") if biases else None), ("out_mult", Table("mult")), ("out_shift", Table("shift")))
    return KernelCall(op.index, op.kind, "mn_fully_connected_s8", "mn_fc_params", fields, tuple(tables),
                      (lo.tensor(x), lo.tensor(y)), f", {lo.act(op)}")


register(OpSpec("FULLY_CONNECTED", "FullyConnectedOptions", False, check,
                TflmOp("TfLiteFullyConnectedParams", "OpDataFullyConnected", "CmsisNnFullyConnectedOpData",
                       allocations, STRUCTS, cmsis_mve=allocations_mve),
                lower=lower, summary="fully connected, per-tensor or per-channel weights, optional bias"))
