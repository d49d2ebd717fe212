"""The elementwise kernels of firmware/kernels (MUL, SUB, HARD_SWISH, LOGISTIC, RELU, RELU6) are
bit-exact with TFLM.

As in tests/test_kernels.py (whose fixtures and helpers this reuses): each case builds a one-op int8
model (tests/tflite_writer_elementwise.py), runs it on the real TFLM host interpreter, runs the C
kernel (host library built portable and DSP-emulated) with parameters from
`mncompile.graph.ops.quantmath_elementwise`, and asserts the outputs are identical. Unary kernels are also
checked on all 256 int8 inputs over many quantizations, through both of their paths (direct, and
the 256-entry table they build above MN_ELEMENTWISE_LUT_MIN elements); MUL and SUB on all 65536
input pairs.
"""

# ruff: noqa: F811  (the fixtures lib and tflm, imported from test_kernels, are parameters here)
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest
import tflite_writer_elementwise as ew
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_kernels import (  # noqa: F401  (lib and tflm: fixtures, registered by importing them)
    CFLAGS,
    HARNESS,
    I32,
    KERNELS,
    P8,
    QEMU_BOARDS,
    SETTINGS,
    AddParams,
    CCases,
    _ints,
    int8_array,
    kernel_sources,
    lib,
    log_uniform,
    output_zero_point,
    p8,
    quant_ab,
    tflm,
)

from mncompile.graph.ops import quantmath as qm
from mncompile.graph.ops import quantmath_elementwise as qe

ACTIVATIONS = st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
LUT_MIN = 256  # MN_ELEMENTWISE_LUT_MIN in mn_kernels_elementwise.h


# ---------------------------------------------------------------------------------------------
# ctypes mirrors of the parameter structs, and the kernels' signatures


class MulParams(ctypes.Structure):
    _fields_ = _ints("size in1_offset in2_offset out_offset out_mult out_shift act_min act_max") + [
        ("out_dims", I32 * 4), ("in1_strides", I32 * 4), ("in2_strides", I32 * 4)]


class HardSwishParams(ctypes.Structure):
    _fields_ = _ints("size in_zp out_zp reluish_mult reluish_shift out_mult out_shift")


class LogisticParams(ctypes.Structure):
    _fields_ = _ints("size in_zp input_range_radius input_multiplier input_left_shift")


class ReluParams(ctypes.Structure):
    _fields_ = _ints("size in_zp out_zp out_mult out_shift act_min act_max")


class Relu6Params(ctypes.Structure):
    _fields_ = _ints("size act_min act_max")


STRUCTS = {"mn_mul_params": MulParams, "mn_hard_swish_params": HardSwishParams,
           "mn_logistic_params": LogisticParams, "mn_relu_params": ReluParams, "mn_relu6_params": Relu6Params}
SIGNATURES = {
    "mn_mul_s8": [MulParams, P8, P8, P8], "mn_mul_broadcast_s8": [MulParams, P8, P8, P8],
    "mn_sub_s8": [AddParams, P8, P8, P8], "mn_sub_broadcast_s8": [AddParams, P8, P8, P8],
    "mn_hard_swish_s8": [HardSwishParams, P8, P8], "mn_logistic_s8": [LogisticParams, P8, P8],
    "mn_relu_s8": [ReluParams, P8, P8], "mn_relu6_s8": [Relu6Params, P8, P8],
}


@pytest.fixture(scope="module")
def klib(lib):
    """The host kernel library (both builds) with the elementwise kernels' argtypes set."""
    for name, args in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.POINTER(args[0]), *args[1:]]
        fn.restype = ctypes.c_int
    return lib


def dims4(a):
    return (I32 * 4)(*a)


def mul_struct(p: qe.MulParams, size: int, shape1, shape2) -> MulParams:
    dims, s1, s2 = qe.broadcast_strides(shape1, shape2)
    return MulParams(size, p.in1_offset, p.in2_offset, p.out_offset, p.out_mult, p.out_shift, p.act_min, p.act_max,
                     dims4(dims), dims4(s1), dims4(s2))


def add_struct(p: qm.AddParams, size: int, shape1, shape2) -> AddParams:
    dims, s1, s2 = qe.broadcast_strides(shape1, shape2)
    return AddParams(size, p.in1_offset, p.in2_offset, p.out_offset, p.left_shift, p.in1_mult, p.in1_shift,
                     p.in2_mult, p.in2_shift, p.out_mult, p.out_shift, p.act_min, p.act_max, dims4(dims),
                     dims4(s1), dims4(s2))


def hard_swish_struct(p: qe.HardSwishParams, size: int) -> HardSwishParams:
    return HardSwishParams(size, p.in_zp, p.out_zp, p.reluish_mult, p.reluish_shift, p.out_mult, p.out_shift)


def logistic_struct(p: qe.LogisticParams, size: int) -> LogisticParams:
    return LogisticParams(size, p.in_zp, p.input_range_radius, p.input_multiplier, p.input_left_shift)


def relu_struct(p: qe.ReluParams, size: int) -> ReluParams:
    return ReluParams(size, p.in_zp, p.out_zp, p.out_mult, p.out_shift, p.act_min, p.act_max)


def relu6_struct(p: qe.Relu6Params, size: int) -> Relu6Params:
    return Relu6Params(size, p.act_min, p.act_max)


def call(fn, params, *arrays: np.ndarray, out_shape) -> np.ndarray:
    out = np.full(out_shape, 99, dtype=np.int8)
    assert fn(ctypes.byref(params), *map(p8, arrays), p8(out)) == 0
    return out


def every_int8(times: int = 1) -> np.ndarray:
    return np.tile(np.arange(-128, 128, dtype=np.int8), times).reshape(1, -1)


# ---------------------------------------------------------------------------------------------
# MUL and SUB: drawing cases


@st.composite
def binary_shapes(draw):
    """Same shapes, NumPy broadcasts of random shapes (either side, lower rank too), and the
    squeeze-excite pattern [1,H,W,C] * [1,1,1,C] (either order)."""
    kind = draw(st.integers(0, 5))
    if kind <= 1:
        h, w, c = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 40))
        big, small = (1, h, w, c), (1, 1, 1, c) if draw(st.booleans()) else (c,)
        return (big, small) if kind == 0 else (small, big)
    shape = tuple(draw(st.lists(st.integers(1, 8), min_size=1, max_size=4)))
    if kind == 2:
        return shape, shape
    other = tuple(1 if draw(st.booleans()) else d for d in shape)
    other = other[draw(st.integers(0, len(other) - 1)):] if draw(st.booleans()) else other
    return (shape, other) if draw(st.booleans()) else (other, shape)


def narrow_int8(draw, rng: np.random.Generator, shape, zp: int) -> np.ndarray:
    """Mostly the whole int8 range; sometimes values near the zero point (small products, where
    large multipliers and ties matter)."""
    if draw(st.integers(0, 3)):
        return int8_array(rng, shape)
    r = draw(st.sampled_from([1, 3, 10, 40]))
    return int8_array(rng, shape, max(-128, zp - r), min(127, zp + r))


@st.composite
def mul_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape1, shape2 = draw(binary_shapes())
    act = draw(ACTIVATIONS)
    mode = draw(st.integers(0, 7))
    if mode == 0:  # powers of two: the multiplier is exactly 2^30, ties in both roundings
        q1 = (2.0 ** -draw(st.integers(0, 10)), draw(st.integers(-128, 127)))
        q2 = (2.0 ** -draw(st.integers(0, 10)), draw(st.integers(-128, 127)))
        out_scale = q1[0] * q2[0] * 2.0 ** draw(st.integers(-3, 9))
    elif mode == 1:  # squeeze-excite: the gate is a LOGISTIC output (1/256, -128)
        q1, q2 = draw(quant_ab(-3.0, 0.5)), (1.0 / 256.0, -128)
        out_scale = float(np.float32(q1[0] * 10.0 ** draw(st.floats(-1.0, 0.5))))
    elif mode == 2:  # effective scale >= 1: left shifts (with values near the zero points)
        q1, q2 = draw(quant_ab(-3.0, 0.5)), draw(quant_ab(-3.0, 0.5))
        out_scale = float(np.float32(q1[0] * q2[0] / draw(st.floats(1.0, 300.0))))
    else:
        q1, q2 = draw(quant_ab(-3.0, 0.5)), draw(quant_ab(-3.0, 0.5))
        out_scale = float(np.float32(q1[0] * q2[0] * 128.0 * 10.0 ** draw(st.floats(-1.5, 2.5))))
    out_q = (out_scale, output_zero_point(draw, act))
    return {"shape1": shape1, "shape2": shape2, "q1": q1, "q2": q2, "out_q": out_q, "act": act,
            "x1": narrow_int8(draw, rng, shape1, q1[1]), "x2": narrow_int8(draw, rng, shape2, q2[1])}


@st.composite
def sub_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape1, shape2 = draw(binary_shapes())
    act = draw(ACTIVATIONS)
    q1, q2 = draw(quant_ab(-3.0, 0.5)), draw(quant_ab(-3.0, 0.5))
    mode = draw(st.integers(0, 5))
    if mode == 0:  # equal input scales and a power-of-two output ratio: exact multipliers, ties
        q2 = (q1[0], q2[1])
        out_scale = q1[0] * 2.0 ** draw(st.integers(-1, 3))
    elif mode == 1:  # far off: mostly saturated, or a tiny range
        out_scale = float(np.float32(max(q1[0], q2[0]) * 10.0 ** draw(st.floats(-2.0, 2.5))))
    else:
        out_scale = float(np.float32(max(q1[0], q2[0]) * 10.0 ** draw(st.floats(0.0, 1.0))))
    return {"shape1": shape1, "shape2": shape2, "q1": q1, "q2": q2, "out_q": (out_scale, output_zero_point(draw, act)),
            "act": act, "x1": narrow_int8(draw, rng, shape1, q1[1]), "x2": narrow_int8(draw, rng, shape2, q2[1])}


def check_binary(klib, tflm, case: dict, op: str) -> None:
    """TFLM against the broadcast kernel (out of place, and in place over an input of the output's
    shape), and (same shapes) the elementwise kernel out of place and in place."""
    model = getattr(ew, op)(case["shape1"], case["q1"], case["shape2"], case["q2"], case["out_q"], case["act"])
    expected = tflm.run(model, case["x1"], case["x2"])
    if op == "mul":
        p = qe.mul_params(*case["q1"], *case["q2"], *case["out_q"], case["act"])
        params = mul_struct(p, expected.size, case["shape1"], case["shape2"])
    else:
        p = qe.sub_params(*case["q1"], *case["q2"], *case["out_q"], case["act"])
        params = add_struct(p, expected.size, case["shape1"], case["shape2"])
    fn, fn_same = getattr(klib, f"mn_{op}_broadcast_s8"), getattr(klib, f"mn_{op}_s8")
    np.testing.assert_array_equal(call(fn, params, case["x1"], case["x2"], out_shape=expected.shape), expected)
    # in place over an input that has the output's shape (the other one may be broadcast)
    for k in (0, 1):
        x = case[f"x{k + 1}"]
        if x.size == expected.size:
            buf = x.copy()
            args = (buf, case["x2"]) if k == 0 else (case["x1"], buf)
            assert fn(ctypes.byref(params), p8(args[0]), p8(args[1]), p8(buf)) == 0
            np.testing.assert_array_equal(buf.reshape(expected.shape), expected)
    if case["shape1"] == case["shape2"]:
        np.testing.assert_array_equal(call(fn_same, params, case["x1"], case["x2"], out_shape=expected.shape),
                                      expected)
        inplace = case["x1"].copy()  # out aliases in1
        assert fn_same(ctypes.byref(params), p8(inplace), p8(case["x2"]), p8(inplace)) == 0
        np.testing.assert_array_equal(inplace, expected)


# ---------------------------------------------------------------------------------------------
# MUL


@SETTINGS
@given(case=mul_cases())
def test_mul_matches_tflm(klib, tflm, case):
    check_binary(klib, tflm, case, "mul")


@settings(SETTINGS, max_examples=30)
@given(q1=quant_ab(-3.0, 0.5), q2=quant_ab(-3.0, 0.5), ratio=st.floats(-2.5, 2.5), act=ACTIVATIONS,
       zp=st.integers(-128, 127), exact=st.integers(0, 4))
def test_mul_every_pair_of_int8_inputs(klib, tflm, q1, q2, ratio, act, zp, exact):
    """All 65536 input pairs at once (broadcast [256, 1] * [1, 256])."""
    if exact == 0:  # power-of-two scales: ties
        q1, q2 = (2.0 ** round(np.log2(q1[0])), q1[1]), (2.0 ** round(np.log2(q2[0])), q2[1])
        out_scale = q1[0] * q2[0] * 2.0 ** round(7 + 3 * ratio)
    else:
        out_scale = float(np.float32(q1[0] * q2[0] * 128.0 * 10.0**ratio))
    a = every_int8().reshape(256, 1).copy()
    b = a.reshape(1, 256).copy()
    case = {"shape1": a.shape, "shape2": b.shape, "q1": q1, "q2": q2, "out_q": (out_scale, zp), "act": act,
            "x1": a, "x2": b}
    check_binary(klib, tflm, case, "mul")


# ---------------------------------------------------------------------------------------------
# SUB


@SETTINGS
@given(case=sub_cases())
def test_sub_matches_tflm(klib, tflm, case):
    check_binary(klib, tflm, case, "sub")


@settings(SETTINGS, max_examples=30)
@given(q1=quant_ab(-3.0, 0.5), q2=quant_ab(-3.0, 0.5), ratio=st.floats(-1.0, 1.5), act=ACTIVATIONS,
       zp=st.integers(-128, 127))
def test_sub_every_pair_of_int8_inputs(klib, tflm, q1, q2, ratio, act, zp):
    a = every_int8().reshape(256, 1).copy()
    b = a.reshape(1, 256).copy()
    out_q = (float(np.float32(max(q1[0], q2[0]) * 10.0**ratio)), zp)
    case = {"shape1": a.shape, "shape2": b.shape, "q1": q1, "q2": q2, "out_q": out_q, "act": act, "x1": a, "x2": b}
    check_binary(klib, tflm, case, "sub")


def test_sub_ratio_variants():
    """The host interpreter's SUB forms its ratios in double, like ADD (the default); the pinned TFLM
    source divides the float32 scales in float (``ratios="float32"``). They differ in the last bits
    (which moves an output now and then: test_host_interpreter_divides_scales_in_double)."""
    differ = 0
    rng = np.random.default_rng(3)
    for _ in range(200):
        s1, s2, so = (float(np.float32(10.0 ** rng.uniform(-3, 0))) for _ in range(3))
        assert qe.sub_params(s1, 1, s2, 2, so, 3, "RELU") == qm.add_params(s1, 1, s2, 2, so, 3, "RELU")
        pinned = qe.sub_params(s1, 0, s2, 0, so, 0, ratios="float32")
        r1 = float(np.float32(s1) / (np.float32(2) * max(np.float32(s1), np.float32(s2))))
        assert (pinned.in1_mult, pinned.in1_shift) == qm.quantize_multiplier(r1)
        a = qm.add_params(s1, 0, s2, 0, so, 0)
        differ += (a.in1_mult, a.in2_mult, a.out_mult) != (pinned.in1_mult, pinned.in2_mult, pinned.out_mult)
    assert differ > 50


def test_sub_and_add_prepare_refuse_an_output_multiplier_of_one(tflm):
    """2 max(s1, s2) >= 2^20 s_out: QuantizeMultiplierSmallerThanOneExp CHECK-fails in TFLM."""
    with pytest.raises(qm.QuantMathError):
        qe.sub_params(1.0, 0, 1.0, 0, 2.0**-20, 0)
    x = np.zeros((1, 4), np.int8)
    with pytest.raises(AssertionError, match="worker died|rejected"):
        tflm.run(ew.sub(x.shape, (1.0, 0), x.shape, (1.0, 0), (2.0**-20, 0)), x, x)


# ---------------------------------------------------------------------------------------------
# unary kernels: drawing cases


def unary_input(draw, rng: np.random.Generator, zp: int):
    """Shapes of 1 to ~1500 elements (either side of MN_ELEMENTWISE_LUT_MIN); values over the
    whole int8 range, or near the zero point."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        shape = (1, draw(st.integers(1, 300)))
    elif kind == 1:
        shape = (1, draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    else:
        shape = (draw(st.integers(1, 3)), draw(st.integers(200, 500)))
    return narrow_int8(draw, rng, shape, zp)


def check_unary(klib, tflm, model: bytes, fn_name: str, make_struct, p, x: np.ndarray) -> None:
    expected = tflm.run(model, x)
    fn = getattr(klib, fn_name)
    np.testing.assert_array_equal(call(fn, make_struct(p, x.size), x, out_shape=x.shape), expected)
    inplace = x.copy()
    assert fn(ctypes.byref(make_struct(p, x.size)), p8(inplace), p8(inplace)) == 0
    np.testing.assert_array_equal(inplace, expected)


def check_every_int8(klib, tflm, model_for, fn_name: str, make_struct, p) -> None:
    """All 256 inputs, through the direct path (256 elements) and the table path (512)."""
    x = every_int8(2)
    expected = tflm.run(model_for(x.shape), x)
    fn = getattr(klib, fn_name)
    assert x.size > LUT_MIN
    np.testing.assert_array_equal(call(fn, make_struct(p, x.size), x, out_shape=x.shape), expected)
    half = np.ascontiguousarray(x[:, :256])
    np.testing.assert_array_equal(call(fn, make_struct(p, 256), half, out_shape=half.shape), expected[:, :256])


# ---------------------------------------------------------------------------------------------
# HARD_SWISH


@st.composite
def hard_swish_quant(draw):
    """Input scales over many orders of magnitude (negative, zero and positive reluish exponents,
    down to exponents <= -16, where TFLM's int16 RoundingDivideByPOT has its own quirks) and output
    scales from far larger (output exponents <= -16) to near the limit s_in / s_out < 128 (output
    exponent 0)."""
    mode = draw(st.integers(0, 9))
    if mode == 0:
        in_scale = draw(log_uniform(-9.0, 3.0))
    elif mode == 1:  # powers of two
        in_scale = 2.0 ** draw(st.integers(-12, 4))
    else:
        in_scale = draw(log_uniform(-3.0, 0.5))
    if mode == 2:
        ratio = 2.0 ** draw(st.floats(-16.0, 6.99))
    elif mode == 1:
        ratio = 2.0 ** draw(st.integers(-6, 5))
    else:
        ratio = 10.0 ** draw(st.floats(-1.0, 0.7))  # s_in / s_out
    in_zp = draw(st.integers(-128, 127))
    out_zp = draw(st.integers(-128, 127))
    out_scale = float(np.float32(in_scale / ratio))
    try:
        p = qe.hard_swish_params(in_scale, in_zp, out_scale, out_zp)
    except qm.QuantMathError:
        assume(False)
    return (float(np.float32(in_scale)), in_zp), (out_scale, out_zp), p


@SETTINGS
@given(q=hard_swish_quant(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_hard_swish_matches_tflm(klib, tflm, q, seed, data):
    in_q, out_q, p = q
    x = unary_input(data.draw, np.random.default_rng(seed), in_q[1])
    check_unary(klib, tflm, ew.hard_swish(x.shape, in_q, out_q), "mn_hard_swish_s8", hard_swish_struct, p, x)


@settings(SETTINGS, max_examples=100)
@given(q=hard_swish_quant())
def test_hard_swish_every_int8_input(klib, tflm, q):
    in_q, out_q, p = q
    check_every_int8(klib, tflm, lambda s: ew.hard_swish(s, in_q, out_q), "mn_hard_swish_s8", hard_swish_struct, p)


def test_hard_swish_prepare_refuses_output_exponent_above_zero(tflm):
    """TF_LITE_ENSURE(output_multiplier_exponent <= 0): (s_in / 128) / s_out >= 1 fails in TFLM's Prepare."""
    x = every_int8()
    ok = qe.hard_swish_params(127.0 / 128.0, 0, 1.0 / 128.0, 0)
    assert ok.out_shift == 0
    tflm.run(ew.hard_swish(x.shape, (127.0 / 128.0, 0), (1.0 / 128.0, 0)), x)
    with pytest.raises(qm.QuantMathError):
        qe.hard_swish_params(1.0, 0, 1.0 / 128.0, 0)
    with pytest.raises(AssertionError, match="rejected|worker died"):
        tflm.run(ew.hard_swish(x.shape, (1.0, 0), (1.0 / 128.0, 0)), x)


# ---------------------------------------------------------------------------------------------
# LOGISTIC


@st.composite
def logistic_quant(draw):
    """Input scales from 1e-5 to 50, and the powers of two around the input left shift 30/31 where
    TFLM's input radius falls to 1 and then 0 (every input saturates)."""
    mode = draw(st.integers(0, 5))
    if mode == 0:
        in_scale = 2.0 ** draw(st.integers(-10, 6))
    elif mode == 1:
        in_scale = float(np.float32(2.0 ** draw(st.integers(2, 4)) * draw(st.floats(0.5, 1.0))))
    else:
        in_scale = draw(log_uniform(-5.0, 1.7))
    in_zp = draw(st.integers(-128, 127))
    return (float(np.float32(in_scale)), in_zp), qe.logistic_params(in_scale, in_zp)


@SETTINGS
@given(q=logistic_quant(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_logistic_matches_tflm(klib, tflm, q, seed, data):
    in_q, p = q
    x = unary_input(data.draw, np.random.default_rng(seed), in_q[1])
    check_unary(klib, tflm, ew.logistic(x.shape, in_q), "mn_logistic_s8", logistic_struct, p, x)


@settings(SETTINGS, max_examples=100)
@given(q=logistic_quant())
def test_logistic_every_int8_input(klib, tflm, q):
    in_q, p = q
    check_every_int8(klib, tflm, lambda s: ew.logistic(s, in_q), "mn_logistic_s8", logistic_struct, p)


def test_logistic_output_zero_point_must_be_minus_128_and_scale_is_ignored(klib, tflm):
    """TFLM ENSUREs the output zero point -128 and never reads the output scale (Q0.8 regardless)."""
    x = every_int8()
    with pytest.raises(qm.QuantMathError):
        qe.logistic_params(0.1, 0, 1.0 / 256.0, 0)
    with pytest.raises(AssertionError, match="rejected"):
        tflm.run(ew.logistic(x.shape, (0.1, 0), (1.0 / 256.0, 0)), x)
    p = qe.logistic_params(0.1, 3, 0.5, -128)
    expected = tflm.run(ew.logistic(x.shape, (0.1, 3), (0.5, -128)), x)
    np.testing.assert_array_equal(expected, tflm.run(ew.logistic(x.shape, (0.1, 3)), x))
    np.testing.assert_array_equal(call(klib.mn_logistic_s8, logistic_struct(p, x.size), x, out_shape=x.shape),
                                  expected)


def test_logistic_params_hand_derived():
    # scale 2^-4: 2^-4 * 2^27 = 2^23 = 0.5 * 2^24 -> multiplier 2^30, shift 24; radius floor(15 * 2^27 / 2^24) = 120
    assert qe.logistic_params(2.0**-4, 5) == qe.LogisticParams(5, 120, 1 << 30, 24)
    # float32(0.1) * 2^27 = 13421773 exactly = 0.8000000119 * 2^24; radius floor(15 * 2^3) = 120
    p = qe.logistic_params(0.1, 0)
    assert p.input_left_shift == 24 and p.input_multiplier == 13421773 << 7 and p.input_range_radius == 120
    assert qe.logistic_params(8.0, 0).input_range_radius == 0  # shift 31: every input saturates
    assert qe.logistic_params(4.0, 0).input_range_radius == 1  # shift 30


# ---------------------------------------------------------------------------------------------
# RELU and RELU6


@st.composite
def relu_quant(draw):
    in_q = draw(quant_ab(-3.0, 0.5))
    mode = draw(st.integers(0, 4))
    if mode == 0:  # the converter's case: the same quantization in and out
        out_q = in_q
    elif mode == 1:  # power-of-two ratios: ties
        out_q = (in_q[0] * 2.0 ** draw(st.integers(-4, 4)), draw(st.integers(-128, 127)))
    else:
        out_q = (float(np.float32(in_q[0] * 10.0 ** draw(st.floats(-2.0, 2.0)))), draw(st.integers(-128, 127)))
    return in_q, out_q, qe.relu_params(*in_q, *out_q)


@SETTINGS
@given(q=relu_quant(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_relu_matches_tflm(klib, tflm, q, seed, data):
    in_q, out_q, p = q
    x = unary_input(data.draw, np.random.default_rng(seed), in_q[1])
    check_unary(klib, tflm, ew.relu(x.shape, in_q, out_q), "mn_relu_s8", relu_struct, p, x)


@settings(SETTINGS, max_examples=100)
@given(q=relu_quant())
def test_relu_every_int8_input(klib, tflm, q):
    in_q, out_q, p = q
    check_every_int8(klib, tflm, lambda s: ew.relu(s, in_q, out_q), "mn_relu_s8", relu_struct, p)


@st.composite
def relu6_quant(draw):
    """Input scales where 6.0 quantizes inside int8 and beyond it (clamped to 127); the output
    quantization usually equal (the converter's case), sometimes not (TFLM ignores it)."""
    in_q = (draw(log_uniform(-3.0, 0.5)), draw(st.integers(-128, 127)))
    if draw(st.integers(0, 3)) == 0:
        in_q = (6.0 / draw(st.integers(1, 255)) * draw(st.sampled_from([1.0, 2.0])), in_q[1])  # halves: ties
        in_q = (float(np.float32(in_q[0])), in_q[1])
    out_q = in_q if draw(st.integers(0, 2)) else draw(quant_ab(-3.0, 0.5))
    return in_q, out_q, qe.relu6_params(*in_q, *out_q)


@SETTINGS
@given(q=relu6_quant(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_relu6_matches_tflm(klib, tflm, q, seed, data):
    in_q, out_q, p = q
    x = unary_input(data.draw, np.random.default_rng(seed), in_q[1])
    check_unary(klib, tflm, ew.relu6(x.shape, in_q, out_q), "mn_relu6_s8", relu6_struct, p, x)


@settings(SETTINGS, max_examples=100)
@given(q=relu6_quant())
def test_relu6_every_int8_input(klib, tflm, q):
    in_q, out_q, p = q
    check_every_int8(klib, tflm, lambda s: ew.relu6(s, in_q, out_q), "mn_relu6_s8", relu6_struct, p)


def test_relu6_does_not_requantize_but_relu_does(tflm):
    """TFLM's int8 RELU6 clamps to [zp_in, Quantize(6, s_in, zp_in)] and never reads the output
    quantization; RELU requantizes to it."""
    x = every_int8()
    in_q, out_q = (0.05, -10), (0.1, 3)
    y = tflm.run(ew.relu6(x.shape, in_q, out_q), x)
    np.testing.assert_array_equal(y, np.clip(x, -10, 110))  # 6 / 0.05 = 120, - 10
    assert qe.relu6_params(*in_q, *out_q) == qe.Relu6Params(-10, 110)
    assert qe.relu6_params(0.01, 0) == qe.Relu6Params(0, 127)  # 600 clamps to 127
    assert qe.relu6_params(4.0, 0) == qe.Relu6Params(0, 2)  # 1.5 rounds away from zero
    y = tflm.run(ew.relu(x.shape, in_q, out_q), x)
    assert y.min() == 3 and y.max() == 72  # (127 + 10) / 2 = 68.5 -> 69, + 3


# ---------------------------------------------------------------------------------------------
# the host interpreter divides scales in double (the pinned source in float32)

# (op, quantization) found by searching scales where the two multipliers move an output: the host
# interpreter agrees with ratios="double" on every input, and the float32 multiplier (the pinned
# source) gets exactly one output wrong
RATIO_CASES = [
    ("sub", ((1.0, 58), (0.012409377843141556, 0), (float(np.float32(10.0**6.103515625e-05)), 60))),
    ("relu", ((0.2847675681114197, -62), (0.34044837951660156, -9))),
    ("relu", ((0.18213534355163574, -102), (0.7047328352928162, -61))),
    ("relu", ((0.04971286654472351, -88), (0.008449778892099857, -112))),
    ("hard_swish", ((0.032391708344221115, -104), (0.024129021912813187, 5))),
    ("hard_swish", ((0.04096684977412224, -43), (0.015367375686764717, -30))),
    ("hard_swish", ((0.0425419807434082, -100), (0.3917768895626068, 5))),
]


@pytest.mark.parametrize(("op", "quants"), RATIO_CASES)
def test_host_interpreter_divides_scales_in_double(klib, tflm, op, quants):
    outs = {}
    if op == "sub":
        a = every_int8().reshape(256, 1).copy()
        b = a.reshape(1, 256).copy()
        expected = tflm.run(ew.sub(a.shape, quants[0], b.shape, quants[1], quants[2]), a, b)
        for ratios in qe.RATIOS:
            p = qe.sub_params(*quants[0], *quants[1], *quants[2], ratios=ratios)
            outs[ratios] = call(klib.mn_sub_broadcast_s8, add_struct(p, expected.size, a.shape, b.shape), a, b,
                                out_shape=expected.shape)
    else:
        x = every_int8()
        expected = tflm.run(getattr(ew, op)(x.shape, *quants), x)
        for ratios in qe.RATIOS:
            if op == "relu":
                params = relu_struct(qe.relu_params(*quants[0], *quants[1], ratios=ratios), x.size)
            else:
                params = hard_swish_struct(qe.hard_swish_params(*quants[0], *quants[1], ratios=ratios), x.size)
            outs[ratios] = call(getattr(klib, f"mn_{op}_s8"), params, x, out_shape=x.shape)
    np.testing.assert_array_equal(outs["double"], expected)
    assert (outs["float32"] != expected).sum() == 1


# ---------------------------------------------------------------------------------------------
# preconditions, struct layouts, portability


def test_kernels_refuse_broken_preconditions(klib):
    x = np.zeros((1, 8), np.int8)
    out = np.zeros_like(x)
    p = qe.mul_params(0.1, 0, 0.1, 0, 0.1, 0)
    good = mul_struct(p, 8, x.shape, x.shape)
    assert klib.mn_mul_s8(ctypes.byref(good), p8(x), p8(x), p8(out)) == 0
    for field, value in (("out_shift", 32), ("out_shift", -32), ("size", -1), ("act_min", 127)):
        bad = mul_struct(p, 8, x.shape, x.shape)
        setattr(bad, field, value)
        if field == "act_min":
            bad.act_max = 0
        assert klib.mn_mul_s8(ctypes.byref(bad), p8(x), p8(x), p8(out)) == -1, field
    assert klib.mn_mul_broadcast_s8(None, p8(x), p8(x), p8(out)) == -1
    s = add_struct(qe.sub_params(0.1, 0, 0.1, 0, 0.1, 0), 8, x.shape, x.shape)
    s.in1_shift = 1
    assert klib.mn_sub_s8(ctypes.byref(s), p8(x), p8(x), p8(out)) == -1
    assert klib.mn_sub_broadcast_s8(ctypes.byref(s), p8(x), p8(x), p8(out)) == -1
    hs = hard_swish_struct(qe.hard_swish_params(0.1, 0, 0.1, 0), 8)
    hs.out_shift = 1
    assert klib.mn_hard_swish_s8(ctypes.byref(hs), p8(x), p8(out)) == -1
    lg = logistic_struct(qe.logistic_params(0.1, 0), 8)
    lg.input_range_radius = -1
    assert klib.mn_logistic_s8(ctypes.byref(lg), p8(x), p8(out)) == -1
    rl = relu_struct(qe.relu_params(0.1, 0, 0.1, 0), 8)
    assert klib.mn_relu_s8(ctypes.byref(rl), None, p8(out)) == -1
    assert klib.mn_relu6_s8(ctypes.byref(Relu6Params(8, 5, 4)), p8(x), p8(out)) == -1


def test_python_prepare_refuses_what_tflm_cannot_run():
    with pytest.raises(qm.QuantMathError):
        qe.mul_params(1e30, 0, 1e30, 0, 1e-30, 0)  # multiplier >= 2^31: TFLM's 1 << shift is undefined
    with pytest.raises(qm.QuantMathError):
        qe.mul_params(0.1, 0, 0.1, 200, 0.1, 0)  # not an int8 zero point
    with pytest.raises(qm.QuantMathError):
        qe.logistic_params(1e-9, 0)  # input left shift < 0: 1LL << shift undefined in CalculateInputRadius
    with pytest.raises(qm.QuantMathError):
        qe.relu_params(0.1, 0, 0.0, 0)
    assert qe.downscale_int32_to_int16_multiplier((1 << 31) - 1) == 32767
    assert qe.downscale_int32_to_int16_multiplier(1 << 30) == 16384
    assert qe.downscale_int32_to_int16_multiplier((1 << 30) + (1 << 15)) == 16385  # rounds half up
    assert qe.downscale_int32_to_int16_multiplier((1 << 30) + (1 << 15) - 1) == 16384


def test_struct_layouts_match_the_header(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    names = sorted(STRUCTS)
    src = tmp_path / "sizes.c"
    cases = "".join(f"    if (k == {k}) {{\n        return sizeof({n});\n    }}\n" for k, n in enumerate(names))
    src.write_text('#include "mn_kernels.h"\nsize_t mn_ew_sizeof(int k);\nsize_t mn_ew_sizeof(int k)\n{\n' + cases
                   + "    return 0;\n}\n")
    so = tmp_path / "sizes.so"
    proc = subprocess.run(["gcc", *CFLAGS, "-fPIC", "-shared", "-I", str(KERNELS), str(src), "-o", str(so)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    fn = ctypes.CDLL(str(so)).mn_ew_sizeof
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_size_t
    for k, name in enumerate(names):
        assert fn(k) == ctypes.sizeof(STRUCTS[name]), name


ELEMENTWISE_SOURCES = ("mn_mul.c", "mn_sub.c", "mn_activation.c")


@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m0plus"])
def test_elementwise_kernels_compile_warning_free_without_dsp(cpu, tmp_path):
    """Portable C: Armv6-M (no DSP, no SSAT, no 64-bit multiply instruction) builds them cleanly too."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    for name in ELEMENTWISE_SOURCES:
        cmd = [gcc, f"-mcpu={cpu}", "-mthumb", *CFLAGS, "-Wconversion", "-Wshadow", "-O2", "-I", str(KERNELS), "-c",
               str(KERNELS / name), "-o", str(tmp_path / "k.o")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"


# ---------------------------------------------------------------------------------------------
# on the target: QEMU Cortex-M4 (and M55) against TFLM host outputs, parameters as static const structs


def target_cases(tflm) -> str:
    rng = np.random.default_rng(777)
    c = CCases()
    mul_shapes = [((1, 7, 7, 48), (1, 1, 1, 48)), ((1, 1, 1, 24), (1, 5, 5, 24)), ((2, 3, 4, 5), (2, 3, 4, 5)),
                  ((1, 6, 6, 8), (1, 6, 1, 8))]
    for k, (s1, s2) in enumerate(mul_shapes):
        q1, q2, act = (0.047, 5), ((1.0 / 256.0, -128) if k < 2 else (0.021, -3)), ("NONE", "RELU", "RELU6", "NONE")[k]
        qo = (0.03, -128 if act != "NONE" else 9)
        x1, x2 = int8_array(rng, s1), int8_array(rng, s2)
        expected = tflm.run(ew.mul(s1, q1, s2, q2, qo, act), x1, x2)
        p = mul_struct(qe.mul_params(*q1, *q2, *qo, act), expected.size, s1, s2)
        name = c.struct(p, "mn_mul_params")
        fn = "mn_mul_s8" if s1 == s2 else "mn_mul_broadcast_s8"
        c.case(f"{fn} {k}", f"{fn}(&{name}, {c.array(x1)}, {c.array(x2)}, mn_buf)", expected)
    for k, (s1, s2) in enumerate([((1, 5, 5, 6), (1, 5, 5, 6)), ((1, 4, 4, 8), (8,))]):
        q1, q2, qo = (0.06, 3), (0.02, -11), (0.05, 7)
        x1, x2 = int8_array(rng, s1), int8_array(rng, s2)
        expected = tflm.run(ew.sub(s1, q1, s2, q2, qo, "RELU_N1_TO_1" if k else "NONE"), x1, x2)
        p = add_struct(qe.sub_params(*q1, *q2, *qo, "RELU_N1_TO_1" if k else "NONE"), expected.size, s1, s2)
        name = c.struct(p, "mn_add_params")
        fn = "mn_sub_s8" if s1 == s2 else "mn_sub_broadcast_s8"
        c.case(f"{fn} {k}", f"{fn}(&{name}, {c.array(x1)}, {c.array(x2)}, mn_buf)", expected)
    unary = [
        ("mn_hard_swish_s8", "mn_hard_swish_params", lambda s: ew.hard_swish(s, (0.08, -20), (0.05, -100)),
         hard_swish_struct, qe.hard_swish_params(0.08, -20, 0.05, -100)),
        ("mn_hard_swish_s8", "mn_hard_swish_params", lambda s: ew.hard_swish(s, (0.004, 10), (0.003, 0)),
         hard_swish_struct, qe.hard_swish_params(0.004, 10, 0.003, 0)),
        ("mn_logistic_s8", "mn_logistic_params", lambda s: ew.logistic(s, (0.1, -4)), logistic_struct,
         qe.logistic_params(0.1, -4)),
        ("mn_relu_s8", "mn_relu_params", lambda s: ew.relu(s, (0.05, -10), (0.03, -128)), relu_struct,
         qe.relu_params(0.05, -10, 0.03, -128)),
        ("mn_relu6_s8", "mn_relu6_params", lambda s: ew.relu6(s, (0.03, -128), (0.03, -128)), relu6_struct,
         qe.relu6_params(0.03, -128)),
    ]
    for k, (fn, ctype, model_for, make, p) in enumerate(unary):
        for n in (200, 700):  # direct and table paths
            x = int8_array(rng, (1, n))
            if n > 256:  # every int8 value through the table
                x[0, :256] = np.arange(-128, 128)
            expected = tflm.run(model_for(x.shape), x)
            name = c.struct(make(p, n), ctype)
            c.case(f"{fn} {k} n={n}", f"{fn}(&{name}, {c.array(x)}, mn_buf)", expected)
    # timing (printed, not checked): squeeze-excite MUL 14x14x96 and HARD_SWISH 14x14x96
    bench = ["    (void)mn_scratch; /* no kernel here needs scratch */"]
    s1, s2 = (1, 14, 14, 96), (1, 1, 1, 96)
    x1, x2 = int8_array(rng, s1), int8_array(rng, s2)
    p = mul_struct(qe.mul_params(0.05, 3, 1.0 / 256.0, -128, 0.04, -2), x1.size, s1, s2)
    mul_name, a1, a2 = c.struct(p, "mn_mul_params"), c.array(x1), c.array(x2)
    hs_name = c.struct(hard_swish_struct(qe.hard_swish_params(0.08, -20, 0.05, -100), x1.size),
                       "mn_hard_swish_params")
    c.buffer = max(c.buffer, x1.size)
    for label, call_ in (("mul_se 14x14x96", f"mn_mul_broadcast_s8(&{mul_name}, {a1}, {a2}, mn_buf)"),
                         ("hard_swish 14x14x96", f"mn_hard_swish_s8(&{hs_name}, {a1}, mn_buf)")):
        bench += ["    t0 = mn_test_ticks();", f"    (void){call_};",
                  f'    printf("bench {label}: %lu ticks\\n", (unsigned long)(mn_test_ticks() - t0));']
    return c.source(0, bench)


@pytest.fixture(scope="module")
def target_source(tflm, tmp_path_factory):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    path = tmp_path_factory.mktemp("target_elementwise") / "cases.c"
    path.write_text(target_cases(tflm))
    return path


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_elementwise_kernels_on_cortex_m_under_qemu(board, target_source, tmp_path):
    from mncompile.resources import firmware_dir
    from mncompile.run.qemu import run_qemu

    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed")
    flags, defines = QEMU_BOARDS[board]
    fw = firmware_dir()
    sources = [*sorted((fw / "common").glob("*.c")), *sorted((fw / "boards" / board).glob("*.c")),
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
                           "-Wl,--gc-sections", "-T", str(fw / "boards" / board / "linker.ld"), *objects,
                           "-o", str(elf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = run_qemu(elf, board, timeout=300)
    assert "kernels: 0 failed" in result.output and result.exit_code == 0, result.output
    print(f"{board}: " + "; ".join(line for line in result.output.splitlines() if line.startswith("bench")))
