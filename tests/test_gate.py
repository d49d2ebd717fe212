"""The accuracy gate (--max-drop, exit 12), the drop warning, and the calibration-count warning."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from conftest import run_cli

from mncompile.errors import AccuracyError, InvalidOptionError
from mncompile.validate.gate import IDEAL_INT8_DB, check_drop, check_max_drop, culprit
from mncompile.validate.layers import LayerError, LayerReport


def _report(float_acc: float, int8_acc: float, e2e=(45.0, 44.0, 20.0, 19.0)):
    from mncompile.validate.accuracy import EvalReport
    from mncompile.validate.emulate import Agreement

    layers = LayerReport("position", 8, tuple(LayerError(k, f"conv_{k}", "CONV_2D", k, 0.1, v, 30.0)
                                              for k, v in enumerate(e2e)), ())
    return EvalReport("f.keras", "q.tflite", "digits", 100, float_acc, int8_acc, 0.9, 0.01, (),
                      Agreement(100, 100, 0, 100), layers)


def test_culprit_is_where_the_error_enters_not_where_it_is_largest():
    assert culprit(_report(0.9, 0.8)).startswith("layer conv_2 (CONV_2D, op 2): end-to-end SQNR falls 24.0 dB")
    first = culprit(_report(0.9, 0.8, e2e=(12.0, 11.5, 11.0)))  # the first layer, against an ideal quantizer
    assert first.startswith("layer conv_0") and f"{IDEAL_INT8_DB - 12.0:.1f} dB" in first
    assert culprit(_report(0.9, 0.8, e2e=(math.inf, math.inf))) is None  # exact: nothing to blame


def test_drop_over_one_point_warns_without_a_gate():
    assert check_drop(_report(0.90, 0.895), None) is None  # 0.5 point
    warning = check_drop(_report(0.90, 0.85), None)
    assert "5.00 points below float" in warning and "conv_2" in warning and "calibration" in warning


def test_gate_exit_12_names_culprit_and_remedies_and_keeps_the_report():
    report = replace(_report(0.90, 0.85), max_drop=2.0)
    assert report.warning() is None  # the gate replaces the warning
    with pytest.raises(AccuracyError) as info:
        report.enforce()
    err = info.value
    assert err.exit_code == 12 and "more than --max-drop 2" in err.message and "conv_2" in err.message
    assert "--calib-samples" in err.hint and "--alpha" in err.hint and "quantization-aware" in err.hint
    doc = err.to_json()
    assert doc["exit_code"] == 12 and doc["error"] == "accuracy-gate" and doc["int8_accuracy"] == 0.85
    replace(_report(0.90, 0.89), max_drop=2.0).enforce()  # within the gate


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_max_drop(value):
    with pytest.raises(InvalidOptionError, match="--max-drop"):
        check_max_drop(value)


def test_cli_negative_max_drop_exits_2_before_any_work(tmp_path):
    proc = run_cli("eval", str(tmp_path / "missing.keras"), str(tmp_path / "missing.tflite"), "--max-drop", "-1")
    assert proc.returncode == 2 and "--max-drop -1" in proc.stderr
    out = tmp_path / "b"
    proc = run_cli("build", "--max-drop", "-0.5", "-o", str(out))
    assert proc.returncode == 2 and not out.exists()


def _negate_classifier_row(path, row: int = 0) -> None:
    """The int8 model with its FULLY_CONNECTED weights of one class negated, in place (same bytes
    long): a model that surely loses accuracy."""
    import numpy as np

    from mncompile.graph.reader import schema

    data = path.read_bytes()
    m = schema().ModelT.InitFromPackedBuf(data, 0)
    g = m.subgraphs[0]
    fc = next(op for op in g.operators if m.operatorCodes[op.opcodeIndex].builtinCode == 9)  # FULLY_CONNECTED
    t = g.tensors[fc.inputs[1]]
    weights = np.asarray(m.buffers[t.buffer].data, dtype=np.uint8).tobytes()
    assert data.count(weights) == 1
    w = np.frombuffer(weights, dtype=np.int8).reshape(t.shape).copy()
    w[row] = np.clip(-w[row].astype(np.int16), -127, 127).astype(np.int8)
    path.write_bytes(data.replace(weights, w.tobytes()))


def test_gate_on_the_cli_and_the_calibration_count_warning(trained_digits, tmp_path):
    """An int8 model whose classifier weights of class 0 are negated loses accuracy: eval --max-drop
    below that drop is exit 12 with the evaluation as the one JSON document, above it exit 0. (One
    calibration image alone no longer reliably costs accuracy: on one machine int8 beat float by
    0.56 points.) Asking for more calibration images than the training split has is a warning, and
    the sidecar says so."""
    q = tmp_path / "q.tflite"
    run_cli("quantize", str(trained_digits["path"]), "-o", str(q), "--calib-samples", "1", check=True)
    _negate_classifier_row(q)
    proc = run_cli("eval", str(trained_digits["path"]), str(q), "--layer-samples", "8", "--json", check=True)
    doc = json.loads(proc.stdout)
    drop = 100 * (doc["float_accuracy"] - doc["int8_accuracy"])
    assert drop > 1, "negating a class's weights should cost accuracy"
    proc = run_cli("eval", str(trained_digits["path"]), str(q), "--max-drop", f"{drop / 2:.4f}", "--layer-samples", "8",
                   "--json")
    gated = json.loads(proc.stdout)
    assert proc.returncode == 12 and gated["error"] == "accuracy-gate" and gated["exit_code"] == 12
    assert "most likely culprit: layer" in gated["message"] and gated["int8_accuracy"] == doc["int8_accuracy"]
    proc = run_cli("eval", str(trained_digits["path"]), str(q), "--max-drop", f"{drop + 0.5:.4f}", "--layer-samples",
                   "0")
    assert proc.returncode == 0, proc.stderr
    many = tmp_path / "many.tflite"
    proc = run_cli("quantize", str(trained_digits["path"]), "-o", str(many), "--calib-samples", "5000", "--json")
    assert proc.returncode == 0 and "warning: --calib-samples 5000 asks for more images" in proc.stderr
    calibration = json.loads(proc.stdout)["calibration"]
    assert calibration["requested"] == 5000 and calibration["samples"] < 5000


KERAS3 = ["mobilenet_1/conv1_relu_1/Relu6;mobilenet_1/conv1_bn_1/batchnorm/add_1",
          "mobilenet_1/conv_dw_1_relu_1/Relu6", "mobilenet_1/global_pool_1/Mean",
          "mobilenet_1/classifier_1/MatMul;mobilenet_1/classifier_1/BiasAdd", "Identity"]
KERAS2 = ["model/activation/Relu6", "model/activation_5/Relu6;model/batch_normalization_5/FusedBatchNormV3",
          "model/conv2d_1/Conv2D", "model/conv_pw_3_relu/Relu6", "model/dense/MatMul", "Identity"]


def test_layer_names_keep_keras_2_numbering_and_drop_keras_3_call_suffixes():
    """Keras 3 scopes every layer of a traced call with the same _1; Keras 2 .h5 layers are named
    activation_5, conv2d_1, ...: those numbers are the names, and per-layer rows must tell them apart."""
    from mncompile.graph.ir import call_suffix, short_name

    assert call_suffix(KERAS3) == "_1" and call_suffix(KERAS2) == ""
    assert [short_name(n, "_1") for n in KERAS3] == ["conv1", "conv_dw_1", "global_pool", "classifier", "Identity"]
    assert [short_name(n, "") for n in KERAS2] == ["activation", "activation_5", "conv2d_1", "conv_pw_3", "dense",
                                                  "Identity"]
