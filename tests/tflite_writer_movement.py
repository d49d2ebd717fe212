"""One-operator int8 .tflite models for the data-movement kernels: TRANSPOSE, CONCATENATION,
STRIDED_SLICE, PAD / PADV2 (any rank), SQUEEZE, EXPAND_DIMS (the companion of tests/tflite_writer.py,
whose model builder this reuses).

Each function returns the bytes of a valid flatbuffer whose run-time inputs are the model inputs and
whose output is the model output. Quantization is ``(scale, zero_point)`` or a
:class:`mncompile.graph.ir.Quant`. Output quantizations (and, where TFLM would check them, output
shapes) are separate arguments, so that tests can show TFLM refusing what the Python Prepare refuses.
Output shapes default to what TensorFlow's semantics give, computed here independently of
``mncompile.graph.ops.quantmath_movement`` (NumPy indexing for STRIDED_SLICE).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tflite_writer import QuantLike, WriterError, _activation, _Model, _quant


def transpose(x_shape: Sequence[int], quant: QuantLike, perm: Sequence[int], out_quant: QuantLike | None = None,
              out_shape: Sequence[int] | None = None) -> bytes:
    """TRANSPOSE with a constant int32 permutation; the output shape is ``x_shape[perm]`` unless given."""
    if out_shape is None:
        if sorted(perm) != list(range(len(x_shape))):
            raise WriterError(f"{tuple(perm)} is not a permutation of {len(x_shape)} axes")
        out_shape = [int(x_shape[p]) for p in perm]
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(quant))
    tp = m.tensor("perm", (len(perm),), "INT32", None, np.array(list(perm), dtype=np.int32))
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant if out_quant is not None else quant))
    return m.finish("TRANSPOSE", [ti, tp], [to], "TransposeOptions", m.s.TransposeOptionsT())


def concatenation(shapes: Sequence[Sequence[int]], quants: Sequence[QuantLike] | QuantLike, axis: int,
                  out_quant: QuantLike | None = None, activation: str = "NONE",
                  out_shape: Sequence[int] | None = None) -> bytes:
    """CONCATENATION of len(shapes) run-time inputs along `axis` (written as given: TFLM resolves a
    negative axis); one quantization for all inputs, or one per input; the output quantization is
    the first input's unless given."""
    if isinstance(quants, tuple) and len(quants) == 2 and not isinstance(quants[0], tuple):
        quants = [quants] * len(shapes)
    quants = list(quants)
    if len(quants) != len(shapes):
        raise WriterError("one quantization per input")
    if out_shape is None:
        rank = len(shapes[0])
        a = axis % rank
        out_shape = list(shapes[0])
        out_shape[a] = sum(int(s[a]) for s in shapes)
    m = _Model()
    ins = [m.tensor(f"input{k}", s, "INT8", _quant(q)) for k, (s, q) in enumerate(zip(shapes, quants, strict=True))]
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant if out_quant is not None else quants[0]))
    opts = m.s.ConcatenationOptionsT()
    opts.axis = int(axis)
    opts.fusedActivationFunction = _activation(activation)
    return m.finish("CONCATENATION", ins, [to], "ConcatenationOptions", opts)


def tf_strided_slice_shape(x_shape: Sequence[int], begin, end, strides, begin_mask=0, end_mask=0,
                           shrink_axis_mask=0) -> tuple[int, ...]:
    """The output shape TensorFlow's semantics give (one begin/end/stride per input axis, no ellipsis,
    no new axes), by NumPy basic indexing: a masked begin/end is an open slice end, a shrunk axis is
    an integer index (IndexError when out of range, as in TensorFlow)."""
    index = []
    for d in range(len(x_shape)):
        if shrink_axis_mask >> d & 1:
            index.append(int(begin[d]))
        else:
            b = None if begin_mask >> d & 1 else int(begin[d])
            e = None if end_mask >> d & 1 else int(end[d])
            index.append(slice(b, e, int(strides[d])))
    return tuple(np.empty(tuple(x_shape), dtype=np.int8)[tuple(index)].shape)


def strided_slice(x_shape: Sequence[int], quant: QuantLike, begin: Sequence[int], end: Sequence[int],
                  strides: Sequence[int], begin_mask: int = 0, end_mask: int = 0, ellipsis_mask: int = 0,
                  new_axis_mask: int = 0, shrink_axis_mask: int = 0, offset: bool = False,
                  out_shape: Sequence[int] | None = None, out_quant: QuantLike | None = None) -> bytes:
    """STRIDED_SLICE with constant int32 begin/end/strides. The output shape is TensorFlow's
    (`tf_strided_slice_shape`) unless given (it must be given with an ellipsis, new axes or offset)."""
    if out_shape is None:
        if ellipsis_mask or new_axis_mask or offset:
            raise WriterError("give out_shape with ellipsis_mask, new_axis_mask or offset")
        out_shape = tf_strided_slice_shape(x_shape, begin, end, strides, begin_mask, end_mask, shrink_axis_mask)
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(quant))
    tb = m.tensor("begin", (len(begin),), "INT32", None, np.array(list(begin), dtype=np.int32))
    te = m.tensor("end", (len(end),), "INT32", None, np.array(list(end), dtype=np.int32))
    ts = m.tensor("strides", (len(strides),), "INT32", None, np.array(list(strides), dtype=np.int32))
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant if out_quant is not None else quant))
    opts = m.s.StridedSliceOptionsT()
    opts.beginMask, opts.endMask, opts.ellipsisMask = int(begin_mask), int(end_mask), int(ellipsis_mask)
    opts.newAxisMask, opts.shrinkAxisMask, opts.offset = int(new_axis_mask), int(shrink_axis_mask), bool(offset)
    return m.finish("STRIDED_SLICE", [ti, tb, te, ts], [to], "StridedSliceOptions", opts)


def pad_v2(x_shape: Sequence[int], quant: QuantLike, paddings: Sequence[tuple[int, int]], value: int,
           value_quant: QuantLike | None = None, out_quant: QuantLike | None = None) -> bytes:
    """PADV2 with a constant int8 scalar pad value (raw int8, in `value_quant`, by default the
    output's quantization); paddings: (before, after) per axis, as a constant int32 [rank, 2]."""
    pads = np.array(paddings, dtype=np.int32).reshape(len(x_shape), 2)
    out_shape = [int(d) + int(b) + int(a) for d, (b, a) in zip(x_shape, pads, strict=True)]
    oq = out_quant if out_quant is not None else quant
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(quant))
    tp = m.tensor("paddings", pads.shape, "INT32", None, pads)
    tv = m.tensor("constant_values", (1,), "INT8", _quant(value_quant if value_quant is not None else oq),
                  np.array([value], dtype=np.int8))
    to = m.tensor("output", out_shape, "INT8", _quant(oq))
    return m.finish("PADV2", [ti, tp, tv], [to], "PadV2Options", m.s.PadV2OptionsT())


def squeeze(x_shape: Sequence[int], quant: QuantLike, squeeze_dims: Sequence[int] = (),
            out_shape: Sequence[int] | None = None, out_quant: QuantLike | None = None) -> bytes:
    """SQUEEZE of the listed axes (all size-1 axes when empty)."""
    if out_shape is None:
        rank = len(x_shape)
        drop = {d % rank for d in squeeze_dims} if squeeze_dims else {d for d in range(rank) if x_shape[d] == 1}
        out_shape = [int(x_shape[d]) for d in range(rank) if d not in drop]
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(quant))
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant if out_quant is not None else quant))
    opts = m.s.SqueezeOptionsT()
    opts.squeezeDims = [int(d) for d in squeeze_dims]
    return m.finish("SQUEEZE", [ti], [to], "SqueezeOptions", opts)


def expand_dims(x_shape: Sequence[int], quant: QuantLike, axis: int, out_shape: Sequence[int] | None = None,
                out_quant: QuantLike | None = None) -> bytes:
    """EXPAND_DIMS with a constant int32 axis (a [1] tensor)."""
    if out_shape is None:
        rank = len(x_shape)
        a = axis if axis >= 0 else rank + 1 + axis
        out_shape = [*x_shape[:a], 1, *x_shape[a:]]
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(quant))
    ta = m.tensor("axis", (1,), "INT32", None, np.array([axis], dtype=np.int32))
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant if out_quant is not None else quant))
    return m.finish("EXPAND_DIMS", [ti, ta], [to], "ExpandDimsOptions", m.s.ExpandDimsOptionsT())
