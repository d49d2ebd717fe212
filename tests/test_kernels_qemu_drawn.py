"""The per-op Hypothesis strategies of tests/test_kernels.py, run on QEMU's Cortex-M boards in every
kernel variant: the cases are drawn once (derandomized), the TFLM host interpreter computes their
outputs, and one firmware per variant checks every case byte for byte on the target:

- portable C (``MN_KERNELS_PORTABLE``) on mps2-an386 (Cortex-M4);
- the DSP extension on mps2-an386 (M4), mps2-an500 (M7), mps2-an505 (M33), and on mps3-an547 (M55)
  with ``MN_KERNELS_NO_MVE``; on mps2-an500 also compiled for the fast requantization only
  (``MN_KERNELS_REQUANT_ANY=0``, as a generated project whose layers all take it);
- Helium (MVE) on mps3-an547.

CONV_2D (general and pointwise, with ``bias`` and with the code generator's ``bias_sum``),
DEPTHWISE_CONV_2D (out of place and in place) and FULLY_CONNECTED: the kernels with variant paths.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tflite_writer as writer
from hypothesis import HealthCheck, given, settings
from test_kernels import (  # noqa: F401  (tflm: a fixture, registered by importing it)
    CCases,
    FcParams,
    conv_cases,
    conv_model,
    conv_struct,
    dw_cases,
    dw_struct,
    fc_cases,
    p8,
    p32,
    requant_tables,
    run_kernels_firmware,
    tflm,
)

from mncompile.graph.ops import quantmath as qm

M4 = "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
VARIANTS = {  # name: (machine, cpu flags, defines, MN_KERNELS_DSP, MN_KERNELS_MVE)
    "portable (mps2-an386)": ("mps2-an386", M4, ("-DMN_KERNELS_PORTABLE",), 0, 0),
    "dsp (mps2-an386)": ("mps2-an386", M4, (), 1, 0),
    "dsp (mps2-an500)": ("mps2-an500", "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16", (), 1, 0),
    # a generated project whose layers all requantize the fast way: other calls take the portable loops
    "dsp fast-only (mps2-an500)": ("mps2-an500", "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16",
                                   ("-DMN_KERNELS_REQUANT_ANY=0",), 1, 0),
    "dsp (mps2-an505)": ("mps2-an505", "-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16", (), 1, 0),
    "dsp (mps3-an547)": ("mps3-an547", "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard", ("-DMN_KERNELS_NO_MVE",), 1, 0),
    "mve (mps3-an547)": ("mps3-an547", "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard", (), 1, 1),
}
CONVS, POINTWISE, DEPTHWISE, FCS = 40, 40, 40, 20
DRAWN = settings(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                        HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])


def add_conv(c: CCases, ref, case: dict, k: int, pointwise: bool) -> None:
    expected = ref.run(conv_model(case), case["x"])
    x = c.array(case["x"])
    for folded in (False, True):  # the bias, or the code generator's bias_sum
        keep: list = []
        p = conv_struct(case, case["x_shape"], case["filter"], case["bias"], keep, folded)
        arrays = (*keep[2:5],) if folded else (case["filter"], case["bias"], *keep[2:4])
        for a in arrays:
            if a is not None:
                c.array(a)
        name = c.struct(p, "mn_conv_params")
        tag = f"{'pointwise' if pointwise else 'conv'} {k}{' bias_sum' if folded else ''}"
        fns = ("mn_conv2d_1x1_s8", "mn_conv2d_generic_s8") if pointwise else ("mn_conv2d_s8",)
        for fn in fns:
            c.case(f"{fn} {tag}", f"{fn}(&{name}, {x}, mn_buf)", expected)


def add_depthwise(c: CCases, ref, case: dict, k: int) -> int:
    """The case out of place, and in place when it can run so; returns the scratch bytes it needs."""
    dm = case["filter"].shape[3] // case["x_shape"][3]
    model = writer.depthwise_conv2d(case["x_shape"], case["in_q"], case["filter"], case["w_scales"], case["bias"],
                                    case["out_q"], case["stride"], case["padding"], case["dilation"], dm, case["act"])
    expected = ref.run(model, case["x"])
    keep: list = []
    p = dw_struct(case, case["x_shape"], case["filter"], case["bias"], keep)
    for a in (case["filter"], case["bias"], *keep[2:4]):
        c.array(a)
    name = c.struct(p, "mn_dw_params")
    c.case(f"mn_depthwise_conv_s8 {k}", f"mn_depthwise_conv_s8(&{name}, {c.array(case['x'])}, mn_buf, NULL)", expected)
    n, h, w, ch = case["x_shape"]
    if dm != 1 or p.out_h > h or p.out_w > w:
        return 0
    c.case(f"mn_depthwise_conv_s8 in place {k}", f"mn_depthwise_conv_s8(&{name}, mn_buf, mn_buf, mn_scratch)",
           expected, work_input=case["x"])
    return h * w


def add_fc(c: CCases, ref, case: dict, k: int) -> None:
    model = writer.fully_connected(case["x_shape"], case["in_q"], case["weights"], case["w_scales"], case["bias"],
                                   case["out_q"], case["act"])
    expected = ref.run(model, case["x"])
    b, i = case["x_shape"]
    o = case["weights"].shape[0]
    bias_scale = float(np.float32(case["in_q"][0]) * np.float32(case["w_scales"][0]))
    p = qm.fully_connected_params(case["in_q"][0], case["in_q"][1], case["w_scales"], case["out_q"][0],
                                  case["out_q"][1], case["act"], bias_scale if case["bias"] is not None else None)
    mult, shift = requant_tables(p)
    params = FcParams(b, i, o, p.in_offset, p.out_offset, p.act_min, p.act_max, int(p.per_channel),
                      p8(case["weights"]), p32(case["bias"]), p32(mult), p32(shift))
    for a in (case["weights"], case["bias"], mult, shift):
        if a is not None:
            c.array(a)
    name = c.struct(params, "mn_fc_params")
    c.case(f"mn_fully_connected_s8 {k}", f"mn_fully_connected_s8(&{name}, {c.array(case['x'])}, mn_buf)", expected)


@pytest.fixture(scope="module")
def drawn_source(tflm, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    """cases.c of the drawn cases (derandomized Hypothesis examples of each strategy)."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed")
    def examples(strategy, count: int) -> list:
        """`count` examples Hypothesis draws from `strategy` (as a @given test would see them)."""
        seen: list = []

        @settings(DRAWN, max_examples=count)
        @given(case=strategy)
        def collect(case):
            seen.append(case)

        collect()
        return seen

    found = {"convs": examples(conv_cases(), CONVS), "pointwise": examples(conv_cases(pointwise=True), POINTWISE),
             "depthwise": examples(dw_cases(), DEPTHWISE), "fcs": examples(fc_cases(), FCS)}
    c = CCases()
    for k, case in enumerate(found["convs"]):
        add_conv(c, tflm, case, k, pointwise=False)
    for k, case in enumerate(found["pointwise"]):
        add_conv(c, tflm, case, k, pointwise=True)
    scratch = max([add_depthwise(c, tflm, case, k) for k, case in enumerate(found["depthwise"])] + [0])
    for k, case in enumerate(found["fcs"]):
        add_fc(c, tflm, case, k)
    path = tmp_path_factory.mktemp("drawn") / "cases.c"
    source = c.source(scratch, ["    t0 = mn_test_ticks();", "    (void)t0;"])
    path.write_text(source)
    return path, source.count("mn_test_check(")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_drawn_cases_on_qemu_in_every_kernel_variant(variant, drawn_source, tmp_path):
    machine, flags, defines, dsp, mve = VARIANTS[variant]
    cases, count = drawn_source
    assert count >= 2 * CONVS + 4 * POINTWISE + DEPTHWISE + FCS
    result = run_kernels_firmware(machine, flags, defines, cases, tmp_path)
    assert f"kernels: MN_KERNELS_DSP={dsp}" in result.output, result.output
    assert f"kernels: MN_KERNELS_MVE={mve}" in result.output, result.output
    assert "kernels: 0 failed" in result.output and result.exit_code == 0, result.output
