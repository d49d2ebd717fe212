"""Float vs int8 evaluation: accuracy, agreement, and per-layer SQNR."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli, verified

from mncompile.graph.reader import parse_model
from mncompile.validate.layers import quantize_array, sqnr_db


def test_int8_within_one_point_of_float_on_digits(digits_eval, capsys):
    drop = 100 * (digits_eval["float_accuracy"] - digits_eval["int8_accuracy"])
    with capsys.disabled():
        print(f"\ndigits V1 0.25: float {digits_eval['float_accuracy']:.2%}, int8 (TFLM) "
              f"{digits_eval['int8_accuracy']:.2%} on {digits_eval['samples']} validation images")
    assert abs(drop) <= 1.0
    assert digits_eval["int8_emulator"] == "tflm"


def test_float_accuracy_matches_keras(digits_eval, trained_digits):
    # The float .tflite on LiteRT against the Keras model training reported. Tolerance: one
    # image, because XNNPACK sums in a different order than TF and a near-tie may flip.
    assert abs(digits_eval["float_accuracy"] - trained_digits["val_accuracy"]) <= 1 / digits_eval["samples"] + 1e-12


def test_int8_accuracy_recomputed_with_an_independent_emulator(digits_eval, trained_digits, quantized_digits):
    from mncompile.model.info import read_info
    from mncompile.model.loader import load_model, model_dataset
    from mncompile.validate.emulate import emulate

    loaded = load_model(trained_digits["path"])
    data = model_dataset(loaded, None)
    graph = verified(quantized_digits["path"]).graph
    x = quantize_array(read_info(trained_digits["path"]).preprocessing.apply(data.x_val),
                       graph.tensors[graph.inputs[0]].quant)
    y = emulate(verified(quantized_digits["path"]), x, "litert-ref")
    assert np.mean(np.argmax(y.astype(int), axis=1) == data.y_val) == digits_eval["int8_accuracy"]
    # the int8 confusion matrix is scikit-learn's over the independent emulator's predictions
    from sklearn.metrics import confusion_matrix

    classes = len(digits_eval["per_class"])
    expected = confusion_matrix(data.y_val, np.argmax(y.astype(int), axis=1), labels=range(classes))
    assert digits_eval["confusion"]["int8"] == expected.tolist()
    float_matrix = np.asarray(digits_eval["confusion"]["float"])
    assert float_matrix.sum(axis=1).tolist() == [r["samples"] for r in digits_eval["per_class"]]
    assert np.trace(float_matrix) / len(data.y_val) == digits_eval["float_accuracy"]


def test_per_class_rows_add_up(digits_eval):
    rows = digits_eval["per_class"]
    assert [r["class"] for r in rows] == [str(d) for d in range(10)]
    n = sum(r["samples"] for r in rows)
    assert n == digits_eval["samples"]
    for key in ("float_accuracy", "int8_accuracy", "top1_agreement"):
        assert sum(r[key] * r["samples"] for r in rows) / n == pytest.approx(digits_eval[key], abs=1e-12)
    assert 0 < digits_eval["mean_abs_output_diff"] < 0.05
    ea = digits_eval["emulator_agreement"]
    assert ea["samples"] == n and 0 <= ea["bit_identical"] <= n


def test_layers_are_mapped_by_position_and_ranked(digits_eval):
    layers = digits_eval["layers"]
    assert layers["mapped_by"] == "position" and layers["unmapped"] == []
    assert len(layers["layers"]) == 30 and layers["samples"] == 32
    alone = [e["sqnr_alone_db"] for e in layers["layers"]]
    assert alone == sorted(alone)  # worst first
    assert all(a > 20 for a in alone)  # a healthy int8 layer keeps well over 3 bits of signal
    names = {e["layer"] for e in layers["layers"]}
    assert {"conv1", "conv_dw_1", "conv_pw_13", "global_pool", "classifier"} <= names


def test_sqnr_formula():
    x = np.array([3.0, 4.0])
    assert sqnr_db(x, x) == float("inf")
    assert sqnr_db(x, x + np.array([0.3, 0.4])) == pytest.approx(20.0)  # noise 1/100 of the power
    assert sqnr_db(np.array([1.0, -1.0]), np.array([0.0, 0.0])) == pytest.approx(0.0)


def test_quantize_rounds_half_away_from_zero_like_tflite():
    from mncompile.graph.ir import Quant

    q = Quant((0.5,), (3,))
    x = np.array([1.25, -1.25, 0.75, -0.75, 100.0, -100.0], np.float32)  # /0.5: 2.5 -2.5 1.5 -1.5
    np.testing.assert_array_equal(quantize_array(x, q), np.array([6, 0, 5, 1, 127, -128], np.int8))


def test_a_damaged_layer_ranks_first(trained_digits, quantized_digits, tmp_path):
    """Scramble one mid-network conv's int8 weights (reverse its output channels, keeping the
    scales): its 'alone' SQNR must rank it first, and it is not first without the damage."""
    import flatbuffers

    from mncompile.model.loader import load_model, model_dataset
    from mncompile.quantize.convert import to_float_tflite
    from mncompile.validate.layers import layer_errors

    path = quantized_digits["path"]
    graph = verified(path).graph
    target = next(op for op in graph.ops if graph.layer_name(op.outputs[0]) == "conv_pw_5")
    model = parse_model(path.read_bytes())
    w = graph.tensors[target.inputs[1]]
    buf = model.buffers[w.buffer]
    weights = np.asarray(buf.data, dtype=np.uint8).view(np.int8).reshape(w.shape)
    buf.data = np.ascontiguousarray(weights[::-1]).view(np.uint8).ravel()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    damaged = tmp_path / "damaged.tflite"
    damaged.write_bytes(bytes(builder.Output()))

    loaded = load_model(trained_digits["path"])
    float_path = tmp_path / "float.tflite"
    float_path.write_bytes(to_float_tflite(loaded))
    data = model_dataset(loaded, None)
    x = loaded.info.preprocessing.apply(data.x_val[::24])
    healthy = layer_errors(verified(float_path), verified(path), x)
    broken = layer_errors(verified(float_path), verified(damaged), x)
    assert healthy.layers[0].op != target.index
    assert broken.layers[0].op == target.index and broken.layers[0].name == "conv_pw_5"
    assert broken.layers[0].sqnr_alone < 10 < broken.layers[1].sqnr_alone


def test_eval_tables_on_stdout(trained_digits, quantized_digits):
    proc = run_cli("eval", str(trained_digits["path"]), str(quantized_digits["path"]),
                   "--layer-samples", "4", check=True)
    assert "float vs int8" in proc.stdout and "per class" in proc.stdout
    assert "per-layer SQNR on 4 images" in proc.stdout and "conv_pw_13" in proc.stdout
    assert "bit-identical" in proc.stdout
    assert "==> eval" in proc.stderr and "==>" not in proc.stdout


def test_eval_rejects_swapped_models(trained_digits, quantized_digits):
    proc = run_cli("eval", str(quantized_digits["path"]), str(trained_digits["path"]))
    assert proc.returncode == 4 and "int8" in proc.stderr
