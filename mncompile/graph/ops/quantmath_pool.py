"""TFLM's Prepare arithmetic for the pooling and reduction int8 kernels (firmware/kernels/mn_maxpool.c,
mn_reduce.c; AVERAGE_POOL_2D too): MAX_POOL_2D, AVERAGE_POOL_2D, MEAN, SUM, REDUCE_MAX, REDUCE_MIN.

Each function names the TFLM code it reproduces and raises `QuantMathError` where TFLM rejects the
model (TF_LITE_ENSURE in Prepare or Eval, ResolveAxis returning false) or where TFLM's arithmetic
would be undefined (shifts of 32 bits or more), and where the kernels' parameter form cannot hold the
operator (more than four groups of dimensions after folding).

The dataclasses mirror the C structs field for field (`PoolParams` is ``mn_pool_params``,
`ReduceParams` is ``mn_reduce_params``), so a code generator emits ``astuple``-ordered initialisers.

**MEAN in TFLM.** Since 2023 (tflite-micro #1908, "Align mean kernel to TFL") the micro MEAN sends
int8 through ``reference_ops::QuantizedMeanOrSum`` for *every* axis set and keep_dims value,
including axes {1, 2} of a 4-D tensor and equal input/output quantization (before that, equal
quantization took ``reference_ops::Mean``, a truncating integer division; the float-only
``Mean4D`` special case for axes {1, 2} with keep_dims never applied to int8). So one kernel and one
parameter rule serve every axis set: sum, subtract ``in_zp * n``, one requantization whose multiplier
folds in 1/n (`mean_reduce_params`, via `quantmath.mean_params`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mncompile.graph.ops.quantmath import (
    INT8_MAX,
    INT8_MIN,
    QuantMathError,
    activation_range,
    f32,
    mean_params,
    quantize_multiplier,
    window_geometry,
)

__all__ = [
    "MAX_LEFT_SHIFT", "PoolParams", "ReduceParams", "max_min_reduce_params", "mean_reduce_params", "pool_params",
    "reduce_axes", "reduce_count", "reduce_groups", "reduce_output_shape", "sum_reduce_params",
]

MAX_LEFT_SHIFT = 31  # TFLM's `x * (1 << shift)`: 1 << 32 and beyond is undefined
POOL_SCALE_TOLERANCE = 1.0e-6  # PoolingPrepare: |in_scale - out_scale| (float32 difference) <= 1e-6


def _zero_point(zp: int, what: str) -> int:
    zp = int(zp)
    if not INT8_MIN <= zp <= INT8_MAX:
        raise QuantMathError(f"{what} zero point {zp} is not an int8 value")
    return zp


def _positive(values: Sequence[int], what: str) -> tuple[int, ...]:
    out = tuple(int(v) for v in values)
    if any(v < 1 for v in out):
        raise QuantMathError(f"{what} {out} must be >= 1")
    return out


# ---------------------------------------------------------------------------------------------
# MAX_POOL_2D and AVERAGE_POOL_2D


@dataclass(frozen=True)
class PoolParams:
    """``mn_pool_params``: mn_maxpool_s8 and mn_avgpool_s8."""

    batches: int
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    act_min: int
    act_max: int


def pool_params(in_shape: Sequence[int], filter_size: Sequence[int], stride: Sequence[int], padding: str,
                activation: str, input_scale: float, input_zero_point: int, output_scale: float,
                output_zero_point: int) -> PoolParams:
    """TFLM ``PoolingPrepare`` (pooling_common.cc; MAX_POOL_2D and AVERAGE_POOL_2D share it):
    ``ComputePaddingHeightWidth`` (output size and top/left padding; dilation 1), then for int8
    ``TF_LITE_ENSURE(|in_scale - out_scale| <= 1e-6)`` with the difference taken in float32 and
    ``TF_LITE_ENSURE(in_zp == out_zp)``, and the fused activation's clamp from the *output*
    quantization (``CalculateActivationRangeQuantized``). `in_shape` is NHWC. An output size < 1
    (a VALID window larger than the input) is refused (TFLM would run an empty output)."""
    if len(in_shape) != 4:
        raise QuantMathError(f"pooling needs a 4-D NHWC input, not {tuple(in_shape)}")
    n, h, w, c = _positive(in_shape, "input shape")
    kh, kw = _positive(filter_size, "filter size")
    sh, sw = _positive(stride, "stride")
    diff = float(abs(np.float32(input_scale) - np.float32(output_scale)))
    if not diff <= POOL_SCALE_TOLERANCE:
        raise QuantMathError(f"pooling input scale {input_scale} and output scale {output_scale} differ")
    in_zp = _zero_point(input_zero_point, "input")
    if in_zp != _zero_point(output_zero_point, "output"):
        raise QuantMathError(f"pooling input zero point {input_zero_point} != output zero point {output_zero_point}")
    g = window_geometry(padding, h, w, kh, kw, sh, sw)
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    if lo > hi:
        raise QuantMathError(f"empty activation range [{lo}, {hi}]")
    return PoolParams(n, h, w, c, g.out_h, g.out_w, kh, kw, sh, sw, g.pad_top, g.pad_left, lo, hi)


# ---------------------------------------------------------------------------------------------
# MEAN, SUM, REDUCE_MAX, REDUCE_MIN


@dataclass(frozen=True)
class ReduceParams:
    """``mn_reduce_params``: mn_mean_s8, mn_sum_s8, mn_reduce_max_s8, mn_reduce_min_s8."""

    dims: tuple[int, int, int, int]
    reduce: tuple[int, int, int, int]
    in_zp: int
    out_zp: int
    mult: int
    shift: int


def reduce_axes(rank: int, axes: Sequence[int]) -> tuple[int, ...]:
    """TFLM ``reference_ops::ResolveAxis``: negative axes count from the end, duplicates are dropped;
    an axis outside [-rank, rank) makes TFLM's Eval fail. Returned sorted."""
    out = set()
    for a in axes:
        a = int(a)
        r = a + rank if a < 0 else a
        if not 0 <= r < rank:
            raise QuantMathError(f"axis {a} is out of range for a rank-{rank} input")
        out.add(r)
    return tuple(sorted(out))


def reduce_output_shape(in_shape: Sequence[int], axes: Sequence[int], keep_dims: bool) -> tuple[int, ...]:
    """The output shape the converter gives a reduction (keep_dims: reduced dimensions become 1,
    else they go; the bytes are the same either way)."""
    red = reduce_axes(len(in_shape), axes)
    if keep_dims:
        return tuple(1 if d in red else int(s) for d, s in enumerate(in_shape))
    return tuple(int(s) for d, s in enumerate(in_shape) if d not in red)


def reduce_count(in_shape: Sequence[int], axes: Sequence[int]) -> int:
    """n, the number of inputs per output (``CheckedReducedElementCount`` over the resolved axes)."""
    red = reduce_axes(len(in_shape), axes)
    return math.prod(int(in_shape[d]) for d in red)


def reduce_groups(in_shape: Sequence[int], axes: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(dims, reduce) for ``mn_reduce_params``: size-1 dimensions dropped, neighbouring dimensions
    that are both kept or both reduced merged (row-major: the same bytes, the same groups), then
    padded on the left to four with (1, kept). Any rank whose kept/reduced runs number at most four
    fits (every rank <= 4 does); QuantMathError otherwise."""
    shape = _positive(in_shape, "input shape") if len(in_shape) else ()
    red = reduce_axes(len(shape), axes)
    dims: list[int] = []
    flags: list[int] = []
    for d, size in enumerate(shape):
        if size == 1:
            continue
        flag = 1 if d in red else 0
        if flags and flags[-1] == flag:
            dims[-1] *= size
        else:
            dims.append(size)
            flags.append(flag)
    if len(dims) > 4:
        raise QuantMathError(f"reducing axes {tuple(axes)} of {tuple(in_shape)} leaves {len(dims)} groups (4 max)")
    if math.prod(dims) > (1 << 31) - 1:
        raise QuantMathError(f"input {tuple(in_shape)} has 2^31 elements or more")
    pad = 4 - len(dims)
    return (1,) * pad + tuple(dims), (0,) * pad + tuple(flags)


def _checked_shift(mult: int, shift: int) -> tuple[int, int]:
    if shift > MAX_LEFT_SHIFT:
        raise QuantMathError(f"requantization left shift {shift} > {MAX_LEFT_SHIFT} (undefined in TFLM)")
    return mult, shift


def mean_reduce_params(in_shape: Sequence[int], axes: Sequence[int], input_scale: float, input_zero_point: int,
                       output_scale: float, output_zero_point: int) -> ReduceParams:
    """int8 MEAN: TFLM ``PrepareMeanOrSumHelper`` (``QuantizeMultiplier(double(in_scale) /
    double(out_scale))``), then the fold of 1/n that ``QuantizedMeanOrSum`` does at run time
    (``quantmath.mean_params``: ``s = min(floor(log2 n), 32, 31 + shift)``, ``mult = (mult << s) / n``
    truncated, ``shift -= s``). TFLM's Prepare checks nothing else for MEAN; there is no fused
    activation (only the int8 clamp)."""
    dims, flags = reduce_groups(in_shape, axes)
    n = reduce_count(in_shape, axes)
    mult, shift = _checked_shift(*mean_params(input_scale, output_scale, n))
    return ReduceParams(dims, flags, _zero_point(input_zero_point, "input"), _zero_point(output_zero_point, "output"),
                        mult, shift)


def sum_reduce_params(in_shape: Sequence[int], axes: Sequence[int], input_scale: float, input_zero_point: int,
                      output_scale: float, output_zero_point: int) -> ReduceParams:
    """int8 SUM: TFLM ``PrepareMeanOrSumHelper`` (``QuantizeMultiplier(double(in_scale) /
    double(out_scale))``) and ``QuantizedMeanOrSum(compute_sum=true)`` (no 1/n fold)."""
    dims, flags = reduce_groups(in_shape, axes)
    mult, shift = _checked_shift(*quantize_multiplier(f32(input_scale) / f32(output_scale)))
    return ReduceParams(dims, flags, _zero_point(input_zero_point, "input"), _zero_point(output_zero_point, "output"),
                        mult, shift)


def max_min_reduce_params(in_shape: Sequence[int], axes: Sequence[int], input_scale: float, input_zero_point: int,
                          output_scale: float, output_zero_point: int) -> ReduceParams:
    """int8 REDUCE_MAX / REDUCE_MIN: TFLM ``EvalMinMaxHelper`` ENSUREs ``double(in_scale) ==
    double(out_scale)`` (exactly, as float32 values) and ``in_zp == out_zp``; no requantization
    (mult/shift 0, zero points recorded but unused)."""
    dims, flags = reduce_groups(in_shape, axes)
    if f32(input_scale) != f32(output_scale):
        raise QuantMathError(f"REDUCE_MAX/MIN input scale {input_scale} != output scale {output_scale}")
    in_zp = _zero_point(input_zero_point, "input")
    if in_zp != _zero_point(output_zero_point, "output"):
        raise QuantMathError(f"REDUCE_MAX/MIN input zero point {input_zero_point} != output {output_zero_point}")
    return ReduceParams(dims, flags, in_zp, in_zp, 0, 0)
