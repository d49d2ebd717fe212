"""The model corpus (`tests/corpus_models.py`) through every route, as a user would take it.

Five models, built in this session from nothing (no download, no file committed): Keras'
MobileNetV3Small and MobileNetV3Large (hard-swish, squeeze-excite), an MCUNet-shaped model
with float32 edges (QUANTIZE, PAD, VALID stride-2 convolution, residual ADD, a depthwise layer
with depth multiplier 2, TRANSPOSE, MEAN, FULLY_CONNECTED, SOFTMAX, DEQUANTIZE), and two
non-image int8 models: a keyword-spotting model with a (1, 1960) input and an autoencoder with
(1, 640) in and out.

Each one goes through the real command line:

- `mncompile plan --json`: lower bound <= our plan <= TFLM's greedy plan, and TFLM itself (the
  host interpreter's RecordingMicroAllocator) plans the model in exactly TFLM greedy's bytes, and
  the planned model (our plan embedded) in exactly ours;
- `mncompile emit --backend aot --target cortex-m7`, then `mncompile run` on QEMU mps2-an500:
  every golden vector PASSes on the device, and the golden outputs compiled into the firmware
  are what a fresh run of the TFLM host interpreter gives for the golden inputs compiled into it
  (so PASS means bit for bit what TFLM computes);
- `mncompile emit --backend tflm`: the project is written, with TFLM's golden outputs.

Also: the depthwise in-place scratch size that the AOT planner reserves (Python, the op registry)
is the one the C kernel asks for (`mn_depthwise_scratch_bytes`, compiled for the host).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, verified

CORPUS = ("mobilenet_v3_small", "mobilenet_v3_large", "mcunet", "keyword_spotting", "autoencoder")
NON_IMAGE = ("keyword_spotting", "autoencoder")
TARGET, MACHINE = "cortex-m7", "mps2-an500"
GOLDEN = 4

needs_firmware_tools = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None
    or shutil.which("qemu-system-arm") is None,
    reason="arm-none-eabi-gcc, cmake and qemu-system-arm are needed (make setup installs them)")


# ---------------------------------------------------------------------------------------------
# session fixtures: each model, and each command's result, made once and only when asked for


def _once(make):
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = make(name)
        return cache[name]
    return get


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """name -> the model's .tflite (Keras models are converted on first use, ~15 s each)."""
    import corpus_models as cm

    folder = tmp_path_factory.mktemp("corpus")

    def make(name: str) -> Path:
        data = cm.mobilenet_v3(**cm.KERAS_MODELS[name]) if name in cm.KERAS_MODELS else cm.WRITTEN_MODELS[name]()
        path = folder / f"{name}.tflite"
        path.write_bytes(data)
        return path
    return _once(make)


def _cli_json(*args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, dict]:
    proc = run_cli(*args, "--json", timeout=timeout)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        doc = {}
    return proc, doc


def _failed(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="session")
def plans(corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus-plan")
    return _once(lambda name: (folder / name, *_cli_json("plan", str(corpus(name)), "-o", str(folder / name))))


@pytest.fixture(scope="session")
def projects(corpus, tmp_path_factory):
    """(name, backend) -> (project folder, emit process, emit document)."""
    folder = tmp_path_factory.mktemp("corpus-emit")

    def make(key):
        name, backend = key
        out = folder / f"{name}-{backend}"
        return (out, *_cli_json("emit", str(corpus(name)), "--target", TARGET, "--backend", backend, "-o", str(out)))
    return _once(make)


@pytest.fixture(scope="session")
def aot_runs(projects):
    """name -> (run process, run document) of `mncompile run` on the AOT project."""
    def make(name):
        project, proc, _ = projects((name, "aot"))
        assert proc.returncode == 0, _failed(proc)
        return _cli_json("run", str(project), timeout=900)
    return _once(make)


# ---------------------------------------------------------------------------------------------
# what the projects hold


def golden_arrays(project: Path) -> tuple[np.ndarray, np.ndarray]:
    """The golden inputs and expected outputs compiled into the firmware (src/golden_data.c or
    .cc), as the C source writes them: int8, float32, or float32 bit patterns (uint32)."""
    source = next(p for p in (project / "src" / "golden_data.c", project / "src" / "golden_data.cc") if p.is_file())
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", source.read_text(), flags=re.S)

    def array(name: str) -> np.ndarray:
        m = re.search(rf"const (int8_t|float|uint32_t) {name}\[(\d+)\]\[(\d+)\](?: GOLDEN_SECTION)? = \{{(.*?)\n\}};",
                      text, re.S)
        assert m, f"{name} not found in {source}"
        ctype, rows, cols, body = m.groups()
        if ctype == "float":
            values = [float(v) for v in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?=f)", body)]
            a = np.array(values, np.float32)
        else:
            dtype = {"int8_t": np.int8, "uint32_t": np.uint32}[ctype]
            a = np.array([int(v) for v in re.findall(r"-?\d+", body)], dtype)
        return a.reshape(int(rows), int(cols))
    return array("g_golden_inputs"), array("g_golden_outputs")


def tflm_outputs(model: Path, inputs: np.ndarray) -> np.ndarray:
    """A fresh run of the TFLM host interpreter; float32 outputs as their bit patterns."""
    from mncompile.validate.emulate import emulate

    graph = verified(model).graph
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    y = emulate(verified(model), inputs.reshape(len(inputs), *shape), "tflm").reshape(len(inputs), -1)
    return y.view(np.uint32) if y.dtype == np.float32 else y


def int8_outputs(model: Path, outputs: np.ndarray) -> np.ndarray:
    """The int8 values behind the outputs (a float32 output is DEQUANTIZE's: quantized back)."""
    graph = verified(model).graph
    if outputs.dtype != np.uint32:
        return outputs
    (deq,) = [op for op in graph.ops if op.outputs[0] == graph.outputs[0]]
    q = graph.tensors[deq.inputs[0]].quant
    return (np.round(outputs.view(np.float32) / np.float32(q.scale)) + q.zero_point).astype(np.int64)


def check_golden_is_tflm(model: Path, project: Path) -> None:
    x, want = golden_arrays(project)
    assert len(x) == len(want) == GOLDEN
    assert np.array_equal(want, tflm_outputs(model, x))
    # a meaningful comparison: most outputs are not at the int8 rails, and they differ
    q = int8_outputs(model, want)
    inside = np.mean((q > -128) & (q < 127))
    assert inside >= 0.5 and len(np.unique(q)) >= 4, (inside, q)


# ---------------------------------------------------------------------------------------------
# plan


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPUS)
def test_plan(name, corpus, plans):
    from mncompile.validate.host_arena import measure_host_arena

    folder, proc, doc = plans(name)
    assert proc.returncode == 0, _failed(proc)
    assert doc["lower_bound_bytes"] <= doc["mncompile_bytes"] <= doc["tflm_greedy_bytes"]
    assert (folder / "plan.json").is_file() and (folder / "memory.png").is_file()
    arena = doc["tflm_arena"]
    assert set(arena) == {"host-tflm-greedy", "host-mncompile", "device-tflm-greedy", "device-mncompile"}
    # TFLM itself: its greedy planner, and our plan embedded as OfflineMemoryAllocation
    stock = measure_host_arena(verified(corpus(name)))
    ours = measure_host_arena(verified(folder / Path(doc["files"]["planned_model"]).name))
    assert stock["head"] == doc["tflm_greedy_bytes"]
    assert ours["head"] == doc["mncompile_bytes"]
    assert (arena["host-tflm-greedy"]["total_bytes"], arena["host-mncompile"]["total_bytes"]) == (
        stock["total"], ours["total"])
    for key, figure in arena.items():  # predicted, or measured and labelled so
        assert figure["exact"] or "not predicted" in figure["runtime"], (key, figure["runtime"])


# ---------------------------------------------------------------------------------------------
# AOT on QEMU


@pytest.mark.slow
@needs_firmware_tools
@pytest.mark.parametrize("name", CORPUS)
def test_aot_project_is_bit_exact_on_qemu(name, corpus, projects, aot_runs):
    project, emit_proc, emit_doc = projects((name, "aot"))
    assert emit_proc.returncode == 0, _failed(emit_proc)
    assert emit_doc["backend"] == "aot" and emit_doc["target"] == TARGET
    proc, doc = aot_runs(name)
    assert proc.returncode == 0, _failed(proc)
    assert doc["status"] == "PASS" and doc["problems"] == [] and doc["qemu_machine"] == MACHINE
    assert doc["kernels"] == "aot" and doc["qemu"]["exit_status"] == 0
    assert doc["golden"] == {"expected": GOLDEN, "reported": GOLDEN, "passed": GOLDEN, "reference_checked": True}
    assert [v["status"] for v in doc["vectors"]] == ["PASS"] * GOLDEN
    arena = emit_doc["aot"]["arena_bytes"]
    assert doc["arena"] == {"reserved": arena, "used": arena, "predicted": arena, "matches_prediction": True}
    assert doc["macs"] > 0 and doc["instructions_per_mac"] > 0
    check_golden_is_tflm(corpus(name), project)


# ---------------------------------------------------------------------------------------------
# the TFLM project


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPUS)
def test_tflm_project_is_written(name, corpus, projects):
    project, proc, doc = projects((name, "tflm"))
    assert proc.returncode == 0, _failed(proc)
    assert doc["backend"] == "tflm" and doc["target"] == TARGET
    for file in ("CMakeLists.txt", "mncompile.json", "src/main.cc", "src/model_data.cc", "src/golden_data.cc",
                 "src/model_settings.h"):
        assert (project / file).is_file(), file
    manifest = json.loads((project / "mncompile.json").read_text())
    assert manifest["options"]["backend"] == "tflm" and manifest["golden"]["count"] == GOLDEN
    assert set(doc["arena_bytes"]) == {"reference", "cmsis-nn"}
    check_golden_is_tflm(corpus(name), project)
    if name in NON_IMAGE:  # a tensor, not an image: no pixel preprocessing in the project
        assert "QuantizePixel" not in (project / "src" / "model_settings.h").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name, backend", [("keyword_spotting", "aot"), ("mcunet", "tflm")])
def test_build_takes_an_int8_model_as_it_is(name, backend, corpus, tmp_path):
    """`build --model` with a non-image int8 model, and with a float-edged one: every stage calls it
    int8. quantize checks it (no calibration; no resolution or preprocessing for a tensor input),
    eval is skipped (there is no float model), plan and emit run."""
    from mncompile.model.loader import load_model

    model = corpus(name)
    assert load_model(model).format == "tflite-int8"
    out = tmp_path / "b"
    proc, doc = _cli_json("build", "--model", str(model), "--target", TARGET, "--backend", backend, "-o", str(out))
    assert proc.returncode == 0, _failed(proc)
    assert "eval skipped" in proc.stderr and (out / "firmware" / "mncompile.json").is_file()
    side = json.loads((out / "model_int8.tflite.json").read_text())  # the sidecar quantize wrote
    assert side["quantization"]["calibration"] is None  # checked, not calibrated
    if name in NON_IMAGE:
        assert side["resolution"] is None and side["channels"] is None and side["preprocessing"] is None


# ---------------------------------------------------------------------------------------------
# one scratch size for C and Python


@pytest.fixture(scope="module")
def kernels_lib(tmp_path_factory):
    from test_kernels import CFLAGS, KERNELS, kernel_sources

    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    out = tmp_path_factory.mktemp("corpus-kernels") / "libmn_kernels.so"
    proc = subprocess.run(["gcc", *CFLAGS, "-O0", "-fPIC", "-shared", "-I", str(KERNELS),
                           *map(str, kernel_sources()), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(out))


@pytest.mark.parametrize("shape, k, stride, padding, dm", [
    ((1, 16, 16, 8), 3, 1, "SAME", 1),
    ((1, 15, 9, 4), 3, 2, "SAME", 1),
    ((1, 7, 5, 3), 3, 1, "VALID", 1),
    ((1, 12, 10, 2), 5, 2, "VALID", 1),
    ((1, 8, 8, 4), 3, 1, "SAME", 2),
])
def test_depthwise_scratch_is_one_definition_for_c_and_python(kernels_lib, shape, k, stride, padding, dm):
    """The AOT planner reserves `OpSpec.inplace` bytes of scratch for an in-place depthwise layer;
    the kernel asks for mn_depthwise_scratch_bytes(&params) with the params the lowering writes."""
    import tflite_writer as writer
    from test_kernels import DwParams

    from mncompile.graph.ops import spec_of

    c = shape[3] * dm
    model = writer.depthwise_conv2d(shape, (0.05, 3), np.ones((1, k, k, c), np.int8), 0.01, np.zeros(c, np.int32),
                                    (0.1, -2), (stride, stride), padding, depth_multiplier=dm)
    graph = verified(model).graph
    (op,) = graph.ops
    spec = spec_of("DEPTHWISE_CONV_2D")
    python = spec.inplace(graph, op)
    call = spec.lower(graph, op)
    params = DwParams(**{field: value for field, value in call.fields if isinstance(value, int)})
    kernels_lib.mn_depthwise_scratch_bytes.argtypes = [ctypes.POINTER(DwParams)]
    kernels_lib.mn_depthwise_scratch_bytes.restype = ctypes.c_size_t
    c_bytes = kernels_lib.mn_depthwise_scratch_bytes(ctypes.byref(params))
    if dm == 1:
        assert python == c_bytes == shape[1] * shape[2]
    else:  # no in-place run: Python says None, C asks for nothing
        assert python is None and c_bytes == 0


# ---------------------------------------------------------------------------------------------
# the MCUNet model zoo's own .tflite files, when a folder of them is given (never committed)

MCUNET_ZOO = os.environ.get("MNCOMPILE_MCUNET_ZOO")
# model: (lower bound of TFLM's graph, AOT arena, PADs folded), as `bench/corpus.py` measured them;
# the published TinyEngine SRAM of the last two: 146 kB and 162 kB (mit-han-lab/mcunet README)
ZOO = {"mcunet-10fps_vww": (111_360, 57_344, 42), "mcunet-5fps_vww": (161_472, 89_600, 45)}


@pytest.mark.skipif(not MCUNET_ZOO, reason="MNCOMPILE_MCUNET_ZOO is unset: point it at a folder holding the MCUNet "
                                           "zoo's .tflite files (README: Model corpus)")
@pytest.mark.parametrize("name", sorted(ZOO))
def test_mcunet_zoo_models_fold_their_pads(name, tmp_path):
    """The zoo's models (PyTorch exports: an explicit PAD before every strided or padded conv) plan,
    and the AOT backend folds every such PAD: its arena is far below the layer-wise lower bound of
    the graph TFLM runs. The generated C is checked against TFLM on the host."""
    from mncompile.aot.codegen import generate
    from mncompile.plan.lifetimes import lifetimes, lower_bound

    path = Path(MCUNET_ZOO) / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    bound, arena, folds = ZOO[name]
    model = verified(path)
    assert lower_bound(lifetimes(model.graph)) == bound
    program = generate(model)
    assert (program.arena_bytes, len(program.memory.folded_pads)) == (arena, folds)
    assert sum(op.kind == "PAD" for op in model.graph.ops) == folds
