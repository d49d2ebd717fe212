"""The AOT backend folds a PAD into the convolution that reads it, bit-exact with TFLM.

A PAD/PADV2 of H and W with the zero point, read only by a CONV_2D or DEPTHWISE_CONV_2D, runs no
kernel: the convolution reads the unpadded input with the padding added to its own top/left
padding (`mncompile.aot.lower.find_folds`), and the padded tensor is never planned. Each case
builds a small int8 model from the one-op writers (tests/tflite_writer.py,
tests/tflite_writer_movement.py), chained by `Net`; checks the lowering and the arena show the fold
(or, for the cases that must not fold, show the PAD kernel); compiles the generated model.c for the
host against the kernel library of tests/test_kernels.py (built portable and with the DSP paths
emulated: its `lib` fixture) and asserts its outputs are identical to the TFLM host interpreter's
(its `tflm` fixture) on random inputs.
"""

# ruff: noqa: F811  (the fixtures lib and tflm, imported from test_kernels, are parameters here)
from __future__ import annotations

import ctypes
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tflite_writer as writer
import tflite_writer_movement as wm
from conftest import verified
from test_kernels import CFLAGS, KERNELS, lib, tflm  # noqa: F401  (lib and tflm: fixtures)

from mncompile.aot.codegen import generate
from mncompile.aot.lower import Folds, find_folds
from mncompile.aot.memory import plan_aot
from mncompile.plan.lifetimes import align_up, lifetimes, lower_bound

# ---------------------------------------------------------------------------------------------
# multi-op models from one-op writer models


class Net:
    """A model made of one-op writer models: `add` appends the operator of a one-op model, its
    run-time inputs fed by tensors of this net (None: a new graph input)."""

    def __init__(self):
        from mncompile.graph.reader import schema

        self.s = schema()
        self.tensors, self.buffers, self.codes, self.ops, self.inputs = [], [self.s.BufferT()], [], [], []

    def add(self, model: bytes, *feeds: int | None) -> int:
        """The op of `model` (one op, output 0), its graph inputs in order fed by `feeds`; returns the
        net's tensor index of its output."""
        m = self.s.ModelT.InitFromPackedBuf(model, 0)
        g = m.subgraphs[0]
        assert len(g.operators) == 1 and len(feeds) == len(g.inputs)
        where: dict[int, int] = {}
        for i, feed in zip(g.inputs, feeds, strict=True):
            if feed is None:
                where[i] = self._tensor(m, g.tensors[i])
                self.inputs.append(where[i])
            else:
                where[i] = feed
        for i, t in enumerate(g.tensors):
            if i not in where:
                where[i] = self._tensor(m, t)
        op = g.operators[0]
        code = m.operatorCodes[op.opcodeIndex]
        key = (code.builtinCode, code.version)
        if key not in [(c.builtinCode, c.version) for c in self.codes]:
            self.codes.append(code)
        op.opcodeIndex = [(c.builtinCode, c.version) for c in self.codes].index(key)
        op.inputs = [where[i] if i >= 0 else -1 for i in op.inputs]
        op.outputs = [where[i] for i in op.outputs]
        self.ops.append(op)
        return op.outputs[0]

    def _tensor(self, m, t) -> int:
        if t.buffer:
            self.buffers.append(m.buffers[t.buffer])
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def finish(self, *outputs: int) -> bytes:
        import flatbuffers

        s = self.s
        g = s.SubGraphT()
        g.tensors, g.operators, g.inputs, g.outputs = self.tensors, self.ops, self.inputs, list(outputs)
        g.name = b"main"
        m = s.ModelT()
        m.version, m.description, m.operatorCodes, m.subgraphs = 3, b"mncompile test net", self.codes, [g]
        m.buffers = self.buffers
        builder = flatbuffers.Builder(1 << 16)
        writer._pack_aligned_buffers(builder, m)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


Q = (0.05, 3)  # the PAD's input and output quantization (and the convolution's input)


def _conv(rng, x_shape, out_c, k, stride, padding, depthwise=False, multiplier=1, act="NONE"):
    """A CONV_2D (or DEPTHWISE_CONV_2D) one-op model reading `x_shape` in quantization Q, scaled so
    that its outputs spread over int8 (output quantization `conv_out_quant`)."""
    c = x_shape[3]
    taps = k[0] * k[1] * (1 if depthwise else c)
    o = c * multiplier if depthwise else out_c
    w_scales = [float(np.float32(0.01 * s)) for s in rng.uniform(0.5, 2.0, o)]
    out_scale = conv_out_quant(taps)[0]
    bias = rng.integers(-3000, 3000, o).astype(np.int32)
    if depthwise:
        w = rng.integers(-127, 128, (1, *k, o)).astype(np.int8)
        return writer.depthwise_conv2d(x_shape, Q, w, w_scales, bias, (out_scale, -7), stride, padding,
                                       depth_multiplier=multiplier, activation=act)
    w = rng.integers(-127, 128, (o, *k, c)).astype(np.int8)
    return writer.conv2d(x_shape, Q, w, w_scales, bias, (out_scale, -7), stride, padding, activation=act)


def conv_out_quant(taps: int) -> tuple[float, int]:
    return float(np.float32(Q[0] * 0.01 * math.sqrt(taps) * 0.58 * 127 * 128 / 50)), -7


def _padded(shape, pads):
    return tuple(d + a + b for d, (a, b) in zip(shape, pads, strict=True))


def pad_then_conv(shape, pads, *, k=(3, 3), stride=(2, 2), padding="VALID", out_c=8, depthwise=False,
                  multiplier=1, act="NONE", pad_value=None, seed=0) -> bytes:
    """PAD (PADV2 with `pad_value`) of `shape` with `pads`, then one convolution."""
    rng = np.random.default_rng(seed)
    net = Net()
    pad = writer.pad(shape, Q, pads) if pad_value is None else wm.pad_v2(shape, Q, pads, pad_value)
    y = net.add(pad, None)
    out = net.add(_conv(rng, _padded(shape, pads), out_c, k, stride, padding, depthwise, multiplier, act), y)
    return net.finish(out)


def hw(top_bottom, left_right):
    return [(0, 0), top_bottom, left_right, (0, 0)]


# ---------------------------------------------------------------------------------------------
# the generated C on the host, against TFLM


def _host_model(lib, program, work: Path):
    """model.c compiled for the host (gcc -pedantic -Werror) and linked against the kernel library."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "model.c").write_text(program.model_c)
    (work / "model.h").write_text(program.model_h)
    out = work / "model.so"
    cmd = ["gcc", *CFLAGS, "-O1", "-fPIC", "-shared", f"-I{KERNELS}", f"-I{work}", str(work / "model.c"),
           lib._name, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    so = ctypes.CDLL(str(out))
    so.model_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    so.model_invoke.restype = ctypes.c_int
    return so


def assert_matches_tflm(lib, tflm, model: bytes, work: Path, inplace: str = "auto", vectors: int = 3):
    program = generate(verified(model), inplace=inplace)
    so = _host_model(lib, program, work)
    graph = verified(model).graph
    shape = graph.tensors[graph.inputs[0]].shape
    rng = np.random.default_rng(17)
    for v in range(vectors):
        x = rng.integers(-128, 128, shape).astype(np.int8)
        want = tflm.run(model, x, arena=1 << 20).reshape(-1)
        out = np.zeros(program.output_bytes, np.int8)
        assert so.model_invoke(x.ctypes.data, out.ctypes.data) == 0
        assert np.array_equal(out, want), f"vector {v}"
        assert len(np.unique(want)) > 8  # the outputs spread (not all one saturated value)
    return program


def _fields(program, node: int) -> dict:
    return dict(next(c for c in program.calls if c.node == node).fields)


# ---------------------------------------------------------------------------------------------
# folds


FOLDS = {
    # (model, in_h/in_w the kernel reads, its pad_top/pad_left: the PAD's top/left + the conv's own)
    "conv_bottom_right": (lambda: pad_then_conv((1, 8, 8, 3), hw((0, 1), (0, 1))), (8, 8), (0, 0)),
    "conv_top_left": (lambda: pad_then_conv((1, 8, 8, 3), hw((1, 0), (1, 0))), (8, 8), (1, 1)),
    "conv_one_each_side": (lambda: pad_then_conv((1, 7, 7, 5), hw((1, 1), (1, 1)), act="RELU"), (7, 7), (1, 1)),
    # padding beyond the kernel: whole windows outside the input (the bias alone), on a SAME conv
    "conv_same_wide": (lambda: pad_then_conv((1, 6, 5, 4), hw((4, 0), (0, 5)), stride=(1, 1), padding="SAME"),
                       (6, 5), (5, 1)),
    # 1x1, stride 1: the pointwise fast path must not take a padded input
    "conv_1x1": (lambda: pad_then_conv((1, 5, 6, 8), hw((0, 1), (1, 0)), k=(1, 1), stride=(1, 1)), (5, 6), (0, 1)),
    "conv_1x1_no_padding": (lambda: pad_then_conv((1, 5, 6, 8), hw((0, 0), (0, 0)), k=(1, 1), stride=(1, 1)),
                            (5, 6), (0, 0)),
    "padv2_zero_point": (lambda: pad_then_conv((1, 8, 8, 3), hw((1, 1), (0, 1)), pad_value=Q[1]), (8, 8), (1, 0)),
    "depthwise_bottom_right": (lambda: pad_then_conv((1, 8, 8, 8), hw((0, 1), (0, 1)), depthwise=True),
                               (8, 8), (0, 0)),
    "depthwise_one_each_side": (lambda: pad_then_conv((1, 9, 7, 6), hw((1, 1), (1, 1)), depthwise=True,
                                                      act="RELU"), (9, 7), (1, 1)),
    "depthwise_multiplier_2": (lambda: pad_then_conv((1, 7, 7, 3), hw((2, 1), (1, 2)), k=(5, 5), depthwise=True,
                                                     multiplier=2), (7, 7), (2, 1)),
}


@pytest.mark.parametrize("name", sorted(FOLDS))
def test_pad_folds_into_the_convolution_and_matches_tflm(name, lib, tflm, tmp_path):
    make, (in_h, in_w), (top, left) = FOLDS[name]
    model = make()
    graph = verified(model).graph
    pad, conv = graph.ops
    program = assert_matches_tflm(lib, tflm, model, tmp_path)
    # the lowering: the PAD runs nothing, the convolution reads the PAD's input with more padding
    assert program.memory.folded_pads == (0,)
    assert [(f["pad"], f["into"]) for f in program.to_json()["folded_pads"]] == [(0, 1)]
    assert program.layers[0].kernel is None and program.layers[1].kernel is not None
    assert "mn_pad" not in program.model_c
    shape = re.escape(str(list(graph.tensors[pad.inputs[0]].shape)))
    assert re.search(rf"/\* node 0: {pad.kind} \w+ {shape} -> .*: folded into node 1 \({conv.kind}\), "
                     r"which reads its input, nothing to run \*/", program.model_c)
    f = _fields(program, 1)
    assert (f["in_h"], f["in_w"]) == (in_h, in_w) == tuple(graph.tensors[pad.inputs[0]].shape[1:3])
    assert (f["out_h"], f["out_w"]) == tuple(graph.tensors[conv.outputs[0]].shape[1:3])
    assert (f["pad_top"], f["pad_left"]) == (top, left)
    assert next(c for c in program.calls if c.node == 1).args[0].tensor == pad.inputs[0]
    # the arena: the padded tensor is not planned; the PAD's input lives until the convolution
    # (which may run in place over it, plus one input plane of scratch)
    assert pad.outputs[0] not in dict(program.memory.tensor_offsets)
    x, y = (align_up(graph.tensors[t].nbytes) for t in (pad.inputs[0], conv.outputs[0]))
    if program.memory.inplace:
        assert program.arena_bytes == max(x, y) + align_up(in_h * in_w)
    else:
        assert program.arena_bytes == x + y


def test_folded_depthwise_runs_in_place_over_the_pads_input(lib, tflm, tmp_path):
    """inplace="all": the folded depthwise writes its output over the PAD's input (one input plane of
    scratch), still identical to TFLM."""
    model = pad_then_conv((1, 9, 9, 8), hw((1, 1), (1, 1)), depthwise=True)
    graph = verified(model).graph
    program = assert_matches_tflm(lib, tflm, model, tmp_path, inplace="all")
    assert program.memory.inplace == (1,) and program.memory.folded_pads == (0,)
    m = program.memory
    assert m.offset(graph.ops[0].inputs[0]) == m.offset(graph.ops[1].outputs[0])
    assert m.scratch == ((1, m.scratch[0][1], 9 * 9),)  # one plane of the unpadded input
    assert program.arena_bytes == align_up(9 * 9 * 8) + align_up(9 * 9)


def test_mcunet_shaped_pad_no_longer_sets_the_peak(lib, tflm, tmp_path):
    """The MCUNet layer the issue measured: PAD 76,800 B -> 84,672 B before a VALID stride-2
    convolution. TFLM (and the AOT plan without the fold) holds the PAD's input and output at once;
    folded, the peak is the PAD's input and the convolution's output."""
    model = pad_then_conv((1, 80, 80, 12), hw((2, 2), (2, 2)), k=(5, 5), out_c=16)
    graph = verified(model).graph
    x, padded, y = (graph.tensors[t].nbytes for t in (graph.ops[0].inputs[0], graph.ops[0].outputs[0],
                                                      graph.ops[1].outputs[0]))
    assert (x, padded, y) == (76_800, 84_672, 40 * 40 * 16)
    assert lower_bound(lifetimes(graph)) == x + padded == 161_472  # the layer-wise lower bound TFLM's plan has
    unfolded = plan_aot(graph, folds=Folds())
    assert unfolded.arena_bytes == 161_472
    program = assert_matches_tflm(lib, tflm, model, tmp_path, vectors=2)
    assert program.arena_bytes == program.memory.lower_bound == x + y == 102_400
    doc = program.memory.to_json()
    assert doc["folded_pad_ops"] == [0] and doc["arena_bytes"] == 102_400


# ---------------------------------------------------------------------------------------------
# what must not fold


def _two_readers() -> bytes:
    """PAD read by a CONV_2D and a DEPTHWISE_CONV_2D, whose outputs an ADD sums."""
    rng = np.random.default_rng(3)
    shape, pads = (1, 7, 7, 4), hw((1, 1), (1, 1))
    net = Net()
    p = net.add(writer.pad(shape, Q, pads), None)
    a = net.add(_conv(rng, _padded(shape, pads), 4, (3, 3), (1, 1), "VALID"), p)
    b = net.add(_conv(rng, _padded(shape, pads), 4, (3, 3), (1, 1), "VALID", depthwise=True), p)
    qa, qb = conv_out_quant(3 * 3 * 4), conv_out_quant(3 * 3)
    return net.finish(net.add(writer.add((1, 7, 7, 4), qa, (1, 7, 7, 4), qb, (qa[0] * 2, 5)), a, b))


def _pad_then(pad: bytes, shape, pads, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    net = Net()
    y = net.add(pad, None)
    return net.finish(net.add(_conv(rng, _padded(shape, pads), 8, (3, 3), (2, 2), "VALID"), y))


NO_FOLDS = {
    "read_by_two_ops": _two_readers,
    "padv2_other_value": lambda: pad_then_conv((1, 8, 8, 3), hw((1, 1), (1, 1)), pad_value=Q[1] + 1),
    "pads_channels": lambda: _pad_then(writer.pad((1, 8, 8, 3), Q, [(0, 0), (1, 1), (1, 1), (0, 1)]),
                                       (1, 8, 8, 3), [(0, 0), (1, 1), (1, 1), (0, 1)]),
    "quantization_changes": lambda: _pad_then(wm.pad_v2((1, 8, 8, 3), (0.1, 3), hw((1, 1), (1, 1)), Q[1],
                                                        out_quant=Q), (1, 8, 8, 3), hw((1, 1), (1, 1))),
}


@pytest.mark.parametrize("name", sorted(NO_FOLDS))
def test_pads_that_must_not_fold_still_run_and_match_tflm(name, lib, tflm, tmp_path):
    model = NO_FOLDS[name]()
    graph = verified(model).graph
    assert find_folds(graph) == Folds()
    program = assert_matches_tflm(lib, tflm, model, tmp_path)
    assert program.memory.folded_pads == () and program.to_json()["folded_pads"] == []
    assert "mn_pad_s8(&L0" in program.model_c
    assert graph.ops[0].outputs[0] in dict(program.memory.tensor_offsets)


def test_pad_as_graph_output_does_not_fold():
    """A PAD whose output is a graph output is not folded, even when a convolution reads it too."""
    rng = np.random.default_rng(0)
    shape, pads = (1, 8, 8, 3), hw((1, 1), (1, 1))
    net = Net()
    y = net.add(writer.pad(shape, Q, pads), None)
    out = net.add(_conv(rng, _padded(shape, pads), 8, (3, 3), (2, 2), "VALID"), y)
    assert find_folds(verified(net.finish(out, y)).graph) == Folds()
    assert find_folds(verified(net.finish(out)).graph).of_pad(0).conv == 1  # the same net, one output
    alone = writer.pad(shape, Q, pads)
    assert find_folds(verified(alone).graph) == Folds() and "mn_pad_s8" in generate(verified(alone)).model_c
