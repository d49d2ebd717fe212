"""Pretrained starts (train --weights, --fine-tune-epochs): the base comes from the weights file
and stays frozen while the head trains; fine-tuning moves only the top of the base, never the
batch-norm statistics. The weights files are made here from keras.applications with weights=None
(nothing is downloaded); the reference is the file's own arrays."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import run_cli

from mncompile.errors import InvalidOptionError, ModelError
from mncompile.model.pretrained import keras_cache_dir, weights_file_name
from mncompile.model.spec import MobileNetSpec
from mncompile.model.train import TrainConfig

SPEC = MobileNetSpec("v1", 0.25, 128, 3, 4)


@pytest.fixture(scope="module")
def v1_weights(tmp_path_factory):
    from mncompile.tfenv import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(123)
    base = keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, include_top=False, weights=None)
    # batch-norm statistics from images, as a trained base has: with the initial ones (mean 0,
    # variance 1) a random base saturates every ReLU6 and no gradient reaches it
    for layer in base.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.momentum = 0.0
    x = np.random.default_rng(0).uniform(-1, 1, (8, 128, 128, 3)).astype("float32")
    for _ in range(2):
        base(x, training=True)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_0.25_128.weights.h5"
    base.save_weights(path)
    return path, [layer.get_weights() for layer in base.layers if layer.weights]


@pytest.fixture(scope="module")
def small_shapes():
    from mncompile.model.datasets import load_dataset

    data = load_dataset("shapes", 128, 3)
    return replace(data, x_train=data.x_train[::8], y_train=data.y_train[::8], x_val=data.x_val[::4],
                   y_val=data.y_val[::4])


def _base_layers(path):
    from mncompile.tfenv import keras_module

    model = keras_module().models.load_model(path)
    return model, [layer for layer in model.layers if layer.weights and layer.name != "classifier"]


def test_frozen_base_is_the_files_then_fine_tuning_moves_only_the_top(v1_weights, small_shapes, tmp_path):
    from mncompile.model.train import train

    path, reference = v1_weights
    config = TrainConfig(epochs=1, augment=0.0, weights=str(path))
    result = train(SPEC, small_shapes, tmp_path / "head.keras", config)
    _, layers = _base_layers(result.model_path)
    assert len(layers) == len(reference) == 54
    for layer, arrays in zip(layers, reference, strict=True):  # frozen: bit for bit the file's
        for got, want in zip(layer.get_weights(), arrays, strict=True):
            np.testing.assert_array_equal(got, want)

    tuned = train(SPEC, small_shapes, tmp_path / "tuned.keras", replace(config, fine_tune_epochs=1))
    assert len(tuned.history) == 2 and tuned.history[-1].epoch == 2
    _, layers = _base_layers(tuned.model_path)
    top = (3 * 55) // 4  # the top quarter of the weight layers (classifier included) is trainable
    changed = [any(not np.array_equal(g, w) for g, w in zip(layer.get_weights(), arrays, strict=True))
               for layer, arrays in zip(layers, reference, strict=True)]
    kinds = [type(layer).__name__ for layer in layers]
    assert not any(changed[:top])  # the lower base never moves
    assert all(changed[k] for k in range(top, len(layers)) if kinds[k] != "BatchNormalization"), \
        [(layers[k].name, changed[k]) for k in range(top, len(layers))]
    assert not any(changed[k] for k in range(len(layers)) if kinds[k] == "BatchNormalization")  # inference mode


def test_weights_of_another_architecture_are_a_model_error(v1_weights, small_shapes, tmp_path):
    from mncompile.model.train import train

    with pytest.raises(ModelError, match="does not fit MobileNet v2"):
        train(MobileNetSpec("v2", 0.35, 128, 3, 4), small_shapes, tmp_path / "m.keras",
              TrainConfig(epochs=1, weights=str(v1_weights[0])))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec,weights,match", [
    (MobileNetSpec("v1", 0.35, 128, 3, 4), "imagenet", "no ImageNet weights for MobileNet v1 alpha 0.35"),
    (MobileNetSpec("v1", 0.25, 96, 3, 4), "imagenet", "at 96x96"),
    (MobileNetSpec("v2", 0.35, 96, 1, 4), "imagenet", "3-channel"),
    (SPEC, "/no/such/file.weights.h5", "does not exist"),
])
def test_bad_weights_options(spec, weights, match, small_shapes, tmp_path):
    from mncompile.model.train import train

    with pytest.raises(InvalidOptionError, match=match):
        train(spec, small_shapes, tmp_path / "m.keras", TrainConfig(epochs=1, weights=weights))
    with pytest.raises(InvalidOptionError, match="--fine-tune-epochs"):
        TrainConfig(fine_tune_epochs=2)
    with pytest.raises(InvalidOptionError, match="--fine-tune-epochs"):
        TrainConfig(fine_tune_epochs=-1, weights="imagenet")


def test_imagenet_offline_names_the_file_and_the_cache(tmp_path, monkeypatch):
    """No download here: the typed error says which file Keras looks for and where to put it."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert weights_file_name(SPEC) == "mobilenet_2_5_128_tf_no_top.h5"
    assert weights_file_name(MobileNetSpec("v2", 0.35, 96, 3, 4)) == \
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    out = tmp_path / "m.keras"
    proc = run_cli("train", "--dataset", "shapes", "--alpha", "0.25", "--resolution", "128", "--weights", "imagenet",
                   "--epochs", "1", "-o", str(out), "--json")
    if proc.returncode == 0:
        pytest.skip("this machine reached Keras' download host")
    assert proc.returncode == 4 and "mobilenet_2_5_128_tf_no_top.h5" in proc.stderr
    assert str(tmp_path / "keras" / "models") in proc.stderr and not out.exists()
    assert keras_cache_dir() == tmp_path / "keras" / "models"
