"""CMSIS-NN's buffers on a Helium (MVE) core: the ``*_get_buffer_size_mve`` formulas, checked
against values worked out by hand from CMSIS-NN's source (the commit tflite-micro 90b983c2 pins,
``Source/*/arm_*_get_buffer_sizes_s8.c``), and a cortex-m55 TFLM project's manifest against the
``arena_used_bytes()`` its firmware printed on QEMU mps3-an547."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mncompile.graph.ir import Graph, Op, Quant, Tensor
from mncompile.graph.ops import cmsis_nn
from mncompile.graph.ops.cmsis_nn import ConvGeometry
from mncompile.plan.arena import predict_arena

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
KWS = Path("/work/ext/models/kws_ref_model.tflite")


def _geo(n_h_w_c, kernel, out_hw, padding=(0, 0), stride=(1, 1), dilation=(1, 1), depth=None) -> ConvGeometry:
    """`depth`: the filter's last dimension (depthwise: the output channels; default the input's)."""
    depth = n_h_w_c[3] if depth is None else depth
    return ConvGeometry(n_h_w_c, (*kernel, depth), (*out_hw, depth), padding, stride, dilation)


def test_conv_3x3_im2col():
    # arm_convolve_s8_get_buffer_size_mve: col 3*3*3 = 27 -> 2 lanes of 16 -> 4 * 2 * 16 = 128;
    # DSP: align4(27) = 28 -> 2 * 28 * sizeof(int16) = 112
    geo = _geo((1, 96, 96, 3), (3, 3), (48, 48), padding=(0, 0), stride=(2, 2))
    assert cmsis_nn.convolve_wrapper_s8(geo, mve=True) == 128
    assert cmsis_nn.convolve_wrapper_s8(geo, mve=False) == 112
    # col 3*3*16 = 144 = 9 lanes exactly -> 576 (the DSP figure happens to agree: 2 * 144 * 2)
    geo = _geo((1, 8, 8, 16), (3, 3), (8, 8), padding=(1, 1))
    assert cmsis_nn.convolve_wrapper_s8(geo, mve=True) == 576


def test_conv_1xn_edge_column():
    # input 1x10x8, filter 1x3, SAME, stride 1: pad_x 1, total_pad 2, asym 0; right 1, left 1,
    # no-pad 8 (sum 10 = output_x); left 1*8, right 8; max(3*8 + 8, 2*8 + 8) = 32
    geo = _geo((1, 1, 10, 8), (1, 3), (1, 10), padding=(0, 1))
    assert cmsis_nn.convolve_wrapper_s8(geo, mve=True) == 32
    assert cmsis_nn.convolve_wrapper_s8(geo, mve=False) == 96  # DSP: arm_convolve_s8's 2 * 24 * 2
    # VALID, stride 2, input 12, kernel 5: output 4, total_pad 3*2 + 5 - 12 = -1, C's -1 % 2 = -1;
    # right max(1, 0 / 2) = 1, left 0, no-pad 3; pad right 1*4; max(5*4 + 0, 4*4 + 4) = 20
    geo = _geo((1, 1, 12, 4), (1, 5), (1, 4), stride=(2, 2))
    assert cmsis_nn.convolve_wrapper_s8(geo, mve=True) == 20
    # stride * channels % 4 != 0: not 1xN, the im2col buffer: col 5*3 = 15 -> 1 lane -> 64
    geo = _geo((1, 1, 12, 3), (1, 5), (1, 8))
    assert cmsis_nn.convolve_wrapper_s8(geo, mve=True) == 64


def test_conv_1x1_needs_no_buffer():
    # arm_convolve_1x1_s8_fast_get_buffer_size is 0 under ARM_MATH_MVEI; the non-fast 1x1 (stride 2) 0
    for stride in ((1, 1), (2, 2)):
        geo = _geo((1, 10, 10, 32), (1, 1), (10, 10), stride=stride)
        assert cmsis_nn.convolve_wrapper_s8(geo, mve=True) == 0
    # padding makes it a plain convolution: col 32 -> 2 lanes -> 128
    assert cmsis_nn.convolve_wrapper_s8(_geo((1, 10, 10, 32), (1, 1), (12, 12), padding=(1, 1)), mve=True) == 128


def test_depthwise_opt():
    # arm_depthwise_conv_s8_opt_get_buffer_size_mve: 4 * CH_IN_BLOCK_MVE (124) * 3 * 3 = 4464, also for
    # 3x3 with padding 1 (the DSP wrapper runs arm_depthwise_conv_3x3_s8 there, with no buffer)
    geo = _geo((1, 48, 48, 8), (3, 3), (48, 48), padding=(1, 1), depth=8)
    assert cmsis_nn.depthwise_wrapper_s8(geo, mve=True) == 4464
    assert cmsis_nn.depthwise_wrapper_s8(geo, mve=False) == 0
    geo = _geo((1, 20, 20, 16), (5, 5), (20, 20), padding=(2, 2), depth=16)
    assert cmsis_nn.depthwise_wrapper_s8(geo, mve=True) == 4 * 124 * 25
    assert cmsis_nn.depthwise_wrapper_s8(geo, mve=False) == 2 * 16 * 25
    # a depth multiplier (8 -> 16 channels), a batch of 2 or dilation: the generic kernel, no buffer
    assert cmsis_nn.depthwise_wrapper_s8(_geo((1, 8, 8, 8), (3, 3), (8, 8), depth=16), mve=True) == 0
    assert cmsis_nn.depthwise_wrapper_s8(_geo((2, 8, 8, 8), (3, 3), (8, 8), depth=8), mve=True) == 0
    assert cmsis_nn.depthwise_wrapper_s8(_geo((1, 8, 8, 8), (3, 3), (4, 4), dilation=(2, 2), depth=8), True) == 0


def test_depthwise_one_input_channel_runs_as_a_convolution():
    # input 96x96x1, depth multiplier 8, 3x3 stride 2: the conv wrapper with filter {8, 3, 3, 1}:
    # col 1*3*3 = 9 -> 1 lane -> 64, plus the filter 8 * 3 * 3 = 72 -> 136
    geo = _geo((1, 96, 96, 1), (3, 3), (48, 48), padding=(0, 0), stride=(2, 2), depth=8)
    assert cmsis_nn.depthwise_wrapper_s8(geo, mve=True) == 136
    assert cmsis_nn.depthwise_wrapper_s8(geo, mve=False) == 0  # DSP: depth changes, no buffer
    # one channel in and out: not converted (threshold 1), the opt kernel's 4 * 124 * 9
    assert cmsis_nn.depthwise_wrapper_s8(_geo((1, 8, 8, 1), (3, 3), (8, 8), depth=1), mve=True) == 4464


def test_fully_connected_and_average_pool_sizes():
    assert cmsis_nn.fully_connected_s8(10, mve=True) == 40 and cmsis_nn.fully_connected_s8(10, mve=False) == 0
    assert cmsis_nn.avgpool_s8(64, mve=True) == 0 and cmsis_nn.avgpool_s8(64, mve=False) == 256


# ------------------------------------------------------------------------------------------------
# Through the op registry and the arena predictor


def _layer(kind: str, x_shape, w_shape, y_shape, options=(), constant_bias=True) -> Graph:
    q = Quant((0.1,), (0,))
    channels = w_shape[0] if kind != "DEPTHWISE_CONV_2D" else w_shape[-1]
    wq = Quant((0.01,) * channels, (0,) * channels, 0 if kind != "DEPTHWISE_CONV_2D" else 3)
    tensors = (Tensor(0, "x", tuple(x_shape), None, "INT8", q, 0, False),
               Tensor(1, "w", tuple(w_shape), None, "INT8", wq, 1, True),
               Tensor(2, "b", (channels,), None, "INT32", None, 2, constant_bias),
               Tensor(3, "y", tuple(y_shape), None, "INT8", q, 0, False))
    return Graph(tensors, (Op(0, kind, (0, 1, 2), (3,), tuple(sorted(options))),), (0,), (3,))


def _scratch(graph: Graph, mve: bool) -> list[int]:
    return [s.bytes for s in predict_arena(graph, 0, pointer_size=4, kernels="cmsis-nn", mve=mve).scratch_requests]


def test_registry_requests_the_mve_buffers():
    conv = _layer("CONV_2D", (1, 10, 10, 8), (16, 3, 3, 8), (1, 10, 10, 16),
                  (("padding", 0), ("strideH", 1), ("strideW", 1)))
    assert _scratch(conv, True) == [4 * 5 * 16] and _scratch(conv, False) == [2 * 72 * 2]  # col 72 -> 5 lanes
    dw = _layer("DEPTHWISE_CONV_2D", (1, 10, 10, 8), (1, 3, 3, 8), (1, 10, 10, 8),
                (("depthMultiplier", 1), ("padding", 0), ("strideH", 1), ("strideW", 1)))
    assert _scratch(dw, True) == [4464] and _scratch(dw, False) == []
    pool = Graph((Tensor(0, "x", (1, 4, 4, 16), None, "INT8", Quant((0.1,), (0,)), 0, False),
                  Tensor(1, "y", (1, 1, 1, 16), None, "INT8", Quant((0.1,), (0,)), 0, False)),
                 (Op(0, "AVERAGE_POOL_2D", (0,), (1,), (("filterHeight", 4), ("filterWidth", 4), ("padding", 1),
                                                         ("strideH", 4), ("strideW", 4))),), (0,), (1,))
    assert _scratch(pool, True) == [] and _scratch(pool, False) == [64]


def test_fully_connected_kernel_sums_are_persistent():
    """With KERNELS_OPTIMIZED_FOR_SPEED and constant weights and bias, the MVE kernel sums
    (4 * 10 = 40 B) are a persistent buffer after the per-channel arrays: 48 B of the tail."""
    fc = _layer("FULLY_CONNECTED", (1, 16), (10, 16), (1, 10), (("keepNumDims", False), ("weightsFormat", 0)))
    mve = predict_arena(fc, 0, pointer_size=4, kernels="cmsis-nn", mve=True)
    dsp = predict_arena(fc, 0, pointer_size=4, kernels="cmsis-nn")
    assert mve.kernel_sums == 40 and dsp.kernel_sums == 0 and not mve.scratch_requests
    assert mve.total - dsp.total == 48
    sums = [a for a in mve.allocations if a.category == "kernel_sums"]
    assert len(sums) == 1 and mve.allocations.index(sums[0]) > max(
        i for i, a in enumerate(mve.allocations) if a.category == "per_channel_quantization")
    # a bias computed at run time: the sums become a scratch buffer instead
    live = _layer("FULLY_CONNECTED", (1, 16), (10, 16), (1, 10), (("keepNumDims", False), ("weightsFormat", 0)),
                  constant_bias=False)
    assert _scratch(live, True) == [40]
    # the conv 1x1 path (output rank 3, depth % 4 == 0): per-channel weights need no buffer on either core
    assert _scratch(_layer("FULLY_CONNECTED", (1, 4, 16), (10, 16), (1, 4, 10),
                           (("keepNumDims", True), ("weightsFormat", 0))), True) == []


# ------------------------------------------------------------------------------------------------
# Against the firmware: arena_used_bytes() on QEMU (bench/firmware.py, TFLM 90b983c2 + its CMSIS-NN)

MEASURED = {  # model -> target -> arena_used_bytes() of the tflm-cmsis firmware
    "tiny_int8": {"cortex-m55": 6_772, "cortex-m7": 2_292},
    "kws_ref_model": {"cortex-m55": 27_348, "cortex-m7": 22_820},
}


@pytest.fixture(scope="module")
def tiny_projects(tmp_path_factory) -> dict[str, dict]:
    from mncompile.pipeline import emit

    docs = {}
    for target in ("cortex-m55", "cortex-m7"):
        out = tmp_path_factory.mktemp(f"tiny-{target}")
        emit(TINY, target, out, golden=1, force=True)
        docs[target] = json.loads((out / "mncompile.json").read_text())
    return docs


@pytest.mark.parametrize("target", ["cortex-m55", "cortex-m7"])
def test_tflm_manifest_predicts_the_firmware_arena(tiny_projects, target):
    arena = tiny_projects[target]["arena"]
    assert arena["predicted_bytes"]["cmsis-nn"] == MEASURED["tiny_int8"][target]
    assert "not_predicted" not in arena
    requests = [s["bytes"] for s in arena["prediction"]["cmsis-nn"]["scratch_requests"]]
    if target == "cortex-m55":  # the depthwise opt buffer (4464 B); FC kernel sums in the tail
        assert 4464 in requests and arena["prediction"]["cmsis-nn"]["kernel_sums_bytes"] > 0
        assert "Helium" in arena["prediction"]["cmsis-nn"]["runtime"]
    else:
        assert 4464 not in requests and arena["prediction"]["cmsis-nn"]["kernel_sums_bytes"] == 0
    assert arena["reserved_bytes"]["cmsis-nn"] >= arena["predicted_bytes"]["cmsis-nn"] + 1024


@pytest.mark.skipif(not KWS.is_file(), reason="MLPerf Tiny KWS model not in /work/ext/models")
def test_kws_arena_on_both_cores():
    from mncompile.graph.verified import read_model
    from mncompile.plan import firmware_arena, plan_model

    planned = plan_model(read_model(KWS))
    for target, cpu in (("cortex-m55", "cortex-m55"), ("cortex-m7", "cortex-m7")):
        assert firmware_arena(planned, cpu).predicted["cmsis-nn"] == MEASURED["kws_ref_model"][target]
