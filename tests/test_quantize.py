"""The quantize stage: int8 conversion, the checks TFLM needs, and the CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import bn_calibrated_keras, run_cli, verified

from mncompile.errors import QuantizationError
from mncompile.graph.support import tflm_supports
from mncompile.quantize.calibrate import stratified_counts
from mncompile.quantize.checks import SOFTMAX_ABORT, check_int8, find_problems

TFLM_OPS_MOBILENET = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX",
                      "RESHAPE", "AVERAGE_POOL_2D"}


def assert_static_int8_for_tflm(graph):
    kinds = {op.kind for op in graph.ops}
    assert kinds <= TFLM_OPS_MOBILENET, kinds
    assert all(tflm_supports(k) for k in kinds)
    assert not kinds & {"SHAPE", "STRIDED_SLICE"}
    for t in graph.tensors:
        assert t.shape_signature is None or all(d >= 0 for d in t.shape_signature), t.name
    for i in graph.inputs + graph.outputs:
        t = graph.tensors[i]
        assert t.dtype == "INT8" and t.shape[0] == 1 and t.quant is not None
    for op in graph.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = graph.tensors[op.inputs[1]]
            assert w.dtype == "INT8" and w.quant.per_channel, op  # per-channel weights
            assert set(w.quant.zero_points) == {0}
        for i in op.outputs:
            assert graph.tensors[i].dtype == "INT8"


# --- the trained digits model ------------------------------------------------------------

def test_quantized_digits_is_full_int8_static_and_tflm_only(quantized_digits):
    graph = verified(quantized_digits["path"]).graph
    assert_static_int8_for_tflm(graph)
    assert find_problems(graph) == []
    assert quantized_digits["ops"] == {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "FULLY_CONNECTED": 1,
                                       "MEAN": 1, "SOFTMAX": 1}


def test_sidecar_carries_io_quantization_classes_and_preprocessing(quantized_digits, trained_digits):
    path = quantized_digits["path"]
    side = json.loads(path.with_name(path.name + ".json").read_text())
    graph = verified(path).graph
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    q = side["quantization"]
    assert q["input"]["scale"] == tin.quant.scale and q["input"]["zero_point"] == tin.quant.zero_point
    assert q["output"]["scale"] == tout.quant.scale and q["output"]["zero_point"] == tout.quant.zero_point
    assert side["classes"] == [str(d) for d in range(10)]
    float_side = json.loads(trained_digits["path"].with_name("digits_v1.keras.json").read_text())
    assert side["preprocessing"] == float_side["preprocessing"]
    calib = q["calibration"]
    assert calib["samples"] == 200 and sum(calib["per_class"]) == 200  # the documented default
    assert max(calib["per_class"]) - min(calib["per_class"]) <= 1  # digits classes are balanced


def test_quantize_is_deterministic(quantized_digits, trained_digits, tmp_path):
    again = tmp_path / "again.tflite"
    run_cli("quantize", str(trained_digits["path"]), "-o", str(again), check=True)
    assert again.read_bytes() == quantized_digits["path"].read_bytes()


def test_existing_output_refused_and_int8_passes_through(quantized_digits, tmp_path):
    src = quantized_digits["path"]
    proc = run_cli("quantize", str(src), "-o", str(src))
    assert proc.returncode == 5 and "--force" in proc.stderr
    out = tmp_path / "copy.tflite"
    proc = run_cli("quantize", str(src), "-o", str(out), "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["passthrough"] is True and out.read_bytes() == src.read_bytes()
    assert doc["classes"] == [str(d) for d in range(10)]  # from the source's sidecar


# --- freshly built models of every shape --------------------------------------------------

FRESH = [("v1", 0.25, 96), ("v1", 0.5, 128), ("v1", 1.0, 224), ("v2", 0.35, 96), ("v2", 0.75, 160),
         ("v2", 1.0, 224)]


@pytest.mark.parametrize(("arch", "alpha", "resolution"), FRESH)
def test_fresh_models_quantize_to_static_tflm_graphs_that_tflm_runs(arch, alpha, resolution, tmp_path):
    from mncompile.model.loader import LoadedModel
    from mncompile.quantize.convert import to_int8_tflite
    from mncompile.validate.emulate import emulate

    spec, model = bn_calibrated_keras(arch, alpha, resolution)
    loaded = LoadedModel(tmp_path / "m.keras", "keras", model, spec.input_shape, spec.classes, None)
    calib = np.random.default_rng(1).uniform(-1, 1, (8, *spec.input_shape)).astype(np.float32)
    path = tmp_path / "m.tflite"
    path.write_bytes(to_int8_tflite(loaded, calib))
    graph = verified(path).graph
    assert_static_int8_for_tflm(graph)
    check_int8(graph, str(path))
    expected = {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}
    assert {op.kind for op in graph.ops} == (expected | {"ADD"} if arch == "v2" else expected)
    x = np.random.default_rng(2).integers(-128, 128, (1, *spec.input_shape)).astype(np.int8)
    y = emulate(verified(path), x, "tflm")
    assert y.shape == (1, spec.classes) and y.dtype == np.int8


def test_dynamic_batch_keras_model_is_exported_with_batch_1(tmp_path):
    from mncompile.model.datasets import Preprocessing
    from mncompile.model.info import ModelInfo, write_info
    from mncompile.quantize import quantize

    spec, model = bn_calibrated_keras("v1", 0.25, 96, channels=3, classes=4, batch_size=None)
    assert model.inputs[0].shape[0] is None
    path = tmp_path / "dyn.keras"
    model.save(path)
    write_info(path, ModelInfo("v1", 0.25, 96, 3, ("circle", "cross", "square", "triangle"),
                               Preprocessing(96, "RGB"), {"name": "shapes", "seed": 0}))
    result = quantize(path, tmp_path / "dyn.tflite", calib_samples=16)
    graph = verified(result.path).graph
    assert_static_int8_for_tflm(graph)
    assert result.calibration.per_class == (4, 4, 4, 4)


# --- degenerate quantization -----------------------------------------------------------------

@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    from mncompile.model.builder import build_keras
    from mncompile.model.datasets import Preprocessing
    from mncompile.model.info import ModelInfo, write_info
    from mncompile.model.spec import MobileNetSpec

    path = tmp_path_factory.mktemp("untrained") / "untrained.keras"
    build_keras(MobileNetSpec("v1", 0.25, 96, 1, 10), batch_size=1).save(path)
    write_info(path, ModelInfo("v1", 0.25, 96, 1, tuple(str(d) for d in range(10)),
                               Preprocessing(96, "L"), {"name": "digits", "seed": 0}))
    return path


def test_untrained_model_is_a_clear_error_and_writes_nothing(untrained_model, tmp_path):
    out = tmp_path / "u.tflite"
    proc = run_cli("quantize", str(untrained_model), "-o", str(out), "--calib-samples", "20", "--json")
    assert proc.returncode == 6, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["error"] == "quantization" and doc["exit_code"] == 6
    assert "collapsed" in doc["message"] and "conv_" in doc["message"]  # names the layer
    assert "train" in doc["hint"] and "calibrat" in doc["hint"]
    assert list(tmp_path.iterdir()) == []  # no model, no sidecar, no temporary file


def test_softmax_abort_condition_matches_tflm():
    # TFLM: beta * scale * 2^26 must exceed 1. The measured untrained case (7.8e-9) aborts.
    assert SOFTMAX_ABORT(1.0, 7.8e-9)
    assert SOFTMAX_ABORT(1.0, 2.0 ** -26)
    assert not SOFTMAX_ABORT(1.0, 2.0 ** -26 * 1.0001)
    assert not SOFTMAX_ABORT(1.0, 0.07)


def test_checks_reject_a_float_model(tmp_path):
    from mncompile.model.loader import LoadedModel
    from mncompile.quantize.convert import to_float_tflite

    spec, model = bn_calibrated_keras("v1", 0.25, 96)
    loaded = LoadedModel(tmp_path / "m.keras", "keras", model, spec.input_shape, spec.classes, None)
    graph = verified(to_float_tflite(loaded)).graph
    with pytest.raises(QuantizationError, match="FLOAT32"):
        check_int8(graph, "float model")


def test_float_tflite_cannot_be_requantized(tmp_path):
    from mncompile.model.loader import LoadedModel
    from mncompile.quantize.convert import to_float_tflite

    spec, model = bn_calibrated_keras("v1", 0.25, 96)
    loaded = LoadedModel(tmp_path / "m.keras", "keras", model, spec.input_shape, spec.classes, None)
    path = tmp_path / "float.tflite"
    path.write_bytes(to_float_tflite(loaded))
    proc = run_cli("quantize", str(path), "-o", str(tmp_path / "q.tflite"), "--dataset", "shapes")
    assert proc.returncode == 4 and "float model" in proc.stderr
    assert not (tmp_path / "q.tflite").exists()


# --- the real int8 model from another toolchain ------------------------------------------------

def test_mlperf_vww_model_passes_the_checks(shared_data, tmp_path):
    out = tmp_path / "vww.tflite"
    proc = run_cli("quantize", str(shared_data / "vww_96_int8.tflite"), "-o", str(out), "--json",
                   check=True)
    doc = json.loads(proc.stdout)
    assert doc["passthrough"] and out.read_bytes() == (shared_data / "vww_96_int8.tflite").read_bytes()
    q = doc["quantization"]["input"]
    assert q["zero_point"] == -128 and q["scale"] == pytest.approx(1 / 255, rel=1e-6)  # the README's
    assert doc["classes"] == ["class_0", "class_1"]


# --- calibration sampling ----------------------------------------------------------------------

def _brute_force_counts(sizes, n):
    """Best proportional allocation by exhaustive search (small cases only)."""
    import itertools

    best, best_err = None, None
    total = sum(sizes)
    for counts in itertools.product(*(range(s + 1) for s in sizes)):
        if sum(counts) != min(n, total) or (min(n, total) >= len(sizes) and 0 in counts):
            continue
        err = max(abs(c - s * min(n, total) / total) for c, s in zip(counts, sizes, strict=True))
        if best_err is None or err < best_err - 1e-12:
            best, best_err = counts, err
    return best, best_err


@pytest.mark.parametrize(("sizes", "n"), [((5, 5, 5), 7), ((10, 1, 3), 6), ((2, 9), 4), ((4, 4, 1, 7), 9),
                                         ((3, 3), 10), ((6, 2, 2), 3)])
def test_stratified_counts_are_as_proportional_as_possible(sizes, n):
    counts = stratified_counts(np.array(sizes), n)
    assert counts.sum() == min(n, sum(sizes)) and np.all(counts <= sizes) and np.all(counts >= 1)
    total = sum(sizes)
    err = max(abs(c - s * counts.sum() / total) for c, s in zip(counts, sizes, strict=True))
    _, best_err = _brute_force_counts(sizes, n)
    assert err <= best_err + 1e-12
