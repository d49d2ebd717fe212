"""Per-layer blame (`mncompile.validate.blame`, `mncompile eval --blame`).

The fixture is a small classifier trained for a few seconds on the bundled shapes set, then
sabotaged in ONE layer without changing what the float model computes: depthwise channel 0 of
``dw_b`` is made dead (always 0 after its ReLU), and every filter of ``conv_hard`` gets a weight of
1000 on that dead channel. In float nothing changes (1000 x 0); in int8 each filter's per-channel
weight scale becomes 1000/127, so all its real weights round to 0 and the network downstream of
``conv_hard`` goes blind. Blame must name ``conv_hard`` first, and keeping it in float must give back
what int8 lost. The float reference in the direct tests is Keras itself, not the converter.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from conftest import run_cli

from mncompile.errors import AccuracyError, InvalidOptionError, ModelError

RES = 24
HARD_WEIGHT = 1000.0


def _sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """Written out again here (not imported) so the module's SQNR is checked against a formula."""
    f = reference.astype(np.float64)
    return float(10 * np.log10(np.sum(f ** 2) / np.sum((f - approx.astype(np.float64)) ** 2)))


@pytest.fixture(scope="module")
def hard(tmp_path_factory) -> dict:
    from mncompile.model.datasets import load_dataset
    from mncompile.model.loader import load_model
    from mncompile.quantize.calibrate import calibration_set
    from mncompile.tfenv import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(0)
    data = load_dataset("shapes", RES, 3)
    prep = data.preprocessing()
    layers = keras.layers
    inp = keras.Input((RES, RES, 3), name="image")
    h = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv_a")(inp)
    h = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw_b")(h)
    h = layers.Conv2D(32, 1, activation="relu", name="conv_hard")(h)
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv_d")(h)
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    out = layers.Softmax(name="probs")(layers.Dense(4, name="head")(h))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(0.003), "sparse_categorical_crossentropy")
    model.fit(prep.apply(data.x_train), data.y_train, epochs=12, batch_size=32, verbose=0)
    dw = model.get_layer("dw_b")
    kernel, bias = dw.get_weights()
    kernel[..., 0, 0], bias[0] = 0.0, -1.0  # channel 0: always 0 after the ReLU
    dw.set_weights([kernel, bias])
    conv = model.get_layer("conv_hard")
    kernel, bias = conv.get_weights()
    kernel[0, 0, 0, :] = HARD_WEIGHT  # multiplies the dead channel: no effect in float
    conv.set_weights([kernel, bias])
    path = tmp_path_factory.mktemp("blame") / "hard.keras"
    model.save(path)
    x_val = prep.apply(data.x_val)
    calibration, _ = calibration_set(data, 50, prep)
    return {"path": path, "loaded": load_model(path), "x": x_val, "y": data.y_val, "calibration": calibration,
            "keras_out": model.predict(x_val, verbose=0), "data": data}


class Recorder:
    """A reporter that keeps every task's total and how far it advanced."""

    def __init__(self):
        self.tasks: list[list] = []

    def stage(self, name, detail=""):
        pass

    def info(self, message):
        pass

    def task(self, description, total):
        from contextlib import contextmanager

        recorder = self

        class Task:
            def __init__(self):
                self.entry = [description, total, 0]
                recorder.tasks.append(self.entry)

            def advance(self, steps=1, **fields):
                self.entry[2] += steps

        @contextmanager
        def run():
            yield Task()
        return run()


@pytest.fixture(scope="module")
def blamed(hard):
    from mncompile.validate.blame import blame_layers

    recorder = Recorder()
    report = blame_layers(hard["loaded"], hard["x"], hard["y"], hard["calibration"],
                          float_output=hard["keras_out"], reporter=recorder)
    return report, recorder


def test_blame_names_the_sabotaged_layer_and_keeping_it_float_recovers(hard, blamed):
    report, recorder = blamed
    float_acc = float(np.mean(np.argmax(hard["keras_out"], axis=1) == hard["y"]))
    assert report.float_accuracy == float_acc and float_acc > 0.35  # it learned something (4 classes, chance 0.25)
    top = report.rows[0]
    assert (top.name, top.kind) == ("conv_hard", "CONV_2D") and report.top is top
    assert [r.name for r in report.rows[1:]] != [] and "conv_hard" not in [r.name for r in report.rows[1:]]
    # int8 is blind downstream of conv_hard; with it alone in float the rest of the int8 model is fine
    assert report.fully_int8.sqnr_db < 10 and report.fully_int8.accuracy < float_acc - 0.15
    assert top.kept_float.sqnr_db > 25 and top.sqnr_gain_db > 20
    assert abs(top.kept_float.accuracy - float_acc) <= 0.03 and top.accuracy_gain_pp > 15
    assert math.isclose(top.accuracy_gain_pp, 100 * (top.kept_float.accuracy - report.fully_int8.accuracy))
    for row in report.rows[1:]:  # keeping any other layer in float leaves conv_hard int8: no help
        assert abs(row.sqnr_gain_db) < 1.0 and row.accuracy_gain_pp < 3, row
    # each layer alone int8: only conv_hard hurts
    assert top.only_int8.sqnr_db < 10
    assert all(r.only_int8.sqnr_db > 25 for r in report.rows[1:])
    # one model a layer and two variants each, plus the baseline: progress says so
    blame_task = next(t for t in recorder.tasks if t[0].startswith("blame"))
    assert blame_task[1] == blame_task[2] == 1 + 2 * len(report.rows)
    assert ["calibrating", 50, 50] in recorder.tasks
    # JSON-able, with the real Keras layer names
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["layers"][0]["layer"] == "conv_hard" and "conv_hard" in doc["layers"][0]["keras_layers"]
    assert {r["layer"] for r in doc["layers"]} >= {"conv_a", "dw_b", "conv_hard", "conv_d", "pool", "head"}


def test_baseline_sqnr_matches_a_formula_on_its_own_model(hard, blamed):
    from mncompile.graph.verified import verify_model
    from mncompile.validate.emulate import Job, run_litert

    report, _ = blamed
    base = verify_model(report.baseline_model, "base.tflite")
    g = base.graph
    tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    x_q = np.clip(np.round(hard["x"] / tin.quant.scale) + tin.quant.zero_point, -128, 127).astype(np.int8)
    out = run_litert([Job(base, (x_q,))])[0]["output_0"].reshape(len(x_q), -1)
    real = (out.astype(np.float64) - tout.quant.zero_point) * tout.quant.scale
    assert report.fully_int8.sqnr_db == pytest.approx(_sqnr_db(hard["keras_out"], real), abs=1e-9)
    assert report.fully_int8.accuracy == float(np.mean(np.argmax(real, axis=1) == hard["y"]))


def test_fully_int8_baseline_is_the_to_int8_tflite_model(hard, blamed):
    """The debugger's calibrate-once path gives the model `mncompile quantize` makes from the same
    calibration images: same quantization tensor for tensor, bit-identical outputs."""
    from mncompile.graph.verified import verify_model
    from mncompile.quantize.convert import to_int8_tflite
    from mncompile.validate.blame import same_quantization
    from mncompile.validate.emulate import Job, run_litert
    from mncompile.validate.layers import quantize_array

    report, _ = blamed
    base = verify_model(report.baseline_model, "base.tflite")
    user = verify_model(to_int8_tflite(hard["loaded"], hard["calibration"]), "user.tflite")
    assert same_quantization(base.graph, user.graph)
    q = user.graph.tensors[user.graph.inputs[0]].quant
    x_q = quantize_array(hard["x"][:40], q)
    a, b = (run_litert([Job(m, (x_q,))])[0]["output_0"] for m in (base, user))
    np.testing.assert_array_equal(a, b)
    # the check can fail: another calibration gives other scales
    other = verify_model(to_int8_tflite(hard["loaded"], hard["calibration"][:5]), "other.tflite")
    assert not same_quantization(base.graph, other.graph)


def test_keras2_h5_rows_carry_the_keras_2_layer_names(tmp_path):
    import tf_keras as k2

    from mncompile.model.loader import load_model
    from mncompile.tfenv import tf_module
    from mncompile.validate.blame import blame_layers

    tf_module()
    k2.backend.clear_session()  # layer names count from activation, activation_1, ...
    k2.utils.set_random_seed(0)
    inp = k2.Input((16, 16, 3))
    h = k2.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inp)
    h = k2.layers.Activation("relu")(k2.layers.BatchNormalization()(h))
    h = k2.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(h)
    h = k2.layers.Activation("relu")(k2.layers.BatchNormalization()(h))
    h = k2.layers.Conv2D(16, 1, use_bias=False)(h)
    h = k2.layers.Activation("relu")(k2.layers.BatchNormalization()(h))
    out = k2.layers.Dense(4, activation="softmax")(k2.layers.GlobalAveragePooling2D()(h))
    model = k2.Model(inp, out)
    path = tmp_path / "keras2.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "HDF5 is legacy": it is what the test is about
        model.save(path)
    loaded = load_model(path)
    assert loaded.format == "h5-legacy"
    x = np.random.default_rng(0).uniform(-1, 1, (24, 16, 16, 3)).astype(np.float32)
    report = blame_layers(loaded, x, np.zeros(len(x), np.int64), x[:12], only_int8=False)
    names = {r.name for r in report.rows}
    activations = [layer.name for layer in model.layers if isinstance(layer, k2.layers.Activation)]
    assert activations == ["activation", "activation_1", "activation_2"]
    assert names == {*activations, "global_average_pooling2d", "dense", "softmax"}
    fused = {r.name: r.keras_layers for r in report.rows}
    assert "conv2d_1" in fused["activation_2"] and "depthwise_conv2d" in fused["activation_1"]
    assert all(r.only_int8 is None for r in report.rows)


def test_bad_inputs_are_typed_errors(hard, tmp_path):
    from dataclasses import replace

    from mncompile.validate.blame import blame_layers

    loaded, x, y, cal = hard["loaded"], hard["x"], hard["y"], hard["calibration"]
    for fmt in ("tflite-float", "tflite-int8"):
        with pytest.raises(ModelError, match="Keras or SavedModel"):
            blame_layers(replace(loaded, format=fmt), x, y, cal)
    with pytest.raises(InvalidOptionError, match="calibration images"):
        blame_layers(loaded, x, y, cal[:, :8])
    with pytest.raises(InvalidOptionError, match="calibration images"):
        blame_layers(loaded, x, y, cal[:0])
    with pytest.raises(InvalidOptionError, match="evaluation images"):
        blame_layers(loaded, (x * 127).astype(np.int8), y, cal)
    with pytest.raises(InvalidOptionError, match="labels"):
        blame_layers(loaded, x, y[:-1], cal)
    with pytest.raises(InvalidOptionError, match="float outputs"):
        blame_layers(loaded, x, y, cal, float_output=hard["keras_out"][:, :3])


def _report_with_blame(kept_gain_pp: float, kept_gain_db: float):
    from mncompile.validate.accuracy import EvalReport
    from mncompile.validate.blame import BlameReport, BlameRow, Outcome
    from mncompile.validate.emulate import Agreement
    from mncompile.validate.layers import LayerError, LayerReport

    layers = LayerReport("position", 8, (LayerError(0, "conv_0", "CONV_2D", 0, 0.1, 45.0, 40.0),
                                         LayerError(1, "conv_1", "CONV_2D", 1, 0.1, 20.0, 36.0)), ())
    base = Outcome(0.7, 0.75, 10.0)
    kept = Outcome(0.7 + kept_gain_pp / 100, 0.9, 10.0 + kept_gain_db)
    rows = (BlameRow(3, "conv_pw_3", "CONV_2D", "m/conv_pw_3/Relu6", ("conv_pw_3",), kept, None,
                     kept_gain_pp, kept_gain_db),)
    blame = BlameReport(100, 50, 0.9, base, True, rows)
    return EvalReport("f.keras", "q.tflite", "digits", 100, 0.9, 0.7, 0.75, 0.01, (), Agreement(100, 100, 0, 100),
                      layers, blame=blame)


def test_gate_culprit_prefers_the_blame_ranking():
    from mncompile.validate.gate import check_drop, culprit

    report = _report_with_blame(15.0, 12.5)
    assert culprit(report).startswith("keeping conv_pw_3 (CONV_2D, op 3) alone in float recovers +15.00 points "
                                      "/ +12.5 dB")
    with pytest.raises(AccuracyError, match="most likely culprit: keeping conv_pw_3") as info:
        check_drop(report, 1.0)
    assert info.value.to_json()["blame"]["layers"][0]["layer"] == "conv_pw_3"
    # nothing recovers anything: back to where end-to-end SQNR falls the most
    assert culprit(_report_with_blame(0.0, -0.5)).startswith("layer conv_1 (CONV_2D, op 1): end-to-end SQNR falls")


def test_eval_blame_end_to_end_and_the_cli_gate(hard, tmp_path):
    """quantize -> evaluate(blame=True): the sidecar's calibration count is reused, so the baseline
    is the user's int8 model; the report, its table, and `mncompile eval --blame --max-drop`."""
    from mncompile.cli.render import eval_tables
    from mncompile.quantize import quantize
    from mncompile.validate.accuracy import evaluate

    int8 = tmp_path / "hard_int8.tflite"
    quantize(hard["path"], int8, dataset="shapes", calib_samples=50)
    report = evaluate(hard["path"], int8, dataset="shapes", layer_samples=0, blame=True)
    assert report.blame.baseline_is_int8_model is True and report.blame.calibration_samples == 50
    assert report.blame.rows[0].name == "conv_hard"
    assert "keeping conv_hard (CONV_2D" in report.warning()
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["blame"]["layers"][0]["layer"] == "conv_hard"
    assert "blame on 200 images" in str(eval_tables(report)[-1].title)
    assert evaluate(hard["path"], int8, dataset="shapes", layer_samples=0).blame is None  # default off
    float_tflite = tmp_path / "float.tflite"
    from mncompile.quantize.convert import to_float_tflite

    float_tflite.write_bytes(to_float_tflite(hard["loaded"]))
    with pytest.raises(ModelError, match="Keras or SavedModel"):
        evaluate(float_tflite, int8, dataset="shapes", layer_samples=0, blame=True)
    proc = run_cli("eval", str(hard["path"]), str(int8), "--dataset", "shapes", "--layer-samples", "0",
                   "--blame", "--max-drop", "1", "--json")
    assert proc.returncode == 12, proc.stderr
    gated = json.loads(proc.stdout)
    assert "most likely culprit: keeping conv_hard" in gated["message"]
    assert gated["blame"]["layers"][0]["layer"] == "conv_hard" and gated["blame"]["baseline_is_int8_model"]
