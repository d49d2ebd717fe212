"""The pooling and reduction kernels of firmware/kernels (MAX_POOL_2D; MEAN, SUM, REDUCE_MAX,
REDUCE_MIN over any axes) and DEPTHWISE_CONV_2D with depth multipliers 2..4 are bit-exact with TFLM.

As in tests/test_kernels.py (whose fixtures and helpers this reuses): each case builds a one-op int8
model (tests/tflite_writer_pool.py, tests/tflite_writer.py), runs it on the real TFLM host
interpreter, runs the C kernel (host library built portable and DSP-emulated) with parameters from
`mncompile.graph.ops.quantmath_pool` / `quantmath`, and asserts the outputs are identical. Reductions are
also run in place (output buffer = input buffer). Shapes include the sizes where the DSP paths flush
their 16-bit lanes (more than 256 rows, runs of more than 512 bytes) and channel counts that leave
8-, 4- and 1-channel remainders.
"""

# ruff: noqa: F811  (the fixtures lib and tflm, imported from test_kernels, are parameters here)
from __future__ import annotations

import ctypes
import math
import shutil
import subprocess

import numpy as np
import pytest
import tflite_writer as writer
import tflite_writer_pool as wp
from hypothesis import given
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
    MeanParams,
    PoolParams,
    bias_values,
    dw_struct,
    int8_array,
    kernel_sources,
    layer_scales,
    lib,
    p8,
    quant_ab,
    tflm,
    weights_array,
)

from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops import quantmath_pool as qp

ACTIVATIONS = st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
POOL_SOURCES = ("mn_maxpool.c", "mn_reduce.c")


# ---------------------------------------------------------------------------------------------
# ctypes mirror of mn_reduce_params, the kernels' signatures


class ReduceParams(ctypes.Structure):
    _fields_ = [("dims", I32 * 4), ("reduce", I32 * 4), ("in_zp", I32), ("out_zp", I32), ("mult", I32),
                ("shift", I32)]


STRUCTS = {"mn_reduce_params": ReduceParams, "mn_pool_params": PoolParams}
SIGNATURES = {"mn_maxpool_s8": PoolParams, "mn_mean_s8": ReduceParams, "mn_sum_s8": ReduceParams,
              "mn_reduce_max_s8": ReduceParams, "mn_reduce_min_s8": ReduceParams}
REDUCE_FN = {"MEAN": "mn_mean_s8", "SUM": "mn_sum_s8", "REDUCE_MAX": "mn_reduce_max_s8",
             "REDUCE_MIN": "mn_reduce_min_s8"}


@pytest.fixture(scope="module")
def plib(lib):
    """The host kernel library (both builds) with the pooling kernels' argtypes set."""
    for name, cls in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.POINTER(cls), P8, P8]
        fn.restype = ctypes.c_int
    return lib


def pool_struct(p: qp.PoolParams) -> PoolParams:
    return PoolParams(*(getattr(p, f) for f, _ in PoolParams._fields_))


def reduce_struct(p: qp.ReduceParams) -> ReduceParams:
    return ReduceParams((I32 * 4)(*p.dims), (I32 * 4)(*p.reduce), p.in_zp, p.out_zp, p.mult, p.shift)


def reduce_params(op: str, shape, axes, in_q, out_q) -> qp.ReduceParams:
    make = {"MEAN": qp.mean_reduce_params, "SUM": qp.sum_reduce_params}.get(op, qp.max_min_reduce_params)
    return make(shape, axes, *in_q, *out_q)


def values(draw, rng: np.random.Generator, shape) -> np.ndarray:
    """Half the time the whole int8 range; else a narrow band (means and maxima far from 0, clamps),
    often at either end (all -128 windows show MAX's start value, all 127 MIN's)."""
    mode = draw(st.integers(0, 5))
    if mode <= 2:
        return int8_array(rng, shape)
    band = draw(st.sampled_from([0, 1, 5, 40]))
    lo = (-128, 127 - band, draw(st.integers(-128, 127 - band)))[mode - 3]
    return int8_array(rng, shape, lo, lo + band)


# ---------------------------------------------------------------------------------------------
# MAX_POOL_2D


@st.composite
def maxpool_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.sampled_from([1, 1, 1, 2]))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    c = draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 19, 32, 40]))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    if qm.out_size(padding, h, k[0], stride[0]) <= 0 or qm.out_size(padding, w, k[1], stride[1]) <= 0:
        padding = "SAME"  # a VALID window larger than the input: TFLM would run an empty output
    act = draw(ACTIVATIONS)
    if act == "RELU6" and draw(st.booleans()):
        q = (float(np.float32(6.0 / 255.0 * 10.0 ** draw(st.floats(-0.3, 0.3)))), -128)
    else:
        q = draw(quant_ab(-3.0, 0.5))
    return {"x_shape": (n, h, w, c), "k": k, "stride": stride, "padding": padding, "q": q, "act": act,
            "x": values(draw, rng, (n, h, w, c))}


@SETTINGS
@given(case=maxpool_cases())
def test_max_pool_matches_tflm(plib, tflm, case):
    model = wp.max_pool2d(case["x_shape"], case["q"], case["k"], case["stride"], case["padding"], case["act"])
    expected = tflm.run(model, case["x"])
    p = qp.pool_params(case["x_shape"], case["k"], case["stride"], case["padding"], case["act"], *case["q"],
                       *case["q"])
    assert (p.batches, p.out_h, p.out_w, p.channels) == expected.shape
    out = np.full(expected.shape, 99, dtype=np.int8)
    assert plib.mn_maxpool_s8(ctypes.byref(pool_struct(p)), p8(case["x"]), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)


def test_pool_params_reproduce_tflm_prepare_checks(plib, tflm):
    """PoolingPrepare: scales may differ by up to 1e-6 (float32 difference), zero points not at all."""
    x = np.arange(-60, 60, dtype=np.int8).reshape(1, 4, 5, 6)
    near = float(np.float32(0.1) + np.float32(9.5e-7))  # TFLM accepts, and so do we
    expected = tflm.run(wp.max_pool2d(x.shape, (0.1, 3), (2, 2), (2, 2), "SAME", "RELU", out_quant=(near, 3)), x)
    p = qp.pool_params(x.shape, (2, 2), (2, 2), "SAME", "RELU", 0.1, 3, near, 3)
    out = np.zeros(expected.shape, np.int8)
    assert plib.mn_maxpool_s8(ctypes.byref(pool_struct(p)), p8(x), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)
    far = float(np.float32(0.1) + np.float32(2e-6))
    for out_q in ((far, 3), (0.1, 4)):
        with pytest.raises(qm.QuantMathError):
            qp.pool_params(x.shape, (2, 2), (2, 2), "SAME", "NONE", 0.1, 3, *out_q)
        with pytest.raises(AssertionError, match="TFLM rejected"):
            tflm.run(wp.max_pool2d(x.shape, (0.1, 3), (2, 2), (2, 2), "SAME", out_quant=out_q), x)
    with pytest.raises(qm.QuantMathError):
        qp.pool_params(x.shape, (5, 2), (1, 1), "VALID", "NONE", 0.1, 3, 0.1, 3)  # no output rows


def test_max_pool_window_without_taps_gives_clamped_minimum(plib):
    """Not reachable through SAME/VALID, but TFLM's loop gives clamp(-128) there; so does the kernel."""
    x = np.full((1, 2, 2, 9), 50, np.int8)
    for lo in (-128, -5):
        p = PoolParams(1, 2, 2, 9, 2, 2, 1, 1, 3, 3, 0, 0, lo, 100)  # second row/column of windows: outside
        out = np.zeros((1, 2, 2, 9), np.int8)
        assert plib.mn_maxpool_s8(ctypes.byref(p), p8(x), p8(out)) == 0
        assert (out[0, 0, 0] == 50).all() and (out[0, 1] == lo).all() and (out[0, 0, 1] == lo).all()


# ---------------------------------------------------------------------------------------------
# MEAN, SUM, REDUCE_MAX, REDUCE_MIN over any axes

# (shape, axes): the DSP paths' lane flushes (> 256 rows, runs > 512 bytes), and 8/4/1 remainders
BIG_REDUCTIONS = [((1, 17, 19, 12), (1, 2)), ((1, 17, 19, 13), (2, 1)), ((3, 530), (1,)), ((2, 300, 5), (0, 1)),
                  ((5, 7, 60, 9), (0, 2)), ((4, 70, 3, 8), (1, 3)), ((600,), (0,)), ((2, 7, 7, 40), (1, 2)),
                  ((1, 1, 300, 3), (2,)), ((2, 2, 150, 4), (0, 2)), ((1, 9, 40, 20), (-2, 1))]


@st.composite
def reduce_shapes(draw):
    """(shape, axes as written in the model: some negative, some repeated, possibly none)."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.sampled_from(BIG_REDUCTIONS))
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.sampled_from([1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 17]), min_size=rank,
                                max_size=rank)))
    if rank == 4 and draw(st.booleans()):  # NHWC with a channel count for the column blocks
        shape = shape[:3] + (draw(st.integers(1, 40)),)
    kind = draw(st.integers(0, 7))
    if rank == 4 and kind == 0:
        axes = [1, 2] if draw(st.booleans()) else [2, 1]
    elif rank == 4 and kind == 1:  # alternating: two kept and two reduced groups
        axes = list(draw(st.sampled_from([(1, 3), (0, 2), (3, 1)])))
    else:
        axes = draw(st.lists(st.integers(0, rank - 1), min_size=0, max_size=rank + 1))
    axes = [a - rank if draw(st.booleans()) else a for a in axes]
    return shape, tuple(axes)


@st.composite
def reduce_cases(draw, ops):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    op = draw(st.sampled_from(ops))
    shape, axes = draw(reduce_shapes())
    n = qp.reduce_count(shape, axes)
    in_q = draw(quant_ab(-3.0, 1.0))
    mode = draw(st.integers(0, 4))
    if op in ("REDUCE_MAX", "REDUCE_MIN"):
        out_q = in_q
    elif mode == 0:  # powers of two: exact multipliers (2^30), ties in both roundings
        in_q = (2.0 ** -draw(st.integers(0, 10)), in_q[1])
        out_q = (in_q[0] * 2.0 ** draw(st.integers(-4, 4)), draw(st.integers(-128, 127)))
    else:  # around the spread of the result: ~74 * sqrt(n) input steps for a SUM, ~74 / sqrt(n) for a MEAN
        spread = math.sqrt(n) if op == "SUM" else 1.0 / math.sqrt(n)
        out_scale = in_q[0] * spread * 10.0 ** draw(st.floats(-2.0, 2.0))
        out_q = (float(np.float32(out_scale)), draw(st.integers(-128, 127)))
    return {"op": op, "shape": shape, "axes": axes, "keep_dims": draw(st.booleans()), "in_q": in_q,
            "out_q": out_q, "x": values(draw, rng, shape)}


def check_reduction(plib, tflm, case):
    op, shape, axes = case["op"], case["shape"], case["axes"]
    model = wp.reduce(op, shape, case["in_q"], case["out_q"], axes, case["keep_dims"])
    # TFLM's arena holds input, output and (MEAN/SUM) an int32 accumulator per output
    expected = tflm.run(model, case["x"], arena=(1 << 16) + 8 * case["x"].size)
    assert expected.shape == qp.reduce_output_shape(shape, axes, case["keep_dims"])
    p = reduce_struct(reduce_params(op, shape, axes, case["in_q"], case["out_q"]))
    fn = getattr(plib, REDUCE_FN[op])
    out = np.full(expected.shape, 99, dtype=np.int8)
    assert fn(ctypes.byref(p), p8(case["x"]), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)
    # in place: the output overwrites the start of the input buffer
    buf = case["x"].copy().ravel()
    assert fn(ctypes.byref(p), p8(buf), p8(buf)) == 0
    np.testing.assert_array_equal(buf[:expected.size].reshape(expected.shape), expected)
    return expected


@SETTINGS
@given(case=reduce_cases(["MEAN"]))
def test_mean_any_axes_matches_tflm(plib, tflm, case):
    expected = check_reduction(plib, tflm, case)
    shape, red = case["shape"], qp.reduce_axes(len(case["shape"]), case["axes"])
    if len(shape) == 4 and red == (1, 2):  # the same bytes as the older H,W kernel
        mult, shift = qm.mean_params(case["in_q"][0], case["out_q"][0], shape[1] * shape[2])
        p = MeanParams(shape[0], shape[1], shape[2], shape[3], case["in_q"][1], case["out_q"][1], mult, shift)
        out = np.full(expected.shape, 99, dtype=np.int8)
        assert plib.mn_mean_hw_s8(ctypes.byref(p), p8(case["x"]), p8(out)) == 0
        np.testing.assert_array_equal(out, expected)


@SETTINGS
@given(case=reduce_cases(["SUM"]))
def test_sum_any_axes_matches_tflm(plib, tflm, case):
    check_reduction(plib, tflm, case)


@SETTINGS
@given(case=reduce_cases(["REDUCE_MAX", "REDUCE_MIN"]))
def test_reduce_max_and_min_any_axes_match_tflm(plib, tflm, case):
    check_reduction(plib, tflm, case)


@pytest.mark.parametrize("fill", [-128, 127])
@pytest.mark.parametrize(("shape", "axes"), BIG_REDUCTIONS)
def test_reductions_of_extreme_values_match_tflm(plib, tflm, shape, axes, fill):
    """Every input -128 (or 127): the largest partial sums, where a 16-bit lane flushed one row or
    word too late would wrap, and where MAX/MIN start values show."""
    x = np.full(shape, fill, np.int8)
    n = qp.reduce_count(shape, axes)
    for op, in_q, out_q in (("MEAN", (0.05, 0), (0.05, 0)), ("MEAN", (0.05, 100), (0.04, -3)),
                            ("SUM", (0.01, 0), (float(np.float32(0.01 * n / 60.0)), 0)),
                            ("REDUCE_MAX", (0.05, 7), (0.05, 7)), ("REDUCE_MIN", (0.05, 7), (0.05, 7))):
        check_reduction(plib, tflm, {"op": op, "shape": shape, "axes": axes, "keep_dims": False, "in_q": in_q,
                                     "out_q": out_q, "x": x})


@pytest.mark.parametrize("zp", [0, -7])
def test_mean_with_equal_quantization_rounds_like_quantized_mean_or_sum(plib, tflm, zp):
    """TFLM before tflite-micro #1908 sent MEAN with equal input/output quantization through
    reference_ops::Mean (sum / n truncated toward zero); since then every int8 MEAN, axes {1, 2} of a
    4-D tensor included, is QuantizedMeanOrSum (one rounding requantization). Sums of -2, 2, -1, 3
    over 4 elements: truncation gives 0, 0, 0, 0; TFLM and the kernel give -1, 1, 0, 1."""
    x = np.array([[-1, 1, 0, 1], [-1, 1, 0, 1], [0, 0, -1, 1], [0, 0, 0, 0]], np.int8).reshape(1, 2, 2, 4) + zp
    x = x.astype(np.int8)
    for keep_dims in (True, False):
        case = {"op": "MEAN", "shape": x.shape, "axes": (1, 2), "keep_dims": keep_dims, "in_q": (0.1, zp),
                "out_q": (0.1, zp), "x": x}
        expected = check_reduction(plib, tflm, case)
        np.testing.assert_array_equal(expected.reshape(-1), np.array([-1, 1, 0, 1]) + zp)


def test_reduce_params_reproduce_tflm_checks(tflm):
    x = np.zeros((1, 3, 4, 5), np.int8)
    # REDUCE_MAX / MIN: scales exactly equal (a 1e-9 difference is refused), zero points equal
    for out_q in ((float(np.float32(0.1) + np.float32(1e-8)), 3), (0.1, 4)):
        with pytest.raises(qm.QuantMathError):
            qp.max_min_reduce_params(x.shape, (1,), 0.1, 3, *out_q)
        with pytest.raises(AssertionError, match="TFLM rejected"):
            tflm.run(wp.reduce_max(x.shape, (0.1, 3), (1,), out_quant=out_q), x)
    with pytest.raises(qm.QuantMathError):
        qp.mean_reduce_params(x.shape, (4,), 0.1, 0, 0.1, 0)  # axis out of range
    with pytest.raises(qm.QuantMathError):
        qp.sum_reduce_params(x.shape, (1,), 1e6, 0, 1e-6, 0)  # left shift > 31: undefined in TFLM
    with pytest.raises(qm.QuantMathError):
        qp.reduce_groups((2, 3, 2, 3, 2), (1, 3))  # five groups: k r k r k
    assert qp.reduce_groups((2, 3, 2, 3, 2), (1, 2, 3)) == ((1, 2, 18, 2), (0, 0, 1, 0))
    assert qp.reduce_groups((1, 5, 1, 7), (-1, 3, 0)) == ((1, 1, 5, 7), (0, 0, 0, 1))
    assert qp.reduce_groups((), ()) == ((1, 1, 1, 1), (0, 0, 0, 0))
    assert qp.reduce_output_shape((2, 3, 4), (-1, 0, 2), False) == (3,)
    assert qp.reduce_output_shape((2, 3, 4), (-1, 0, 2), True) == (1, 3, 1)


def test_five_d_reduction_folds_into_the_four_d_kernel(plib, tflm):
    """Higher ranks work when at most four groups of dimensions remain."""
    rng = np.random.default_rng(5)
    shape, axes = (2, 3, 4, 2, 3), (1, 2, 3)
    x = int8_array(rng, shape)
    for op in ("MEAN", "REDUCE_MIN"):
        case = {"op": op, "shape": shape, "axes": axes, "keep_dims": True, "in_q": (0.05, 4),
                "out_q": (0.02 if op == "MEAN" else 0.05, 4), "x": x}
        check_reduction(plib, tflm, case)


# ---------------------------------------------------------------------------------------------
# DEPTHWISE_CONV_2D, depth multipliers 2..4 (out of place)


@st.composite
def dw_multiplier_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.sampled_from([1, 1, 1, 2]))
    h, w, c = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 12))
    dm = draw(st.integers(2, 4))
    kh, kw = draw(st.sampled_from([(3, 3), (3, 3), (5, 5), (1, 1), (2, 3), (3, 1)]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1) if draw(st.integers(0, 4)) else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    if (qm.out_size(padding, h, kh, stride[0], dilation[0]) <= 0
            or qm.out_size(padding, w, kw, stride[1], dilation[1]) <= 0):
        padding = "SAME"
    act = draw(st.sampled_from(["NONE", "RELU", "RELU6"]))
    in_q, ws, out_q, wmax = layer_scales(draw, rng, c * dm, kh * kw, act)
    bias = bias_values(draw, rng, c * dm, kh * kw)
    if bias is None:  # TFLM's depthwise kernel requires a bias
        bias = np.zeros(c * dm, np.int32)
    return {"x_shape": (n, h, w, c), "dm": dm, "filter": weights_array(rng, (1, kh, kw, c * dm), wmax),
            "w_scales": ws, "bias": bias, "in_q": in_q, "out_q": out_q, "stride": stride, "dilation": dilation,
            "padding": padding, "act": act, "x": int8_array(rng, (n, h, w, c))}


@SETTINGS
@given(case=dw_multiplier_cases())
def test_depthwise_depth_multiplier_matches_tflm(lib, tflm, case):
    model = writer.depthwise_conv2d(case["x_shape"], case["in_q"], case["filter"], case["w_scales"], case["bias"],
                                    case["out_q"], case["stride"], case["padding"], case["dilation"], case["dm"],
                                    case["act"])
    expected = tflm.run(model, case["x"])
    keep: list = []
    p = dw_struct(case, case["x_shape"], case["filter"], case["bias"], keep)
    assert p.depth_mult == case["dm"]
    out = np.full(expected.shape, 99, dtype=np.int8)
    assert lib.mn_depthwise_conv_s8(ctypes.byref(p), p8(case["x"]), p8(out), None) == 0
    np.testing.assert_array_equal(out, expected)
    assert lib.mn_depthwise_scratch_bytes(ctypes.byref(p)) == 0
    assert lib.mn_depthwise_conv_s8(ctypes.byref(p), p8(case["x"]), p8(case["x"]), None) == -1  # no in place


# ---------------------------------------------------------------------------------------------
# preconditions, struct layouts, portability


def test_kernels_refuse_broken_preconditions(plib):
    x = np.zeros((1, 4, 4, 3), np.int8)
    out = np.zeros_like(x)
    good = pool_struct(qp.pool_params(x.shape, (2, 2), (1, 1), "SAME", "NONE", 0.1, 0, 0.1, 0))
    assert plib.mn_maxpool_s8(ctypes.byref(good), p8(x), p8(out)) == 0
    assert plib.mn_maxpool_s8(None, p8(x), p8(out)) == -1
    assert plib.mn_maxpool_s8(ctypes.byref(good), None, p8(out)) == -1
    for field, value in (("k_h", 0), ("stride_w", 0), ("channels", 0), ("pad_top", -1), ("act_min", -129),
                         ("act_max", 128), ("act_min", 5)):
        bad = pool_struct(qp.pool_params(x.shape, (2, 2), (1, 1), "SAME", "NONE", 0.1, 0, 0.1, 0))
        setattr(bad, field, value)
        if field == "act_min" and value == 5:
            bad.act_max = 4
        assert plib.mn_maxpool_s8(ctypes.byref(bad), p8(x), p8(out)) == -1, field
    p = qp.mean_reduce_params(x.shape, (1, 2), 0.1, 0, 0.1, 0)
    for name in REDUCE_FN.values():
        fn = getattr(plib, name)
        assert fn(ctypes.byref(reduce_struct(p)), p8(x), p8(out)) == 0
        assert fn(None, p8(x), p8(out)) == -1
        assert fn(ctypes.byref(reduce_struct(p)), p8(x), None) == -1
        bad = reduce_struct(p)
        bad.dims[3] = 0
        assert fn(ctypes.byref(bad), p8(x), p8(out)) == -1, name
        bad = reduce_struct(p)
        bad.reduce[2] = 2
        assert fn(ctypes.byref(bad), p8(x), p8(out)) == -1, name
        bad = reduce_struct(p)
        bad.dims[0], bad.dims[1] = 1 << 16, 1 << 16  # 2^32 elements and more
        assert fn(ctypes.byref(bad), p8(x), p8(out)) == -1, name
    for shift in (32, -32):
        bad = reduce_struct(p)
        bad.shift = shift
        assert plib.mn_mean_s8(ctypes.byref(bad), p8(x), p8(out)) == -1
        assert plib.mn_sum_s8(ctypes.byref(bad), p8(x), p8(out)) == -1


def test_struct_layouts_match_the_header(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    names = sorted(STRUCTS)
    src = tmp_path / "sizes.c"
    cases = "".join(f"    if (k == {k}) {{\n        return sizeof({n});\n    }}\n" for k, n in enumerate(names))
    src.write_text('#include "mn_kernels.h"\nsize_t mn_pool_sizeof(int k);\nsize_t mn_pool_sizeof(int k)\n{\n'
                   + cases + "    return 0;\n}\n")
    so = tmp_path / "sizes.so"
    proc = subprocess.run(["gcc", *CFLAGS, "-fPIC", "-shared", "-I", str(KERNELS), str(src), "-o", str(so)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    fn = ctypes.CDLL(str(so)).mn_pool_sizeof
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_size_t
    for k, name in enumerate(names):
        assert fn(k) == ctypes.sizeof(STRUCTS[name]), name
    assert [f for f, _ in ReduceParams._fields_] == [*qp.ReduceParams.__dataclass_fields__]
    assert [f for f, _ in PoolParams._fields_] == [*qp.PoolParams.__dataclass_fields__]


CPUS = {"cortex-m0": ["-mcpu=cortex-m0"], "cortex-m0plus": ["-mcpu=cortex-m0plus"], "cortex-m3": ["-mcpu=cortex-m3"],
        **ARM_CPUS}


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_pool_kernels_compile_warning_free_for_cortex_m(cpu, tmp_path):
    """Armv6-M (no DSP, no SSAT, no divide), Armv7-M and the four DSP cores, with -Wconversion."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    for name in POOL_SOURCES:
        cmd = [gcc, *CPUS[cpu], "-mthumb", *CFLAGS, "-Wconversion", "-Wshadow", "-O2", "-I", str(KERNELS), "-c",
               str(KERNELS / name), "-o", str(tmp_path / "k.o")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"


# ---------------------------------------------------------------------------------------------
# on the target: the real SSUB8/SEL/SXTAB16 instructions (Cortex-M4 and M55) and the portable C
# (M4 with MN_KERNELS_PORTABLE) under QEMU, against TFLM host outputs


def target_cases(tflm) -> str:
    rng = np.random.default_rng(4242)
    c = CCases()
    for k, (xs, ksz, stride, padding, act) in enumerate([
            ((1, 8, 8, 16), (2, 2), (2, 2), "VALID", "NONE"), ((1, 7, 9, 13), (3, 3), (2, 2), "SAME", "RELU6"),
            ((2, 5, 6, 6), (3, 2), (1, 2), "SAME", "RELU")]):
        q = (0.03, int(rng.integers(-128, 128)))
        x = int8_array(rng, xs)
        expected = tflm.run(wp.max_pool2d(xs, q, ksz, stride, padding, act), x)
        name = c.struct(pool_struct(qp.pool_params(xs, ksz, stride, padding, act, *q, *q)), "mn_pool_params")
        c.case(f"mn_maxpool_s8 {k}", f"mn_maxpool_s8(&{name}, {c.array(x)}, mn_buf)", expected)
    for k, (op, (xs, axes)) in enumerate([("MEAN", BIG_REDUCTIONS[0]), ("MEAN", BIG_REDUCTIONS[1]),
                                          ("SUM", BIG_REDUCTIONS[2]), ("MEAN", BIG_REDUCTIONS[4]),
                                          ("REDUCE_MAX", BIG_REDUCTIONS[7]), ("REDUCE_MIN", ((3, 5, 7), (0, 2))),
                                          ("SUM", ((2, 4, 9), (-1,)))]):
        in_q = (0.05, int(rng.integers(-128, 128)))
        out_q = in_q if op.startswith("REDUCE") else (0.05 * (8.0 if op == "SUM" else 0.3), int(rng.integers(-50, 50)))
        x = int8_array(rng, xs)
        expected = tflm.run(wp.reduce(op, xs, in_q, out_q, axes, bool(k % 2)), x)
        name = c.struct(reduce_struct(reduce_params(op, xs, axes, in_q, out_q)), "mn_reduce_params")
        fn = REDUCE_FN[op]
        c.case(f"{fn} {k}", f"{fn}(&{name}, {c.array(x)}, mn_buf)", expected)
    # timing (printed, not checked): a 2x2/2 max pool 16x16x32, global average pool 7x7x256
    bench = ["    (void)mn_scratch; /* no kernel here needs scratch */"]
    xs = (1, 16, 16, 32)
    mp = c.struct(pool_struct(qp.pool_params(xs, (2, 2), (2, 2), "VALID", "NONE", 0.1, 0, 0.1, 0)), "mn_pool_params")
    xa = c.array(int8_array(rng, xs))
    gs = (1, 7, 7, 256)
    gp = c.struct(reduce_struct(qp.mean_reduce_params(gs, (1, 2), 0.1, 0, 0.1, 0)), "mn_reduce_params")
    ga = c.array(int8_array(rng, gs))
    mult, shift = qm.mean_params(0.1, 0.1, 49)
    hp = c.struct(MeanParams(1, 7, 7, 256, 0, 0, mult, shift), "mn_mean_params")
    c.buffer = max(c.buffer, 8 * 8 * 32)
    for label, call in (("maxpool 2x2/2 16x16x32", f"mn_maxpool_s8(&{mp}, {xa}, mn_buf)"),
                        ("mean 7x7x256", f"mn_mean_s8(&{gp}, {ga}, mn_buf)"),
                        ("mean_hw 7x7x256", f"mn_mean_hw_s8(&{hp}, {ga}, mn_buf)")):
        bench += ["    t0 = mn_test_ticks();", f"    (void){call};",
                  f'    printf("bench {label}: %lu ticks\\n", (unsigned long)(mn_test_ticks() - t0));']
    return c.source(0, bench)


@pytest.fixture(scope="module")
def target_source(tflm, tmp_path_factory):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    path = tmp_path_factory.mktemp("target_pool") / "cases.c"
    path.write_text(target_cases(tflm))
    return path


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547", "mps2-an386/portable"])
def test_pool_kernels_on_cortex_m_under_qemu(board, target_source, tmp_path):
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
    dsp = "0" if defines else "1"
    assert f"kernels: MN_KERNELS_DSP={dsp}" in result.output, result.output
    assert "kernels: 0 failed" in result.output and result.exit_code == 0, result.output
    print(f"{board}: " + "; ".join(line for line in result.output.splitlines() if line.startswith("bench")))
