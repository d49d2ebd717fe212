"""Quantization-aware training (`quantize --qat`, `build --qat`): the tf_keras twin, the export, the device.

References: the Keras 3 model itself (the twin must compute what it computes), the fake-quantized
QAT model's own accuracy (the int8 export must keep it: the converter used the learned ranges), the
TFLM host interpreter (what the QEMU firmware must reproduce bit for bit).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm or arm-none-eabi-gcc is missing (make setup installs them)")


def _random_bn(model, rng) -> None:
    """Non-trivial batch-norm statistics, so a twin that dropped or reordered them shows."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            g, b, mu, var = layer.get_weights()
            layer.set_weights([g * rng.uniform(0.5, 1.5, g.shape), b + rng.normal(0, 0.1, b.shape),
                               mu + rng.normal(0, 0.1, mu.shape), var * rng.uniform(0.8, 1.5, var.shape)])


@pytest.mark.parametrize("arch", ["v1", "v2"])
def test_twin_of_a_keras_applications_model_computes_the_same(arch, tmp_path):
    import keras

    from mncompile.model.loader import load_model
    from mncompile.quantize.qat import qat_model, tf_keras_twin

    rng = np.random.default_rng(1)
    make = keras.applications.MobileNet if arch == "v1" else keras.applications.MobileNetV2
    model = make(input_shape=(32, 32, 3), alpha=0.35 if arch == "v2" else 0.25, weights=None, classes=3)
    _random_bn(model, rng)
    model.save(tmp_path / "m.keras")
    twin = tf_keras_twin(load_model(tmp_path / "m.keras"))
    x = rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(twin(x, training=False).numpy(), np.asarray(model(x, training=False)),
                               atol=1e-5)  # float32 reassociation only
    assert twin.inputs[0].shape[0] is None  # a dynamic batch: it trains in batches
    assert [w.shape for w in twin.get_weights()] == [tuple(w.shape) for w in model.get_weights()]
    qat_model(twin)  # tfmot accepts every layer keras.applications uses


def test_twin_of_a_keras2_h5(tmp_path):
    import tf_keras

    from mncompile.model.loader import load_model
    from mncompile.quantize.qat import tf_keras_twin

    L = tf_keras.layers
    inp = tf_keras.Input((16, 16, 3), batch_size=1)
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(2, activation="softmax")(x)
    model = tf_keras.Model(inp, x)
    _random_bn(model, np.random.default_rng(2))
    model.save(tmp_path / "k2.h5")
    loaded = load_model(tmp_path / "k2.h5")
    assert loaded.format == "h5-legacy"
    twin = tf_keras_twin(loaded)
    xs = np.random.default_rng(3).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    expected = np.concatenate([model(xs[i:i + 1], training=False).numpy() for i in range(2)])
    np.testing.assert_allclose(twin(xs, training=False).numpy(), expected, atol=1e-6)
    assert "activation" in [layer.name for layer in twin.layers]


def test_a_layer_the_twin_cannot_rebuild_is_a_typed_error(tmp_path):
    import keras

    from mncompile.errors import QuantizationError
    from mncompile.model.loader import load_model
    from mncompile.quantize.qat import tf_keras_twin

    @keras.saving.register_keras_serializable(package="t")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inp = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(Twice(name="twice")(inp))
    keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x)).save(tmp_path / "c.keras")
    with pytest.raises(QuantizationError, match="twice.*Twice"):
        tf_keras_twin(load_model(tmp_path / "c.keras"))


@pytest.fixture(scope="module")
def qat_digits(trained_digits, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("qat") / "digits_qat.tflite"
    proc = run_cli("quantize", str(trained_digits["path"]), "-o", str(out), "--qat", "--qat-epochs", "1", "--json",
                   check=True)
    return {**json.loads(proc.stdout), "stderr": proc.stderr, "path": out}


@pytest.mark.slow
def test_qat_export_keeps_the_fake_quantized_accuracy(qat_digits, trained_digits):
    from mncompile.model.loader import load_model, model_dataset
    from mncompile.validate.emulate import Job, run_tflm
    from mncompile.validate.layers import quantize_array

    assert qat_digits["method"] == "qat" and qat_digits["calibration"] is None
    sidecar = json.loads(Path(str(qat_digits["path"]) + ".json").read_text())
    assert sidecar["quantization"]["qat"]["epochs"] == 1
    assert sidecar["quantization"]["qat"]["library"].startswith("tensorflow-model-optimization 0.8")
    assert "quantization-aware training: 1 epochs" in qat_digits["stderr"]
    int8 = load_model(qat_digits["path"])
    graph = int8.verified.graph
    assert {op.kind for op in graph.ops} <= {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}
    assert graph.tensors[graph.inputs[0]].dtype == "INT8" and graph.tensors[graph.outputs[0]].dtype == "INT8"
    data = model_dataset(load_model(trained_digits["path"]), None)
    prep = int8.info.preprocessing
    qin = graph.tensors[graph.inputs[0]].quant
    out = run_tflm([Job(int8.verified, (quantize_array(prep.apply(data.x_val), qin, "int8"),))])[0]["output_0"]
    accuracy = float(np.mean(np.argmax(out, axis=1) == data.y_val))
    # The converter read the fake-quantization ranges: the int8 model on TFLM scores what the
    # fake-quantized Keras model scored (a few images may flip on rounding differences).
    assert abs(accuracy - qat_digits["qat"]["qat_val_accuracy"]) <= 0.02, (accuracy, qat_digits["qat"])


@pytest.mark.slow
@needs_qemu
def test_qat_model_is_bit_exact_on_qemu(qat_digits, tmp_path):
    project = tmp_path / "aot"
    run_cli("emit", str(qat_digits["path"]), "--target", "cortex-m4", "-o", str(project), "--backend", "aot",
            check=True)
    proc = run_cli("run", str(project), "--json", check=True)
    report = json.loads(proc.stdout)
    assert report["passed"] is True and report["golden"]["passed"] == report["golden"]["expected"] == 4, report
    assert all(v["status"] == "PASS" for v in report["vectors"])


def test_qat_options_are_checked_before_any_work(quantized_digits, tmp_path):
    out = tmp_path / "q.tflite"
    proc = run_cli("quantize", str(quantized_digits["path"]), "-o", str(out), "--qat")
    assert proc.returncode == 2 and "--qat fine-tunes a Keras model" in proc.stderr
    proc = run_cli("quantize", str(quantized_digits["path"]), "-o", str(out), "--qat-epochs", "5")
    assert proc.returncode == 2 and "--qat was not given" in proc.stderr
    proc = run_cli("quantize", str(quantized_digits["path"]), "-o", str(out), "--qat", "--qat-epochs", "0")
    assert proc.returncode == 2 and "--qat-epochs must be at least 1" in proc.stderr
    proc = run_cli("build", "--qat", "--qat-learning-rate", "-1", "-o", str(tmp_path / "b"))
    assert proc.returncode == 2 and "--qat-learning-rate must be a positive number" in proc.stderr
    assert not out.exists() and not Path(str(out) + ".json").exists() and not (tmp_path / "b").exists()


def test_build_weights_options_are_checked_before_any_work(quantized_digits, tmp_path):
    proc = run_cli("build", "--model", str(quantized_digits["path"]), "--weights", "imagenet", "-o",
                   str(tmp_path / "b1"))
    assert proc.returncode == 2 and "--model gives a trained one" in proc.stderr
    proc = run_cli("build", "--weights", "imagenet", "--channels", "3", "--alpha", "0.25", "--resolution", "96",
                   "-o", str(tmp_path / "b2"))
    assert proc.returncode == 2 and "publishes no ImageNet weights" in proc.stderr
    proc = run_cli("build", "--weights", "imagenet", "-o", str(tmp_path / "b3"))  # digits: 1 channel
    assert proc.returncode == 2 and "3-channel" in proc.stderr
    assert not any((tmp_path / b).exists() for b in ("b1", "b2", "b3"))


def test_qat_keeps_the_trained_batch_norm_statistics(tmp_path):
    """The fine-tune's batches must not move batch-norm statistics: on a pretrained base they
    came from other data, and moving them cost 34 points in bench/accuracy.py. A batch norm with
    momentum 0 would take the first batch's statistics outright if it trained; with a learning
    rate of 1e-9 nothing else changes, so the int8 model must compute what the float model does."""
    import keras

    from mncompile.graph.verified import verify_model
    from mncompile.model.datasets import Dataset
    from mncompile.model.loader import load_model
    from mncompile.quantize.qat import QatConfig, train_qat
    from mncompile.validate.emulate import Job, run_tflm
    from mncompile.validate.layers import dequantize, quantize_array

    rng = np.random.default_rng(4)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inp)
    x = keras.layers.BatchNormalization(momentum=0.0, name="bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Softmax()(keras.layers.Dense(3, name="fc")(x)))
    model.get_layer("bn").set_weights([np.full(8, 2.0), np.full(8, 0.5), np.full(8, 1.5), np.full(8, 0.25)])
    model.save(tmp_path / "m.keras")
    images = rng.integers(0, 256, (96, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 96)
    data = Dataset("noise", ("a", "b", "c"), images[:64], labels[:64], images[64:], labels[64:], 0, 0.33)
    prep = data.preprocessing()
    result = train_qat(load_model(tmp_path / "m.keras"), data, prep, QatConfig(epochs=1, learning_rate=1e-9))
    verified = verify_model(result.data, "q.tflite", source="test")
    graph = verified.graph
    qin, qout = graph.tensors[graph.inputs[0]].quant, graph.tensors[graph.outputs[0]].quant
    x_val = prep.apply(data.x_val)
    out = dequantize(run_tflm([Job(verified, (quantize_array(x_val, qin, "int8"),))])[0]["output_0"], qout)
    expected = np.asarray(model(x_val, training=False))
    # int8 softmax steps of 1/256 plus the activations' rounding; moved statistics miss by far more
    assert np.max(np.abs(out - expected)) < 0.03, np.max(np.abs(out - expected))
