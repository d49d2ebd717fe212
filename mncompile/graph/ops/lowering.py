"""Helpers the AOT lowering functions of the operator entries share.

A lowering function turns one operator into a `KernelCall`: the kernel, its parameter struct's
fields (quantization math from `quantmath`, which reproduces TFLM's Prepare), the constant
tables it needs and its pointer arguments. What the AOT kernels cannot run is an
`UnsupportedOpError` naming the node, with a hint to use the TFLM backend.
"""

from __future__ import annotations

import numpy as np

from mncompile.errors import UnsupportedOpError
from mncompile.graph.ir import Graph, Op, Tensor
from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops.registry import Arg, ConstTable

FALLBACK_HINT = "use --backend tflm (the TensorFlow Lite Micro interpreter runs every op TFLM has)"
ACTIVATION_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
PADDING_NAMES = {0: "SAME", 1: "VALID"}


def unsupported(op: Op, why: str = "") -> UnsupportedOpError:
    return UnsupportedOpError(f"unsupported op {op.kind} at node {op.index}" + (f": {why}" if why else ""),
                              hint=FALLBACK_HINT)


def act(op: Op) -> str:
    code = int(op.option("fusedActivationFunction", 0) or 0)
    if code not in ACTIVATION_NAMES:
        raise unsupported(op, f"fused activation {code} (only NONE, RELU, RELU_N1_TO_1 and RELU6)")
    return ACTIVATION_NAMES[code]


def padding(op: Op) -> str:
    code = int(op.option("padding", 0) or 0)
    if code not in PADDING_NAMES:
        raise unsupported(op, f"padding {code}")
    return PADDING_NAMES[code]


def quant(op: Op, t: Tensor, what: str) -> tuple[float, int]:
    """(scale, zero point) of a per-tensor quantized operand."""
    if t.quant is None or t.quant.per_channel:
        raise unsupported(op, f"{what} tensor {t.index} is not quantized per tensor")
    return t.quant.scale, t.quant.zero_point


def symmetric(op: Op, w: Tensor) -> None:
    if w.quant is None or any(z != 0 for z in w.quant.zero_points):
        raise unsupported(op, f"weights tensor {w.index} is not symmetric int8 (zero points must be 0)")


def constant(g: Graph, op: Op, t: Tensor) -> np.ndarray:
    """A constant operand's data (verified: exactly shape x dtype)."""
    if not t.is_constant or t.dtype not in ("INT8", "INT32", "INT64", "UINT8"):
        raise unsupported(op, f"tensor {t.index} ({t.name}) has no {t.dtype} data the AOT backend can read")
    return g.constant(t.index)


def window(op: Op, h: int, w: int, kh: int, kw: int, dilated: bool = True):
    """TFLM's window geometry and the stride/dilation fields of a convolution's parameters."""
    sh, sw = int(op.option("strideH", 1)), int(op.option("strideW", 1))
    dh = int(op.option("dilationHFactor", 1) or 1) if dilated else 1
    dw = int(op.option("dilationWFactor", 1) or 1) if dilated else 1
    try:
        geo = qm.window_geometry(padding(op), h, w, kh, kw, sh, sw, dh, dw)
    except qm.QuantMathError as exc:
        raise unsupported(op, str(exc)) from None
    return geo, [("stride_h", sh), ("stride_w", sw), ("dilation_h", dh), ("dilation_w", dw)]


def bias_table(g: Graph, op: Op, bias: Tensor | None, channels: int) -> list[ConstTable]:
    if bias is None:
        return []
    if bias.dtype != "INT32" or int(np.prod(bias.shape)) != channels:
        raise unsupported(op, f"bias tensor {bias.index} is not int32 with {channels} values")
    return [ConstTable("bias", "int32_t", constant(g, op, bias).astype(np.int64), "bias")]


def requant_tables(req: qm.ChannelRequant) -> list[ConstTable]:
    """The multipliers and shifts. A channel whose multiplier is 0 (an effective scale below 2^-32,
    flushed to (0, 0) as TFLM does) requantizes every sum to 0 at any shift; it gets the right shift 2,
    where the kernels' one-multiply requantization applies and gives that same 0, so one dead channel
    does not send its layer down the general path."""
    shifts = [-2 if m == 0 else s for m, s in zip(req.multipliers, req.shifts, strict=True)]
    return [ConstTable("mult", "int32_t", np.array(req.multipliers, dtype=np.int64), "requantization multipliers"),
            ConstTable("shift", "int32_t", np.array(shifts, dtype=np.int64), "requantization shifts (> 0: left)")]


def fast_requant(fields: dict, tables: dict) -> bool:
    """Whether a convolution's requantization takes the kernels' fast way (mn_requant_init): the
    whole int8 range and, per channel, a multiplier >= 0 with a right shift of 2 to 31."""
    return fields["act_min"] == -128 and fields["act_max"] == 127 and all(
        int(m) >= 0 and 2 <= -int(s) <= 31 for m, s in zip(tables["mult"], tables["shift"], strict=True))


def tensor(t: Tensor) -> Arg:
    return Arg(tensor=t.index)
