"""The arena predictor against TFLM itself: the host interpreter's RecordingMicroAllocator
report (byte for byte, every category) and the Cortex-M7 figures measured for the VWW model."""

from __future__ import annotations

import numpy as np
import pytest

from mncompile.errors import EmulatorError, InvalidOptionError, ModelError
from mncompile.graph.ir import Graph, Op, Quant, Tensor
from mncompile.graph.verified import read_model
from mncompile.plan.arena import (
    TERMS,
    kernel_scratch_requests,
    predict_arena,
    struct_layout,
)
from mncompile.validate.host_arena import measure_host_arena, parse_allocations

# (arch, alpha, resolution), 3 channels, 4 classes
MODELS = {"v1_0.25_96": ("v1", 0.25, 96), "v1_0.25_224": ("v1", 0.25, 224), "v1_1.0_224": ("v1", 1.0, 224),
          "v2_0.35_96": ("v2", 0.35, 96), "v2_1.0_224": ("v2", 1.0, 224)}

VWW_PLANNED = 73_728  # TFLM's greedy plan for the VWW model
VWW_HOST_TOTAL = 103_680  # the host RecordingMicroAllocator's total
VWW_CORTEX_M7 = {"reference": 100_660, "cmsis-nn": 100_708}  # arena_used_bytes() on a Cortex-M7


@pytest.fixture(scope="module")
def int8_model(tflite_zoo):
    """The session's planning models (conftest `tflite_zoo`), looked up by name."""
    assert set(MODELS) == set(tflite_zoo)
    return tflite_zoo.__getitem__


def assert_matches_host(model):
    """The prediction for the head TFLM planned equals the recorder's report, category by category
    (`model`: a path or a verified model)."""
    model = model if hasattr(model, "graph") else read_model(model)
    measured = measure_host_arena(model)
    predicted = predict_arena(model.graph, measured["head"], pointer_size=8)
    assert predicted.recorded() == measured["categories"]
    assert (predicted.planned, predicted.persistent, predicted.total) == (
        measured["head"], measured["tail"], measured["total"])
    return predicted, measured


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_host_arena_is_predicted_to_the_byte(int8_model, name):
    assert_matches_host(int8_model(name))


def test_host_arena_of_the_vww_model(shared_data):
    predicted, measured = assert_matches_host(shared_data / "vww_96_int8.tflite")
    assert measured["head"] == VWW_PLANNED
    assert predicted.total == VWW_HOST_TOTAL


@pytest.mark.parametrize("kernels", list(VWW_CORTEX_M7))
def test_cortex_m7_arena_of_the_vww_model(shared_data, kernels):
    graph = read_model(shared_data / "vww_96_int8.tflite").graph
    predicted = predict_arena(graph, VWW_PLANNED, pointer_size=4, kernels=kernels)
    assert predicted.total == VWW_CORTEX_M7[kernels]
    # the CMSIS-NN kernels ask for an im2col buffer (first conv) and an average-pool buffer
    expected = [(0, 112), (27, 1024)] if kernels == "cmsis-nn" else []
    assert [(s.op_index, s.bytes) for s in predicted.scratch_requests] == expected


def test_terms_add_up(shared_data):
    graph = read_model(shared_data / "vww_96_int8.tflite").graph
    for pointer_size in (4, 8):
        p = predict_arena(graph, VWW_PLANNED, pointer_size=pointer_size)
        assert sum(getattr(p, t) for t in TERMS) + p.alignment_padding == p.persistent
        assert p.persistent == sum(a.size + a.padding for a in p.allocations)
        assert p.total == p.planned + p.persistent
        assert p.eval_tensors == len(graph.tensors) * struct_layout("TfLiteEvalTensor", pointer_size)[0]
        document = p.to_json(allocations=True)
        assert document["total_bytes"] == p.total and len(document["allocations"]) == len(p.allocations)


@pytest.mark.slow
def test_quantize_dequantize_max_pool_and_float_io(tmp_path):
    """Float input and output (QUANTIZE/DEQUANTIZE ops, no I/O quantization data), MAX_POOL_2D."""
    from mncompile.tfenv import tf_module

    tf = tf_module()
    keras = tf.keras
    inputs = keras.Input((20, 20, 3), batch_size=1)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="valid")(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Dense(5)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Softmax()(x))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, 20, 20, 3)).astype("float32")]
                                                for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "float_io.tflite"
    path.write_bytes(converter.convert())
    kinds = {op.kind for op in read_model(path).graph.ops}
    assert {"QUANTIZE", "DEQUANTIZE", "MAX_POOL_2D"} <= kinds
    predicted, _ = assert_matches_host(path)
    assert predicted.io_quantization == 0


def test_struct_layouts_match_the_compilers():
    """sizeof/alignof as g++ (x86-64, USE_TFLM_COMPRESSION) and arm-none-eabi-g++ -mcpu=cortex-m7
    compile them from the TFLM headers."""
    host = {"TfLiteEvalTensor": (24, 8), "TfLiteTensor": (64, 8), "TfLiteAffineQuantization": (24, 8),
            "NodeAndRegistration": (64, 8), "SubgraphAllocations": (24, 8), "OpDataConv": (80, 8),
            "OpDataFullyConnected": (72, 8), "SoftmaxParams": (80, 8), "OpDataReduce": (44, 4),
            "RecordingSingleArenaBufferAllocator": (104, 8), "GreedyMemoryPlanner": (72, 8),
            "RecordingMicroAllocator": (272, 8), "TfLiteFullyConnectedParams": (32, 8)}
    arm = {"TfLiteEvalTensor": (12, 4), "TfLiteTensor": (32, 4), "NodeAndRegistration": (32, 4),
           "SubgraphAllocations": (8, 4), "OpDataConv": (56, 4), "OpDataFullyConnected": (48, 4),
           "SoftmaxParams": (56, 8), "CMSISNNSoftmaxParams": (64, 8), "CmsisNnFullyConnectedOpData": (72, 4),
           "SingleArenaBufferAllocator": (36, 4), "GreedyMemoryPlanner": (44, 4), "MicroAllocator": (36, 4),
           "TfLiteAddParams": (2, 1),
           # TFLM 90b983c2 (what a device build uses) has no quant_spec members yet
           "TfLiteFullyConnectedParams": (5, 1)}
    for name, layout in host.items():
        assert struct_layout(name, 8) == layout, name
    for name, layout in arm.items():
        assert struct_layout(name, 4) == layout, name
    assert struct_layout("TfLiteTensor", 4, short_enums=False) == (40, 4)
    assert struct_layout("OpDataConv", 4, compression=True) == (64, 4)


def _tiny_graph(kind: str) -> Graph:
    q = Quant((0.1,), (0,))
    tensors = (Tensor(0, "in", (1, 4), None, "INT8", q, 0, False), Tensor(1, "out", (1, 4), None, "INT8", q, 0, False))
    return Graph(tensors, (Op(0, kind, (0,), (1,), ()),), (0,), (1,))


def test_unmodelled_operators_and_options_are_clear_errors():
    with pytest.raises(ModelError, match="GATHER"):
        predict_arena(_tiny_graph("GATHER"), 64)
    with pytest.raises(InvalidOptionError):
        predict_arena(_tiny_graph("SOFTMAX"), 64, pointer_size=2)
    with pytest.raises(InvalidOptionError):
        predict_arena(_tiny_graph("SOFTMAX"), 64, kernels="xtensa")
    assert predict_arena(_tiny_graph("SOFTMAX"), 64).total > 64


@pytest.mark.slow
def test_mean_scratch_buffers(int8_model):
    graph = read_model(int8_model("v1_0.25_96")).graph
    requests = kernel_scratch_requests(graph)
    # accumulator (one int32 per output channel), input iterator (rank 4), resolved axes (2)
    assert [(r.op_kind, r.bytes) for r in requests] == [("MEAN", 4 * 256), ("MEAN", 16), ("MEAN", 8)]


def test_parse_allocations():
    text = ("[RecordingMicroAllocator] Arena allocation total 103680 bytes\n"
            "[RecordingMicroAllocator] Arena allocation head 73728 bytes\n"
            "[RecordingMicroAllocator] Arena allocation tail 29952 bytes\n"
            "[RecordingMicroAllocator] 'NodeAndRegistration struct' used 1984 bytes with alignment overhead "
            "(requested 1984 bytes for 31 NodeAndRegistration structs)\n")
    report = parse_allocations(text)
    assert (report["total"], report["head"], report["tail"]) == (103680, 73728, 29952)
    assert report["categories"] == {"NodeAndRegistration struct": {"used": 1984, "requested": 1984, "count": 31}}


def test_interpreter_failure_is_an_emulator_error(shared_data):
    with pytest.raises(EmulatorError):
        measure_host_arena(read_model(shared_data / "vww_96_int8.tflite"), arena_size=4096)
