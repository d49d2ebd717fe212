"""Loading every supported format, made locally in the test; unreadable files fail cleanly."""

from __future__ import annotations

import numpy as np
import pytest

from mncompile.errors import ModelError
from mncompile.model.builder import build_keras
from mncompile.model.loader import load_model
from mncompile.model.spec import MobileNetSpec

SPEC = MobileNetSpec("v1", 0.25, 32, 3, 3)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A small model, its output on fixed inputs, and files of every format."""
    import tensorflow as tf

    d = tmp_path_factory.mktemp("formats")
    model = build_keras(SPEC)
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, 32, 32, 3)).astype(np.float32)
    files = {"keras": d / "m.keras", "h5-keras3": d / "m.h5", "savedmodel": d / "saved"}
    model.save(files["keras"])
    model.save(files["h5-keras3"])
    model.export(files["savedmodel"], verbose=False)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    files["tflite-float"] = d / "m.tflite"
    files["tflite-float"].write_bytes(converter.convert())
    return model, x, np.asarray(model(x, training=False)), files, d


@pytest.mark.parametrize("fmt", ["keras", "h5-keras3", "savedmodel"])
def test_keras_formats_load_and_compute_the_same(reference, fmt):
    _, x, expected, files, _ = reference
    loaded = load_model(files[fmt])
    assert loaded.format == fmt
    assert loaded.input_shape == (32, 32, 3) and loaded.num_classes == 3
    if fmt == "savedmodel":
        got = next(iter(loaded.model(tf_input(x)).values())).numpy()
    else:
        got = np.asarray(loaded.model(x, training=False))
    np.testing.assert_array_equal(got, expected)  # same weights, same graph, same TF: bit-exact


def tf_input(x):
    import tensorflow as tf

    return tf.constant(x)


def test_float_tflite_is_detected(reference):
    loaded = load_model(reference[3]["tflite-float"])
    assert loaded.format == "tflite-float" and loaded.model is None
    assert loaded.input_shape == (32, 32, 3) and loaded.num_classes == 3


def test_int8_tflite_from_another_toolchain(shared_data):
    loaded = load_model(shared_data / "vww_96_int8.tflite")
    assert loaded.format == "tflite-int8"
    assert loaded.input_shape == (96, 96, 3) and loaded.num_classes == 2


def test_legacy_keras2_h5_loads_through_tf_keras(tmp_path):
    """A Keras-2-era .h5 MobileNet: Keras 3 cannot read it, mncompile can."""
    import keras
    import tf_keras

    legacy = tf_keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None,
                                             classes=3)
    path = tmp_path / "legacy.h5"
    legacy.save(path)
    with pytest.raises(Exception):  # noqa: B017 (Keras raises several types here) the reason tf_keras is needed
        keras.models.load_model(path, compile=False)
    loaded = load_model(path)
    assert loaded.format == "h5-legacy"
    assert loaded.input_shape == (32, 32, 3) and loaded.num_classes == 3
    x = np.random.default_rng(1).uniform(-1, 1, size=(1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(loaded.model(x, training=False)),
                                  np.asarray(legacy(x, training=False)))


def _expect_model_error(path, *needles):
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert info.value.exit_code == 4
    for needle in needles:
        assert needle in str(info.value)


def test_missing_file(tmp_path):
    _expect_model_error(tmp_path / "nope.keras", "does not exist")


def test_unsupported_suffix(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    _expect_model_error(tmp_path / "m.onnx", "unsupported", ".keras")


def test_truncated_files(reference, tmp_path):
    files = reference[3]
    for fmt in ("keras", "tflite-float"):
        src = files[fmt]
        bad = tmp_path / src.name
        bad.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 3])
        _expect_model_error(bad, "cannot read", str(bad))


def test_garbage_h5_and_h5_without_model(tmp_path):
    import h5py

    (tmp_path / "junk.h5").write_bytes(b"\x00" * 100)
    _expect_model_error(tmp_path / "junk.h5", "cannot read")
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x"] = np.zeros(3)
    _expect_model_error(tmp_path / "data.h5", "no Keras model")


def test_folder_without_saved_model(tmp_path):
    _expect_model_error(tmp_path, "not a SavedModel")


def test_tflite_with_wrong_identifier(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"\x10\x00\x00\x00NOPE" + b"\x00" * 64)
    _expect_model_error(tmp_path / "m.tflite", "TFL3")


def test_corrupt_sidecar_is_named(reference, tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(reference[3]["keras"].read_bytes())
    (tmp_path / "m.keras.json").write_text("{not json")
    _expect_model_error(path, "m.keras.json")
