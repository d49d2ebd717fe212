"""TFLM's Prepare logic for the data-movement int8 kernels (firmware/kernels/mn_transpose.c,
mn_concat.c, mn_slice.c, mn_pad5.c and mn_pad.c): TRANSPOSE, CONCATENATION, STRIDED_SLICE, PAD, PADV2,
and the view checks of SQUEEZE and EXPAND_DIMS, which have no kernel.

These operators move bytes and never requantize, so there is no arithmetic to reproduce, only TFLM's
checks and index resolution. Each function names the TFLM code it reproduces and raises
`QuantMathError` where TFLM rejects the model (TF_LITE_ENSURE in Prepare), and also where TFLM would
accept the model but run it wrongly or with undefined behaviour (these are listed per function: TFLM
checks little here, e.g. neither a TRANSPOSE's output shape nor a CONCATENATION's input shapes), or
where the kernels cannot hold it.

The dataclasses mirror the C structs field for field (`TransposeParams` is ``mn_transpose_params``
and so on), so a code generator emits ``astuple``-ordered initialisers. Shapes are folded before they
reach a kernel: size-1 dimensions dropped, neighbouring dimensions that stay contiguous merged (the
same bytes in the same order), then padded on the left to the kernel's rank, so that the kernels copy
the longest contiguous runs they can; ``fold=False`` keeps the model's dimensions (tests use it to
exercise the kernels' general paths).

**Quantization.** TFLM's TRANSPOSE, STRIDED_SLICE, PAD and PADV2 do not look at the input and output
quantization (the bytes are copied as they are, so aliasing or copying is bit-exact with TFLM whatever
they are); only PADV2's pad value must share the output's scale and zero point. Its int8
CONCATENATION requires every input to have the output's scale (compared as float32 values) and zero
point: TFLM does not requantize, it refuses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mncompile.graph.ops.quantmath import INT8_MAX, INT8_MIN, QuantMathError, f32

__all__ = [
    "CONCAT_MAX_INPUTS", "CONCAT_MAX_RANK", "PAD_MAX_RANK", "SQUEEZE_MAX_RANK", "STRIDED_SLICE_MAX_RANK",
    "TRANSPOSE_MAX_RANK", "ConcatParams", "Pad5Params", "PadParams", "StridedSliceParams", "StridedSliceResolution",
    "TransposeParams", "concat_params", "expand_dims_view", "pad_params", "squeeze_view", "strided_slice_params",
    "strided_slice_resolve", "transpose_params",
]

KERNEL_DIMS = 5  # MN_MOVEMENT_MAX_DIMS
TRANSPOSE_MAX_RANK = 5  # TransposePrepare: "Transpose op only supports 1D-5D input arrays"
CONCAT_MAX_INPUTS = 10  # concatenation.cc kMaxInputNum
CONCAT_MAX_RANK = 6  # RuntimeShape::kMaxSmallSize
STRIDED_SLICE_MAX_RANK = 4  # strided_slice_common.cc kMaxDim ("input dim should not exceed 4")
PAD_MAX_RANK = 5  # reference_ops::PadKernelMaxDimensionCount()
SQUEEZE_MAX_RANK = 8  # squeeze.cc max_squeeze_dims
INT32_MAX = (1 << 31) - 1

QuantPair = tuple[float, int]  # (scale, zero point)


def _shape(shape: Sequence[int], what: str) -> tuple[int, ...]:
    out = tuple(int(d) for d in shape)
    if any(d < 1 for d in out):
        raise QuantMathError(f"{what} {out} has an empty dimension (empty tensors are not supported)")
    if math.prod(out) > INT32_MAX:
        raise QuantMathError(f"{what} {out} has 2^31 elements or more")
    return out


def _same_quant(a: QuantPair | None, b: QuantPair | None) -> bool:
    """(scale, zero point) equality as TFLM compares it: the float32 scales, the zero points."""
    if a is None or b is None:
        return True
    return f32(a[0]) == f32(b[0]) and int(a[1]) == int(b[1])


def _pad_left(values: Sequence[int], fill: int, n: int = KERNEL_DIMS) -> tuple[int, ...]:
    return (fill,) * (n - len(values)) + tuple(int(v) for v in values)


# ---------------------------------------------------------------------------------------------
# TRANSPOSE


@dataclass(frozen=True)
class TransposeParams:
    """``mn_transpose_params``: output dimension d is input dimension perm[d]."""

    in_dims: tuple[int, int, int, int, int]
    perm: tuple[int, int, int, int, int]


def transpose_params(in_shape: Sequence[int], perm: Sequence[int], out_shape: Sequence[int] | None = None,
                     fold: bool = True) -> TransposeParams:
    """TFLM ``TransposePrepare`` (transpose_common.cc): input rank <= 5, one permutation entry per
    input dimension (a 1-D perm tensor of `rank` entries; it must be a constant int32 tensor, which
    the caller checks: TFLM reads the data as int32 whatever its type), every entry in [0, rank).
    Refused beyond TFLM's checks, where TFLM would write garbage: a perm with a repeated entry (not a
    permutation), and an output shape other than ``in_shape[perm]`` (TFLM's Eval walks the output
    shape without checking it). The input and output quantization are not checked (bytes move as they
    are). Folded: size-1 dimensions dropped and output neighbours that are input neighbours in the same
    order merged (NHWC -> NCHW becomes the 2-D transpose [N][H*W][C] -> [N][C][H*W])."""
    shape = _shape(in_shape, "TRANSPOSE input")
    rank = len(shape)
    if not 1 <= rank <= TRANSPOSE_MAX_RANK:
        raise QuantMathError(f"TRANSPOSE of a rank-{rank} input (TFLM supports 1-D to 5-D)")
    perm = tuple(int(p) for p in perm)
    if len(perm) != rank:
        raise QuantMathError(f"TRANSPOSE perm {perm} has {len(perm)} entries for a rank-{rank} input")
    if any(not 0 <= p < rank for p in perm):
        raise QuantMathError(f"TRANSPOSE perm {perm} is out of bounds")
    if sorted(perm) != list(range(rank)):
        raise QuantMathError(f"TRANSPOSE perm {perm} is not a permutation (TFLM would write garbage)")
    want = tuple(shape[p] for p in perm)
    if out_shape is not None and tuple(int(d) for d in out_shape) != want:
        raise QuantMathError(f"TRANSPOSE output shape {tuple(out_shape)} is not {want} (TFLM does not check it)")
    dims, order = list(shape), list(perm)
    if fold:
        keep = [d for d in range(rank) if shape[d] != 1]
        renumber = {d: k for k, d in enumerate(keep)}
        dims = [shape[d] for d in keep]
        order = [renumber[p] for p in perm if p in renumber]
        # merge output neighbours that are input neighbours in order: runs of consecutive input axes
        runs: list[list[int]] = []
        for p in order:
            if runs and runs[-1][-1] + 1 == p:
                runs[-1].append(p)
            else:
                runs.append([p])
        by_start = sorted(runs, key=lambda r: r[0])  # input order of the runs
        new_index = {r[0]: k for k, r in enumerate(by_start)}
        dims = [math.prod(dims[a] for a in r) for r in by_start]
        order = [new_index[r[0]] for r in runs]
    lead = KERNEL_DIMS - len(dims)
    return TransposeParams(_pad_left(dims, 1), tuple(range(lead)) + tuple(p + lead for p in order))


# ---------------------------------------------------------------------------------------------
# CONCATENATION


@dataclass(frozen=True)
class ConcatParams:
    """``mn_concat_params``: one per input; mn_concat_s8(&p[k], input k, output)."""

    outer: int
    size: int
    out_stride: int
    out_offset: int


def concat_params(in_shapes: Sequence[Sequence[int]], axis: int, in_quants: Sequence[QuantPair], out_quant: QuantPair,
                  out_shape: Sequence[int] | None = None, activation: str = "NONE") -> tuple[ConcatParams, ...]:
    """TFLM ``ConcatenationPrepare`` (concatenation.cc) for int8: fused activation NONE, at most 10
    inputs (kMaxInputNum), every input of rank <= 6 (kMaxSmallSize), every input's scale equal to the
    output's (as float32 values: TFLM compares ``double(float)``) and every zero point equal to the
    output's (TFLM refuses rather than requantizes); the axis resolved against the output rank
    (``CalculatePositiveAxis``: a negative axis counts from the end). Refused beyond TFLM's Prepare
    (``reference_ops::Concatenation`` only DCHECKs them; a release build copies garbage or out of
    bounds): an axis outside [-rank, rank), inputs of another rank than the output, dimensions other
    than the axis that differ, an output axis size other than the sum. One `ConcatParams` per input,
    in input order."""
    if activation.upper() != "NONE":
        raise QuantMathError(f"CONCATENATION with fused activation {activation} (TFLM requires NONE)")
    n = len(in_shapes)
    if not 1 <= n <= CONCAT_MAX_INPUTS:
        raise QuantMathError(f"CONCATENATION of {n} inputs (TFLM takes 1 to {CONCAT_MAX_INPUTS})")
    if len(in_quants) != n:
        raise QuantMathError(f"{len(in_quants)} input quantizations for {n} inputs")
    shapes = [_shape(s, f"CONCATENATION input {k}") for k, s in enumerate(in_shapes)]
    for k, (s, q) in enumerate(zip(shapes, in_quants, strict=True)):
        if len(s) > CONCAT_MAX_RANK:
            raise QuantMathError(f"CONCATENATION input {k} has rank {len(s)} (TFLM supports up to {CONCAT_MAX_RANK})")
        if f32(q[0]) != f32(out_quant[0]):
            raise QuantMathError(f"CONCATENATION input {k} scale {q[0]} differs from the output scale {out_quant[0]} "
                                 "(TFLM's int8 concatenation does not rescale)")
        if int(q[1]) != int(out_quant[1]):
            raise QuantMathError(f"CONCATENATION input {k} zero point {q[1]} differs from the output zero point "
                                 f"{out_quant[1]}")
    rank = len(out_shape) if out_shape is not None else len(shapes[0])
    a = int(axis) + rank if int(axis) < 0 else int(axis)
    if not 0 <= a < rank:
        raise QuantMathError(f"CONCATENATION axis {axis} is out of range for rank {rank}")
    for k, s in enumerate(shapes):
        if len(s) != rank or any(s[d] != shapes[0][d] for d in range(rank) if d != a):
            raise QuantMathError(f"CONCATENATION input {k} shape {s} does not match {shapes[0]} off axis {a}")
    want = list(shapes[0])
    want[a] = sum(s[a] for s in shapes)
    if out_shape is not None and tuple(int(d) for d in out_shape) != tuple(want):
        raise QuantMathError(f"CONCATENATION output shape {tuple(out_shape)} is not {tuple(want)}")
    _shape(want, "CONCATENATION output")
    outer = math.prod(want[:a])
    inner = math.prod(want[a + 1:])
    params, offset = [], 0
    for s in shapes:
        params.append(ConcatParams(outer, s[a] * inner, want[a] * inner, offset * inner))
        offset += s[a]
    return tuple(params)


# ---------------------------------------------------------------------------------------------
# STRIDED_SLICE


@dataclass(frozen=True)
class StridedSliceParams:
    """``mn_strided_slice_params``: resolved start/stop/step per dimension."""

    in_dims: tuple[int, int, int, int, int]
    start: tuple[int, int, int, int, int]
    stop: tuple[int, int, int, int, int]
    step: tuple[int, int, int, int, int]


@dataclass(frozen=True)
class StridedSliceResolution:
    """TFLM's resolution of one STRIDED_SLICE: per input dimension the start, stop and step its Eval
    loops over (``StridedSliceStartForAxis`` / ``StridedSliceEndForAxis``), the output shape its
    Prepare computes, and the options TFLM ignores that the model sets ("ellipsis_mask",
    "new_axis_mask", "offset": TFLM runs the slice as if they were 0, which differs from TensorFlow
    Lite; a code generator may want to warn)."""

    start: tuple[int, ...]
    stop: tuple[int, ...]
    step: tuple[int, ...]
    out_shape: tuple[int, ...]
    ignored: tuple[str, ...]


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def _count(start: int, stop: int, step: int) -> int:
    """How many indices start, start + step, ... lie before stop (TFLM's loop condition)."""
    if step > 0:
        return max(0, -(-(stop - start) // step))
    return max(0, -(-(start - stop) // -step))


def strided_slice_resolve(in_shape: Sequence[int], begin: Sequence[int], end: Sequence[int],
                          strides: Sequence[int], begin_mask: int = 0, end_mask: int = 0, ellipsis_mask: int = 0,
                          new_axis_mask: int = 0, shrink_axis_mask: int = 0, offset: bool = False,
                          max_rank: int = STRIDED_SLICE_MAX_RANK) -> StridedSliceResolution:
    """TFLM ``StridedSlicePrepare`` (strided_slice_common.cc) and the index resolution of its Eval.

    TFLM's micro kernel builds its ``StridedSliceParams`` from begin/end/strides (one int32 entry per
    input dimension, read as int32 whatever the tensor type), begin_mask, end_mask and
    shrink_axis_mask only: **ellipsis_mask and new_axis_mask are set to 0 and offset is false**,
    whatever the model says. Prepare: input rank <= 4 (kMaxDim; `max_rank` = 5 resolves 5-D slices
    with the same logic, as ``reference_ops::StridedSlice`` would, for tests or another runtime),
    every stride != 0, then per dimension the output size ``max(0, ceil(float(end - begin) /
    float(stride)))`` with ``StartForAxis`` / ``StopForAxis`` (``end = begin + 1`` for a shrunk
    axis), which must match the model's output shape (checked by `strided_slice_params`). Eval
    resolves start and stop again with ``StridedSliceStartForAxis`` / ``StridedSliceEndForAxis``:
    a negative index counts from the end, then start and stop are clamped to [0, dim] (step > 0) or
    [-1, dim - 1] (step < 0), a begin_mask / end_mask bit overrides them with the full range, and a
    shrunk axis has stop = start + 1 (start when start == dim).

    Refused beyond TFLM's checks: begin/end/strides of another length than the input rank (TFLM
    reads past them), an empty output, and slices where TFLM's Eval writes fewer bytes than the
    output holds (leaving the rest unwritten): a shrunk axis with a negative stride (TFLM's loop
    `i > start + 1` never runs) or whose begin is >= dim (a begin below -dim is clamped to 0 and
    accepted, as TFLM does)."""
    shape = _shape(in_shape, "STRIDED_SLICE input")
    rank = len(shape)
    if not 1 <= rank <= max_rank:
        raise QuantMathError(f"STRIDED_SLICE of a rank-{rank} input (TFLM supports up to {STRIDED_SLICE_MAX_RANK}-D)")
    begin, end, strides = ([int(v) for v in vals] for vals in (begin, end, strides))
    if not len(begin) == len(end) == len(strides) == rank:
        raise QuantMathError(f"STRIDED_SLICE begin/end/strides have {len(begin)}/{len(end)}/{len(strides)} "
                             f"entries for a rank-{rank} input")
    if any(s == 0 for s in strides):
        raise QuantMathError("STRIDED_SLICE stride value has to be non-zero")
    ignored = tuple(name for name, v in (("ellipsis_mask", ellipsis_mask), ("new_axis_mask", new_axis_mask),
                                         ("offset", offset)) if v)
    starts, stops, out_shape = [], [], []
    for d in range(rank):
        size, stride = shape[d], strides[d]
        bm, em, shrink = bool(begin_mask >> d & 1), bool(end_mask >> d & 1), bool(shrink_axis_mask >> d & 1)
        # Prepare: StartForAxis / StopForAxis (strided_slice_logic.h), float32 ceil
        b = (-(1 << 31) if stride > 0 else INT32_MAX) if bm else begin[d]
        b = b + size if b < 0 else b
        b = _clamp(b, 0, size) if stride > 0 else _clamp(b, -1, size - 1)
        if shrink:
            e = b + 1
        else:
            e = (INT32_MAX if stride > 0 else -(1 << 31)) if em else end[d]
            e = e + size if e < 0 else e
            e = _clamp(e, 0, size) if stride > 0 else _clamp(e, -1, size - 1)
        dim_shape = max(0, int(np.ceil(np.float32(e - b) / np.float32(stride))))
        # Eval: StridedSliceStartForAxis / StridedSliceEndForAxis
        s = begin[d] + size if begin[d] < 0 else begin[d]
        s = _clamp(s, 0, size) if stride > 0 else _clamp(s, -1, size - 1)
        if bm:
            s = 0 if stride > 0 else size - 1
        if shrink:
            t = s if s >= size else s + 1
        else:
            t = end[d] + size if end[d] < 0 else end[d]
            t = _clamp(t, 0, size) if stride > 0 else _clamp(t, -1, size - 1)
            if em:
                t = size if stride > 0 else -1
        n = _count(s, t, stride)
        if shrink and n != 1:
            raise QuantMathError(f"STRIDED_SLICE shrinks axis {d} with begin {begin[d]} and stride {stride}: TFLM "
                                 "writes nothing for it (its loop is empty) and leaves the output unwritten")
        if not shrink:
            if n != dim_shape:  # never seen; would make TFLM's Eval disagree with its own Prepare
                raise QuantMathError(f"STRIDED_SLICE axis {d}: TFLM's Prepare size {dim_shape} != Eval count {n}")
            out_shape.append(dim_shape)
        starts.append(s)
        stops.append(t)
    if any(d == 0 for d in out_shape):
        raise QuantMathError(f"STRIDED_SLICE gives an empty output {tuple(out_shape)}")
    return StridedSliceResolution(tuple(starts), tuple(stops), tuple(strides), tuple(out_shape), ignored)


def _fold_slice(dims: list[list[int]]) -> list[list[int]]:
    """Merge neighbouring [size, start, count, step] dimensions whose index lists form one arithmetic
    progression over the merged dimension; drop size-1 dimensions."""
    dims = [list(d) for d in dims if d[0] != 1]
    for d in dims:
        if d[2] == 1:
            d[3] = 1
    merged = True
    while merged and len(dims) > 1:
        merged = False
        for k in range(len(dims) - 1):
            (so, bo, no, to), (si, bi, ni, ti) = dims[k], dims[k + 1]
            if ni == 1:  # the inner index is fixed: an offset
                new = [so * si, bo * si + bi, no, to * si if no > 1 else 1]
            elif no == 1:  # the outer index is fixed: an offset
                new = [so * si, bo * si + bi, ni, ti]
            elif ni == si and abs(ti) == 1 and to == ti:  # the inner dimension is walked whole, the same way
                new = [so * si, bo * si + bi, no * si, ti]
            else:
                continue
            dims[k:k + 2] = [new]
            merged = True
            break
    return dims


def strided_slice_params(in_shape: Sequence[int], begin: Sequence[int], end: Sequence[int], strides: Sequence[int],
                         begin_mask: int = 0, end_mask: int = 0, ellipsis_mask: int = 0, new_axis_mask: int = 0,
                         shrink_axis_mask: int = 0, offset: bool = False, out_shape: Sequence[int] | None = None,
                         fold: bool = True, max_rank: int = STRIDED_SLICE_MAX_RANK) -> StridedSliceParams:
    """``mn_strided_slice_params`` for a STRIDED_SLICE: `strided_slice_resolve` (TFLM's checks and
    index resolution; ellipsis_mask, new_axis_mask and offset are ignored as TFLM ignores them), and
    TFLM's ``CheckOutputSize``: the model's output shape must be the resolved one (shrunk axes
    removed). Folded (`_fold_slice`: a fixed index becomes an offset, a dimension walked whole merges
    into a unit-step outer one) and padded on the left to five dimensions."""
    r = strided_slice_resolve(in_shape, begin, end, strides, begin_mask, end_mask, ellipsis_mask, new_axis_mask,
                              shrink_axis_mask, offset, max_rank)
    if out_shape is not None and tuple(int(d) for d in out_shape) != r.out_shape:
        raise QuantMathError(f"STRIDED_SLICE output shape {tuple(out_shape)} is not TFLM's {r.out_shape}")
    shape = [int(d) for d in in_shape]
    dims = [[shape[d], r.start[d], _count(r.start[d], r.stop[d], r.step[d]), r.step[d]] for d in range(len(shape))]
    if fold:
        dims = _fold_slice(dims)
    sizes = [d[0] for d in dims]
    starts = [d[1] for d in dims]
    steps = [d[3] for d in dims]
    # stop just past the last index: inside [-1, dim] whatever the step
    stops = [d[1] + (d[2] - 1) * d[3] + (1 if d[3] > 0 else -1) for d in dims]
    return StridedSliceParams(_pad_left(sizes, 1), _pad_left(starts, 0), _pad_left(stops, 1), _pad_left(steps, 1))


# ---------------------------------------------------------------------------------------------
# PAD and PADV2


@dataclass(frozen=True)
class PadParams:
    """``mn_pad_params`` (mn_kernels.h): mn_pad_s8, four dimensions."""

    in_dims: tuple[int, int, int, int]
    pad_before: tuple[int, int, int, int]
    pad_after: tuple[int, int, int, int]
    pad_value: int


@dataclass(frozen=True)
class Pad5Params:
    """``mn_pad5_params``: mn_pad5_s8, five dimensions."""

    in_dims: tuple[int, int, int, int, int]
    pad_before: tuple[int, int, int, int, int]
    pad_after: tuple[int, int, int, int, int]
    pad_value: int


def _fold_pad(dims: list[int], before: list[int], after: list[int]) -> tuple[list[int], list[int], list[int]]:
    """Merge every unpadded dimension into its outer neighbour (its paddings scale by the inner size;
    the same bytes in the same order) and drop an unpadded outermost dimension of size 1."""
    d, b, a = [dims[0]], [before[0]], [after[0]]
    for size, pb, pa in zip(dims[1:], before[1:], after[1:], strict=True):
        if pb == 0 and pa == 0:
            d[-1], b[-1], a[-1] = d[-1] * size, b[-1] * size, a[-1] * size
        else:
            d.append(size)
            b.append(pb)
            a.append(pa)
    if len(d) > 1 and d[0] == 1 and b[0] == 0 and a[0] == 0:
        d, b, a = d[1:], b[1:], a[1:]
    return d, b, a


def pad_params(in_shape: Sequence[int], paddings: Sequence[Sequence[int]], output_scale: float,
               output_zero_point: int, out_shape: Sequence[int] | None = None, constant_value: int | None = None,
               constant_quant: QuantPair | None = None, fold: bool = True, kernel_dims: int | None = None
               ) -> PadParams | Pad5Params:
    """TFLM ``PadPrepare`` (pad_common.cc; PAD and PADV2 share it, and Eval): input rank <= 5
    (PadKernelMaxDimensionCount), one (before, after) pair per dimension (TFLM: the paddings tensor,
    a constant read as int32 whatever its type, has 2 * rank entries), output dimension = input +
    before + after. PAD (`constant_value` None) pads with the output zero point, which must be an
    int8 value. PADV2 pads with the raw int8 `constant_value` (a constant one-element int8 tensor:
    TFLM reads the byte at run time; a computed one is not supported), whose quantization
    `constant_quant` must equal the output's (zero point, and scale as float32) when given. The input
    quantization is not checked (TFLM copies the bytes). Refused beyond TFLM's checks: negative
    paddings (TFLM accepts them when the output shape matches and then reads the input
    misaligned).

    Returns `PadParams` (``mn_pad_s8``) when the folded pad (`_fold_pad`) has at most four dimensions
    (every pad of rank <= 4, and rank-5 pads with an unpadded dimension), else `Pad5Params`
    (``mn_pad5_s8``); `kernel_dims` (4 or 5) forces one."""
    shape = _shape(in_shape, "PAD input")
    rank = len(shape)
    if not 1 <= rank <= PAD_MAX_RANK:
        raise QuantMathError(f"PAD of a rank-{rank} input (TFLM supports up to {PAD_MAX_RANK}-D)")
    pads = [tuple(int(v) for v in p) for p in paddings]
    if len(pads) != rank or any(len(p) != 2 for p in pads):
        raise QuantMathError(f"PAD needs one (before, after) pair per input dimension, not {pads}")
    before, after = [p[0] for p in pads], [p[1] for p in pads]
    if min(before + after) < 0:
        raise QuantMathError(f"PAD with negative paddings {pads}")
    want = tuple(d + b + a for d, b, a in zip(shape, before, after, strict=True))
    if out_shape is not None and tuple(int(d) for d in out_shape) != want:
        raise QuantMathError(f"PAD output shape {tuple(out_shape)} is not {want}")
    _shape(want, "PAD output")
    zp = int(output_zero_point)
    if constant_value is None:
        if not INT8_MIN <= zp <= INT8_MAX:
            raise QuantMathError(f"PAD output zero point {zp} is not an int8 value")
        value = zp
    else:
        value = int(constant_value)
        if not INT8_MIN <= value <= INT8_MAX:
            raise QuantMathError(f"PADV2 constant value {value} is not an int8 value")
        if constant_quant is not None and not _same_quant(constant_quant, (output_scale, zp)):
            raise QuantMathError(f"PADV2 constant_values quantization {tuple(constant_quant)} differs from the "
                                 f"output's {(output_scale, zp)}")
    dims, b, a = list(shape), before, after
    if fold:
        dims, b, a = _fold_pad(dims, b, a)
    n = kernel_dims if kernel_dims is not None else (4 if len(dims) <= 4 else 5)
    if n not in (4, 5) or len(dims) > n:
        raise QuantMathError(f"PAD of {len(dims)} folded dimensions does not fit a {n}-D kernel")
    cls = PadParams if n == 4 else Pad5Params
    return cls(_pad_left(dims, 1, n), _pad_left(b, 0, n), _pad_left(a, 0, n), value)


# ---------------------------------------------------------------------------------------------
# SQUEEZE and EXPAND_DIMS: views


def _view_quant(op: str, in_quant: QuantPair | None, out_quant: QuantPair | None, require_same_quant: bool) -> None:
    if require_same_quant and not _same_quant(in_quant, out_quant):
        raise QuantMathError(f"{op} changes the quantization from {in_quant} to {out_quant} (TFLM copies the bytes "
                             "as they are; pass require_same_quant=False to alias them anyway)")


def squeeze_view(in_shape: Sequence[int], out_shape: Sequence[int], squeeze_dims: Sequence[int] = (),
                 in_quant: QuantPair | None = None, out_quant: QuantPair | None = None,
                 require_same_quant: bool = True) -> tuple[int, ...]:
    """Whether a SQUEEZE is a pure view (the AOT planner aliases its output to its input, nothing
    runs); returns the output shape, raises `QuantMathError` otherwise. TFLM ``SqueezePrepare``
    (squeeze.cc): input rank <= 8; with squeeze_dims, each (negative: + rank) in range and of size 1
    (duplicates allowed); without, every size-1 dimension goes. Its Eval ENSUREs equal byte sizes and
    memcpys. Stricter than TFLM: the output shape must be exactly the input's without the squeezed
    dimensions (TFLM only CHECKs that the kept dimensions are not larger), and (unless
    `require_same_quant` is False) the (scale, zero point) pairs equal: TFLM never looks at them, so
    aliasing differently quantized tensors is bit-exact with TFLM too, but it is no converter's
    output."""
    shape = _shape(in_shape, "SQUEEZE input")
    rank = len(shape)
    if rank > SQUEEZE_MAX_RANK:
        raise QuantMathError(f"SQUEEZE of a rank-{rank} input (TFLM supports up to {SQUEEZE_MAX_RANK})")
    if squeeze_dims:
        drop = set()
        for s in squeeze_dims:
            cur = int(s) + rank if int(s) < 0 else int(s)
            if not 0 <= cur < rank or shape[cur] != 1:
                raise QuantMathError(f"SQUEEZE axis {s} is out of range or not of size 1 in {shape}")
            drop.add(cur)
    else:
        drop = {d for d in range(rank) if shape[d] == 1}
    want = tuple(shape[d] for d in range(rank) if d not in drop)
    if tuple(int(d) for d in out_shape) != want:
        raise QuantMathError(f"SQUEEZE output shape {tuple(out_shape)} is not {want}")
    _view_quant("SQUEEZE", in_quant, out_quant, require_same_quant)
    return want


def expand_dims_view(in_shape: Sequence[int], out_shape: Sequence[int], axis: int | Sequence[int],
                     in_quant: QuantPair | None = None, out_quant: QuantPair | None = None,
                     require_same_quant: bool = True) -> tuple[int, ...]:
    """Whether an EXPAND_DIMS is a pure view; returns the output shape, raises `QuantMathError`
    otherwise. TFLM ``ExpandDimsPrepare`` (expand_dims.cc): the axis is a constant int32 tensor of
    rank <= 1 (an int64 axis is refused; the caller checks type and constness), its first element
    taken; a negative axis counts from rank + 1; axis <= rank; the output must be the input with a 1
    inserted at the axis (rank + 1 dimensions). Its Eval copies the elements (int8, int16, float32).
    Refused beyond TFLM: an axis below -(rank + 1) (TFLM then compares against input dimension -1),
    and (unless `require_same_quant` is False) a change of quantization, as in `squeeze_view`."""
    shape = _shape(in_shape, "EXPAND_DIMS input")
    rank = len(shape)
    values = [int(axis)] if np.isscalar(axis) else [int(v) for v in axis]
    if len(values) < 1:
        raise QuantMathError("EXPAND_DIMS axis tensor is empty")
    a = values[0]
    a = rank + 1 + a if a < 0 else a
    if not 0 <= a <= rank:
        raise QuantMathError(f"EXPAND_DIMS axis {values[0]} is out of range for a rank-{rank} input")
    want = shape[:a] + (1,) + shape[a:]
    if tuple(int(d) for d in out_shape) != want:
        raise QuantMathError(f"EXPAND_DIMS output shape {tuple(out_shape)} is not {want}")
    _view_quant("EXPAND_DIMS", in_quant, out_quant, require_same_quant)
    return want
