"""One-operator int8 .tflite models for the pooling and reduction kernels: MAX_POOL_2D, and MEAN,
SUM, REDUCE_MAX, REDUCE_MIN over any axes (the companion of tests/tflite_writer.py, whose model
builder this reuses).

Each function returns the bytes of a valid flatbuffer whose run-time input is the model input and
whose output is the model output. Quantization is ``(scale, zero_point)`` or a
:class:`mncompile.graph.ir.Quant`. Input and output quantizations are separate arguments even where
TFLM requires them equal, so that tests can show TFLM refusing what the Python Prepare refuses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tflite_writer import QuantLike, WriterError, _activation, _Model, _padding, _quant, windowed_out_size

REDUCERS = ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN")


def max_pool2d(x_shape: Sequence[int], quant: QuantLike, filter_size: tuple[int, int],
               stride: tuple[int, int] = (1, 1), padding: str = "VALID", activation: str = "NONE",
               out_quant: QuantLike | None = None) -> bytes:
    """MAX_POOL_2D on NHWC int8; the output shares `quant` unless `out_quant` is given."""
    n, h, w, c = x_shape
    oh = windowed_out_size(padding, h, filter_size[0], stride[0])
    ow = windowed_out_size(padding, w, filter_size[1], stride[1])
    if oh <= 0 or ow <= 0:
        raise WriterError("the window does not fit the input")
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(quant))
    to = m.tensor("output", (n, oh, ow, c), "INT8", _quant(out_quant if out_quant is not None else quant))
    opts = m.s.Pool2DOptionsT()
    opts.padding = _padding(padding)
    opts.strideH, opts.strideW = int(stride[0]), int(stride[1])
    opts.filterHeight, opts.filterWidth = int(filter_size[0]), int(filter_size[1])
    opts.fusedActivationFunction = _activation(activation)
    return m.finish("MAX_POOL_2D", [ti], [to], "Pool2DOptions", opts)


def reduce(op: str, x_shape: Sequence[int], x_quant: QuantLike, out_quant: QuantLike, axes: Sequence[int],
           keep_dims: bool = False) -> bytes:
    """MEAN / SUM / REDUCE_MAX / REDUCE_MIN over `axes`, written as given (negative and repeated
    axes stay in the axis tensor: TFLM resolves them); the output shape uses the resolved axes."""
    if op not in REDUCERS:
        raise WriterError(f"unknown reduction {op!r}")
    rank = len(x_shape)
    if any(not -rank <= a < rank for a in axes):
        raise WriterError(f"axes {tuple(axes)} out of range for rank {rank}")
    red = {a % rank for a in axes}
    if keep_dims:
        out_shape = [1 if d in red else int(x_shape[d]) for d in range(rank)]
    else:
        out_shape = [int(x_shape[d]) for d in range(rank) if d not in red]
    m = _Model()
    ti = m.tensor("input", x_shape, "INT8", _quant(x_quant))
    ta = m.tensor("axes", (len(axes),), "INT32", None, np.array(list(axes), dtype=np.int32))
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant))
    opts = m.s.ReducerOptionsT()
    opts.keepDims = bool(keep_dims)
    return m.finish(op, [ti, ta], [to], "ReducerOptions", opts)


def mean(x_shape, x_quant, out_quant, axes, keep_dims=False) -> bytes:
    return reduce("MEAN", x_shape, x_quant, out_quant, axes, keep_dims)


def reduce_sum(x_shape, x_quant, out_quant, axes, keep_dims=False) -> bytes:
    return reduce("SUM", x_shape, x_quant, out_quant, axes, keep_dims)


def reduce_max(x_shape, quant, axes, keep_dims=False, out_quant=None) -> bytes:
    return reduce("REDUCE_MAX", x_shape, quant, out_quant if out_quant is not None else quant, axes, keep_dims)


def reduce_min(x_shape, quant, axes, keep_dims=False, out_quant=None) -> bytes:
    return reduce("REDUCE_MIN", x_shape, quant, out_quant if out_quant is not None else quant, axes, keep_dims)
