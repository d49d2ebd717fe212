"""CONV_2D and DEPTHWISE_CONV_2D: filters ``[out, kh, kw, in]`` and ``[1, kh, kw, out]``."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mncompile.graph.ir import Graph, Op, Tensor
from mncompile.graph.ops import common as c
from mncompile.graph.ops import lowering as lo
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops.registry import Allocations, Arg, ConstTable, KernelCall, OpSpec, Table, TflmOp, register

# Layouts (C members in declaration order) of the structs these kernels allocate; paths are under
# tensorflow/lite/ of tflite-micro 90b983c2 (see mncompile.plan.arena for the layout rules).
STRUCTS = {
    # compiler/mlir/lite/core/c/builtin_op_data.h
    "TfLitePaddingValues": (("width", "int"), ("height", "int"), ("width_offset", "int"), ("height_offset", "int")),
    "TfLiteConvParams": (("padding", "enum"), ("stride_width", "int"), ("stride_height", "int"),
                         ("activation", "enum"), ("dilation_width_factor", "int"), ("dilation_height_factor", "int"),
                         ("quantized_bias_type", "enum")),
    "TfLiteDepthwiseConvParams": (("padding", "enum"), ("stride_width", "int"), ("stride_height", "int"),
                                  ("depth_multiplier", "int"), ("activation", "enum"),
                                  ("dilation_width_factor", "int"), ("dilation_height_factor", "int")),
    # micro/kernels/conv.h (also DEPTHWISE_CONV_2D's)
    "OpDataConv": (("padding", "TfLitePaddingValues"), ("input_zero_point", "int32"), ("filter_zero_point", "int32"),
                   ("output_zero_point", "int32"), ("output_multiplier", "int32"), ("output_shift", "int"),
                   ("per_channel_output_multiplier", "ptr"), ("per_channel_output_shift", "ptr"),
                   ("output_activation_min", "int32"), ("output_activation_max", "int32"),
                   ("filter_buffer_index", "int"), ("weights_scratch_index", "int", "compression"),
                   ("bias_scratch_index", "int", "compression")),
    # micro/kernels/cmsis_nn/conv.cc, depthwise_conv.cc (anonymous namespaces)
    "CmsisNnConvOpData": (("reference_op_data", "OpDataConv"), ("buffer_idx", "int")),
    "CmsisNnDepthwiseConvOpData": (("reference_op_data", "OpDataConv"), ("buffer_idx", "int")),
}


def _convolution(g: Graph, op: Op) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """The checks CONV_2D and DEPTHWISE_CONV_2D share: operands, ranks, types, activation."""
    c.arity(op, (2, 3))
    x, w, b, y = c.operand(g, op, 0), c.operand(g, op, 1), c.operand(g, op, 2), c.output(g, op)
    for t, role in ((x, "input"), (w, "filter"), (y, "output")):
        c.rank(t, 4, role)
    weights_types(x, w, b, y)
    # TFLite's quantized convolutions require a bias (lite/kernels/conv.cc, depthwise_conv.cc Prepare)
    c.need(b is not None or x.dtype not in c.QUANTIZED,
           f"is a quantized ({x.dtype}) convolution without a bias (input 2); TFLite's quantized kernels need one")
    c.activation(op)
    c.per_tensor(x, y)
    return x, w, b, y


def weights_types(x: Tensor, w: Tensor, b: Tensor | None, y: Tensor) -> None:
    """The type combinations TFLM's convolutions and fully connected layers run (no hybrid models)."""
    allowed = {"INT8": (("INT8", "INT4"), ("INT32",), "INT8"), "INT16": (("INT8",), ("INT64", "INT32"), "INT16"),
               "FLOAT32": (("FLOAT32",), ("FLOAT32",), "FLOAT32"), "UINT8": (("UINT8",), ("INT32",), "UINT8")}
    c.need(x.dtype in allowed, f"has a {x.dtype} input; TFLite runs it on int8, int16, uint8 or float32")
    weights, biases, out = allowed[x.dtype]
    c.need(w.dtype in weights, f"has {w.dtype} weights with a {x.dtype} input (hybrid models are not supported)")
    c.need(b is None or b.dtype in biases, f"has a {b.dtype if b else ''} bias with a {x.dtype} input")
    c.need(y.dtype == out, f"has a {y.dtype} output with a {x.dtype} input")
    if x.dtype in c.QUANTIZED:
        c.need(w.quant is not None, f"its {w.dtype} weights (tensor {w.index}) have no quantization parameters")
        if w.dtype in ("INT8", "INT4"):  # symmetric (lite/kernels/conv.cc, fully_connected.cc Prepare)
            c.need(not any(w.quant.zero_points), f"its {w.dtype} weights (tensor {w.index}) have the zero points "
                                                 f"{sorted(set(w.quant.zero_points))}; int8 weights are symmetric (0)")


def bias_shape(b: Tensor | None, channels: int) -> None:
    if b is not None:
        c.need(len(b.shape) == 1, f"its bias (tensor {b.index}) has shape {list(b.shape)}; a bias is one-dimensional")
        c.need(math.prod(b.shape) == channels, f"its bias (tensor {b.index}) has {math.prod(b.shape)} elements, "
                                               f"not one per output channel ({channels})")


def _output(op: Op, x: Tensor, y: Tensor, kernel: tuple[int, int], channels: int, b: Tensor | None) -> None:
    n, h, wd, _ = x.shape
    oh, ow = c.window(op, (h, wd), kernel)
    c.need(tuple(y.shape) == (n, oh, ow, channels), f"its output has shape {list(y.shape)}, and its input, filter "
                                                    f"and options give {[n, oh, ow, channels]}")
    bias_shape(b, channels)


def check_conv_2d(g: Graph, op: Op) -> None:
    x, w, b, y = _convolution(g, op)
    channels = x.shape[3]
    o, kh, kw, ci = w.shape
    c.need(channels % ci == 0, f"its filter depth {ci} does not divide its input depth {channels}")
    c.need(o % (channels // ci) == 0, f"its {o} output channels do not split into {channels // ci} groups")
    _output(op, x, y, (kh, kw), o, b)
    c.per_channel_axis(w, 0)


def check_depthwise(g: Graph, op: Op) -> None:
    x, w, b, y = _convolution(g, op)
    channels = x.shape[3]
    one, kh, kw, o = w.shape
    c.need(one == 1, f"its filter has shape {list(w.shape)}; a depthwise filter is [1, kh, kw, channels]")
    multiplier = c.option(op, "depthMultiplier")
    c.need(o == channels * multiplier, f"its filter has {o} channels, and its input's {channels} channels times its "
                                       f"depth multiplier {multiplier} make {channels * multiplier}")
    _output(op, x, y, (kh, kw), o, b)
    c.per_channel_axis(w, 3)


def _cmsis_scratch(op: Op, in_shape, filter_shape, out_shape, mve: bool) -> list[int]:
    """CMSIS-NN's buffer for an int8 conv or depthwise conv (`cmsis_nn.convolve_wrapper_s8`,
    `cmsis_nn.depthwise_wrapper_s8`), with the dims TFLM's cmsis_nn Prepare passes; none if 0."""
    from mncompile.graph.ops import cmsis_nn

    pad = c.tflm_padding(op, (in_shape[1], in_shape[2]), (filter_shape[1], filter_shape[2]))
    stride = (op.option("strideH", 1), op.option("strideW", 1))
    dilation = (op.option("dilationHFactor", 1), op.option("dilationWFactor", 1))
    depth = filter_shape[3]  # conv: input channels per group; depthwise: output channels
    geo = cmsis_nn.ConvGeometry(tuple(in_shape), (filter_shape[1], filter_shape[2], depth), tuple(out_shape[1:]),
                                pad, stride, dilation)
    size = (cmsis_nn.convolve_wrapper_s8(geo, mve) if op.kind == "CONV_2D"
            else cmsis_nn.depthwise_wrapper_s8(geo, mve))
    return [size] if size > 0 else []


def conv_allocations(g: Graph, op: Op, cmsis: bool, mve: bool = False) -> Allocations:
    """Prepare: per-channel multipliers and shifts (conv_common.cc, depthwise_conv_common.cc; the
    CMSIS-NN kernels only for quantized inputs); int4 weights request an unpack buffer; CMSIS-NN's
    int8 kernels request their im2col/work buffer (`mve`: as built for a Helium core)."""
    from mncompile.errors import ModelError

    inp, filt, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if cmsis and filt.dtype == "INT4":
        raise ModelError(f"operator {op.index} ({op.kind}) has int4 weights; CMSIS-NN's int4 buffers are not "
                         "modelled", hint="predict with kernels='reference'")
    channels = filt.shape[0] if op.kind == "CONV_2D" else filt.shape[3]  # the quantized dimension
    prepare = c.per_channel_buffers(channels) if not cmsis or inp.dtype in ("INT8", "INT16") else ()
    scratch: list[int] = []
    if filt.dtype == "INT4":
        scratch.append(math.prod(filt.shape))  # unpacked filter
    elif cmsis and inp.dtype == "INT8":
        scratch.extend(_cmsis_scratch(op, inp.shape, filt.shape, out.shape, mve))
    return Allocations(prepare, tuple(scratch))


def conv_allocations_mve(g: Graph, op: Op) -> Allocations:
    """The CMSIS-NN kernels' allocations on a Helium (MVE) core."""
    return conv_allocations(g, op, True, mve=True)


# ---------------------------------------------------------------------------------------------
# AOT: mn_conv2d_s8, mn_depthwise_conv_s8 (firmware/kernels/mn_conv.c, mn_depthwise.c)


def _operands(g: Graph, op: Op):
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    bias = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    return x, w, bias, y


def _conv_fields(n, h, wd, c_in, geo, o, kh, kw, p, req, depth_mult=None):
    fields = [("batches", n), ("in_h", h), ("in_w", wd), ("in_c", c_in), ("out_h", geo.out_h),
              ("out_w", geo.out_w), ("out_c", o)]
    if depth_mult is not None:
        fields.append(("depth_mult", depth_mult))
    return fields + [("k_h", kh), ("k_w", kw), *p, ("pad_top", geo.pad_top), ("pad_left", geo.pad_left),
                     ("in_offset", req.in_offset), ("out_offset", req.out_offset), ("act_min", req.act_min),
                     ("act_max", req.act_max), ("filter", Table("filter"))]


def _tail(bias_tables: list) -> list:
    return [("bias", Table("bias") if bias_tables else None), ("out_mult", Table("mult")),
            ("out_shift", Table("shift"))]


def _read_through(g: Graph, op: Op, x: Tensor, geo: qm.WindowGeometry,
                  fold) -> tuple[Tensor, qm.WindowGeometry, str]:
    """The tensor the kernel reads, its window geometry and the comment's note. With a PAD folded in
    (`fold`, a `mncompile.graph.ops.shape.PadFold`): the PAD's input, smaller than `x` by the folded
    amounts, with the folded top/left padding added to the window's own (the output size stays the
    padded input's; the bottom/right padding is implied, as taps past the input are skipped)."""
    if fold is None:
        return x, geo, ""
    src = g.tensors[fold.source]
    n, h, wd, ch = src.shape
    if fold.padded != x.index or (n, h + fold.top + fold.bottom, wd + fold.left + fold.right, ch) != tuple(x.shape):
        raise ValueError(f"node {op.index}: the PAD fold {fold} does not match input tensor {x.index} {x.shape}")
    geo = dataclasses.replace(geo, pad_top=geo.pad_top + fold.top, pad_left=geo.pad_left + fold.left)
    return src, geo, (f", node {fold.pad} ({g.ops[fold.pad].kind}) folded in: +{fold.top} top, +{fold.left} "
                      f"left padding")


def lower_conv_2d(g: Graph, op: Op, fold=None) -> KernelCall:
    """mn_conv2d_s8; `fold`: a PAD folded into this node (`_read_through`)."""
    x, w, bias, y = _operands(g, op)
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise lo.unsupported(op, "input and filter must be 4-D")
    n, h, wd, cin = x.shape
    o, kh, kw, ci = w.shape
    if ci != cin:
        raise lo.unsupported(op, f"grouped convolution (filter depth {ci}, input depth {cin})")
    lo.symmetric(op, w)
    geo, p = lo.window(op, h, wd, kh, kw)
    if tuple(y.shape) != (n, geo.out_h, geo.out_w, o):
        raise lo.unsupported(op, f"output shape {y.shape} is not {(n, geo.out_h, geo.out_w, o)}")
    req = qm.conv_params(*lo.quant(op, x, "input"), w.quant.scales, *lo.quant(op, y, "output"), lo.act(op),
                         channels=o)
    biases = lo.bias_table(g, op, bias, o)
    filt = lo.constant(g, op, w)
    # the bias with the input offset folded in (the kernels then multiply raw inputs); the plain bias
    # is not emitted, as the kernels ignore it when bias_sum is given
    folded = qm.folded_bias(filt, biases[0].values if biases else None, req.in_offset)
    tables = [ConstTable("filter", "int8_t", filt, f"filter {w.shape}"),
              ConstTable("bias_sum", "int32_t", folded.astype(np.int64),
                         "bias + input offset x filter row sum (int32, wrapping)"), *lo.requant_tables(req)]
    src, geo, note = _read_through(g, op, x, geo, fold)
    return KernelCall(op.index, op.kind, "mn_conv2d_s8", "mn_conv_params",
                      tuple(_conv_fields(n, src.shape[1], src.shape[2], cin, geo, o, kh, kw, p, req) + _tail([])
                            + [("bias_sum", Table("bias_sum"))]),
                      tuple(tables), (lo.tensor(src), lo.tensor(y)), f", {lo.act(op)}{note}")


def _dw_geometry(g: Graph, op: Op):
    x, w, _, y = _operands(g, op)
    if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
        raise lo.unsupported(op, "input and filter must be 4-D, filter [1, KH, KW, C]")
    n, h, wd, cin = x.shape
    _, kh, kw, o = w.shape
    if o % cin:
        raise lo.unsupported(op, f"{o} output channels for {cin} input channels")
    geo, p = lo.window(op, h, wd, kh, kw)
    if tuple(y.shape) != (n, geo.out_h, geo.out_w, o):
        raise lo.unsupported(op, f"output shape {y.shape} is not {(n, geo.out_h, geo.out_w, o)}")
    return n, h, wd, cin, o, kh, kw, o // cin, geo, p


def lower_depthwise(g: Graph, op: Op, fold=None) -> KernelCall:
    """mn_depthwise_conv_s8; `fold`: a PAD folded into this node (`_read_through`). One input channel
    (any depth multiplier: TFLM's person_detect starts so) is a CONV_2D with out_c = depth multiplier
    and the filter [1, KH, KW, O] read as [O, KH, KW, 1]: the same sums and requantization, on the
    convolution's faster kernels."""
    x, w, bias, y = _operands(g, op)
    n, h, wd, cin, o, kh, kw, dm, geo, p = _dw_geometry(g, op)
    lo.symmetric(op, w)
    req = qm.conv_params(*lo.quant(op, x, "input"), w.quant.scales, *lo.quant(op, y, "output"), lo.act(op),
                         channels=o)
    biases = lo.bias_table(g, op, bias, o)
    filt = lo.constant(g, op, w)
    src, geo, note = _read_through(g, op, x, geo, fold)
    if cin == 1:
        rows = np.ascontiguousarray(filt.reshape(kh, kw, o).transpose(2, 0, 1))
        folded = qm.folded_bias(rows, biases[0].values if biases else None, req.in_offset)
        tables = [ConstTable("filter", "int8_t", rows, f"filter {w.shape} as [{o}, {kh}, {kw}, 1]"),
                  ConstTable("bias_sum", "int32_t", folded.astype(np.int64),
                             "bias + input offset x filter row sum (int32, wrapping)"), *lo.requant_tables(req)]
        return KernelCall(op.index, op.kind, "mn_conv2d_s8", "mn_conv_params",
                          tuple(_conv_fields(n, src.shape[1], src.shape[2], 1, geo, o, kh, kw, p, req) + _tail([])
                                + [("bias_sum", Table("bias_sum"))]), tuple(tables), (lo.tensor(src), lo.tensor(y)),
                          f", {lo.act(op)}{note}, one input channel: run as a convolution")
    tables = [ConstTable("filter", "int8_t", filt, f"filter {w.shape}"), *biases, *lo.requant_tables(req)]
    return KernelCall(op.index, op.kind, "mn_depthwise_conv_s8", "mn_dw_params",
                      tuple(_conv_fields(n, src.shape[1], src.shape[2], cin, geo, o, kh, kw, p, req, dm)
                            + _tail(biases)), tuple(tables),
                      (lo.tensor(src), lo.tensor(y), Arg(scratch=True)), f", {lo.act(op)}{note}")


def depthwise_inplace(g: Graph, op: Op, fold=None) -> int | None:
    """Scratch bytes for running in place (mn_depthwise_scratch_bytes: one input plane), or None:
    only a depth multiplier of 1 whose output is no larger than its input can. With a PAD folded in
    (`fold`), the input is the PAD's (unpadded) input."""
    from mncompile.errors import UnsupportedOpError

    try:
        _, h, wd, _, _, _, _, dm, geo, _ = _dw_geometry(g, op)
    except UnsupportedOpError:
        return None
    if fold is not None:
        h, wd = g.tensors[fold.source].shape[1:3]
    if dm != 1 or geo.out_h > h or geo.out_w > wd:
        return None
    return h * wd


register(
    OpSpec("CONV_2D", "Conv2DOptions", True, check_conv_2d,
           TflmOp("TfLiteConvParams", "OpDataConv", "CmsisNnConvOpData", conv_allocations, STRUCTS,
                  cmsis_mve=conv_allocations_mve),
           lower=lower_conv_2d, summary="2-D convolution, per-channel int8 weights, fused ReLU/ReLU6"),
    OpSpec("DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions", True, check_depthwise,
           TflmOp("TfLiteDepthwiseConvParams", "OpDataConv", "CmsisNnDepthwiseConvOpData", conv_allocations,
                  cmsis_mve=conv_allocations_mve),
           lower=lower_depthwise, inplace=depthwise_inplace,
           summary="depthwise convolution; in place over its dying input when that lowers the arena"),
)
