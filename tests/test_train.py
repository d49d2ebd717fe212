"""`mncompile train` with the defaults on digits (one run, shared by the session)."""

from __future__ import annotations

import json

import numpy as np
from conftest import run_cli

from mncompile.model.datasets import load_dataset
from mncompile.model.info import read_info
from mncompile.model.loader import load_model


def test_defaults_reach_90_percent_on_digits(trained_digits):
    assert trained_digits["val_accuracy"] >= 0.90, trained_digits
    assert (trained_digits["arch"], trained_digits["alpha"], trained_digits["resolution"]) == \
        ("v1", 0.25, 96)
    print(f"digits: val accuracy {trained_digits['val_accuracy']:.4f} "
          f"in {trained_digits['seconds']} s")


def test_reported_accuracy_is_reproduced_from_the_saved_files(trained_digits):
    """Recompute accuracy from the saved .keras and sidecar alone, on a freshly loaded split."""
    path = trained_digits["path"]
    info = read_info(path)
    loaded = load_model(path)
    data = load_dataset(info.dataset["name"], info.resolution, info.channels,
                        seed=info.dataset["seed"], val_fraction=info.dataset["val_fraction"])
    assert data.class_names == info.class_names
    x = info.preprocessing.apply(data.x_val)
    predictions = [int(np.argmax(np.asarray(loaded.model(x[i:i + 1], training=False))))
                   for i in range(len(x))]
    accuracy = float(np.mean(np.asarray(predictions) == data.y_val))
    assert abs(accuracy - trained_digits["val_accuracy"]) < 1e-9


def test_sidecar_records_classes_and_preprocessing(trained_digits):
    sidecar = json.loads(trained_digits["path"].with_name("digits_v1.keras.json").read_text())
    assert sidecar["classes"] == [str(i) for i in range(10)]
    assert sidecar["channels"] == 1 and sidecar["resolution"] == 96
    prep = sidecar["preprocessing"]
    assert prep["color_mode"] == "L" and prep["size"] == [96, 96]
    assert prep["scale"] * 255 + prep["offset"] == 1.0 and prep["offset"] == -1.0


def test_saved_model_has_static_batch_1(trained_digits):
    model = load_model(trained_digits["path"]).model
    assert tuple(model.inputs[0].shape) == (1, 96, 96, 1)


def test_progress_on_stderr_result_on_stdout(trained_digits):
    assert "epoch 15/15" in trained_digits["stderr"]
    assert "==> train" in trained_digits["stderr"]


def test_existing_output_is_refused_without_force(trained_digits):
    path = trained_digits["path"]
    before = path.read_bytes()
    proc = run_cli("train", "--dataset", "digits", "-o", str(path), "--epochs", "1")
    assert proc.returncode == 5
    assert "--force" in proc.stderr
    assert path.read_bytes() == before


def test_training_leaves_no_temporary_files(trained_digits):
    assert sorted(p.name for p in trained_digits["path"].parent.iterdir()) == \
        ["digits_v1.keras", "digits_v1.keras.json"]


def test_val_fraction_splits_and_bad_values_are_refused(tmp_path):
    bad = tmp_path / "bad.keras"
    proc = run_cli("train", "--dataset", "digits", "-o", str(bad), "--val-fraction", "1")
    assert proc.returncode == 2 and "--val-fraction 1 must be between 0 and 1" in proc.stderr
    assert not bad.exists()
    data = load_dataset("digits", 16, 1, val_fraction=0.5)
    # digits: 1,797 images in 10 classes of 174..183; half of each (rounded) validates
    assert abs(len(data.y_val) - 1797 / 2) <= 5 and len(data.y_train) + len(data.y_val) == 1797
    assert data.to_json()["val_fraction"] == 0.5  # what the sidecar records, and quantize/eval read back
