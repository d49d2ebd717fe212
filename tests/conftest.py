"""Shared fixtures. Slow work (training, conversions) happens once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(*args: str, cwd: Path | None = None, check: bool = False,
            timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real `mncompile` command line in a subprocess."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "mncompile", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mncompile {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it is not part of a clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory) -> dict:
    """`mncompile train --dataset digits` with every default, run once through the CLI."""
    out = tmp_path_factory.mktemp("trained") / "digits_v1.keras"
    proc = run_cli("train", "--dataset", "digits", "-o", str(out), "--json", check=True)
    result = json.loads(proc.stdout)
    result["stderr"] = proc.stderr
    result["path"] = out
    return result


@pytest.fixture(scope="session")
def quantized_digits(trained_digits, tmp_path_factory) -> dict:
    """`mncompile quantize` of the trained digits model, with every default, through the CLI."""
    out = tmp_path_factory.mktemp("quantized") / "digits_int8.tflite"
    proc = run_cli("quantize", str(trained_digits["path"]), "-o", str(out), "--json", check=True)
    result = json.loads(proc.stdout)
    result["stderr"] = proc.stderr
    result["path"] = out
    return result


@pytest.fixture(scope="session")
def digits_eval(trained_digits, quantized_digits) -> dict:
    """`mncompile eval --json` of the float and int8 digits models."""
    proc = run_cli("eval", str(trained_digits["path"]), str(quantized_digits["path"]), "--json",
                   check=True)
    result = json.loads(proc.stdout)
    result["stderr"] = proc.stderr
    return result


def bn_calibrated_keras(arch: str, alpha: float, resolution: int, channels: int = 3,
                        classes: int = 4, batch_size: int | None = 1, seed: int = 0):
    """A freshly built, untrained MobileNet whose batch-norm statistics are estimated from
    random images (training-mode forward passes, no weight update). Without this an untrained
    MobileNet's activations shrink to nothing and quantize to degenerate scales."""
    import numpy as np

    from mncompile.model.builder import build_keras
    from mncompile.model.spec import MobileNetSpec
    from mncompile.tfenv import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(seed)
    spec = MobileNetSpec(arch, alpha, resolution, channels, classes)
    model = build_keras(spec, batch_size=batch_size, bn_momentum=0.0)
    x = np.random.default_rng(seed).uniform(-1, 1, (4, resolution, resolution, channels)).astype("float32")
    fixed = model.inputs[0].shape[0]
    for _ in range(2):  # momentum 0: each pass sets the statistics of every layer in turn
        for i in range(0, len(x), fixed or len(x)):
            model(x[i:i + (fixed or len(x))], training=True)
    return spec, model


ZOO = (("v1", 0.25, 96), ("v1", 0.25, 224), ("v1", 1.0, 224), ("v2", 0.35, 96), ("v2", 1.0, 224))


@pytest.fixture(scope="session")
def tflite_zoo(tmp_path_factory) -> dict[str, Path]:
    """The issue's planning models, int8, built once: V1 a0.25@96, V1 a0.25@224, V1 a1.0@224,
    V2 a0.35@96, V2 a1.0@224 (3 channels, 4 classes, batch-norm statistics from random images)."""
    import numpy as np

    from mncompile.model.loader import LoadedModel
    from mncompile.quantize.convert import to_int8_tflite

    folder = tmp_path_factory.mktemp("zoo")
    zoo = {}
    for arch, alpha, resolution in ZOO:
        spec, model = bn_calibrated_keras(arch, alpha, resolution)
        calib = np.random.default_rng(1).uniform(-1, 1, (8, *spec.input_shape)).astype(np.float32)
        path = folder / f"{arch}_{alpha}_{resolution}.tflite"
        path.write_bytes(to_int8_tflite(LoadedModel(path, "keras", model, spec.input_shape, spec.classes, None),
                                        calib))
        zoo[path.stem] = path
    return zoo


def verified(model):
    """A test's model (a path, or .tflite bytes) through the front door: read and verified."""
    from mncompile.graph.verified import VerifiedModel, read_model, verify_model

    if isinstance(model, VerifiedModel):
        return model
    if isinstance(model, (bytes, bytearray)):
        return verify_model(bytes(model), "model.tflite")
    return read_model(model)
