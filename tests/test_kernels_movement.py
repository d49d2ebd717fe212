"""The data-movement kernels of firmware/kernels (TRANSPOSE, CONCATENATION, STRIDED_SLICE, PAD/PADV2 of
rank 5) and the view checks of SQUEEZE / EXPAND_DIMS are bit-exact with TFLM.

As in tests/test_kernels.py (whose fixtures and helpers this reuses): each case builds a one-op int8
model (tests/tflite_writer_movement.py), runs it on the real TFLM host interpreter, runs the C kernel
(host library built portable and DSP-emulated) with parameters from `mncompile.graph.ops.quantmath_movement`,
and asserts the outputs are identical. Every kernel runs twice per case: with the folded parameters a
code generator emits, and with the model's own dimensions (``fold=False``), so that the general paths
(strided gathers, negative steps, five live dimensions) meet TFLM too. TFLM refuses 5-D
STRIDED_SLICE, so 5-D slices are checked against NumPy's indexing (the same semantics) instead.
"""

# ruff: noqa: F811  (the fixtures lib and tflm, imported from test_kernels, are parameters here)
from __future__ import annotations

import ctypes
import dataclasses
import shutil
import subprocess

import numpy as np
import pytest
import tflite_writer as writer
import tflite_writer_movement as wm
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_kernels import (  # noqa: F401  (lib and tflm: fixtures, registered by importing them)
    ARM_CPUS,
    CFLAGS,
    HARNESS,
    I32,
    KERNELS,
    P8,
    QEMU_BOARDS,
    SETTINGS,
    CCases,
    PadParams,
    int8_array,
    kernel_sources,
    lib,
    p8,
    quant_ab,
    tflm,
)

from mncompile.graph.ops import quantmath_movement as qv
from mncompile.graph.ops.quantmath import QuantMathError

MOVEMENT_SOURCES = ("mn_transpose.c", "mn_concat.c", "mn_slice.c", "mn_pad5.c")

# ---------------------------------------------------------------------------------------------
# ctypes mirrors of the structs, the kernels' signatures


class TransposeParams(ctypes.Structure):
    _fields_ = [("in_dims", I32 * 5), ("perm", I32 * 5)]


class ConcatParams(ctypes.Structure):
    _fields_ = [("outer", I32), ("size", I32), ("out_stride", I32), ("out_offset", I32)]


class StridedSliceParams(ctypes.Structure):
    _fields_ = [("in_dims", I32 * 5), ("start", I32 * 5), ("stop", I32 * 5), ("step", I32 * 5)]


class Pad5Params(ctypes.Structure):
    _fields_ = [("in_dims", I32 * 5), ("pad_before", I32 * 5), ("pad_after", I32 * 5), ("pad_value", I32)]


STRUCTS = {"mn_transpose_params": (TransposeParams, qv.TransposeParams),
           "mn_concat_params": (ConcatParams, qv.ConcatParams),
           "mn_strided_slice_params": (StridedSliceParams, qv.StridedSliceParams),
           "mn_pad5_params": (Pad5Params, qv.Pad5Params), "mn_pad_params": (PadParams, qv.PadParams)}
SIGNATURES = {"mn_transpose_s8": TransposeParams, "mn_concat_s8": ConcatParams,
              "mn_strided_slice_s8": StridedSliceParams, "mn_pad5_s8": Pad5Params}
CTYPES = {py: c for c, py in STRUCTS.values()}


@pytest.fixture(scope="module")
def mlib(lib):
    """The host kernel library (both builds) with the movement kernels' argtypes set."""
    for name, cls in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.POINTER(cls), P8, P8]
        fn.restype = ctypes.c_int
    return lib


def cstruct(p):
    """The ctypes struct of a quantmath_movement dataclass (field for field)."""
    cls = CTYPES[type(p)]
    values = [kind(*value) if isinstance(value, tuple) else value
              for (_, kind), value in zip(cls._fields_, dataclasses.astuple(p), strict=True)]
    return cls(*values)


def run_kernel(mlib, fn: str, p, x: np.ndarray, shape) -> np.ndarray:
    """The kernel's output, written into the middle of a buffer whose guard bytes must stay put."""
    size = int(np.prod(shape, dtype=np.int64))
    guard = np.full(size + 32, 77, dtype=np.int8)
    out = guard[16:16 + size]
    out[:] = 99
    assert getattr(mlib, fn)(ctypes.byref(cstruct(p)), p8(np.ascontiguousarray(x)), p8(out)) == 0
    assert (guard[:16] == 77).all() and (guard[16 + size:] == 77).all(), "wrote outside its output"
    return out.reshape(shape).copy()


# ---------------------------------------------------------------------------------------------
# TRANSPOSE

MODEL_TRANSPOSES = [(0, 3, 1, 2), (0, 2, 3, 1), (0, 2, 1, 3), (3, 1, 2, 0), (0, 1, 3, 2)]


@st.composite
def transpose_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.integers(0, 2)) == 0:  # NHWC <-> NCHW and friends, big enough for the 4x4 blocks
        perm = draw(st.sampled_from(MODEL_TRANSPOSES))
        shape = (draw(st.sampled_from([1, 1, 2])), *(draw(st.integers(1, 19)) for _ in range(3)))
    else:
        rank = draw(st.integers(1, 5))
        shape = tuple(draw(st.lists(st.sampled_from([1, 1, 2, 3, 4, 5, 6, 8, 9]), min_size=rank, max_size=rank)))
        perm = tuple(draw(st.permutations(range(rank))))
    return {"shape": shape, "perm": perm, "q": draw(quant_ab()), "x": int8_array(rng, shape)}


@SETTINGS
@given(case=transpose_cases())
def test_transpose_matches_tflm(mlib, tflm, case):
    shape, perm = case["shape"], case["perm"]
    expected = tflm.run(wm.transpose(shape, case["q"], perm), case["x"])
    assert expected.shape == tuple(shape[p] for p in perm)
    for fold in (True, False):
        p = qv.transpose_params(shape, perm, expected.shape, fold=fold)
        np.testing.assert_array_equal(run_kernel(mlib, "mn_transpose_s8", p, case["x"], expected.shape), expected)


@pytest.mark.parametrize("shape, perm", [
    ((2, 3, 4), (0, 1, 2)),  # rows contiguous and the plane contiguous: one memcpy per plane
    ((4, 2, 2), (1, 0, 2)),  # rows contiguous, the plane not (st3 == od3 != od4)
    ((3, 2, 5), (1, 0, 2)),
    ((5, 9, 7), (0, 2, 1)),  # 4x4 blocks with 1- and 3-byte edges in both directions
    ((1, 8, 4, 12), (0, 3, 1, 2)),  # unfolded: 4x4 blocks, a 4x4 block row per plane
    ((2, 3, 4, 5, 6), (4, 3, 2, 1, 0)),  # strided gathers, unrolled by 4 with remainders
    ((3, 1, 7, 2, 5), (2, 0, 4, 1, 3)),
])
def test_transpose_paths(mlib, tflm, shape, perm):
    x = int8_array(np.random.default_rng(len(shape) * 100 + sum(shape)), shape)
    expected = tflm.run(wm.transpose(shape, (0.1, 0), perm), x)
    for fold in (True, False):
        p = qv.transpose_params(shape, perm, fold=fold)
        np.testing.assert_array_equal(run_kernel(mlib, "mn_transpose_s8", p, x, expected.shape), expected)


def test_transpose_folds_to_the_fewest_dimensions():
    # NHWC -> NCHW is a batch of 2-D transposes [H*W][C] -> [C][H*W]
    assert qv.transpose_params((2, 5, 6, 8), (0, 3, 1, 2)) == qv.TransposeParams((1, 1, 2, 30, 8), (0, 1, 2, 4, 3))
    assert qv.transpose_params((1, 5, 6, 8), (0, 2, 3, 1)) == qv.TransposeParams((1, 1, 1, 5, 48), (0, 1, 2, 4, 3))
    # size-1 dimensions go; an identity is one contiguous copy
    assert qv.transpose_params((1, 7, 1, 3), (2, 0, 1, 3)) == qv.TransposeParams((1, 1, 1, 1, 21), (0, 1, 2, 3, 4))
    assert qv.transpose_params((1, 1), (1, 0)) == qv.TransposeParams((1, 1, 1, 1, 1), (0, 1, 2, 3, 4))
    assert qv.transpose_params((2, 3, 4, 5, 6), (4, 3, 2, 1, 0)) == qv.TransposeParams((2, 3, 4, 5, 6),
                                                                                       (4, 3, 2, 1, 0))
    assert qv.transpose_params((2, 3, 4), (1, 0, 2), fold=False) == qv.TransposeParams((1, 1, 2, 3, 4),
                                                                                      (0, 1, 3, 2, 4))


# ---------------------------------------------------------------------------------------------
# CONCATENATION


@st.composite
def concat_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(1, 5))
    base = draw(st.lists(st.sampled_from([1, 1, 2, 3, 4, 7]), min_size=rank, max_size=rank))
    axis = draw(st.integers(0, rank - 1))
    n = draw(st.integers(2, qv.CONCAT_MAX_INPUTS))
    shapes = []
    for _ in range(n):
        s = list(base)
        s[axis] = draw(st.integers(1, 6))
        shapes.append(tuple(s))
    written_axis = axis - rank if draw(st.booleans()) else axis
    return {"shapes": shapes, "axis": written_axis, "q": draw(quant_ab()),
            "xs": [int8_array(rng, s) for s in shapes], "order": draw(st.permutations(range(n)))}


@SETTINGS
@given(case=concat_cases())
def test_concatenation_matches_tflm(mlib, tflm, case):
    q = case["q"]
    expected = tflm.run(wm.concatenation(case["shapes"], q, case["axis"]), *case["xs"])
    ps = qv.concat_params(case["shapes"], case["axis"], [q] * len(case["shapes"]), q, expected.shape)
    guard = np.full(expected.size + 32, 77, dtype=np.int8)
    out = guard[16:16 + expected.size]
    out[:] = 99
    for k in case["order"]:  # one call per input, in any order
        assert mlib.mn_concat_s8(ctypes.byref(cstruct(ps[k])), p8(case["xs"][k]), p8(out)) == 0
    assert (guard[:16] == 77).all() and (guard[16 + expected.size:] == 77).all()
    np.testing.assert_array_equal(out.reshape(expected.shape), expected)


def test_concatenation_in_place_along_the_outermost_axis(mlib):
    """outer == 1: each input is one block of the output; a planner may put it there and skip the copy."""
    a, b = np.arange(12, dtype=np.int8).reshape(2, 6), -np.arange(6, dtype=np.int8).reshape(1, 6)
    pa, pb = qv.concat_params([a.shape, b.shape], 0, [(0.1, 0)] * 2, (0.1, 0))
    assert (pa.outer, pb.outer, pb.out_offset) == (1, 1, 12)
    out = np.zeros(18, np.int8)
    out[12:] = b.ravel()
    assert mlib.mn_concat_s8(ctypes.byref(cstruct(pb)), p8(out[12:]), p8(out)) == 0  # already there
    assert mlib.mn_concat_s8(ctypes.byref(cstruct(pa)), p8(a), p8(out)) == 0
    np.testing.assert_array_equal(out, np.concatenate([a, b]).ravel())


# ---------------------------------------------------------------------------------------------
# STRIDED_SLICE


@st.composite
def slice_specs(draw, rank: int, shape):
    begin, end, strides = [], [], []
    bmask = emask = shrink = 0
    for d in range(rank):
        size = shape[d]
        stride = draw(st.sampled_from([1, 1, 1, 2, 3, -1, -1, -2, -3, 5]))
        if draw(st.integers(0, 5)) == 0 and stride > 0:  # shrink: an index TensorFlow accepts
            shrink |= 1 << d
            begin.append(draw(st.integers(-size, size - 1)))
            end.append(draw(st.integers(-8, 8)))  # ignored
        else:
            b, e = draw(st.integers(-size - 2, size + 2)), draw(st.integers(-size - 2, size + 2))
            if not range(*slice(b, e, stride).indices(size)):
                b, e = e, b  # mostly not empty (an empty output is refused by TFLM and by the Python)
            begin.append(b)
            end.append(e)
        strides.append(stride)
        bmask |= draw(st.sampled_from([0, 0, 0, 1])) << d  # on shrunk axes too (start 0 there)
        emask |= draw(st.sampled_from([0, 0, 0, 1])) << d  # ignored on shrunk axes
    return begin, end, strides, bmask, emask, shrink


@st.composite
def slice_cases(draw, max_rank: int = 4):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(1, max_rank))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 4, 5, 7, 9]), min_size=rank, max_size=rank)))
    begin, end, strides, bmask, emask, shrink = draw(slice_specs(rank, shape))
    tf_shape = wm.tf_strided_slice_shape(shape, begin, end, strides, bmask, emask, shrink)
    assume(0 not in tf_shape)
    # options TFLM ignores: ellipsis_mask, new_axis_mask, offset (the output shape stays TFLM's)
    ignored = draw(st.sampled_from([(0, 0, False)] * 5 + [(1 << draw(st.integers(0, rank - 1)), 0, False),
                                                          (0, 1 << draw(st.integers(0, rank - 1)), False),
                                                          (0, 0, True)]))
    return {"shape": shape, "begin": begin, "end": end, "strides": strides, "begin_mask": bmask, "end_mask": emask,
            "shrink_axis_mask": shrink, "ellipsis_mask": ignored[0], "new_axis_mask": ignored[1],
            "offset": ignored[2], "out_shape": tf_shape, "q": draw(quant_ab()), "x": int8_array(rng, shape)}


SLICE_OPTIONS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask", "offset")


def slice_params(case, **kw):
    return qv.strided_slice_params(case["shape"], case["begin"], case["end"], case["strides"],
                                   **{k: case[k] for k in SLICE_OPTIONS}, **kw)


@SETTINGS
@given(case=slice_cases())
def test_strided_slice_matches_tflm(mlib, tflm, case):
    model = wm.strided_slice(case["shape"], case["q"], case["begin"], case["end"], case["strides"],
                             **{k: case[k] for k in SLICE_OPTIONS}, out_shape=case["out_shape"])
    expected = tflm.run(model, case["x"])
    r = qv.strided_slice_resolve(case["shape"], case["begin"], case["end"], case["strides"],
                                 **{k: case[k] for k in SLICE_OPTIONS})
    assert r.out_shape == expected.shape
    for fold in (True, False):
        p = slice_params(case, out_shape=expected.shape, fold=fold)
        got = run_kernel(mlib, "mn_strided_slice_s8", p, case["x"], expected.shape)
        np.testing.assert_array_equal(got, expected)


@settings(SETTINGS, max_examples=60)
@given(case=slice_cases(max_rank=5))
def test_five_d_strided_slice_matches_numpy_indexing(mlib, case):
    """TFLM's micro kernel refuses rank 5 (kMaxDim 4); its reference_ops::StridedSlice is 5-D and
    resolves indices as NumPy's basic indexing does (for in-range shrink indices; a begin_mask bit on
    a shrunk axis makes TFLM take index 0, see test_strided_slice_tflm_quirks), the reference here."""
    x = case["x"]
    index = tuple((0 if case["begin_mask"] >> d & 1 else int(case["begin"][d]))
                  if case["shrink_axis_mask"] >> d & 1 else
                  slice(None if case["begin_mask"] >> d & 1 else case["begin"][d],
                        None if case["end_mask"] >> d & 1 else case["end"][d], case["strides"][d])
                  for d in range(x.ndim))
    expected = x[index]
    for fold in (True, False):
        p = slice_params(case, out_shape=expected.shape, fold=fold, max_rank=5)
        np.testing.assert_array_equal(run_kernel(mlib, "mn_strided_slice_s8", p, x, expected.shape), expected)


def test_strided_slice_tflm_quirks(mlib, tflm):
    x = np.arange(1, 25, dtype=np.int8).reshape(1, 2, 3, 4)
    q = (0.1, 3)
    # a shrunk axis whose begin is below -dim is clamped to 0 (TensorFlow would refuse it)
    model = wm.strided_slice(x.shape, q, [0, -9, 0, 0], [1, 2, 3, 4], [1, 1, 1, 1], shrink_axis_mask=2,
                             out_shape=(1, 3, 4))
    expected = tflm.run(model, x)
    np.testing.assert_array_equal(expected, x[:, 0])
    p = qv.strided_slice_params(x.shape, [0, -9, 0, 0], [1, 2, 3, 4], [1, 1, 1, 1], shrink_axis_mask=2,
                                out_shape=(1, 3, 4))
    np.testing.assert_array_equal(run_kernel(mlib, "mn_strided_slice_s8", p, x, (1, 3, 4)), expected)
    # a begin_mask bit on a shrunk axis: TFLM takes index 0, not begin (TensorFlow takes begin)
    model = wm.strided_slice(x.shape, q, [0, 1, 2, 0], [1, 2, 3, 4], [1, 1, 1, 1], begin_mask=4,
                             shrink_axis_mask=4)
    expected = tflm.run(model, x)
    np.testing.assert_array_equal(expected, x[:, 1:2, 0])
    p = qv.strided_slice_params(x.shape, [0, 1, 2, 0], [1, 2, 3, 4], [1, 1, 1, 1], begin_mask=4, shrink_axis_mask=4,
                                out_shape=(1, 1, 4))
    np.testing.assert_array_equal(run_kernel(mlib, "mn_strided_slice_s8", p, x, (1, 1, 4)), expected)
    # offset, ellipsis_mask and new_axis_mask are ignored
    for opts, shape in (({"offset": True}, (1, 2, 3, 1)), ({"ellipsis_mask": 2}, (1, 2, 3, 1)),
                        ({"new_axis_mask": 1}, (1, 2, 3, 1))):
        model = wm.strided_slice(x.shape, q, [0, 0, 0, 1], [1, 2, 3, 2], [1, 1, 1, 1], out_shape=shape, **opts)
        expected = tflm.run(model, x)
        np.testing.assert_array_equal(expected, x[:, :, :, 1:2])
        r = qv.strided_slice_resolve(x.shape, [0, 0, 0, 1], [1, 2, 3, 2], [1, 1, 1, 1], **opts)
        assert r.out_shape == shape and r.ignored == tuple(opts)
    with pytest.raises(AssertionError, match="TFLM rejected"):  # TensorFlow's shape for offset: refused
        tflm.run(wm.strided_slice(x.shape, q, [0, 0, 0, 1], [1, 2, 3, 2], [1, 1, 1, 1], offset=True,
                                  out_shape=(1, 2, 3, 2)), x)
    with pytest.raises(QuantMathError):
        qv.strided_slice_params(x.shape, [0, 0, 0, 1], [1, 2, 3, 2], [1, 1, 1, 1], offset=True, out_shape=(1, 2, 3, 2))
    # TFLM accepts these and leaves its output unwritten; the Python refuses them
    for begin, strides in (([0, 1, 0, 0], [1, -1, 1, 1]), ([0, 2, 0, 0], [1, 1, 1, 1])):
        with pytest.raises(QuantMathError, match="writes nothing"):
            qv.strided_slice_resolve(x.shape, begin, [1, 2, 3, 4], strides, shrink_axis_mask=2)


def test_strided_slice_folds_into_long_runs():
    # rows of an NHWC image: one contiguous run
    p = qv.strided_slice_params((1, 8, 5, 3), [0, 2, 0, 0], [1, 6, 5, 3], [1, 1, 1, 1])
    assert p == qv.StridedSliceParams((1, 1, 1, 1, 120), (0, 0, 0, 0, 30), (1, 1, 1, 1, 90), (1, 1, 1, 1, 1))
    # channels 4..8 of every pixel: runs of 4 bytes, the pixels merged
    p = qv.strided_slice_params((1, 6, 5, 16), [0, 0, 0, 4], [1, 6, 5, 8], [1, 1, 1, 1])
    assert p == qv.StridedSliceParams((1, 1, 1, 30, 16), (0, 0, 0, 0, 4), (1, 1, 1, 30, 8), (1, 1, 1, 1, 1))
    # a shrunk (fixed) index becomes an offset; a reversed dimension walked whole merges with a reversed one
    p = qv.strided_slice_params((3, 4, 5), [1, 0, 0], [2, 4, 5], [1, -1, -1], begin_mask=6, end_mask=6,
                                shrink_axis_mask=1)
    assert p == qv.StridedSliceParams((1, 1, 1, 1, 60), (0, 0, 0, 0, 39), (1, 1, 1, 1, 19), (1, 1, 1, 1, -1))


# ---------------------------------------------------------------------------------------------
# PAD and PADV2 (rank 1 to 5)


@st.composite
def pad_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    pads = [(draw(st.sampled_from([0, 0, 1, 2, 3])), draw(st.sampled_from([0, 0, 1, 2, 3]))) for _ in shape]
    value = draw(st.one_of(st.none(), st.integers(-128, 127)))  # None: PAD (the zero point), else PADV2
    return {"shape": shape, "pads": pads, "q": draw(quant_ab()), "in_q": draw(quant_ab()), "value": value,
            "x": int8_array(rng, shape)}


@SETTINGS
@given(case=pad_cases())
def test_pad_and_padv2_up_to_five_d_match_tflm(mlib, tflm, case):
    """The input quantization differs from the output's: TFLM copies the bytes regardless."""
    q, v = case["q"], case["value"]
    if v is None:
        model = writer.pad(case["shape"], q, case["pads"])  # input and output share q in this builder
    else:
        model = wm.pad_v2(case["shape"], case["in_q"], case["pads"], v, out_quant=q)
    expected = tflm.run(model, case["x"])
    for fold, dims in ((True, None), (False, 5)):
        p = qv.pad_params(case["shape"], case["pads"], *q, expected.shape, v, q if v is not None else None,
                          fold=fold, kernel_dims=dims)
        fn = "mn_pad_s8" if isinstance(p, qv.PadParams) else "mn_pad5_s8"
        if len(case["shape"]) <= 4 and fold:
            assert fn == "mn_pad_s8"
        np.testing.assert_array_equal(run_kernel(mlib, fn, p, case["x"], expected.shape), expected)


def test_pad_folds_unpadded_dimensions():
    # NHWC spatial padding: C merges into W (rows of W*C bytes), the batch of 1 goes
    p = qv.pad_params((1, 8, 8, 16), [(0, 0), (1, 1), (1, 1), (0, 0)], 0.1, -5)
    assert p == qv.PadParams((1, 1, 8, 128), (0, 0, 1, 16), (0, 0, 1, 16), -5)
    # 5-D with an unpadded dimension fits mn_pad_s8; padded everywhere needs mn_pad5_s8
    p = qv.pad_params((2, 3, 4, 5, 6), [(1, 0), (0, 0), (1, 1), (0, 2), (1, 1)], 0.1, 7, constant_value=-100)
    assert p == qv.PadParams((6, 4, 5, 6), (3, 1, 0, 1), (0, 1, 2, 1), -100)  # [2][3] -> [6], pads x3
    p = qv.pad_params((2, 3, 4, 5, 6), [(1, 0), (0, 1), (1, 1), (0, 2), (1, 1)], 0.1, 7)
    assert p == qv.Pad5Params((2, 3, 4, 5, 6), (1, 0, 1, 0, 1), (0, 1, 1, 2, 1), 7)


# ---------------------------------------------------------------------------------------------
# SQUEEZE and EXPAND_DIMS: views


@settings(SETTINGS, max_examples=60)
@given(shape=st.lists(st.sampled_from([1, 1, 2, 3]), min_size=1, max_size=6), data=st.data(),
       seed=st.integers(0, 2**32 - 1))
def test_squeeze_and_expand_dims_are_views_in_tflm(tflm, shape, data, seed):
    shape = tuple(shape)
    x = int8_array(np.random.default_rng(seed), shape)
    q = (0.05, 3)
    ones = [d for d in range(len(shape)) if shape[d] == 1]
    dims = data.draw(st.lists(st.sampled_from(ones), max_size=len(ones)) if ones else st.just([]))
    dims = [d - len(shape) if data.draw(st.booleans()) else d for d in dims]
    expected = tflm.run(wm.squeeze(shape, q, dims), x)
    assert qv.squeeze_view(shape, expected.shape, dims, q, q) == expected.shape
    np.testing.assert_array_equal(expected.ravel(), x.ravel())
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    expected = tflm.run(wm.expand_dims(shape, q, axis), x)
    assert qv.expand_dims_view(shape, expected.shape, axis, q, q) == expected.shape
    np.testing.assert_array_equal(expected.ravel(), x.ravel())


# ---------------------------------------------------------------------------------------------
# the Python Prepare refuses what TFLM refuses (and what TFLM would run wrongly)


def refused_by_tflm(tflm, model, *xs):
    with pytest.raises(AssertionError, match="TFLM rejected"):
        tflm.run(model, *xs)


def test_python_prepare_refuses_what_tflm_refuses(tflm):
    q = (0.1, 3)
    a, b = np.zeros((1, 2, 3), np.int8), np.zeros((1, 3, 3), np.int8)
    # CONCATENATION: int8 inputs must share the output's scale and zero point (no rescaling)
    for qs, out_q in (([q, (0.2, 3)], q), ([q, (0.1, 4)], q), ([q, q], (0.1, 4)),
                      ([q, (float(np.float32(0.1) * np.float32(1 + 2**-23)), 3)], q)):
        refused_by_tflm(tflm, wm.concatenation([a.shape, b.shape], qs, 1, out_quant=out_q), a, b)
        with pytest.raises(QuantMathError):
            qv.concat_params([a.shape, b.shape], 1, qs, out_q)
    refused_by_tflm(tflm, wm.concatenation([a.shape, b.shape], q, 1, activation="RELU"), a, b)
    with pytest.raises(QuantMathError):
        qv.concat_params([a.shape, b.shape], 1, [q, q], q, activation="RELU")
    xs = [np.zeros((1, 2), np.int8)] * 11
    refused_by_tflm(tflm, wm.concatenation([x.shape for x in xs], q, 0), *xs)
    with pytest.raises(QuantMathError):
        qv.concat_params([x.shape for x in xs], 0, [q] * 11, q)
    # TRANSPOSE: rank <= 5
    x6 = np.zeros((1, 2, 1, 2, 1, 2), np.int8)
    refused_by_tflm(tflm, wm.transpose(x6.shape, q, (5, 4, 3, 2, 1, 0)), x6)
    with pytest.raises(QuantMathError):
        qv.transpose_params(x6.shape, (5, 4, 3, 2, 1, 0))
    # STRIDED_SLICE: rank <= 4, the output shape TFLM computes, a complete begin/end/strides, no empty output
    x5 = np.zeros((2, 3, 1, 2, 2), np.int8)
    refused_by_tflm(tflm, wm.strided_slice(x5.shape, q, [0] * 5, list(x5.shape), [1] * 5), x5)
    with pytest.raises(QuantMathError):
        qv.strided_slice_params(x5.shape, [0] * 5, list(x5.shape), [1] * 5)
    x4 = np.zeros((1, 2, 3, 4), np.int8)
    for args, out_shape in ((([0, 0, 0, 0], [1, 2, 3, 4], [1, 1, 1, 2]), (1, 2, 3, 4)),
                            (([0, 1], [1, 2], [1, 1]), (1, 1, 3, 4)),
                            (([0, 1, 0, 0], [1, 1, 3, 4], [1, 1, 1, 1]), (1, 0, 3, 4)),
                            (([0, 1, 0, 0], [1, 2, 3, 4], [1, 1, 1, 1]), (1, 2, 3, 4))):
        refused_by_tflm(tflm, wm.strided_slice(x4.shape, q, *args, out_shape=out_shape), x4)
        with pytest.raises(QuantMathError):
            qv.strided_slice_params(x4.shape, *args, out_shape=out_shape)
    with pytest.raises(QuantMathError, match="non-zero"):
        qv.strided_slice_resolve(x4.shape, [0, 0, 0, 0], [1, 2, 3, 4], [1, 0, 1, 1])
    # PADV2: the pad value shares the output's quantization
    for vq in ((0.1, 4), (0.2, 3)):
        refused_by_tflm(tflm, wm.pad_v2(x4.shape, q, [(1, 0)] * 4, -7, value_quant=vq), x4)
        with pytest.raises(QuantMathError):
            qv.pad_params(x4.shape, [(1, 0)] * 4, *q, constant_value=-7, constant_quant=vq)
    # SQUEEZE of a dimension that is not 1, EXPAND_DIMS to the wrong shape
    refused_by_tflm(tflm, wm.squeeze(x4.shape, q, (1,)), x4)
    with pytest.raises(QuantMathError):
        qv.squeeze_view(x4.shape, (1, 3, 4), (1,))
    refused_by_tflm(tflm, wm.expand_dims((2, 3), q, 1, out_shape=(2, 3, 1)), np.zeros((2, 3), np.int8))
    with pytest.raises(QuantMathError):
        qv.expand_dims_view((2, 3), (2, 3, 1), 1)


def test_python_prepare_refuses_what_tflm_runs_wrongly(tflm):
    """TFLM accepts these models and writes garbage (or reads out of bounds): refused here."""
    q = (0.1, 3)
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    got = tflm.run(wm.transpose(x.shape, q, (0, 0), out_shape=(2, 2)), x)  # not a permutation
    assert got.shape == (2, 2)
    with pytest.raises(QuantMathError, match="not a permutation"):
        qv.transpose_params(x.shape, (0, 0))
    got = tflm.run(wm.transpose(x.shape, q, (1, 0), out_shape=(2, 3)), x)  # output shape unchecked
    assert not np.array_equal(got, x.T.reshape(2, 3))
    with pytest.raises(QuantMathError):
        qv.transpose_params(x.shape, (1, 0), (2, 3))
    a, b = np.ones((1, 2, 3), np.int8), np.ones((1, 2, 4), np.int8)
    tflm.run(wm.concatenation([a.shape, b.shape], q, 1, out_shape=(1, 4, 3)), a, b)  # shapes unchecked
    with pytest.raises(QuantMathError):
        qv.concat_params([a.shape, b.shape], 1, [q, q], q, (1, 4, 3))
    tflm.run(wm.concatenation([x.shape, x.shape], q, 3, out_shape=(2, 3)), x, x)  # axis unchecked
    with pytest.raises(QuantMathError, match="out of range"):
        qv.concat_params([x.shape, x.shape], 3, [q, q], q)
    tflm.run(writer.pad(x.shape, q, [(-1, 1), (0, 0)]), x)  # negative paddings
    with pytest.raises(QuantMathError, match="negative"):
        qv.pad_params(x.shape, [(-1, 1), (0, 0)], *q)
    # strict view checks: TFLM copies the bytes of a SQUEEZE whose quantization changes
    got = tflm.run(wm.squeeze((1, 2, 3), q, (), out_quant=(0.7, 1)), x.reshape(1, 2, 3))
    np.testing.assert_array_equal(got, x)
    with pytest.raises(QuantMathError):
        qv.squeeze_view((1, 2, 3), (2, 3), (), q, (0.7, 1))
    assert qv.squeeze_view((1, 2, 3), (2, 3), (), q, (0.7, 1), require_same_quant=False) == (2, 3)
    with pytest.raises(QuantMathError):
        qv.expand_dims_view((2, 3), (1, 2, 3), -5)


# ---------------------------------------------------------------------------------------------
# the library itself


def test_kernels_refuse_broken_preconditions(mlib):
    x = np.arange(24, dtype=np.int8)
    out = np.zeros(64, np.int8)

    def call(fn, p, src=x, dst=out):
        return getattr(mlib, fn)(ctypes.byref(p) if p is not None else None, p8(src) if src is not None else None,
                                 p8(dst) if dst is not None else None)

    good = cstruct(qv.transpose_params((2, 3, 4), (2, 0, 1), fold=False))
    assert call("mn_transpose_s8", good) == 0
    assert call("mn_transpose_s8", None) == -1 and call("mn_transpose_s8", good, None) == -1
    assert call("mn_transpose_s8", good, x, None) == -1
    for field, k, v in (("perm", 0, 1), ("perm", 4, 5), ("perm", 2, -1), ("in_dims", 3, 0)):
        bad = cstruct(qv.transpose_params((2, 3, 4), (2, 0, 1), fold=False))
        getattr(bad, field)[k] = v
        assert call("mn_transpose_s8", bad) == -1, (field, k, v)
    bad = TransposeParams((I32 * 5)(1 << 16, 1 << 16, 1, 1, 1), (I32 * 5)(0, 1, 2, 3, 4))
    assert call("mn_transpose_s8", bad) == -1

    assert call("mn_concat_s8", ConcatParams(2, 3, 8, 5)) == 0
    for p in (ConcatParams(0, 3, 8, 5), ConcatParams(2, -1, 8, 0), ConcatParams(2, 3, 8, 6),
              ConcatParams(2, 3, 8, -1), ConcatParams(2, 9, 8, 0), ConcatParams(1 << 16, 1, 1 << 16, 0)):
        assert call("mn_concat_s8", p) == -1, p
    assert call("mn_concat_s8", None) == -1 and call("mn_concat_s8", ConcatParams(1, 1, 1, 0), None) == -1

    def sl(dims, start, stop, step):
        return StridedSliceParams((I32 * 5)(*dims), (I32 * 5)(*start), (I32 * 5)(*stop), (I32 * 5)(*step))

    ones, zeros = (1, 1, 1, 1, 1), (0, 0, 0, 0, 0)
    assert call("mn_strided_slice_s8", sl((1, 1, 1, 4, 6), zeros, (1, 1, 1, 4, 6), ones)) == 0
    assert call("mn_strided_slice_s8", sl((1, 1, 1, 4, 6), (0, 0, 0, 3, 5), (1, 1, 1, -1, -1),
                                          (1, 1, 1, -1, -2))) == 0
    assert call("mn_strided_slice_s8", sl((1, 1, 1, 4, 6), (0, 0, 0, 9, 0), (1, 1, 1, 2, 6), ones)) == 0  # empty
    for p in (sl((1, 1, 1, 4, 6), zeros, (1, 1, 1, 4, 6), (1, 1, 1, 0, 1)),  # step 0
              sl((1, 1, 1, 4, 6), zeros, (1, 1, 1, 5, 6), ones),  # stop beyond the dimension
              sl((1, 1, 1, 4, 6), zeros, (1, 1, 1, -2, 6), (1, 1, 1, -1, 1)),  # stop below -1
              sl((1, 1, 1, 4, 6), (0, 0, 0, 4, 0), (1, 1, 1, 0, 6), (1, 1, 1, -1, 1)),  # start outside, not empty
              sl((1, 1, 1, 4, 6), (0, 0, 0, -1, 0), (1, 1, 1, 2, 6), ones),
              sl((1, 1, 1, 0, 6), zeros, (1, 1, 1, 0, 6), ones)):
        assert call("mn_strided_slice_s8", p) == -1
    assert call("mn_strided_slice_s8", sl((1, 1, 1, 4, 6), (0, 0, 0, 3, 5), (1, 1, 1, -1, -1),
                                          (1, 1, 1, -1, -2147483647 - 1))) == 0

    good = qv.pad_params((2, 3, 4), [(1, 0), (0, 1), (1, 1)], 0.1, 3, fold=False, kernel_dims=5)
    assert call("mn_pad5_s8", cstruct(good), x, np.zeros(200, np.int8)) == 0
    for field, v in (("pad_value", 128), ("pad_value", -129), ("in_dims", 0), ("pad_before", -1),
                     ("pad_after", 1 << 30)):
        bad = cstruct(good)
        if field == "pad_value":
            bad.pad_value = v
        else:
            getattr(bad, field)[2] = v
        assert call("mn_pad5_s8", bad, x, np.zeros(200, np.int8)) == -1, field
    assert call("mn_pad5_s8", None) == -1


def test_struct_layouts_match_the_header(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    names = sorted(STRUCTS)
    src = tmp_path / "sizes.c"
    cases = "".join(f"    if (k == {k}) {{\n        return sizeof({n});\n    }}\n" for k, n in enumerate(names))
    src.write_text('#include "mn_kernels.h"\nsize_t mn_mv_sizeof(int k);\nsize_t mn_mv_sizeof(int k)\n{\n'
                   + cases + "    return 0;\n}\n")
    so = tmp_path / "sizes.so"
    proc = subprocess.run(["gcc", *CFLAGS, "-fPIC", "-shared", "-I", str(KERNELS), str(src), "-o", str(so)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    fn = ctypes.CDLL(str(so)).mn_mv_sizeof
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_size_t
    for k, name in enumerate(names):
        c_cls, py_cls = STRUCTS[name]
        assert fn(k) == ctypes.sizeof(c_cls), name
        assert [f for f, _ in c_cls._fields_] == [f.name for f in dataclasses.fields(py_cls)], name


CPUS = {"cortex-m0": ["-mcpu=cortex-m0"], "cortex-m0plus": ["-mcpu=cortex-m0plus"], "cortex-m3": ["-mcpu=cortex-m3"],
        **ARM_CPUS}


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_movement_kernels_compile_warning_free_for_cortex_m(cpu, tmp_path):
    """Armv6-M (no unaligned access, no divide), Armv7-M and the four DSP cores, with -Wconversion;
    no 64-bit division or float helpers."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    objects = []
    for name in MOVEMENT_SOURCES:
        obj = tmp_path / f"{name}.o"
        cmd = [gcc, *CPUS[cpu], "-mthumb", *CFLAGS, "-Wconversion", "-Wsign-conversion", "-Wshadow", "-O2", "-I",
               str(KERNELS), "-c", str(KERNELS / name), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
        objects.append(str(obj))
    nm = shutil.which("arm-none-eabi-nm")
    if nm:
        undefined = subprocess.run([nm, "-u", *objects], capture_output=True, text=True).stdout
        assert "__aeabi_ldivmod" not in undefined and "__aeabi_f" not in undefined, undefined


def test_movement_kernels_compile_warning_free_on_the_host(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    for std in ("-std=c99", "-std=c11"):
        for name in MOVEMENT_SOURCES:
            cmd = ["gcc", *CFLAGS, std, "-O2", "-Wconversion", "-Wsign-conversion", "-Wshadow", "-I", str(KERNELS),
                   "-c", str(KERNELS / name), "-o", str(tmp_path / "k.o")]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"


# ---------------------------------------------------------------------------------------------
# on the target: Cortex-M4 (the word-wise 4x4 transpose blocks with real unaligned loads) under QEMU,
# against TFLM host outputs, parameters as static const structs


def target_cases(tflm) -> str:
    rng = np.random.default_rng(7171)
    c = CCases()
    q = (0.05, 2)
    for k, (shape, perm) in enumerate([((1, 7, 9, 13), (0, 3, 1, 2)), ((2, 5, 6, 11), (0, 2, 3, 1)),
                                       ((3, 4, 5, 2, 3), (4, 2, 0, 3, 1)), ((6, 5, 4), (0, 2, 1))]):
        x = int8_array(rng, shape)
        expected = tflm.run(wm.transpose(shape, q, perm), x)
        name = c.struct(cstruct(qv.transpose_params(shape, perm)), "mn_transpose_params")
        c.case(f"mn_transpose_s8 {k}", f"mn_transpose_s8(&{name}, {c.array(x)}, mn_buf)", expected)
    shapes = [(1, 5, 5, 3), (1, 5, 5, 8), (1, 5, 5, 1)]
    xs = [int8_array(rng, s) for s in shapes]
    expected = tflm.run(wm.concatenation(shapes, q, 3), *xs)
    calls = [f"mn_concat_s8(&{c.struct(cstruct(p), 'mn_concat_params')}, {c.array(x)}, mn_buf)"
             for p, x in zip(qv.concat_params(shapes, 3, [q] * 3, q), xs, strict=True)]
    c.case("mn_concat_s8", " | ".join(calls), expected)
    x = int8_array(rng, (1, 9, 8, 12))
    for k, (b, e, s) in enumerate([([0, 1, -1, 2], [1, 8, 0, 11], [1, 2, -3, 3]), ([0, 0, 0, 4], [1, 9, 8, 8],
                                                                                  [1, 1, 1, 1])]):
        expected = tflm.run(wm.strided_slice(x.shape, q, b, e, s), x)
        name = c.struct(cstruct(qv.strided_slice_params(x.shape, b, e, s)), "mn_strided_slice_params")
        c.case(f"mn_strided_slice_s8 {k}", f"mn_strided_slice_s8(&{name}, {c.array(x)}, mn_buf)", expected)
    x = int8_array(rng, (2, 3, 2, 3, 4))
    pads = [(1, 0), (0, 1), (1, 1), (0, 2), (1, 1)]
    expected = tflm.run(wm.pad_v2(x.shape, q, pads, -9), x)
    name = c.struct(cstruct(qv.pad_params(x.shape, pads, *q, constant_value=-9)), "mn_pad5_params")
    c.case("mn_pad5_s8", f"mn_pad5_s8(&{name}, {c.array(x)}, mn_buf)", expected)
    # timing (printed, not checked), 8 KiB each: NHWC -> NCHW of 1x16x16x32 in 4x4 blocks (folded to
    # [256][32] -> [32][256]) and by the strided gather (unfolded), a 3-D reversal (gather), a copy
    xs_ = (1, 16, 16, 32)
    xa = c.array(int8_array(rng, xs_))
    structs = [c.struct(cstruct(p), "mn_transpose_params") for p in (
        qv.transpose_params(xs_, (0, 3, 1, 2)), qv.transpose_params(xs_, (0, 3, 1, 2), fold=False),
        qv.transpose_params((16, 16, 32), (2, 1, 0)), qv.transpose_params(xs_, (0, 1, 2, 3)))]
    c.buffer = max(c.buffer, 16 * 16 * 32)
    bench = ["    (void)mn_scratch; /* no kernel here needs scratch */"]
    for label, name in zip(("transpose nhwc->nchw 16x16x32 blocks", "transpose nhwc->nchw 16x16x32 gather",
                            "transpose 16x16x32 (2,1,0) gather", "transpose identity 8 KiB (memcpy)"), structs,
                           strict=True):
        call = f"mn_transpose_s8(&{name}, {xa}, mn_buf)"
        bench += ["    t0 = mn_test_ticks();", f"    (void){call};",
                  f'    printf("bench {label}: %lu ticks\\n", (unsigned long)(mn_test_ticks() - t0));']
    return c.source(0, bench)


@pytest.fixture(scope="module")
def target_source(tflm, tmp_path_factory):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    path = tmp_path_factory.mktemp("target_movement") / "cases.c"
    path.write_text(target_cases(tflm))
    return path


@pytest.mark.parametrize("board", ["mps2-an386"])
def test_movement_kernels_on_cortex_m_under_qemu(board, target_source, tmp_path):
    from mncompile.resources import firmware_dir
    from mncompile.run.qemu import run_qemu

    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed")
    machine = board.split("/")[0]
    flags, defines = QEMU_BOARDS[board]
    fw = firmware_dir()
    sources = [*sorted((fw / "common").glob("*.c")), *sorted((fw / "boards" / machine).glob("*.c")),
               *kernel_sources(), HARNESS / "target_harness.c", target_source]
    cflags = [*flags.split(), "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-ffunction-sections",
              "-fdata-sections", "-O2", *defines, f"-I{fw / 'common'}", f"-I{KERNELS}"]
    objects = []
    for k, src in enumerate(sources):
        obj = tmp_path / f"{k}_{src.stem}.o"
        proc = subprocess.run(["arm-none-eabi-gcc", *cflags, "-c", str(src), "-o", str(obj)], capture_output=True,
                              text=True)
        assert proc.returncode == 0, f"{src}\n{proc.stderr}"
        objects.append(str(obj))
    elf = tmp_path / "kernels.elf"
    proc = subprocess.run(["arm-none-eabi-gcc", *flags.split(), "-nostartfiles", "--specs=nano.specs",
                           "-Wl,--gc-sections", "-T", str(fw / "boards" / machine / "linker.ld"), *objects,
                           "-o", str(elf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = run_qemu(elf, machine, timeout=300)
    assert "kernels: 0 failed" in result.output and result.exit_code == 0, result.output
    print(f"{board}: " + "; ".join(line for line in result.output.splitlines() if line.startswith("bench")))
