"""The Helium (MVE) kernels (firmware/kernels/mn_*_mve.c) are bit-exact with TFLM.

MVE runs only on the target, so the check is one firmware for QEMU's mps3-an547 (Cortex-M55):
many drawn CONV_2D and DEPTHWISE_CONV_2D cases (pointwise depths 1..70 around multiples of 16,
generic kernels with strides, dilations and SAME/VALID padding, depth multipliers 1..3, in place,
fused activations, per-tensor and per-channel scales, power-of-two scales whose requantization
hits rounding ties, zero points, and a bias NULL / bias only / bias_sum only), with parameters as
`static const` initialisers, compared byte for byte with the TFLM host interpreter's outputs. The
same cases are built again with -DMN_KERNELS_NO_MVE: the DSP path on the same core.
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import tflite_writer as writer
from test_kernels import (  # noqa: F401  (tflm: a fixture, registered by importing it)
    HARNESS,
    KERNELS,
    P8,
    QEMU_BOARDS,
    CCases,
    conv_model,
    conv_struct,
    dw_struct,
    int8_array,
    kernel_sources,
    run_kernels_firmware,
    tflm,
    weights_array,
)

from mncompile.graph.ops import quantmath as qm


def scales(rng: np.random.Generator, channels: int, taps: int, wmax: int, left: bool = False):
    """(in (scale, zp), weight scales, out (scale, zp)): per-tensor or per-channel weight scales;
    one case in four with powers of two (multipliers 2^30: ties in both rounding steps); left: an
    effective scale above 1 (left shifts) unless powers of two were drawn."""
    per_channel = rng.integers(0, 3) > 0
    n = channels if per_channel else 1
    zp_in, zp_out = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    if rng.integers(0, 4) == 0:
        ws = [2.0 ** -int(k) for k in rng.integers(5, 13, n)]
        out_s = 2.0 ** -int(rng.integers(0, 8))
        spread = math.sqrt(taps) * 0.58 * wmax * 100
        in_s = out_s / ws[0] * 2.0 ** (int(rng.integers(-2, 3)) - max(0, round(math.log2(spread / 50))))
        return (in_s, zp_in), ws, (out_s, zp_out)
    ws = [float(np.float32(10.0 ** rng.uniform(-3.5, -1.5))) for _ in range(n)]
    in_s = float(np.float32(10.0 ** rng.uniform(-2.5, -0.5)))
    typical = in_s * float(np.median(ws)) * math.sqrt(taps) * wmax * 57 / 50
    if rng.integers(0, 6) == 0 or left:  # effective scale above 1: left shifts
        typical = in_s * max(ws) / rng.uniform(1.0, 20.0)
    out_s = float(np.float32(typical * 10 ** rng.uniform(-0.5, 0.5)))
    return (in_s, zp_in), ws, (out_s, zp_out)


def conv_geometries(rng: np.random.Generator):
    """(x_shape, out_c, kernel, stride, dilation, padding)"""
    for c in [*range(1, 19), 20, 24, 31, 32, 33, 40, 47, 48, 49, 63, 64, 65, 70]:
        n = 2 if c % 7 == 0 else 1
        yield (n, int(rng.integers(1, 8)), int(rng.integers(1, 8)), c), int(rng.integers(1, 21)), (1, 1), (1, 1), \
            (1, 1), "VALID"
    yield (1, 7, 9, 24), 5, (1, 1), (2, 3), (1, 1), "VALID"  # strided pointwise: rows read in place
    yield (1, 6, 6, 8), 4, (1, 1), (2, 2), (1, 1), "SAME"
    for _ in range(26):
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (1, 1) if rng.integers(0, 3) else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        c = int(rng.integers(1, 21))
        h, w = int(rng.integers(max(k[0], 2), 12)), int(rng.integers(max(k[1], 2), 12))
        yield (int(rng.integers(1, 3)), h, w, c), int(rng.integers(1, 13)), k, stride, dilation, \
            str(rng.choice(["SAME", "VALID"]))
    # bias_sum given (the code generator's case) with left shifts, K <= 16 (filter rows in registers) and
    # beyond, channel tails of 1..3, pixel counts not a multiple of four; interior im2col runs (3x3/2)
    for xs, o, k in [((1, 3, 5, 8), 7, (1, 1)), ((1, 5, 3, 16), 6, (1, 1)), ((1, 3, 3, 5), 9, (1, 3)),
                     ((1, 4, 5, 20), 5, (1, 1)), ((1, 7, 3, 12), 11, (1, 3)), ((1, 11, 13, 3), 8, (3, 3))]:
        for left in (False, True):
            yield xs, o, k, (2, 2) if k == (3, 3) else (1, 1), (1, 1), "SAME", {"bias": 2, "left": left}
    yield (1, 5, 9, 40), 6, (1, 3), (1, 1), (1, 1), "VALID"  # 1xk rows read in place
    yield (1, 6, 6, 48), 3, (3, 3), (1, 1), (1, 1), "SAME"  # K = 432: beyond the patch, DSP fallback
    yield (1, 6, 6, 48), 3, (3, 3), (1, 1), (1, 1), "VALID"


def dw_geometries(rng: np.random.Generator):
    """(x_shape, depth_mult, kernel, stride, dilation, padding)"""
    for c in (1, 3, 4, 5, 8, 12, 16, 17, 24, 32, 35):
        yield (1, int(rng.integers(3, 10)), int(rng.integers(3, 10)), c), 1, (3, 3), (1, 1), (1, 1), "SAME"
    for _ in range(18):
        k = [(3, 3), (5, 5), (1, 1), (2, 3), (3, 1)][int(rng.integers(0, 5))]
        s = int(rng.integers(1, 3))
        stride = (s, s) if rng.integers(0, 3) else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (1, 1) if rng.integers(0, 4) else (2, 2)
        dm = [1, 1, 2, 3][int(rng.integers(0, 4))]
        shape = (int(rng.integers(1, 3)), int(rng.integers(5, 12)), int(rng.integers(5, 12)),
                 int(rng.integers(1, 20)))
        yield shape, dm, k, stride, dilation, str(rng.choice(["SAME", "VALID"]))
    # the channel-planar path (maps of 100 or more output pixels, and every in-place call)
    yield (1, 10, 10, 100), 1, (3, 3), (1, 1), (1, 1), "SAME"  # two chunks of channels
    yield (1, 12, 12, 5), 1, (3, 3), (1, 1), (1, 1), "VALID"
    yield (1, 21, 21, 8), 1, (3, 3), (2, 2), (1, 1), "SAME"
    yield (1, 10, 11, 6), 1, (5, 5), (1, 1), (1, 1), "SAME"
    yield (1, 14, 14, 4), 1, (3, 3), (1, 1), (2, 2), "SAME"
    yield (2, 11, 24, 7), 1, (2, 3), (1, 2), (1, 1), "SAME"
    yield (1, 16, 13, 33), 1, (3, 1), (2, 1), (1, 1), "VALID"
    yield (1, 5, 5, 70), 1, (3, 3), (1, 1), (1, 1), "SAME"  # small: the four-channel path (in place: planar)
    yield (1, 3, 1030, 2), 1, (3, 3), (1, 1), (1, 1), "SAME"  # rows beyond MN_DW_MVE_BUF: per-pixel path


def act(rng: np.random.Generator) -> str:
    return str(rng.choice(["NONE", "RELU", "RELU6"]))


def add_conv(c: CCases, ref, rng: np.random.Generator, k: int, geometry) -> None:
    xs, o, ksz, stride, dilation, padding, *extra = geometry
    opt = extra[0] if extra else {}
    wmax = 127 if rng.integers(0, 4) else int(rng.integers(1, 4))
    in_q, ws, out_q = scales(rng, o, ksz[0] * ksz[1] * xs[3], wmax, opt.get("left", False))
    bias_mode = opt.get("bias", k % 3)  # 0: bias NULL, 1: bias only, 2: bias_sum only
    bias = None if bias_mode == 0 and k % 2 else rng.integers(-30000, 30000, o).astype(np.int32)
    case = {"x_shape": xs, "filter": weights_array(rng, (o, *ksz, xs[3]), wmax), "w_scales": ws, "bias": bias,
            "in_q": in_q, "out_q": out_q, "stride": stride, "dilation": dilation, "padding": padding,
            "act": act(rng), "x": int8_array(rng, xs)}
    expected = ref.run(conv_model(case), case["x"])
    keep: list = []
    folded = bias_mode == 2  # the code generator's bias_sum (qm.folded_bias), bias NULL
    ps = conv_struct(case, xs, case["filter"], bias, keep, folded)
    for a in (case["filter"], None if folded else bias, *keep[2:5]):
        if a is not None:
            c.array(a)
    name = c.struct(ps, "mn_conv_params")
    x = c.array(case["x"])
    mode = "bias_sum" if folded else ("bias" if bias is not None else "no bias")
    label = f"conv {k} {xs}->{o} k{ksz} s{stride} d{dilation} {padding} {mode}"
    c.case(label, f"mn_conv2d_s8(&{name}, {x}, mn_buf)", expected)
    if ksz == (1, 1) and stride == (1, 1):
        c.case(label + " (1x1 entry)", f"mn_conv2d_1x1_s8(&{name}, {x}, mn_buf)", expected)


def add_dw(c: CCases, ref, rng: np.random.Generator, k: int, geometry) -> int:
    xs, dm, ksz, stride, dilation, padding = geometry
    if qm.out_size(padding, xs[1], ksz[0], stride[0], dilation[0]) <= 0 or \
            qm.out_size(padding, xs[2], ksz[1], stride[1], dilation[1]) <= 0:
        return 0
    o = xs[3] * dm
    wmax = 127 if rng.integers(0, 4) else int(rng.integers(1, 4))
    in_q, ws, out_q = scales(rng, o, ksz[0] * ksz[1], wmax)
    bias = rng.integers(-30000, 30000, o).astype(np.int32) if k % 4 else np.zeros(o, np.int32)
    case = {"x_shape": xs, "filter": weights_array(rng, (1, *ksz, o), wmax), "w_scales": ws, "bias": bias,
            "in_q": in_q, "out_q": out_q, "stride": stride, "dilation": dilation, "padding": padding,
            "act": act(rng), "x": int8_array(rng, xs)}
    model = writer.depthwise_conv2d(xs, in_q, case["filter"], ws, bias, out_q, stride, padding, dilation, dm,
                                    case["act"])
    expected = ref.run(model, case["x"])
    keep: list = []
    p = dw_struct(case, xs, case["filter"], bias, keep)
    if k % 4 == 0:  # a zero bias may also be passed as NULL
        p.bias = None
    for a in (case["filter"], bias if k % 4 else None, *keep[2:4]):
        if a is None:
            continue
        c.array(a)
    name = c.struct(p, "mn_dw_params")
    label = f"dw {k} {xs} dm{dm} k{ksz} s{stride} d{dilation} {padding}"
    c.case(label, f"mn_depthwise_conv_s8(&{name}, {c.array(case['x'])}, mn_buf, NULL)", expected)
    if dm == 1 and expected.shape[1] <= xs[1] and expected.shape[2] <= xs[2]:
        c.case(label + " in place", f"mn_depthwise_conv_s8(&{name}, mn_buf, mn_buf, mn_scratch)", expected,
               work_input=case["x"])
        return xs[1] * xs[2]
    return 0


def target_cases(ref) -> str:
    rng = np.random.default_rng(20551)
    c = CCases()
    for k, g in enumerate(conv_geometries(rng)):
        if all(qm.out_size(g[5], g[0][1 + i], g[2][i], g[3][i], g[4][i]) > 0 for i in (0, 1)):
            add_conv(c, ref, rng, k, g)
    scratch = max(add_dw(c, ref, rng, k, g) for k, g in enumerate(dw_geometries(rng)))
    return c.source(scratch, ["    t0 = mn_test_ticks();", "    (void)t0;"])


@pytest.fixture(scope="module")
def target_source(tflm, tmp_path_factory):  # noqa: F811
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    path = tmp_path_factory.mktemp("target_mve") / "cases.c"
    path.write_text(target_cases(tflm))
    return path


@pytest.mark.parametrize("variant", ["mve", "no-mve"])
def test_mve_kernels_on_cortex_m55_under_qemu(variant, target_source, tmp_path):
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed")
    machine = "mps3-an547"
    defines = ["-DMN_KERNELS_NO_MVE"] if variant == "no-mve" else []
    result = run_kernels_firmware(machine, QEMU_BOARDS[machine][0], defines, target_source, tmp_path)
    # the MVE build really contains the vector kernels (and the other one does not)
    nm = subprocess.run(["arm-none-eabi-nm", str(tmp_path / "kernels.elf")], capture_output=True, text=True).stdout
    assert ("mn_conv2d_mve_s8" in nm) == (variant == "mve"), nm
    assert "kernels: MN_KERNELS_DSP=1" in result.output, result.output
    assert f"kernels: MN_KERNELS_MVE={int(variant == 'mve')}" in result.output, result.output
    assert "kernels: 0 failed" in result.output and result.exit_code == 0, result.output


def test_mve_kernels_compile_warning_free(tmp_path):
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    flags = ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-std=c99", "-Wall", "-Wextra", "-Werror",
             "-pedantic", "-Wdouble-promotion", "-Wconversion", "-Wshadow"]
    for src in sorted(KERNELS.glob("*_mve.c")):
        for opt in ("-O2", "-O3", "-Os"):
            proc = subprocess.run([gcc, *flags, opt, "-c", str(src), "-o", str(tmp_path / "x.o")],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, f"{src} {opt}\n{proc.stderr}"
