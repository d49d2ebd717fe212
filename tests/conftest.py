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


# `make test` runs two pytest-xdist workers with `--dist loadfile`: a file's tests run in one worker,
# so its module- and session-scoped fixtures are made once. The fixtures several files share are
# made once per session through `shared_once`, whichever worker asks first.
SHARED = {"trained_digits": "digits", "quantized_digits": "digits", "digits_eval": "digits", "tflite_zoo": "zoo"}


def shared_once(tmp_path_factory, name: str, make):
    """`make(folder)` once per test session, even across pytest-xdist workers (they share the parent
    of their base temporary folders): the first caller makes it under a lock, the others wait and
    read its JSON result."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    done = root / f"shared-{name}.json"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            return json.loads(done.read_text())
        folder = root / f"shared-{name}"
        folder.mkdir(exist_ok=True)
        result = make(folder)
        done.write_text(json.dumps(result))
        return result


def pytest_collection_modifyitems(config, items):
    """The order files are handed to the workers: one file of each shared fixture first (the
    workers start making different fixtures), then the files that share none, then the other
    users of the shared fixtures, which by then are made (the order within a file stays)."""
    files: dict[str, str | None] = {}
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        group = next((g for fixture, g in SHARED.items() if fixture in names), None)
        if files.get(item.path.name) is None:
            files[item.path.name] = group
    groups = list(dict.fromkeys(SHARED.values()))
    firsts = {g: next((n for n, fg in files.items() if fg == g), None) for g in groups}
    rank = {}
    for name, group in files.items():
        if group is None:
            rank[name] = (1, 0)
        elif firsts[group] == name:
            rank[name] = (0, groups.index(group))
        else:
            rank[name] = (2, -groups.index(group))
    items.sort(key=lambda item: rank[item.path.name])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it is not part of a clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory) -> dict:
    """`mncompile train --dataset digits` with every default, run once through the CLI."""
    def make(folder: Path) -> dict:
        out = folder / "digits_v1.keras"
        proc = run_cli("train", "--dataset", "digits", "-o", str(out), "--json", check=True)
        return {**json.loads(proc.stdout), "stderr": proc.stderr, "path": str(out)}
    result = shared_once(tmp_path_factory, "trained_digits", make)
    return {**result, "path": Path(result["path"])}


@pytest.fixture(scope="session")
def quantized_digits(trained_digits, tmp_path_factory) -> dict:
    """`mncompile quantize` of the trained digits model, with every default, through the CLI."""
    def make(folder: Path) -> dict:
        out = folder / "digits_int8.tflite"
        proc = run_cli("quantize", str(trained_digits["path"]), "-o", str(out), "--json", check=True)
        return {**json.loads(proc.stdout), "stderr": proc.stderr, "path": str(out)}
    result = shared_once(tmp_path_factory, "quantized_digits", make)
    return {**result, "path": Path(result["path"])}


@pytest.fixture(scope="session")
def digits_eval(trained_digits, quantized_digits, tmp_path_factory) -> dict:
    """`mncompile eval --json` of the float and int8 digits models."""
    def make(folder: Path) -> dict:
        proc = run_cli("eval", str(trained_digits["path"]), str(quantized_digits["path"]), "--json",
                       check=True)
        return {**json.loads(proc.stdout), "stderr": proc.stderr}
    return shared_once(tmp_path_factory, "digits_eval", make)


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

    def make(folder: Path) -> dict[str, str]:
        zoo = {}
        for arch, alpha, resolution in ZOO:
            spec, model = bn_calibrated_keras(arch, alpha, resolution)
            calib = np.random.default_rng(1).uniform(-1, 1, (8, *spec.input_shape)).astype(np.float32)
            path = folder / f"{arch}_{alpha}_{resolution}.tflite"
            path.write_bytes(to_int8_tflite(LoadedModel(path, "keras", model, spec.input_shape, spec.classes,
                                                        None), calib))
            zoo[path.stem] = str(path)
        return zoo
    return {name: Path(p) for name, p in shared_once(tmp_path_factory, "tflite_zoo", make).items()}


def verified(model):
    """A test's model (a path, or .tflite bytes) through the front door: read and verified."""
    from mncompile.graph.verified import VerifiedModel, read_model, verify_model

    if isinstance(model, VerifiedModel):
        return model
    if isinstance(model, (bytes, bytearray)):
        return verify_model(bytes(model), "model.tflite")
    return read_model(model)
