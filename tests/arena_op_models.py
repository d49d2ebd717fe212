"""Small int8 models for the arena predictor's operator tests (`tests/test_arena_ops.py`): each
operator kind as a chain of identical operators, and one model with every kind in a row.

A chain repeats an operator `n` times (16 by default), so a wrong size of a struct that TFLM
allocates per operator without its own 16-byte alignment (the parsed builtin options) changes
the persistent tail by a multiple of 16 bytes and cannot hide in the alignment padding. Built
with `corpus_models.Net` (the flatbuffer writer of `tests/tflite_writer.py`).
"""

from __future__ import annotations

import numpy as np
from corpus_models import Net, q

from mncompile.graph.ir import Quant

Q = q(0.05, 3)
LOGISTIC_OUT = q(1 / 256, -128)  # TFLM's int8 LOGISTIC requires zero point -128

UNARY = ("RELU", "RELU6", "HARD_SWISH", "LOGISTIC", "TANH")
OPTIONS = {"HARD_SWISH": "HardSwishOptions", "MUL": "MulOptions", "SUB": "SubOptions", "PAD": "PadOptions",
           "PADV2": "PadV2Options", "TRANSPOSE": "TransposeOptions", "CONCATENATION": "ConcatenationOptions",
           "STRIDED_SLICE": "StridedSliceOptions", "SQUEEZE": "SqueezeOptions", "EXPAND_DIMS": "ExpandDimsOptions",
           "SUM": "ReducerOptions", "MEAN": "ReducerOptions", "REDUCE_MAX": "ReducerOptions",
           "REDUCE_MIN": "ReducerOptions", "MAX_POOL_2D": "Pool2DOptions"}


class Chain:
    """One int8 (1, H, W, C) input (and a (1, H, W, 1) side input for CONCATENATION), operators
    appended with `apply(kind)`; each returns nothing and moves `x` to its output."""

    def __init__(self, description: str, shape=(1, 6, 6, 4), seed: int = 0):
        self.net = Net(description, seed)
        self.x = self.net.input(shape, "INT8", Q)
        self.side: int | None = None

    def _out(self, shape, quant: Quant | None = None) -> int:
        return self.net._tensor("t", shape, "INT8", quant or self.net.quants[self.x])

    def _options(self, kind: str):
        name = OPTIONS.get(kind)
        return (name, getattr(self.net.s, name + "T")()) if name else (None, None)

    def _emit(self, kind: str, inputs, out: int, options=None) -> None:
        name, opts = self._options(kind)
        if options:
            for key, value in options.items():
                setattr(opts, key, value)
        self.net._op(kind, inputs, [out], name, opts)
        self.x = out

    def apply(self, kind: str) -> None:
        net, x = self.net, self.x
        shape = list(net.shapes[x])
        if kind in UNARY:
            self._emit(kind, [x], self._out(shape, LOGISTIC_OUT if kind == "LOGISTIC" else None))
        elif kind == "MUL":  # broadcast a constant (1, 1, 1, C) operand
            c = net._tensor("c", (1, 1, 1, shape[3]), "INT8", q(0.02, -1),
                            np.arange(shape[3], dtype=np.int8).reshape(1, 1, 1, -1))
            self._emit(kind, [x, c], self._out(shape, q(0.04, 2)), {"fusedActivationFunction": 0})
        elif kind == "SUB":
            self._emit(kind, [x, x], self._out(shape, q(0.04, 2)), {"fusedActivationFunction": 0})
        elif kind in ("PAD", "PADV2"):
            pads = [(0, 0), (1, 0), (0, 0), (0, 0)] if kind == "PAD" else [(0, 0), (0, 0), (0, 1), (0, 0)]
            out_shape = [d + a + b for d, (a, b) in zip(shape, pads, strict=True)]
            inputs = [x, net._const_i32("paddings", pads)]
            if kind == "PADV2":
                inputs.append(net._tensor("value", (1,), "INT8", net.quants[x], np.array([5], dtype=np.int8)))
            self._emit(kind, inputs, self._out(out_shape))
        elif kind == "TRANSPOSE":
            perm = [0, 2, 1, 3]
            self._emit(kind, [x, net._const_i32("perm", perm)], self._out([shape[p] for p in perm]))
        elif kind == "CONCATENATION":  # grows C by one: x and the (1, H, W, 1) side input
            if self.side is None:
                self.side = net.input((*shape[:3], 1), "INT8", net.quants[x])
            self._emit(kind, [x, self.side], self._out([*shape[:3], shape[3] + 1]),
                       {"axis": 3, "fusedActivationFunction": 0})
        elif kind == "STRIDED_SLICE":  # every other column (a width of 1 stays 1)
            begin, end, strides = [0, 0, 0, 0], shape, [1, 1, 2, 1]
            out_shape = [shape[0], shape[1], (shape[2] + 1) // 2, shape[3]]
            inputs = [x, net._const_i32("begin", begin), net._const_i32("end", end), net._const_i32("strides", strides)]
            self._emit(kind, inputs, self._out(out_shape))
        elif kind == "EXPAND_DIMS":
            self._emit(kind, [x, net._const_i32("axis", [0])], self._out([1, *shape]))
        elif kind == "SQUEEZE":
            self._emit(kind, [x], self._out(shape[1:]), {"squeezeDims": [0]})
        elif kind in ("SUM", "MEAN", "REDUCE_MAX", "REDUCE_MIN"):  # over H and W, keeping them
            quant = q(0.5, 0) if kind == "SUM" else None
            self._emit(kind, [x, net._const_i32("axes", [1, 2])], self._out([shape[0], 1, 1, shape[3]], quant),
                       {"keepDims": True})
        elif kind == "MAX_POOL_2D":  # 2x2, SAME, stride 1: the same shape
            self._emit(kind, [x], self._out(shape), {"padding": 0, "strideH": 1, "strideW": 1, "filterHeight": 2,
                                                     "filterWidth": 2, "fusedActivationFunction": 0})
        else:
            raise ValueError(f"no chain step for {kind}")

    def finish(self) -> bytes:
        return self.net.finish([self.x])


# SQUEEZE undoes EXPAND_DIMS: their chains alternate the two
STEPS = {"SQUEEZE": ("EXPAND_DIMS", "SQUEEZE"), "EXPAND_DIMS": ("EXPAND_DIMS", "SQUEEZE")}


def chain(kind: str, n: int = 16) -> bytes:
    """`kind` n times in a row (SQUEEZE and EXPAND_DIMS alternate, n of each)."""
    c = Chain(f"arena predictor test: {n} x {kind}")
    for _ in range(n):
        for step in STEPS.get(kind, (kind,)):
            c.apply(step)
    return c.finish()


# every kind once, in an order whose shapes work
EVERY_KIND = ("PAD", "PADV2", "MUL", "SUB", "RELU", "RELU6", "HARD_SWISH", "TANH", "TRANSPOSE", "CONCATENATION",
              "STRIDED_SLICE", "EXPAND_DIMS", "SQUEEZE", "MAX_POOL_2D", "LOGISTIC", "SUM", "MEAN", "REDUCE_MAX",
              "REDUCE_MIN")


def every_kind() -> bytes:
    c = Chain("arena predictor test: every kind", shape=(1, 8, 8, 4))
    for kind in EVERY_KIND:
        c.apply(kind)
    return c.finish()
