"""firmware/kernels (the AOT int8 kernel library) is bit-exact with TFLM.

The independent reference is the real TFLM host interpreter (the `tflite-micro` wheel):
each case builds a one-operator int8 model with `tests/tflite_writer.py`, runs it on TFLM
(in a persistent worker process, so a TFLM abort fails the case instead of the session),
runs the C kernel (compiled for the host once per session, called through ctypes) with
parameters from `mncompile.graph.ops.quantmath`, and asserts the outputs are identical.
Hypothesis draws shapes, strides, paddings, per-channel scales over several orders of
magnitude, zero points and fused activations; arrays come from a drawn NumPy seed.
"""

from __future__ import annotations

import ctypes
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tflite_writer as writer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mncompile.graph.ops import quantmath as qm

REPO = Path(__file__).resolve().parents[1]
KERNELS = REPO / "firmware" / "kernels"
HARNESS = Path(__file__).resolve().parent / "kernels"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion"]
CASES = 200  # hypothesis examples per operator

SETTINGS = settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])
ACTIVATIONS = st.sampled_from(["NONE", "RELU", "RELU6"])


# ---------------------------------------------------------------------------------------------
# the C library through ctypes

I32 = ctypes.c_int32
P8 = ctypes.POINTER(ctypes.c_int8)
P32 = ctypes.POINTER(ctypes.c_int32)
PF = ctypes.POINTER(ctypes.c_float)


def _ints(names: str):
    return [(n, I32) for n in names.split()]


class ConvParams(ctypes.Structure):
    _fields_ = _ints("batches in_h in_w in_c out_h out_w out_c k_h k_w stride_h stride_w dilation_h dilation_w "
                     "pad_top pad_left in_offset out_offset act_min act_max") + [
        ("filter", P8), ("bias", P32), ("out_mult", P32), ("out_shift", P32), ("bias_sum", P32)]


class DwParams(ctypes.Structure):
    _fields_ = _ints("batches in_h in_w in_c out_h out_w out_c depth_mult k_h k_w stride_h stride_w dilation_h "
                     "dilation_w pad_top pad_left in_offset out_offset act_min act_max") + [
        ("filter", P8), ("bias", P32), ("out_mult", P32), ("out_shift", P32)]


class FcParams(ctypes.Structure):
    _fields_ = _ints("batches in_depth out_depth in_offset out_offset act_min act_max per_channel") + [
        ("weights", P8), ("bias", P32), ("out_mult", P32), ("out_shift", P32)]


class PoolParams(ctypes.Structure):
    _fields_ = _ints("batches in_h in_w channels out_h out_w k_h k_w stride_h stride_w pad_top pad_left "
                     "act_min act_max")


class MeanParams(ctypes.Structure):
    _fields_ = _ints("batches h w channels in_zp out_zp mult shift")


class SoftmaxParams(ctypes.Structure):
    _fields_ = _ints("outer depth input_multiplier input_left_shift diff_min")


class AddParams(ctypes.Structure):
    _fields_ = _ints("size in1_offset in2_offset out_offset left_shift in1_mult in1_shift in2_mult in2_shift "
                     "out_mult out_shift act_min act_max") + [
        ("out_dims", I32 * 4), ("in1_strides", I32 * 4), ("in2_strides", I32 * 4)]


class PadParams(ctypes.Structure):
    _fields_ = [("in_dims", I32 * 4), ("pad_before", I32 * 4), ("pad_after", I32 * 4), ("pad_value", I32)]


class AffineParams(ctypes.Structure):
    _fields_ = [("size", I32), ("scale", ctypes.c_float), ("zero_point", I32)]


STRUCTS = {"mn_conv_params": ConvParams, "mn_dw_params": DwParams, "mn_fc_params": FcParams,
           "mn_pool_params": PoolParams, "mn_mean_params": MeanParams, "mn_softmax_params": SoftmaxParams,
           "mn_add_params": AddParams, "mn_pad_params": PadParams, "mn_affine_params": AffineParams}

SIGNATURES = {
    "mn_conv2d_s8": [ConvParams, P8, P8], "mn_conv2d_generic_s8": [ConvParams, P8, P8],
    "mn_conv2d_1x1_s8": [ConvParams, P8, P8], "mn_depthwise_conv_s8": [DwParams, P8, P8, P8],
    "mn_fully_connected_s8": [FcParams, P8, P8], "mn_avgpool_s8": [PoolParams, P8, P8],
    "mn_mean_hw_s8": [MeanParams, P8, P8], "mn_softmax_s8": [SoftmaxParams, P8, P8],
    "mn_add_s8": [AddParams, P8, P8, P8], "mn_add_broadcast_s8": [AddParams, P8, P8, P8],
    "mn_pad_s8": [PadParams, P8, P8], "mn_quantize_f32_s8": [AffineParams, PF, P8],
    "mn_dequantize_s8_f32": [AffineParams, P8, PF],
}


def kernel_sources() -> list[Path]:
    return sorted(KERNELS.glob("*.c"))


# The host library is built twice: the portable C, and the Arm DSP-path code (SMLAD, SXTAB16, ...)
# with the ACLE intrinsics emulated in C (MN_KERNELS_EMULATE_DSP), so both paths meet TFLM here;
# the QEMU test below runs the real instructions.
HOST_BUILDS = {"portable": [], "dsp-emulated": ["-DMN_KERNELS_EMULATE_DSP"]}


@pytest.fixture(scope="session", params=sorted(HOST_BUILDS))
def lib(request, tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    out = tmp_path_factory.mktemp("kernels") / f"libmn_kernels_{request.param}.so"
    cmd = ["gcc", *CFLAGS, "-O2", *HOST_BUILDS[request.param], "-fPIC", "-shared", "-I", str(KERNELS),
           *map(str, kernel_sources()), str(HARNESS / "abi.c"), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    so = ctypes.CDLL(str(out))
    for name, args in SIGNATURES.items():
        fn = getattr(so, name)
        fn.argtypes = [ctypes.POINTER(args[0]), *args[1:]]
        fn.restype = ctypes.c_int
    so.mn_depthwise_scratch_bytes.argtypes = [ctypes.POINTER(DwParams)]
    so.mn_depthwise_scratch_bytes.restype = ctypes.c_size_t
    so.mn_requantize.argtypes = [I32, I32, I32]
    so.mn_requantize.restype = I32
    so.mn_test_sizeof.argtypes = [ctypes.c_char_p]
    so.mn_test_sizeof.restype = ctypes.c_size_t
    return so


def p8(a: np.ndarray):
    assert a.dtype == np.int8 and a.flags.c_contiguous
    return a.ctypes.data_as(P8)


def p32(a: np.ndarray | None):
    if a is None:
        return None
    assert a.dtype == np.int32 and a.flags.c_contiguous
    return a.ctypes.data_as(P32)


# ---------------------------------------------------------------------------------------------
# the TFLM host interpreter in a persistent worker process

WORKER = r"""
import os, pickle, struct, sys
proto_in = os.fdopen(os.dup(0), "rb")
proto_out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)  # anything TFLM prints goes to stderr, not into the protocol
import numpy as np
from tflite_micro.python.tflite_micro import runtime
while True:
    head = proto_in.read(4)
    if len(head) < 4:
        break
    model, inputs, arena = pickle.loads(proto_in.read(struct.unpack("<I", head)[0]))
    try:
        it = runtime.Interpreter.from_bytes(model, arena_size=arena)
        for i, x in enumerate(inputs):
            it.set_input(x, i)
        it.invoke()
        result = ("ok", np.array(it.get_output(0)))
    except Exception as exc:
        result = ("error", f"{type(exc).__name__}: {exc}")
    data = pickle.dumps(result)
    proto_out.write(struct.pack("<I", len(data)) + data)
    proto_out.flush()
"""


class Tflm:
    """Runs one-op models on the TFLM host interpreter in a worker; a crash of the worker
    (TFLM aborts on some invalid models) fails the case with TFLM's stderr and restarts it."""

    def __init__(self):
        self.proc = None
        self.log = tempfile.TemporaryFile()
        self.cache: dict[tuple, np.ndarray] = {}  # both host builds of the kernels meet the same cases

    def run(self, model: bytes, *inputs: np.ndarray, arena: int = 1 << 18) -> np.ndarray:
        xs = [np.ascontiguousarray(x) for x in inputs]
        key = (model, arena, *((x.dtype.str, x.shape, x.tobytes()) for x in xs))
        if key not in self.cache:
            if len(self.cache) > 20000:
                self.cache.clear()
            self.cache[key] = self._run(model, *xs, arena=arena)
        return self.cache[key].copy()

    def _start(self):
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def _run(self, model: bytes, *inputs: np.ndarray, arena: int) -> np.ndarray:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        data = pickle.dumps((model, [np.ascontiguousarray(x) for x in inputs], arena))
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
            head = self.proc.stdout.read(4)
            if len(head) < 4:
                raise EOFError
            status, value = pickle.loads(self.proc.stdout.read(struct.unpack("<I", head)[0]))
        except (EOFError, BrokenPipeError):
            code = self.proc.wait()
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-2000:]
            self.proc = None
            raise AssertionError(f"the TFLM worker died (exit {code}) on this model:\n{tail}") from None
        if status != "ok":
            raise AssertionError(f"TFLM rejected the model: {value}")
        return value

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="session")
def tflm():
    worker = Tflm()
    yield worker
    worker.close()


# ---------------------------------------------------------------------------------------------
# drawing cases


def log_uniform(lo: float, hi: float):
    """10**u, u uniform in [lo, hi], rounded to float32 (what a .tflite stores)."""
    return st.floats(lo, hi).map(lambda u: float(np.float32(10.0 ** u)))


@st.composite
def quant_ab(draw, lo=-3.0, hi=0.0):
    return draw(log_uniform(lo, hi)), draw(st.integers(-128, 127))


def weight_scales(draw, rng: np.random.Generator, channels: int, exact: bool = False) -> list[float]:
    """Per-channel (usually) or per-tensor weight scales spread over up to 3 orders of
    magnitude; `exact`: powers of two, so that multipliers are exactly 2^30 and the rounding
    of ties (in SaturatingRoundingDoublingHighMul and RoundingDivideByPOT) is exercised."""
    n = 1 if draw(st.integers(0, 5)) == 0 else channels
    if exact:
        return [2.0 ** -int(k) for k in rng.integers(5, 13, n)]
    base = draw(st.floats(-4.0, -1.0))
    spread = draw(st.sampled_from([0.0, 0.3, 1.0, 3.0]))
    return [float(np.float32(10.0 ** (base + rng.uniform(-spread / 2, spread / 2)))) for _ in range(n)]


def output_zero_point(draw, act: str) -> int:
    """The converter gives RELU/RELU6 outputs zero point -128 (their range starts at 0)."""
    if act != "NONE" and draw(st.integers(0, 2)):
        return -128
    return draw(st.integers(-128, 127))


def layer_scales(draw, rng: np.random.Generator, channels: int, taps: int, act: str):
    """(input (scale, zp), weight scales, output (scale, zp), largest weight magnitude) of a
    conv/depthwise/FC layer. The input scale is derived so that the accumulator (spread about
    sqrt(taps) * 0.58 * wmax * 100) lands mostly inside int8 after requantization. Modes:
    spread scales (most cases); `exact` powers of two, so that multipliers are exactly 2^30 and
    ties are rounded (SaturatingRoundingDoublingHighMul, RoundingDivideByPOT), with small
    weights so that the right shift is small and a tie changes the output; effective scales
    >= 1 (positive shifts); RELU6 outputs at the converter's usual scale, about 6/255."""
    mode = draw(st.integers(0, 9))
    exact = mode == 0
    wmax = draw(st.sampled_from([1, 2, 3, 127])) if exact else 127
    ws = weight_scales(draw, rng, channels, exact)
    spread = math.sqrt(max(taps, 1)) * 0.58 * wmax * 100.0
    if exact:
        out_scale = 2.0 ** -draw(st.integers(0, 10))
        in_scale = out_scale / ws[0] * 2.0 ** (draw(st.integers(-2, 2)) - max(0, round(math.log2(spread / 50))))
    else:
        if act == "RELU6" and draw(st.booleans()):
            out_scale = float(np.float32(6.0 / 255.0 * 10.0 ** draw(st.floats(-0.3, 0.3))))
        else:
            out_scale = draw(log_uniform(-3.0, 0.0))
        if mode == 1:  # effective scale in [1, 30): positive shifts
            in_scale = out_scale * draw(st.floats(1.0, 30.0)) / max(ws)
        else:
            in_scale = out_scale * 50.0 / (float(np.median(ws)) * spread) * 10.0 ** draw(st.floats(-1.0, 1.0))
    in_q = (float(np.float32(in_scale)), draw(st.integers(-128, 127)))
    return in_q, ws, (float(np.float32(out_scale)), output_zero_point(draw, act)), wmax


def bias_values(draw, rng: np.random.Generator, channels: int, taps: int) -> np.ndarray | None:
    """None, or biases up to about the accumulator's spread (sometimes far beyond)."""
    mode = draw(st.integers(0, 5))
    if mode == 0:
        return None
    mag = int(math.sqrt(taps) * 7300 * 10.0 ** draw(st.floats(-4.0, 0.3 if mode > 1 else 2.0)))
    return rng.integers(-mag, mag + 1, channels, dtype=np.int64).astype(np.int32)


def int8_array(rng: np.random.Generator, shape, lo: int = -128, hi: int = 127) -> np.ndarray:
    return rng.integers(lo, hi + 1, shape, dtype=np.int64).astype(np.int8)


def weights_array(rng: np.random.Generator, shape, wmax: int = 127) -> np.ndarray:
    return int8_array(rng, shape, -wmax, wmax)


def requant_tables(p: qm.ChannelRequant) -> tuple[np.ndarray, np.ndarray]:
    return np.array(p.multipliers, dtype=np.int32), np.array(p.shifts, dtype=np.int32)


# ---------------------------------------------------------------------------------------------
# the C structs, filled the way the code generator will fill them


def conv_struct(case: dict, x_shape, filt: np.ndarray, bias, keep: list, folded: bool = False) -> ConvParams:
    """`folded`: the code generator's form, bias NULL and bias_sum = bias + in_offset * filter row sums."""
    n, h, w, c = x_shape
    o, kh, kw, _ = filt.shape
    g = qm.window_geometry(case["padding"], h, w, kh, kw, *case["stride"], *case["dilation"])
    p = qm.conv_params(case["in_q"][0], case["in_q"][1], case["w_scales"], case["out_q"][0], case["out_q"][1],
                       case["act"], channels=o)
    mult, shift = requant_tables(p)
    bias_sum = qm.folded_bias(filt, bias, p.in_offset) if folded else None
    keep += [filt, bias, mult, shift, bias_sum]
    return ConvParams(n, h, w, c, g.out_h, g.out_w, o, kh, kw, *case["stride"], *case["dilation"], g.pad_top,
                      g.pad_left, p.in_offset, p.out_offset, p.act_min, p.act_max, p8(filt),
                      None if folded else p32(bias), p32(mult), p32(shift), p32(bias_sum))


def dw_struct(case: dict, x_shape, filt: np.ndarray, bias, keep: list) -> DwParams:
    n, h, w, c = x_shape
    _, kh, kw, o = filt.shape
    g = qm.window_geometry(case["padding"], h, w, kh, kw, *case["stride"], *case["dilation"])
    p = qm.conv_params(case["in_q"][0], case["in_q"][1], case["w_scales"], case["out_q"][0], case["out_q"][1],
                       case["act"], channels=o)
    mult, shift = requant_tables(p)
    keep += [filt, bias, mult, shift]
    return DwParams(n, h, w, c, g.out_h, g.out_w, o, o // c, kh, kw, *case["stride"], *case["dilation"], g.pad_top,
                    g.pad_left, p.in_offset, p.out_offset, p.act_min, p.act_max, p8(filt), p32(bias), p32(mult),
                    p32(shift))


# ---------------------------------------------------------------------------------------------
# CONV_2D


@st.composite
def conv_cases(draw, pointwise: bool = False):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.sampled_from([1, 1, 1, 2]))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    c, o = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    if pointwise:  # wider channels: the fast path works on blocks of four output channels
        c, o = draw(st.integers(1, 40)), draw(st.integers(1, 24))
        kh = kw = 1
        stride, dilation = (1, 1), (1, 1)
    else:
        kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dilation = (1, 1) if draw(st.integers(0, 4)) else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    assume(qm.out_size(padding, h, kh, stride[0], dilation[0]) > 0)
    assume(qm.out_size(padding, w, kw, stride[1], dilation[1]) > 0)
    act = draw(ACTIVATIONS)
    in_q, ws, out_q, wmax = layer_scales(draw, rng, o, kh * kw * c, act)
    return {"x_shape": (n, h, w, c), "filter": weights_array(rng, (o, kh, kw, c), wmax), "w_scales": ws,
            "bias": bias_values(draw, rng, o, kh * kw * c), "in_q": in_q, "out_q": out_q, "stride": stride,
            "dilation": dilation, "padding": padding, "act": act, "x": int8_array(rng, (n, h, w, c))}


def conv_model(case: dict) -> bytes:
    return writer.conv2d(case["x_shape"], case["in_q"], case["filter"], case["w_scales"], case["bias"],
                         case["out_q"], case["stride"], case["padding"], case["dilation"], case["act"])


def run_conv(lib, case: dict, fn: str, folded: bool = False) -> np.ndarray:
    keep: list = []
    p = conv_struct(case, case["x_shape"], case["filter"], case["bias"], keep, folded)
    out = np.full((p.batches, p.out_h, p.out_w, p.out_c), 99, dtype=np.int8)
    assert getattr(lib, fn)(ctypes.byref(p), p8(case["x"]), p8(out)) == 0
    return out


@SETTINGS
@given(case=conv_cases())
def test_conv2d_matches_tflm(lib, tflm, case):
    expected = tflm.run(conv_model(case), case["x"])
    got = run_conv(lib, case, "mn_conv2d_s8")
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(run_conv(lib, case, "mn_conv2d_generic_s8"), expected)
    np.testing.assert_array_equal(run_conv(lib, case, "mn_conv2d_s8", folded=True), expected)


@SETTINGS
@given(case=conv_cases(pointwise=True))
def test_conv2d_1x1_fast_path_matches_tflm(lib, tflm, case):
    expected = tflm.run(conv_model(case), case["x"])
    np.testing.assert_array_equal(run_conv(lib, case, "mn_conv2d_1x1_s8"), expected)
    np.testing.assert_array_equal(run_conv(lib, case, "mn_conv2d_generic_s8"), expected)
    for fn in ("mn_conv2d_1x1_s8", "mn_conv2d_generic_s8"):
        np.testing.assert_array_equal(run_conv(lib, case, fn, folded=True), expected)


def test_dead_channel_takes_the_fast_requantization_and_matches_tflm(lib, tflm):
    """A channel whose effective scale is below 2^-32 has the multiplier (0, 0), which alone would send
    the layer down the general requantization; the code generator's tables give it the right shift 2
    (`lowering.requant_tables`), where the one-multiply path also yields 0: TFLM's outputs either way."""
    from mncompile.graph.ops import lowering

    rng = np.random.default_rng(3)
    ws = [0.01, 1e-13, 0.02, 0.005]
    case = {"x_shape": (1, 5, 6, 12), "filter": weights_array(rng, (4, 1, 1, 12)), "w_scales": ws,
            "bias": rng.integers(-500, 500, 4).astype(np.int32), "in_q": (0.05, 7), "out_q": (0.3, -3),
            "stride": (1, 1), "dilation": (1, 1), "padding": "SAME", "act": "NONE", "x": int8_array(rng, (1, 5, 6, 12))}
    expected = tflm.run(conv_model(case), case["x"])
    req = qm.conv_params(0.05, 7, ws, 0.3, -3, "NONE", channels=4)
    assert req.multipliers[1] == 0 and req.shifts[1] == 0
    tables = {t.name: t.values for t in lowering.requant_tables(req)}
    assert int(tables["shift"][1]) == -2 and lowering.fast_requant({"act_min": -128, "act_max": 127}, tables)
    for fn in ("mn_conv2d_1x1_s8", "mn_conv2d_generic_s8"):
        for folded in (False, True):
            keep: list = []
            p = conv_struct(case, case["x_shape"], case["filter"], case["bias"], keep, folded)
            shift = tables["shift"].astype(np.int32)
            p.out_shift = p32(shift)
            out = np.full(expected.shape, 99, dtype=np.int8)
            assert getattr(lib, fn)(ctypes.byref(p), p8(case["x"]), p8(out)) == 0
            np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("depth, out_c", [(8, 16), (16, 32), (8, 3), (16, 48)])
def test_shallow_pointwise_path_matches_tflm(lib, tflm, depth, out_c):
    """Depth 8 and 16 with the fast requantization take the one-pixel path with a widened filter
    table (the last shape's table is too large: the four-pixel GEMM); bias and bias_sum."""
    rng = np.random.default_rng(depth * 100 + out_c)
    ws = [float(np.float32(v)) for v in rng.uniform(0.002, 0.02, out_c)]
    case = {"x_shape": (1, 7, 5, depth), "filter": weights_array(rng, (out_c, 1, 1, depth)), "w_scales": ws,
            "bias": rng.integers(-3000, 3000, out_c).astype(np.int32), "in_q": (0.04, -9), "out_q": (0.05, 6),
            "stride": (1, 1), "dilation": (1, 1), "padding": "SAME", "act": "NONE",
            "x": int8_array(rng, (1, 7, 5, depth))}
    expected = tflm.run(conv_model(case), case["x"])
    for folded in (False, True):
        np.testing.assert_array_equal(run_conv(lib, case, "mn_conv2d_1x1_s8", folded), expected)


def test_conv2d_1x1_fast_path_refuses_other_geometry(lib):
    case = {"x_shape": (1, 4, 4, 2), "filter": np.ones((3, 3, 3, 2), np.int8), "w_scales": [0.01], "bias": None,
            "in_q": (0.1, 0), "out_q": (0.1, 0), "stride": (1, 1), "dilation": (1, 1), "padding": "SAME",
            "act": "NONE", "x": np.zeros((1, 4, 4, 2), np.int8)}
    keep: list = []
    p = conv_struct(case, case["x_shape"], case["filter"], None, keep)
    out = np.zeros((1, 4, 4, 3), np.int8)
    assert lib.mn_conv2d_1x1_s8(ctypes.byref(p), p8(case["x"]), p8(out)) == -1


# ---------------------------------------------------------------------------------------------
# DEPTHWISE_CONV_2D, out of place and in place


@st.composite
def dw_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.sampled_from([1, 1, 1, 2]))
    h, w, c = draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.integers(1, 16))
    dm = draw(st.sampled_from([1, 1, 1, 2, 3]))
    kh, kw = draw(st.sampled_from([(3, 3), (3, 3), (5, 5), (1, 1), (2, 3), (3, 1)]))
    s = draw(st.sampled_from([1, 2]))
    stride = (s, s) if draw(st.integers(0, 4)) else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1) if draw(st.integers(0, 5)) else (2, 2)
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    assume(qm.out_size(padding, h, kh, stride[0], dilation[0]) > 0)
    assume(qm.out_size(padding, w, kw, stride[1], dilation[1]) > 0)
    act = draw(ACTIVATIONS)
    in_q, ws, out_q, wmax = layer_scales(draw, rng, c * dm, kh * kw, act)
    bias = bias_values(draw, rng, c * dm, kh * kw)
    if bias is None:  # TFLM's depthwise kernel requires a bias
        bias = np.zeros(c * dm, np.int32)
    return {"x_shape": (n, h, w, c), "filter": weights_array(rng, (1, kh, kw, c * dm), wmax), "w_scales": ws,
            "bias": bias, "in_q": in_q, "out_q": out_q, "stride": stride, "dilation": dilation,
            "padding": padding, "act": act, "x": int8_array(rng, (n, h, w, c))}


@SETTINGS
@given(case=dw_cases())
def test_depthwise_matches_tflm_out_of_place_and_in_place(lib, tflm, case):
    model = writer.depthwise_conv2d(case["x_shape"], case["in_q"], case["filter"], case["w_scales"], case["bias"],
                                    case["out_q"], case["stride"], case["padding"], case["dilation"],
                                    case["filter"].shape[3] // case["x_shape"][3], case["act"])
    expected = tflm.run(model, case["x"])
    keep: list = []
    p = dw_struct(case, case["x_shape"], case["filter"], case["bias"], keep)
    out = np.full((p.batches, p.out_h, p.out_w, p.out_c), 99, dtype=np.int8)
    assert lib.mn_depthwise_conv_s8(ctypes.byref(p), p8(case["x"]), p8(out), None) == 0
    np.testing.assert_array_equal(out, expected)

    scratch_bytes = lib.mn_depthwise_scratch_bytes(ctypes.byref(p))
    if p.depth_mult != 1:
        assert scratch_bytes == 0
        return
    n, h, w, c = case["x_shape"]
    assert scratch_bytes == h * w  # one input channel plane
    # in place: one buffer holds the input, then the output (guard bytes around the scratch
    # catch writes past what mn_depthwise_scratch_bytes asked for)
    buf = case["x"].copy().ravel()
    guard = np.full(scratch_bytes + 32, 55, dtype=np.int8)
    scratch = guard[16:16 + scratch_bytes]
    assert lib.mn_depthwise_conv_s8(ctypes.byref(p), p8(buf), p8(buf), scratch.ctypes.data_as(P8)) == 0
    np.testing.assert_array_equal(buf[:expected.size].reshape(expected.shape), expected)
    assert (guard[:16] == 55).all() and (guard[16 + scratch_bytes:] == 55).all()


def test_depthwise_in_place_needs_scratch_and_multiplier_one(lib):
    x = np.zeros((1, 4, 4, 2), np.int8)
    filt, bias = np.ones((1, 3, 3, 2), np.int8), np.zeros(2, np.int32)
    case = {"w_scales": [0.01], "in_q": (0.1, 0), "out_q": (0.1, 0), "stride": (1, 1), "dilation": (1, 1),
            "padding": "SAME", "act": "NONE"}
    keep: list = []
    p = dw_struct(case, x.shape, filt, bias, keep)
    assert lib.mn_depthwise_conv_s8(ctypes.byref(p), p8(x), p8(x), None) == -1


# ---------------------------------------------------------------------------------------------
# FULLY_CONNECTED, per tensor and per channel


@st.composite
def fc_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    b, i, o = draw(st.integers(1, 3)), draw(st.integers(1, 64)), draw(st.integers(1, 16))
    act = draw(ACTIVATIONS)
    in_q, ws, out_q, wmax = layer_scales(draw, rng, o, i, act)
    if not draw(st.booleans()):
        ws = ws[:1]  # per tensor
    elif len(ws) == 1 and o > 1:
        ws = ws * o  # per channel with equal scales is still TFLM's per-channel path
    return {"x_shape": (b, i), "weights": weights_array(rng, (o, i), wmax), "w_scales": ws,
            "bias": bias_values(draw, rng, o, i), "in_q": in_q, "out_q": out_q, "act": act,
            "x": int8_array(rng, (b, i))}


@SETTINGS
@given(case=fc_cases())
def test_fully_connected_matches_tflm(lib, tflm, case):
    model = writer.fully_connected(case["x_shape"], case["in_q"], case["weights"], case["w_scales"], case["bias"],
                                   case["out_q"], case["act"])
    expected = tflm.run(model, case["x"])
    b, i = case["x_shape"]
    o = case["weights"].shape[0]
    bias_scale = float(np.float32(case["in_q"][0]) * np.float32(case["w_scales"][0]))
    p = qm.fully_connected_params(case["in_q"][0], case["in_q"][1], case["w_scales"], case["out_q"][0],
                                  case["out_q"][1], case["act"], bias_scale if case["bias"] is not None else None)
    assert p.per_channel == (len(case["w_scales"]) > 1)
    mult, shift = requant_tables(p)
    params = FcParams(b, i, o, p.in_offset, p.out_offset, p.act_min, p.act_max, int(p.per_channel),
                      p8(case["weights"]), p32(case["bias"]), p32(mult), p32(shift))
    out = np.full((b, o), 99, dtype=np.int8)
    assert lib.mn_fully_connected_s8(ctypes.byref(params), p8(case["x"]), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)


# ---------------------------------------------------------------------------------------------
# AVERAGE_POOL_2D and MEAN


@st.composite
def pool_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.sampled_from([1, 1, 2]))
    h, w, c = draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.integers(1, 16))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    assume(qm.out_size(padding, h, k[0], stride[0]) > 0 and qm.out_size(padding, w, k[1], stride[1]) > 0)
    return {"x_shape": (n, h, w, c), "k": k, "stride": stride, "padding": padding, "q": draw(quant_ab(-3.0, 1.0)),
            "act": draw(ACTIVATIONS), "x": int8_array(rng, (n, h, w, c))}


@SETTINGS
@given(case=pool_cases())
def test_average_pool_matches_tflm(lib, tflm, case):
    model = writer.average_pool2d(case["x_shape"], case["q"], case["k"], case["stride"], case["padding"], case["act"])
    expected = tflm.run(model, case["x"])
    n, h, w, c = case["x_shape"]
    g = qm.window_geometry(case["padding"], h, w, *case["k"], *case["stride"])
    lo, hi = qm.activation_range(case["act"], *case["q"])
    p = PoolParams(n, h, w, c, g.out_h, g.out_w, *case["k"], *case["stride"], g.pad_top, g.pad_left, lo, hi)
    out = np.full((n, g.out_h, g.out_w, c), 99, dtype=np.int8)
    assert lib.mn_avgpool_s8(ctypes.byref(p), p8(case["x"]), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)


@st.composite
def mean_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.sampled_from([1, 1, 2]))
    h, w, c = draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.integers(1, 16))
    in_q = draw(quant_ab(-3.0, 1.0))
    out_scale = float(np.float32(in_q[0] * 10.0 ** draw(st.floats(-2.0, 2.0))))
    return {"x_shape": (n, h, w, c), "in_q": in_q, "out_q": (out_scale, draw(st.integers(-128, 127))),
            "keep_dims": draw(st.booleans()), "axes": draw(st.sampled_from([(1, 2), (2, 1)])),
            "x": int8_array(rng, (n, h, w, c))}


@SETTINGS
@given(case=mean_cases())
def test_mean_hw_matches_tflm(lib, tflm, case):
    model = writer.mean(case["x_shape"], case["in_q"], case["out_q"], case["axes"], case["keep_dims"])
    expected = tflm.run(model, case["x"])
    n, h, w, c = case["x_shape"]
    mult, shift = qm.mean_params(case["in_q"][0], case["out_q"][0], h * w)
    p = MeanParams(n, h, w, c, case["in_q"][1], case["out_q"][1], mult, shift)
    out = np.full(expected.shape, 99, dtype=np.int8)
    assert lib.mn_mean_hw_s8(ctypes.byref(p), p8(case["x"]), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)


# ---------------------------------------------------------------------------------------------
# SOFTMAX


@st.composite
def softmax_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # TFLM aborts once the sum of exps reaches 2^28 in Q12.19 (512 row maxima); see below
    depth = draw(st.sampled_from([1, 2, 3, 4, 5, 8, 10, 16, 37, 100, 511]))
    shape = draw(st.sampled_from([(1, depth), (2, depth), (1, 1, 1, depth), (1, 2, 3, depth)]))
    in_q = draw(quant_ab(-3.0, 1.0))
    beta = 1.0 if draw(st.integers(0, 3)) else float(np.float32(draw(st.floats(0.05, 4.0))))
    lo = draw(st.integers(-128, 127))
    hi = draw(st.integers(lo, 127))  # narrow ranges give ties and many equal exps
    return {"shape": shape, "in_q": in_q, "beta": beta, "x": int8_array(rng, shape, lo, hi)}


@SETTINGS
@given(case=softmax_cases())
def test_softmax_matches_tflm(lib, tflm, case):
    try:
        sp = qm.softmax_params(case["in_q"][0], case["beta"])
    except qm.QuantMathError:
        assume(False)  # TFLM CHECK-fails these (beta * scale * 2^26 <= 1)
    expected = tflm.run(writer.softmax(case["shape"], case["in_q"], case["beta"]), case["x"])
    depth = case["shape"][-1]
    p = SoftmaxParams(case["x"].size // depth, depth, sp.input_multiplier, sp.input_left_shift, sp.diff_min)
    out = np.full(case["shape"], 99, dtype=np.int8)
    assert lib.mn_softmax_s8(ctypes.byref(p), p8(case["x"]), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)
    inplace = case["x"].copy()
    assert lib.mn_softmax_s8(ctypes.byref(p), p8(inplace), p8(inplace)) == 0
    np.testing.assert_array_equal(inplace, expected)


def test_softmax_refuses_rows_whose_sum_of_exps_tflm_cannot_scale(lib, tflm):
    """511 equal inputs: the sum of exps (Q12.19) stays below 2^28 and both agree; 512: TFLM's
    TFLITE_CHECK(0 <= exponent && exponent <= 31) aborts, and the kernel returns MN_EINVAL."""
    sp = qm.softmax_params(0.1)
    for depth, ok in ((511, True), (512, False)):
        x = np.full((1, depth), 7, np.int8)
        p = SoftmaxParams(1, depth, sp.input_multiplier, sp.input_left_shift, sp.diff_min)
        out = np.zeros_like(x)
        status = lib.mn_softmax_s8(ctypes.byref(p), p8(x), p8(out))
        if ok:
            assert status == 0
            np.testing.assert_array_equal(out, tflm.run(writer.softmax(x.shape, (0.1, 0)), x))
        else:
            assert status == -1
            with pytest.raises(AssertionError, match="worker died"):
                tflm.run(writer.softmax(x.shape, (0.1, 0)), x)


# ---------------------------------------------------------------------------------------------
# ADD (same shape, in place, broadcast)


@st.composite
def add_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = tuple(draw(st.lists(st.integers(1, 8), min_size=1, max_size=4)))
    if draw(st.integers(0, 2)) == 0:  # broadcast: set some dims of one input to 1
        other = tuple(1 if draw(st.booleans()) else d for d in shape)
        other = other[draw(st.integers(0, len(other) - 1)):] if draw(st.booleans()) else other
        shape1, shape2 = (shape, other) if draw(st.booleans()) else (other, shape)
    else:
        shape1 = shape2 = shape
    q1, q2 = draw(quant_ab(-3.0, 0.5)), draw(quant_ab(-3.0, 0.5))
    act = draw(ACTIVATIONS)
    mode = draw(st.integers(0, 5))
    if mode == 0:  # equal input scales and a power-of-two output ratio: exact multipliers, ties
        q2 = (q1[0], q2[1])
        out_scale = q1[0] * 2.0 ** draw(st.integers(-1, 3))
    elif mode == 1:  # far off: mostly saturated, or a tiny range
        out_scale = float(np.float32(max(q1[0], q2[0]) * 10.0 ** draw(st.floats(-2.0, 2.5))))
    else:
        out_scale = float(np.float32(max(q1[0], q2[0]) * 10.0 ** draw(st.floats(0.0, 1.0))))
    return {"shape1": shape1, "shape2": shape2, "q1": q1, "q2": q2, "out_q": (out_scale, output_zero_point(draw, act)),
            "act": act, "x1": int8_array(rng, shape1), "x2": int8_array(rng, shape2)}


@SETTINGS
@given(case=add_cases())
def test_add_matches_tflm(lib, tflm, case):
    model = writer.add(case["shape1"], case["q1"], case["shape2"], case["q2"], case["out_q"], case["act"])
    expected = tflm.run(model, case["x1"], case["x2"])
    a = qm.add_params(*case["q1"], *case["q2"], *case["out_q"], case["act"])
    dims, s1, s2 = qm.broadcast_strides(case["shape1"], case["shape2"])
    p = AddParams(expected.size, a.in1_offset, a.in2_offset, a.out_offset, a.left_shift, a.in1_mult, a.in1_shift,
                  a.in2_mult, a.in2_shift, a.out_mult, a.out_shift, a.act_min, a.act_max, (I32 * 4)(*dims),
                  (I32 * 4)(*s1), (I32 * 4)(*s2))
    out = np.full(expected.shape, 99, dtype=np.int8)
    assert lib.mn_add_broadcast_s8(ctypes.byref(p), p8(case["x1"]), p8(case["x2"]), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)
    if case["shape1"] == case["shape2"]:
        out = np.full(expected.shape, 99, dtype=np.int8)
        assert lib.mn_add_s8(ctypes.byref(p), p8(case["x1"]), p8(case["x2"]), p8(out)) == 0
        np.testing.assert_array_equal(out, expected)
        inplace = case["x1"].copy()  # out aliases in1
        assert lib.mn_add_s8(ctypes.byref(p), p8(inplace), p8(case["x2"]), p8(inplace)) == 0
        np.testing.assert_array_equal(inplace, expected)


@settings(SETTINGS, max_examples=40)
@given(q1=quant_ab(-3.0, 0.5), q2=quant_ab(-3.0, 0.5), ratio=st.floats(-1.0, 1.5), act=ACTIVATIONS,
       zp=st.integers(-128, 127))
def test_add_every_pair_of_int8_inputs(lib, tflm, q1, q2, ratio, act, zp):
    """All 65536 input pairs at once (broadcast [256, 1] + [1, 256])."""
    a = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
    b = a.reshape(1, 256).copy()
    out_q = (float(np.float32(max(q1[0], q2[0]) * 10.0**ratio)), zp)
    expected = tflm.run(writer.add(a.shape, q1, b.shape, q2, out_q, act), a, b)
    p = qm.add_params(*q1, *q2, *out_q, act)
    dims, s1, s2 = qm.broadcast_strides(a.shape, b.shape)
    params = AddParams(expected.size, p.in1_offset, p.in2_offset, p.out_offset, p.left_shift, p.in1_mult,
                       p.in1_shift, p.in2_mult, p.in2_shift, p.out_mult, p.out_shift, p.act_min, p.act_max,
                       (I32 * 4)(*dims), (I32 * 4)(*s1), (I32 * 4)(*s2))
    out = np.zeros(expected.shape, np.int8)
    assert lib.mn_add_broadcast_s8(ctypes.byref(params), p8(a), p8(b), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)


@settings(SETTINGS, max_examples=40)
@given(q=quant_ab(-3.0, 1.0), beta=st.sampled_from([1.0, 1.0, 0.5, 2.0, 0.1]))
def test_softmax_every_pair_of_int8_inputs(lib, tflm, q, beta):
    """Two-element rows: all 65536 pairs at once."""
    try:
        sp = qm.softmax_params(q[0], beta)
    except qm.QuantMathError:
        assume(False)
    v = np.arange(-128, 128, dtype=np.int8)
    x = np.stack(np.meshgrid(v, v, indexing="ij"), axis=-1).reshape(-1, 2).copy()
    expected = tflm.run(writer.softmax(x.shape, q, beta), x, arena=1 << 20)
    params = SoftmaxParams(x.shape[0], 2, sp.input_multiplier, sp.input_left_shift, sp.diff_min)
    out = np.zeros_like(x)
    assert lib.mn_softmax_s8(ctypes.byref(params), p8(x), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)


# ---------------------------------------------------------------------------------------------
# PAD and RESHAPE


@st.composite
def pad_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = tuple(draw(st.lists(st.integers(1, 8), min_size=1, max_size=4)))
    pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in shape]
    return {"shape": shape, "pads": pads, "q": draw(quant_ab()), "x": int8_array(rng, shape)}


@SETTINGS
@given(case=pad_cases())
def test_pad_matches_tflm(lib, tflm, case):
    expected = tflm.run(writer.pad(case["shape"], case["q"], case["pads"]), case["x"])
    lead = 4 - len(case["shape"])
    dims = (1,) * lead + case["shape"]
    before = (0,) * lead + tuple(b for b, _ in case["pads"])
    after = (0,) * lead + tuple(a for _, a in case["pads"])
    p = PadParams((I32 * 4)(*dims), (I32 * 4)(*before), (I32 * 4)(*after), case["q"][1])
    out = np.full(expected.shape, 99, dtype=np.int8)
    assert lib.mn_pad_s8(ctypes.byref(p), p8(case["x"]), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)


@settings(SETTINGS, max_examples=50)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1))
def test_reshape_is_a_view_in_tflm(tflm, shape, seed):
    """RESHAPE needs no kernel: TFLM's output holds the input's bytes unchanged."""
    x = int8_array(np.random.default_rng(seed), tuple(shape))
    new_shape = (1, x.size) if len(shape) > 1 else (x.size, 1)
    expected = tflm.run(writer.reshape(tuple(shape), (0.05, 3), new_shape), x)
    assert expected.shape == new_shape
    np.testing.assert_array_equal(expected.ravel(), x.ravel())


# ---------------------------------------------------------------------------------------------
# QUANTIZE and DEQUANTIZE


@st.composite
def quantize_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale, zp = draw(log_uniform(-4.0, 1.0)), draw(st.integers(-128, 127))
    n = draw(st.integers(1, 64))
    k = rng.integers(-300, 300, n)
    kind = rng.integers(0, 4, n)
    s32 = np.float32(scale)
    x = np.where(kind == 0, (k + 0.5) * scale,  # half-way points (before float32 rounding)
                 np.where(kind == 1, k * scale, rng.uniform(-300, 300, n) * scale))
    x = x.astype(np.float32)
    halves = (np.arange(n) % 5 == 4)
    x[halves] = (np.float32(k[halves]) + np.float32(0.5)) * s32  # exact float32 half-way products
    if draw(st.booleans()):
        x[0] = np.float32(0.0)
        x[-1] = np.float32(-0.0)
    return {"x": x.reshape(1, n), "q": (scale, zp)}


@SETTINGS
@given(case=quantize_cases())
def test_quantize_matches_tflm(lib, tflm, case):
    expected = tflm.run(writer.quantize(case["x"].shape, case["q"]), case["x"])
    p = AffineParams(case["x"].size, case["q"][0], case["q"][1])
    out = np.full(case["x"].shape, 99, dtype=np.int8)
    assert lib.mn_quantize_f32_s8(ctypes.byref(p), case["x"].ctypes.data_as(PF), p8(out)) == 0
    np.testing.assert_array_equal(out, expected)


@SETTINGS
@given(q=quant_ab(-8.0, 3.0))
def test_dequantize_matches_tflm_bit_for_bit(lib, tflm, q):
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    expected = tflm.run(writer.dequantize(x.shape, q), x)
    assert expected.dtype == np.float32
    p = AffineParams(x.size, q[0], q[1])
    out = np.zeros(x.shape, dtype=np.float32)
    assert lib.mn_dequantize_s8_f32(ctypes.byref(p), p8(x), out.ctypes.data_as(PF)) == 0
    np.testing.assert_array_equal(out.view(np.int32), expected.view(np.int32))


# ---------------------------------------------------------------------------------------------
# QuantizeMultiplier and the requantization primitive

# (real multiplier, TFLM's (quantized_multiplier, shift)), derived by hand from
# QuantizeMultiplier: q, shift = frexp(real); q_fixed = round_half_away(q * 2^31);
# q_fixed == 2^31 -> (2^30, shift + 1); shift < -31 -> (0, 0).
MULTIPLIER_CASES = [
    (0.0, (0, 0)),
    (0.5, (1 << 30, 0)),
    (1.0, (1 << 30, 1)),  # scales >= 1 give a positive (left) shift
    (0.75, (1610612736, 0)),
    (1.5, (1610612736, 1)),
    (3.0, (1610612736, 2)),
    (100.0, (1677721600, 7)),  # 100 = 0.78125 * 2^7
    (0.1, (1717986918, -3)),  # 0.8 * 2^31 = 1717986918.4
    (2.0**-31, (1 << 30, -30)),
    (2.0**-32, (1 << 30, -31)),  # the smallest shift kept
    (2.0**-33, (0, 0)),  # shift -32 < -31: flushed to zero
    (1.0 - 2.0**-40, (1 << 30, 1)),  # rounds up to 2^31: halved, shift + 1
    (1.0 - 2.0**-34, (1 << 30, 1)),
    (0.5 - 2.0**-45, (1 << 30, 0)),  # just below a power of two, from the other side
    ((2.0**31 + 1) / 2.0**32, ((1 << 30) + 1, 0)),  # exactly half-way: std::round goes up (Python's round would not)
    ((2.0**31 + 3) / 2.0**32, ((1 << 30) + 2, 0)),  # half-way again: up, not to even
    (1.0 - 2.0**-31, ((1 << 31) - 1, 0)),
    (2.0**-31 * 0.75, (1610612736, -31)),
]


@pytest.mark.parametrize(("real", "expected"), MULTIPLIER_CASES)
def test_quantize_multiplier_hand_derived(real, expected):
    assert qm.quantize_multiplier(real) == expected


# (input scale, weight scale, output scale) of a 1x1 single-channel conv whose effective
# multiplier double(in) * double(w) / double(out) sits on an edge of QuantizeMultiplier
EDGE_SCALES = [
    (1.0 + 2.0**-17, 1.0 - 2.0**-17, 1.0),  # 1 - 2^-34: q * 2^31 rounds to 2^31
    (1.0, 1.0, 1.0),  # exactly 1: shift +1
    (1.0, 0.5, 1.0),  # exactly a power of two
    (1.0, 2.0**-20, 2.0**12),  # 2^-32: shift -31
    (1.0, 2.0**-21, 2.0**12),  # 2^-33: flushed to zero, output = zero point
    (0.75, 4.0, 1.0),  # 3.0
    (1.0, 100.0, 1.0),
    (0.1, 0.1, 0.01),
    (1.0 - 2.0**-24, 1.0, 1.0),
    (3.0e-3, 7.0e-5, 1.0e-2),
]


@pytest.mark.parametrize(("in_scale", "w_scale", "out_scale"), EDGE_SCALES)
def test_edge_multipliers_match_tflm_end_to_end(lib, tflm, in_scale, w_scale, out_scale):
    """Edge multipliers through CONV_2D 1x1 (double product) and FULLY_CONNECTED per tensor
    (float32 product): every int8 input, weights 1, -1 and 127, two output zero points."""
    # one pixel per input value: with input zero point 0 the accumulator is q * w
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256, 1)
    bias = np.zeros(1, np.int32)
    for w_value in (1, -1, 127):
        filt = np.full((1, 1, 1, 1), w_value, np.int8)
        for zp_out in (0, -7):
            case = {"x_shape": x.shape, "filter": filt, "w_scales": [w_scale], "bias": bias, "in_q": (in_scale, 0),
                    "out_q": (out_scale, zp_out), "stride": (1, 1), "dilation": (1, 1), "padding": "VALID",
                    "act": "NONE", "x": x}
            expected = tflm.run(conv_model(case), x)
            np.testing.assert_array_equal(run_conv(lib, case, "mn_conv2d_s8"), expected)
            # FULLY_CONNECTED per tensor: one row per pixel
            rows = x.reshape(-1, 1)
            model = writer.fully_connected(rows.shape, (in_scale, 0), filt.reshape(1, 1), w_scale, bias,
                                           (out_scale, zp_out))
            fc_expected = tflm.run(model, rows)
            p = qm.fully_connected_params(in_scale, 0, [w_scale], out_scale, zp_out)
            mult, shift = requant_tables(p)
            params = FcParams(rows.shape[0], 1, 1, 0, zp_out, -128, 127, 0, p8(filt.reshape(1, 1)), p32(bias),
                              p32(mult), p32(shift))
            out = np.zeros((rows.shape[0], 1), np.int8)
            assert lib.mn_fully_connected_s8(ctypes.byref(params), p8(np.ascontiguousarray(rows)), p8(out)) == 0
            np.testing.assert_array_equal(out, fc_expected)


# (input scale, weight scale, output scale) with an effective scale near 2^-24: an output of
# +-127 needs an accumulator near 2^31, where moving the multiplier by one unit moves the
# accumulator at which the output steps by about 2. Probing both sides of the steps our
# multiplier predicts makes TFLM's multiplier observable to the last bit.
BOUNDARY_SCALES = [
    # double product 2^-24 (1 + 2^-8 + 2^-23 + 2^-31): q * 2^31 is exactly half-way, std::round
    # goes up (banker's rounding would not); the float32 product drops the 2^-31 (FC per tensor)
    (1.0 + 2.0**-23, 2.0**-24 * (1.0 + 2.0**-8), 1.0),
    (0.0123, 3.3e-7, 0.31),
    (0.7, 2.9e-8, 0.4),
    (1.0 + 2.0**-12, 2.0**-24 * (1.0 + 2.0**-12), 1.0),  # float32 product loses 2^-24 of it
]


def _step_accumulators(mult: int, shift: int, zero_point: int) -> list[int]:
    """For every int8 output step of acc -> MultiplyByQuantizedMultiplier(acc) + zp, the
    accumulators just below and at the step (binary search; the map is non-decreasing)."""
    def f(acc):
        return qm.multiply_by_quantized_multiplier(acc, mult, shift) + zero_point

    lo_acc, hi_acc = -(2**31) + 2, 2**31 - 2
    probes = []
    for k in range(max(-127, f(lo_acc) + 1), min(127, f(hi_acc)) + 1):
        lo, hi = lo_acc, hi_acc  # smallest acc with f(acc) >= k
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if f(mid) >= k else (mid + 1, hi)
        probes += [lo - 1, lo]
    return probes


@pytest.mark.parametrize(("in_scale", "w_scale", "out_scale"), BOUNDARY_SCALES)
def test_multipliers_are_bit_exact_at_output_steps(lib, tflm, in_scale, w_scale, out_scale):
    """Accumulators straddling every output step (from the bias: input 0, zero point 0), through
    CONV_2D 1x1 (per channel, double product) and FULLY_CONNECTED per tensor (float32 product)."""
    zp = 3
    conv = qm.conv_params(in_scale, 0, [w_scale], out_scale, zp)
    fc = qm.fully_connected_params(in_scale, 0, [w_scale], out_scale, zp)
    for kind, p in (("conv", conv), ("fc", fc)):
        bias = np.array(_step_accumulators(p.multipliers[0], p.shifts[0], zp), dtype=np.int32)
        assert bias.size > 100
        o = bias.size
        ones = np.ones((o, 1), np.int8)
        mult = np.full(o, p.multipliers[0], np.int32)
        shift = np.full(o, p.shifts[0], np.int32)
        if kind == "conv":
            x = np.zeros((1, 1, 1, 1), np.int8)
            model = writer.conv2d(x.shape, (in_scale, 0), ones.reshape(o, 1, 1, 1), [w_scale] * o, bias,
                                  (out_scale, zp), padding="VALID")
            params = ConvParams(1, 1, 1, 1, 1, 1, o, 1, 1, 1, 1, 1, 1, 0, 0, 0, zp, -128, 127, p8(ones), p32(bias),
                                p32(mult), p32(shift))
            fn = lib.mn_conv2d_s8
        else:
            x = np.zeros((1, 1), np.int8)
            model = writer.fully_connected(x.shape, (in_scale, 0), ones, w_scale, bias, (out_scale, zp))
            params = FcParams(1, 1, o, 0, zp, -128, 127, 0, p8(ones), p32(bias), p32(mult), p32(shift))
            fn = lib.mn_fully_connected_s8
        expected = tflm.run(model, x).ravel()
        out = np.zeros(o, np.int8)
        assert fn(ctypes.byref(params), p8(x), p8(out)) == 0
        np.testing.assert_array_equal(out, expected, err_msg=kind)
        # and the probes do sit on steps: consecutive pairs differ by one
        assert (np.diff(out.astype(int))[::2] == 1).all()


def test_per_tensor_fc_multiplier_product_variants():
    """The host interpreter's per-tensor FULLY_CONNECTED multiplies the scales in double, as
    CONV_2D does (the default); the pinned TFLM source multiplies them in float32 first."""
    in_s, w_s = 1.0 + 2.0**-12, 1.0 + 2.0**-12  # product 1 + 2^-11 + 2^-24: float32 drops 2^-24
    conv = qm.conv_params(in_s, 0, [w_s], 1.0, 0)
    fc = qm.fully_connected_params(in_s, 0, [w_s], 1.0, 0)
    pinned = qm.fully_connected_params(in_s, 0, [w_s], 1.0, 0, per_tensor_product="float32")
    assert (fc.multipliers, fc.shifts) == (conv.multipliers, conv.shifts)
    assert pinned.multipliers == (2**30 + 2**19,) and pinned.shifts == (1,)
    assert fc.multipliers == (2**30 + 2**19 + 2**6,) and fc.shifts == (1,)  # 2^30 * 2^-24 = 2^6 more
    in_s, w_s = 1.0 + 2.0**-17, 1.0 - 2.0**-17  # 1 - 2^-34 in double rounds up to 2^31: (2^30, 1)
    assert qm.fully_connected_params(in_s, 0, [w_s], 1.0, 0).multipliers == (1 << 30,)


@settings(SETTINGS, max_examples=500)
@given(x=st.integers(-(2**31), 2**31 - 1), m=st.integers(0, 2**31 - 1), shift=st.integers(-31, 8))
def test_requantize_c_and_python_agree(lib, x, m, shift):
    assert lib.mn_requantize(x, m, shift) == qm.multiply_by_quantized_multiplier(x, m, shift)


def test_requantize_single_multiply_path_at_ties_and_extremes(lib):
    # mn_mbqm takes one 64-bit multiply-accumulate for right shifts 2..31 and multipliers >= 0:
    # check it against the two-step reference where both roundings meet ties, and at the extremes
    rng = np.random.default_rng(7)
    for shift in range(-31, -1):
        e = -shift
        for m in (0, 1, 1 << 30, (1 << 30) + 1, 2**31 - 1, int(rng.integers(1 << 30, 2**31))):
            xs = [0, 1, -1, 2**31 - 1, -(2**31), -(2**31) + 1, 2**30, -(2**30)]
            for k in range(-6, 7):  # x * m / 2^31 lands on (or next to) a multiple of 2^(e-1)
                base = k << (e - 1)
                xs += [base * 2 + d for d in (-1, 0, 1) if -(2**31) <= base * 2 + d < 2**31]
            xs += [int(v) for v in rng.integers(-(2**31), 2**31, 20)]
            for x in xs:
                assert lib.mn_requantize(x, m, shift) == qm.multiply_by_quantized_multiplier(x, m, shift), (x, m, shift)


def test_requantize_known_values(lib):
    # gemmlowp's SaturatingRoundingDoublingHighMul nudges by +2^30 or 1 - 2^30 and truncates:
    # halves round up (toward +inf), so -1.5 -> -1; RoundingDivideByPOT rounds halves away from 0
    assert lib.mn_requantize(3, 1 << 30, 0) == 2  # 3 * 0.5 = 1.5 -> 2
    assert lib.mn_requantize(-3, 1 << 30, 0) == -1  # -1.5 -> -1
    assert lib.mn_requantize(-6, 1 << 30, -1) == -2  # -3 / 2 = -1.5 -> -2
    assert lib.mn_requantize(5, 1 << 30, -1) == 2  # double rounding: 5 * 0.5 = 2.5 -> 3, then 3 / 2 = 1.5 -> 2
    assert lib.mn_requantize(-(2**31), -(2**31), 0) == 2**31 - 1  # the one saturating case
    assert lib.mn_requantize(1000, 0, 0) == 0


def test_activation_ranges():
    assert qm.activation_range("NONE", 0.1, 5) == (-128, 127)
    assert qm.activation_range("RELU", 0.1, 5) == (5, 127)
    assert qm.activation_range("RELU6", 0.1, -128) == (-128, -68)  # 6 / 0.1 = 60 in float32
    assert qm.activation_range("RELU6", 0.05, 10) == (10, 127)
    assert qm.activation_range("RELU", 0.1, -128) == (-128, 127)
    # float32 division, then round half away from zero: 6 / 4 = 1.5 -> 2
    assert qm.activation_range("RELU6", 4.0, 0) == (0, 2)


def test_padding_matches_tflm_rules():
    assert qm.padding_before("SAME", 224, 3, 2) == (112, 0)  # total 1: TFLM puts it after
    assert qm.padding_before("SAME", 225, 3, 2) == (113, 1)
    assert qm.padding_before("SAME", 7, 3, 1) == (7, 1)
    assert qm.padding_before("VALID", 7, 3, 2) == (3, 0)
    assert qm.padding_before("SAME", 5, 5, 1, 2) == (5, 4)  # dilated: effective size 9
    assert qm.padding_before("SAME", 4, 4, 1) == (4, 1)  # total 3: 1 before, 2 after


# ---------------------------------------------------------------------------------------------
# the library itself


def test_struct_layouts_match_the_header(lib):
    for name, cls in STRUCTS.items():
        assert lib.mn_test_sizeof(name.encode()) == ctypes.sizeof(cls), name


ARM_CPUS = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
    "cortex-m33": ["-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
    "cortex-m55": ["-mcpu=cortex-m55", "-mfloat-abi=hard"],
}


@pytest.mark.parametrize("cpu", sorted(ARM_CPUS))
def test_kernels_compile_warning_free_for_cortex_m(cpu, tmp_path):
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    for src in kernel_sources():
        cmd = [gcc, *ARM_CPUS[cpu], "-mthumb", *CFLAGS, "-O2", "-c", str(src), "-o", str(tmp_path / f"{src.stem}.o")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    # no 64-bit division or soft-float helpers pulled in on a core with an FPU
    nm = shutil.which("arm-none-eabi-nm")
    if nm:
        undefined = subprocess.run([nm, "-u", *map(str, tmp_path.glob("*.o"))], capture_output=True,
                                   text=True).stdout
        assert "__aeabi_ldivmod" not in undefined and "__aeabi_fdiv" not in undefined, undefined


def test_kernels_compile_warning_free_on_the_host(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    for std in ("-std=c99", "-std=c11"):
        for src in kernel_sources():
            cmd = ["gcc", *CFLAGS, std, "-O2", "-Wconversion", "-Wshadow", "-c", str(src), "-o",
                   str(tmp_path / f"{src.stem}.o")]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    # the public header is valid C++ too (generated code may be compiled as C++)
    if shutil.which("g++"):
        src = tmp_path / "use.cc"
        src.write_text('#include "mn_kernels.h"\nint main() { return mn_requantize(1, 1 << 30, 1) - 1; }\n')
        proc = subprocess.run(["g++", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(KERNELS), "-c", str(src),
                               "-o", str(tmp_path / "use.o")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------
# on the target: the same kernels on QEMU's Cortex-M4/M7/M33/M55 boards (the ACLE DSP path where
# the core has it, and the portable C once), against TFLM host outputs, with parameters emitted as
# `static const` struct initialisers the way the code generator will emit them

QEMU_BOARDS = {  # board: (cpu flags, extra defines)
    "mps2-an386": ("-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16", ()),
    "mps2-an500": ("-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16", ()),
    "mps2-an505": ("-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16", ()),
    "mps3-an547": ("-mcpu=cortex-m55 -mthumb -mfloat-abi=hard", ()),
    "mps2-an386/portable": ("-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16", ("-DMN_KERNELS_PORTABLE",)),
}
C_TYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t", np.dtype(np.float32): "float"}


class CCases:
    """Writes cases.c: const arrays, const parameter structs, and mn_test_run_cases()."""

    def __init__(self):
        self.decls: list[str] = []
        self.body: list[str] = []
        self.names: dict[int, str] = {}
        self.keep: list = []
        self.count = 0
        self.buffer = 0  # bytes of the shared work buffer

    def _name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def array(self, a: np.ndarray | None) -> str:
        if a is None:
            return "NULL"
        a = np.ascontiguousarray(a)
        self.keep.append(a)
        name = self._name("a")
        if a.dtype == np.float32:
            values = ", ".join(("-" if math.copysign(1, v) < 0 and v == 0 else "") + float(v).hex() + "f"
                               for v in a.ravel().tolist())
        else:
            values = ", ".join(str(int(v)) for v in a.ravel())
        self.decls.append(f"static const {C_TYPES[a.dtype]} {name}[{max(a.size, 1)}] = {{{values}}};")
        self.names[a.ctypes.data] = name
        return name

    def struct(self, s: ctypes.Structure, c_type: str) -> str:
        fields = []
        for field, kind in s._fields_:
            v = getattr(s, field)
            if kind is ctypes.c_float:
                fields.append(float(np.float32(v)).hex() + "f")
            elif isinstance(v, ctypes.Array):
                fields.append("{" + ", ".join(str(x) for x in v) + "}")
            elif hasattr(kind, "contents"):  # a pointer: the array it points at
                address = ctypes.cast(v, ctypes.c_void_p).value
                fields.append(self.names[address] if address else "NULL")
            else:
                fields.append(str(int(v)))
        name = self._name("p")
        self.decls.append(f"static const {c_type} {name} = {{{', '.join(fields)}}};")
        return name

    def case(self, label: str, call: str, expected: np.ndarray, work_input: np.ndarray | None = None):
        """`call` uses IN (the input array, or the work buffer holding `work_input`) and OUT."""
        exp = self.array(expected)
        nbytes = expected.nbytes
        self.buffer = max(self.buffer, nbytes, 0 if work_input is None else work_input.nbytes)
        lines = ["    {"]
        if work_input is not None:
            lines.append(f"        memcpy(mn_buf, {self.array(work_input)}, {work_input.nbytes});")
        lines.append(f"        failed += mn_test_check(\"{label}\", {call}, mn_buf, {exp}, {nbytes});")
        lines.append("    }")
        self.body.extend(lines)

    def source(self, scratch_bytes: int, bench: list[str]) -> str:
        return "\n".join([
            "/* generated by tests/test_kernels.py */", "#include <stdint.h>", "#include <stdio.h>",
            "#include <string.h>", '#include "mn_kernels.h"', "",
            "int mn_test_check(const char *name, int status, const void *got, const void *expected, size_t bytes);",
            "uint64_t mn_test_ticks(void);", "int mn_test_run_cases(void);", "",
            f"static int8_t mn_buf[{self.buffer + 16}] __attribute__((aligned(8)));",
            f"static int8_t mn_scratch[{scratch_bytes + 16}];", "", *self.decls, "",
            "int mn_test_run_cases(void)", "{", "    int failed = 0;", "    uint64_t t0;", *self.body, *bench,
            "    return failed;", "}", ""])


def target_cases(tflm) -> str:
    rng = np.random.default_rng(20261)
    c = CCases()
    scratch = 0

    def scales(channels, taps, per_channel=True):
        ws = [float(np.float32(10.0 ** rng.uniform(-3.5, -1.5))) for _ in range(channels if per_channel else 1)]
        in_s = float(np.float32(10.0 ** rng.uniform(-2.5, -0.5)))
        typical = in_s * float(np.median(ws)) * math.sqrt(taps) * 7300 / 50
        out_s = float(np.float32(typical * 10 ** rng.uniform(-0.5, 0.5)))
        return (in_s, int(rng.integers(-128, 128))), ws, (out_s, int(rng.integers(-128, 128)))

    def act():
        return str(rng.choice(["NONE", "RELU", "RELU6"]))

    # CONV_2D: generic geometries, then pointwise (the fast path; in_c not a multiple of 4 too)
    geometries = [((1, 9, 7, 5), 6, (3, 3), (1, 1), "SAME"), ((1, 8, 8, 8), 4, (3, 3), (2, 2), "SAME"),
                  ((2, 6, 5, 3), 7, (2, 3), (1, 2), "VALID"), ((1, 10, 10, 16), 8, (5, 5), (2, 2), "SAME"),
                  ((1, 7, 7, 1), 3, (3, 3), (3, 3), "VALID")]
    geometries += [((1, 5, 6, ci), co, (1, 1), (1, 1), "SAME") for ci, co in ((3, 4), (4, 5), (7, 12), (16, 8),
                                                                                 (33, 9), (64, 16))]
    # depths around the DSP path's widened-GEMM limit (MN_CONV_GEMM_MAX, 256 by default)
    geometries += [((1, 3, 3, 130), 12, (1, 1), (1, 1), "SAME"), ((1, 2, 3, 300), 5, (1, 1), (1, 1), "SAME"),
                   ((1, 5, 6, 8), 16, (1, 1), (1, 1), "SAME"), ((1, 4, 5, 16), 20, (1, 1), (1, 1), "SAME"),
                   ((1, 7, 6, 20), 9, (3, 3), (1, 1), "SAME"), ((1, 6, 5, 32), 6, (3, 3), (2, 1), "SAME")]
    for k, (xs, o, ksz, stride, padding) in enumerate(geometries):
        in_q, ws, out_q = scales(o, ksz[0] * ksz[1] * xs[3], per_channel=k % 3 != 2)
        case = {"x_shape": xs, "filter": weights_array(rng, (o, *ksz, xs[3])), "w_scales": ws,
                "bias": rng.integers(-3000, 3000, o).astype(np.int32), "in_q": in_q, "out_q": out_q,
                "stride": stride, "dilation": (1, 1), "padding": padding, "act": act(), "x": int8_array(rng, xs)}
        expected = tflm.run(conv_model(case), case["x"])
        for folded in (False, True):  # bias, or the code generator's bias_sum
            keep: list = []
            p = conv_struct(case, xs, case["filter"], case["bias"], keep, folded)
            for a in ((*keep[2:5],) if folded else (case["filter"], case["bias"], *keep[2:4])):
                c.array(a)
            name = c.struct(p, "mn_conv_params")
            fn = "mn_conv2d_1x1_s8" if ksz == (1, 1) else "mn_conv2d_s8"
            tag = f"{k}{' bias_sum' if folded else ''}"
            c.case(f"{fn} {tag}", f"{fn}(&{name}, {c.array(case['x'])}, mn_buf)", expected)
            if ksz == (1, 1):
                c.case(f"mn_conv2d_generic_s8 {tag}",
                       f"mn_conv2d_generic_s8(&{name}, {c.array(case['x'])}, mn_buf)", expected)

    # DEPTHWISE_CONV_2D, out of place and in place
    for k, (xs, dm, ksz, stride, padding) in enumerate([
            ((1, 9, 9, 8), 1, (3, 3), (1, 1), "SAME"), ((1, 10, 10, 6), 1, (3, 3), (2, 2), "SAME"),
            ((2, 7, 8, 5), 1, (3, 3), (1, 1), "VALID"), ((1, 8, 8, 4), 2, (3, 3), (1, 1), "SAME"),
            ((1, 12, 12, 3), 1, (5, 5), (2, 2), "VALID"), ((1, 16, 16, 16), 1, (3, 3), (2, 2), "SAME")]):
        o = xs[3] * dm
        in_q, ws, out_q = scales(o, ksz[0] * ksz[1])
        case = {"x_shape": xs, "filter": weights_array(rng, (1, *ksz, o)), "w_scales": ws,
                "bias": rng.integers(-3000, 3000, o).astype(np.int32), "in_q": in_q, "out_q": out_q,
                "stride": stride, "dilation": (1, 1), "padding": padding, "act": act(), "x": int8_array(rng, xs)}
        model = writer.depthwise_conv2d(xs, in_q, case["filter"], ws, case["bias"], out_q, stride, padding, (1, 1),
                                        dm, case["act"])
        expected = tflm.run(model, case["x"])
        keep = []
        p = dw_struct(case, xs, case["filter"], case["bias"], keep)
        for a in (case["filter"], case["bias"], *keep[2:4]):
            c.array(a)
        name = c.struct(p, "mn_dw_params")
        c.case(f"mn_depthwise_conv_s8 {k}", f"mn_depthwise_conv_s8(&{name}, {c.array(case['x'])}, mn_buf, NULL)",
               expected)
        if dm == 1:
            scratch = max(scratch, xs[1] * xs[2])
            c.case(f"mn_depthwise_conv_s8 in place {k}", f"mn_depthwise_conv_s8(&{name}, mn_buf, mn_buf, mn_scratch)",
                   expected, work_input=case["x"])

    # FULLY_CONNECTED, per tensor and per channel
    for k, (b, i, o, per_channel) in enumerate([(1, 64, 10, True), (2, 37, 6, False), (1, 256, 16, True),
                                                (3, 3, 5, False), (1, 100, 4, True)]):
        in_q, ws, out_q = scales(o, i, per_channel)
        weights = weights_array(rng, (o, i))
        bias = rng.integers(-3000, 3000, o).astype(np.int32)
        x = int8_array(rng, (b, i))
        a = act()
        expected = tflm.run(writer.fully_connected(x.shape, in_q, weights, ws, bias, out_q, a), x)
        p = qm.fully_connected_params(*in_q, ws, *out_q, a)
        mult, shift = requant_tables(p)
        params = FcParams(b, i, o, p.in_offset, p.out_offset, p.act_min, p.act_max, int(p.per_channel), p8(weights),
                          p32(bias), p32(mult), p32(shift))
        for arr in (weights, bias, mult, shift):
            c.array(arr)
        name = c.struct(params, "mn_fc_params")
        c.case(f"mn_fully_connected_s8 {k}", f"mn_fully_connected_s8(&{name}, {c.array(x)}, mn_buf)", expected)

    # AVERAGE_POOL_2D, MEAN, SOFTMAX, ADD, PAD, QUANTIZE, DEQUANTIZE
    for k, (xs, ksz, stride, padding) in enumerate([((1, 7, 7, 8), (7, 7), (1, 1), "VALID"),
                                                    ((1, 9, 8, 3), (3, 3), (2, 2), "SAME")]):
        q = (0.05, int(rng.integers(-128, 128)))
        x, a = int8_array(rng, xs), act()
        expected = tflm.run(writer.average_pool2d(xs, q, ksz, stride, padding, a), x)
        g = qm.window_geometry(padding, xs[1], xs[2], *ksz, *stride)
        lo, hi = qm.activation_range(a, *q)
        name = c.struct(PoolParams(xs[0], xs[1], xs[2], xs[3], g.out_h, g.out_w, *ksz, *stride, g.pad_top,
                                   g.pad_left, lo, hi), "mn_pool_params")
        c.case(f"mn_avgpool_s8 {k}", f"mn_avgpool_s8(&{name}, {c.array(x)}, mn_buf)", expected)
    for k, xs in enumerate([(1, 7, 7, 32), (2, 3, 5, 7)]):
        in_q, out_q = (0.07, int(rng.integers(-128, 128))), (0.03, int(rng.integers(-128, 128)))
        x = int8_array(rng, xs)
        expected = tflm.run(writer.mean(xs, in_q, out_q, keep_dims=bool(k)), x)
        mult, shift = qm.mean_params(in_q[0], out_q[0], xs[1] * xs[2])
        name = c.struct(MeanParams(xs[0], xs[1], xs[2], xs[3], in_q[1], out_q[1], mult, shift), "mn_mean_params")
        c.case(f"mn_mean_hw_s8 {k}", f"mn_mean_hw_s8(&{name}, {c.array(x)}, mn_buf)", expected)
    for k, (shape, scale) in enumerate([((1, 10), 0.1), ((3, 37), 0.02), ((1, 1001), 0.3)]):
        x = int8_array(rng, shape)
        expected = tflm.run(writer.softmax(shape, (scale, 5)), x)
        sp = qm.softmax_params(scale)
        name = c.struct(SoftmaxParams(x.size // shape[-1], shape[-1], sp.input_multiplier, sp.input_left_shift,
                                      sp.diff_min), "mn_softmax_params")
        c.case(f"mn_softmax_s8 {k}", f"mn_softmax_s8(&{name}, {c.array(x)}, mn_buf)", expected)
    for k, (s1, s2) in enumerate([((1, 6, 6, 8), (1, 6, 6, 8)), ((1, 5, 4, 3), (1, 1, 1, 3)), ((2, 3), (3,)),
                                  ((1, 16, 16, 8), (1, 16, 16, 8))]):  # the last: mn_add_s8's tables
        q1, q2, qo = (0.04, 3), (0.11, -20), (0.09, -7)
        x1, x2, a = int8_array(rng, s1), int8_array(rng, s2), act()
        expected = tflm.run(writer.add(s1, q1, s2, q2, qo, a), x1, x2)
        p = qm.add_params(*q1, *q2, *qo, a)
        dims, st1, st2 = qm.broadcast_strides(s1, s2)
        name = c.struct(AddParams(expected.size, p.in1_offset, p.in2_offset, p.out_offset, p.left_shift, p.in1_mult,
                                  p.in1_shift, p.in2_mult, p.in2_shift, p.out_mult, p.out_shift, p.act_min,
                                  p.act_max, (I32 * 4)(*dims), (I32 * 4)(*st1), (I32 * 4)(*st2)), "mn_add_params")
        fn = "mn_add_s8" if s1 == s2 else "mn_add_broadcast_s8"
        c.case(f"{fn} {k}", f"{fn}(&{name}, {c.array(x1)}, {c.array(x2)}, mn_buf)", expected)
    x = int8_array(rng, (1, 5, 4, 3))
    pads = [(0, 0), (1, 2), (2, 1), (0, 1)]
    expected = tflm.run(writer.pad(x.shape, (0.1, -9), pads), x)
    name = c.struct(PadParams((I32 * 4)(*x.shape), (I32 * 4)(*(b for b, _ in pads)), (I32 * 4)(*(a for _, a in pads)),
                              -9), "mn_pad_params")
    c.case("mn_pad_s8", f"mn_pad_s8(&{name}, {c.array(x)}, mn_buf)", expected)
    xf = (rng.uniform(-20, 20, (1, 200)) * 0.37).astype(np.float32)
    xf[0, :20] = ((np.arange(20) - 10 + 0.5) * np.float32(0.37)).astype(np.float32)  # half-way points
    expected = tflm.run(writer.quantize(xf.shape, (0.37, 4)), xf)
    name = c.struct(AffineParams(xf.size, 0.37, 4), "mn_affine_params")
    c.case("mn_quantize_f32_s8", f"mn_quantize_f32_s8(&{name}, {c.array(xf)}, mn_buf)", expected)
    xq = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    expected = tflm.run(writer.dequantize(xq.shape, (0.0123, -17)), xq)
    name = c.struct(AffineParams(xq.size, 0.0123, -17), "mn_affine_params")
    c.case("mn_dequantize_s8_f32", f"mn_dequantize_s8_f32(&{name}, {c.array(xq)}, (float *)(void *)mn_buf)", expected)

    # timing (printed, not checked): a pointwise conv and an FC layer
    bench = []
    for label, fn in (("conv1x1", "mn_conv2d_1x1_s8"), ("conv3x3", "mn_conv2d_generic_s8")):
        k = 1 if label == "conv1x1" else 3
        xs, o = (1, 8, 8, 32), 32
        in_q, ws, out_q = scales(o, k * k * 32)
        case = {"x_shape": xs, "filter": weights_array(rng, (o, k, k, 32)), "w_scales": ws, "bias": None,
                "in_q": in_q, "out_q": out_q, "stride": (1, 1), "dilation": (1, 1), "padding": "SAME", "act": "NONE",
                "x": int8_array(rng, xs)}
        keep = []
        p = conv_struct(case, xs, case["filter"], None, keep)
        for a in (case["filter"], *keep[2:4]):
            c.array(a)
        name = c.struct(p, "mn_conv_params")
        x_name = c.array(case["x"])
        c.buffer = max(c.buffer, 8 * 8 * o)
        bench += ["    t0 = mn_test_ticks();", f"    (void){fn}(&{name}, {x_name}, mn_buf);",
                  f'    printf("bench {label} 8x8x32->32: %lu ticks\\n", (unsigned long)(mn_test_ticks() - t0));']
    return c.source(scratch, bench)


@pytest.fixture(scope="module")
def target_source(tflm, tmp_path_factory) -> Path:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    path = tmp_path_factory.mktemp("target") / "cases.c"
    path.write_text(target_cases(tflm))
    return path


def run_kernels_firmware(machine: str, flags: str, defines, cases: Path, tmp_path: Path):
    """Builds the kernels with the harness and generated `cases` for QEMU `machine` (cpu `flags`, extra
    `defines`), runs it, and returns run_qemu's result."""
    from mncompile.resources import firmware_dir
    from mncompile.run.qemu import run_qemu

    fw = firmware_dir()
    sources = [*sorted((fw / "common").glob("*.c")), *sorted((fw / "boards" / machine).glob("*.c")),
               *kernel_sources(), HARNESS / "target_harness.c", cases]
    objects = []
    cflags = [*flags.split(), "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-ffunction-sections",
              "-fdata-sections", "-O2", *defines, f"-I{fw / 'common'}", f"-I{KERNELS}"]
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
    return run_qemu(elf, machine, timeout=300)


@pytest.mark.parametrize("board", sorted(QEMU_BOARDS))
def test_kernels_on_cortex_m_under_qemu(board, target_source, tmp_path):
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed")
    flags, defines = QEMU_BOARDS[board]
    result = run_kernels_firmware(board.split("/")[0], flags, defines, target_source, tmp_path)
    dsp = "0" if defines else "1"
    assert f"kernels: MN_KERNELS_DSP={dsp}" in result.output, result.output
    assert "kernels: 0 failed" in result.output and result.exit_code == 0, result.output
    print(f"{board}: " + "; ".join(line for line in result.output.splitlines() if line.startswith("bench")))
