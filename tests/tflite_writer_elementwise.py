"""One-operator int8 .tflite models for the elementwise kernels: MUL, SUB, HARD_SWISH, LOGISTIC,
RELU, RELU6 (the companion of tests/tflite_writer.py, whose model builder this reuses).

Each function returns the bytes of a valid flatbuffer whose run-time inputs are the model inputs
and whose output is the model output. Quantization is ``(scale, zero_point)`` or a
:class:`mncompile.graph.ir.Quant`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tflite_writer import QuantLike, WriterError, _activation, _Model, _quant

from mncompile.graph.ir import Quant

LOGISTIC_OUTPUT = Quant((1.0 / 256.0,), (-128,))  # what the converter gives int8 LOGISTIC


def _binary(op: str, options_type: str, shape1: Sequence[int], quant1: QuantLike, shape2: Sequence[int],
            quant2: QuantLike, out_quant: QuantLike, activation: str) -> bytes:
    try:
        out_shape = np.broadcast_shapes(tuple(shape1), tuple(shape2))
    except ValueError as exc:
        raise WriterError(str(exc)) from None
    m = _Model()
    t1 = m.tensor("input1", shape1, "INT8", _quant(quant1))
    t2 = m.tensor("input2", shape2, "INT8", _quant(quant2))
    to = m.tensor("output", out_shape, "INT8", _quant(out_quant))
    opts = getattr(m.s, options_type + "T")()
    opts.fusedActivationFunction = _activation(activation)
    return m.finish(op, [t1, t2], [to], options_type, opts)


def mul(shape1: Sequence[int], quant1: QuantLike, shape2: Sequence[int], quant2: QuantLike, out_quant: QuantLike,
        activation: str = "NONE") -> bytes:
    """MUL int8 with NumPy broadcasting of the two input shapes."""
    return _binary("MUL", "MulOptions", shape1, quant1, shape2, quant2, out_quant, activation)


def sub(shape1: Sequence[int], quant1: QuantLike, shape2: Sequence[int], quant2: QuantLike, out_quant: QuantLike,
        activation: str = "NONE") -> bytes:
    """SUB int8 (input1 - input2) with NumPy broadcasting of the two input shapes."""
    return _binary("SUB", "SubOptions", shape1, quant1, shape2, quant2, out_quant, activation)


def _unary(op: str, shape: Sequence[int], in_quant: QuantLike, out_quant: QuantLike,
           options_type: str | None = None) -> bytes:
    m = _Model()
    ti = m.tensor("input", shape, "INT8", _quant(in_quant))
    to = m.tensor("output", shape, "INT8", _quant(out_quant))
    opts = getattr(m.s, options_type + "T")() if options_type else None
    return m.finish(op, [ti], [to], options_type, opts)


def hard_swish(shape: Sequence[int], in_quant: QuantLike, out_quant: QuantLike) -> bytes:
    """HARD_SWISH int8: x * relu6(x + 3) / 6."""
    return _unary("HARD_SWISH", shape, in_quant, out_quant, "HardSwishOptions")


def logistic(shape: Sequence[int], in_quant: QuantLike, out_quant: QuantLike = LOGISTIC_OUTPUT) -> bytes:
    """LOGISTIC int8 (TFLM requires output zero point -128; the kernel assumes scale 1/256)."""
    return _unary("LOGISTIC", shape, in_quant, out_quant)


def relu(shape: Sequence[int], in_quant: QuantLike, out_quant: QuantLike) -> bytes:
    """Standalone RELU int8 (input and output quantization may differ: TFLM requantizes)."""
    return _unary("RELU", shape, in_quant, out_quant)


def relu6(shape: Sequence[int], in_quant: QuantLike, out_quant: QuantLike) -> bytes:
    """Standalone RELU6 int8."""
    return _unary("RELU6", shape, in_quant, out_quant)
