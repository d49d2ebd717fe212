"""`emit --backend aot`: interpreter-free C for whole models, bit-exact with TFLM on every QEMU board.

Whole models: the tiny test model, MobileNet V1 a0.25@96 and V2 a0.35@96 (the `tflite_zoo`
session fixture: untrained, batch-norm statistics from random images) and the MLPerf Tiny VWW
model (reference data, when present). Each is emitted with the AOT backend for all four QEMU
targets, built with the project's own CMakeLists.txt (arm-none-eabi-gcc, -Wall -Wextra -Werror)
and run on QEMU; the firmware compares every output with the golden one and every vector must
PASS. The golden outputs themselves are checked here against a fresh run of the TFLM host
interpreter on the inputs compiled into the firmware, so PASS means "identical to TFLM".

Also: the generated code's shape (one static arena, constants folded, no interpreter), host
gcc -pedantic, the in-place depthwise (smaller arena, still bit-exact), the arena against the
layer-wise lower bound and TFLM's, unsupported ops as typed errors through the CLI, the tree and
manifest (deterministic), `build --backend aot --run`, the pixel quantization, and the
stm32h743 link (no QEMU for that board).
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli, verified

from mncompile.aot.codegen import generate
from mncompile.errors import InvalidOptionError, UnsupportedOpError
from mncompile.pipeline import emit
from mncompile.plan import device_arena, plan_model

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
KERNELS = REPO / "firmware" / "kernels"
QEMU_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
MODELS = ("tiny", "v1_0.25_96", "v2_0.35_96", "vww")
VWW_LOWER_BOUND = 55_296

needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None,
                                   reason="arm-none-eabi-gcc and cmake are needed (make setup installs them)")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None,
                                reason="qemu-system-arm is not installed (make setup installs it)")


def _model(name: str, request) -> Path:
    if name == "tiny":
        return TINY
    if name == "vww":
        return request.getfixturevalue("shared_data") / "vww_96_int8.tflite"
    return request.getfixturevalue("tflite_zoo")[name]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _golden_inputs(project: Path) -> np.ndarray:
    text = (project / "src" / "golden_data.c").read_text()
    body = re.search(r"g_golden_inputs\[(\d+)\]\[(\d+)\](?: GOLDEN_SECTION)? = \{(.*?)\n\};", text, re.S)
    values = [int(v) for v in re.findall(r"-?\d+", re.sub(r"//[^\n]*", "", body.group(3)))]
    return np.array(values, np.int8).reshape(int(body.group(1)), int(body.group(2)))


def _build_and_run(project: Path, build_dir: Path, machine: str):
    from mncompile.run.build import build_project, parse_firmware_output
    from mncompile.run.qemu import run_qemu

    firmware = build_project(project, build_dir, timeout=600)
    result = run_qemu(firmware.elf, machine, timeout=300)
    return firmware, result, parse_firmware_output(result.output)


@pytest.fixture(scope="session")
def aot_projects(tmp_path_factory):
    """Emitted on first use, keyed (model name, target, inplace mode, memory mode)."""
    root = tmp_path_factory.mktemp("aot")
    cache: dict[tuple[str, str, str, str], Path] = {}

    def get(name: str, model: Path, target: str, inplace: str = "auto", memory: str = "balanced") -> Path:
        key = (name, target, inplace, memory)
        if key not in cache:
            cache[key] = emit(model, target, root / f"{name}_{target}_{inplace}_{memory}", backend="aot",
                              inplace=inplace, memory=memory).out
        return cache[key]

    return get


# ---------------------------------------------------------------------------------------------
# whole models on every QEMU board


@needs_arm_gcc
@needs_qemu
@pytest.mark.parametrize("target", QEMU_TARGETS)
@pytest.mark.parametrize("name", MODELS)
def test_whole_model_is_bit_exact_on_qemu(name, target, request, aot_projects, tmp_path):
    from mncompile.targets import get_target

    project = aot_projects(name, _model(name, request), target)
    doc = json.loads((project / "mncompile.json").read_text())
    firmware, result, report = _build_and_run(project, tmp_path / "build", get_target(target).qemu_machine)
    assert firmware.kernels == "aot"
    assert result.exit_code == 0, result.output
    assert report.all_passed and report.total == doc["golden"]["count"] == 4, result.output
    arena = doc["arena"]["predicted_bytes"]["aot"]
    assert report.arena_reserved == report.arena_used == report.arena_predicted == arena
    assert f"summary: 4/4 PASS, arena_used_bytes {arena}" in result.output
    ticks = [v.ticks for v in report.vectors]
    print(f"{name} on {target}: {sum(ticks) / len(ticks):,.0f} {report.ticks_unit} per inference, arena {arena:,} B, "
          f"text {firmware.text:,} B")


@needs_arm_gcc
@needs_qemu
@pytest.mark.parametrize("target", ("cortex-m7", "cortex-m55"))
@pytest.mark.parametrize("name", ("v1_0.25_96", "v2_0.35_96"))
def test_min_schedules_are_bit_exact_on_qemu(name, target, request, aot_projects, tmp_path):
    """--memory min: patch stages (tiles with their overlaps recomputed; V2's reach into its inverted
    residual blocks) on the DSP (M7) and Helium (M55) kernels, every golden vector identical to TFLM,
    the arena the plan predicted, smaller than layer by layer."""
    from mncompile.targets import get_target

    project = aot_projects(name, _model(name, request), target, memory="min")
    doc = json.loads((project / "mncompile.json").read_text())
    stages = doc["plan"]["patch_stages"]
    assert stages and doc["options"]["memory"] == "min"
    firmware, result, report = _build_and_run(project, tmp_path / "build", get_target(target).qemu_machine)
    assert result.exit_code == 0, result.output
    assert report.all_passed and report.total == 4, result.output
    arena = doc["arena"]["predicted_bytes"]["aot"]
    assert report.arena_used == report.arena_predicted == arena
    assert arena < doc["aot"]["memory_mode"]["layerwise_ram_bytes"]
    print(f"{name} on {target}, --memory min: {[(s['first_node'], s['last_node'], s['tiles']) for s in stages]}, "
          f"arena {arena:,} B, {sum(v.ticks for v in report.vectors) // 4:,} {report.ticks_unit} per inference")


@pytest.mark.parametrize("name", MODELS)
def test_golden_outputs_are_the_tflm_host_interpreters(name, request, aot_projects):
    """What the firmware compares with is TFLM's answer for the inputs the firmware holds."""
    from mncompile.validate.emulate import emulate

    model = _model(name, request)
    project = aot_projects(name, model, "cortex-m7")
    doc = json.loads((project / "mncompile.json").read_text())
    x = _golden_inputs(project)

    graph = verified(model).graph
    y = emulate(verified(model), x.reshape(len(x), *graph.tensors[graph.inputs[0]].shape[1:]), "tflm")
    assert np.array_equal(np.array(doc["golden"]["expected_outputs"], np.int8), y.reshape(len(x), -1))


# ---------------------------------------------------------------------------------------------
# the generated code


def test_generated_code_shape(request):
    vww = _model("vww", request)
    program = generate(verified(vww))
    c, h = program.model_c, program.model_h
    assert "int model_invoke(const int8_t *in, int8_t *out);" in h
    assert f"#define MODEL_ARENA_BYTES {program.arena_bytes}" in h
    # one arena, 16-aligned, in the linker script's section; no heap, no interpreter, no flatbuffer
    assert len(re.findall(r"static uint8_t arena\[MODEL_ARENA_BYTES\] __attribute__\(\(aligned\(16\), "
                          r'section\("\.tensor_arena"\)\)\);', c)) == 1
    assert len(re.findall(r"^static (?!const)", c, re.M)) == 1  # the arena is the only mutable static
    code = re.sub(r"/\*.*?\*/", "", c, flags=re.S)  # comments name the .tflite it came from
    for word in ("malloc", "tflite", "Interpreter", "g_model_data", "float", "#include \"tensorflow"):
        assert word not in code
    # constants folded: per layer a filter, bias, multipliers, shifts and one const param struct
    # tables in the linker script's .model section (flash; the 2 MB code SRAM on mps3-an547)
    assert '#define MN_CONST __attribute__((aligned(4), section(".model")))' in c
    assert re.search(r"static const int8_t L0_filter\[216\] MN_CONST = \{", c)  # 8x3x3x3
    assert re.search(r"static const int32_t L0_mult\[8\] MN_CONST = \{", c)
    assert re.search(r"static const int32_t L0_shift\[8\] MN_CONST = \{", c)
    assert re.search(r"static const mn_conv_params L0 = \{\n    \.batches = 1,", c)
    assert "if (mn_conv2d_s8(&L0, MN_T(" in c
    assert re.search(r"RESHAPE .*a view, nothing to run", c)  # no kernel, no copy
    kinds = [layer.kind for layer in program.layers]
    assert kinds.count("DEPTHWISE_CONV_2D") == 13 and kinds.count("CONV_2D") == 14
    assert program.kernels == ("mn_avgpool_s8", "mn_conv2d_s8", "mn_depthwise_conv_s8", "mn_fully_connected_s8",
                               "mn_softmax_s8")
    # per-tensor FC (VWW) and per-channel FC (tiny) both fold to tables
    assert re.search(r"\.per_channel = 0,", c)
    assert re.search(r"\.per_channel = 1,", generate(verified(TINY)).model_c)
    assert generate(verified(vww)).model_c == c  # deterministic


def test_generated_c_compiles_warning_free_on_the_host_and_matches_tflm(tflite_zoo, tmp_path):
    """model.c is plain C99: host gcc -pedantic, every in-place mode, outputs equal to TFLM's."""
    from mncompile.validate.emulate import emulate

    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    model = tflite_zoo["v2_0.35_96"]
    graph = verified(model).graph
    x = np.random.default_rng(5).integers(-128, 128, (2, *graph.tensors[graph.inputs[0]].shape[1:])).astype(np.int8)
    want = emulate(verified(model), x, "tflm").reshape(2, -1)
    for mode in ("all", "off"):
        program = generate(verified(model), inplace=mode)
        work = tmp_path / mode
        work.mkdir()
        (work / "model.c").write_text(program.model_c)
        (work / "model.h").write_text(program.model_h)
        lib = work / "model.so"
        cmd = ["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared",
               f"-I{KERNELS}", f"-I{work}", str(work / "model.c"), *map(str, sorted(KERNELS.glob("*.c"))),
               "-o", str(lib)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        so = ctypes.CDLL(str(lib))
        for v in range(2):
            xin = np.ascontiguousarray(x[v])
            out = np.zeros(program.output_bytes, np.int8)
            assert so.model_invoke(xin.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p)) == 0
            assert np.array_equal(out, want[v]), (mode, v)
        # zero-copy input: model_input() is the arena's input tensor
        so.model_input.restype = ctypes.c_void_p
        ctypes.memmove(so.model_input(), x[0].ctypes.data, x[0].nbytes)
        out = np.zeros(program.output_bytes, np.int8)
        assert so.model_invoke(ctypes.c_void_p(so.model_input()), out.ctypes.data_as(ctypes.c_void_p)) == 0
        assert np.array_equal(out, want[0])


def test_depthwise_of_one_channel_runs_as_a_convolution_and_matches_tflm(tmp_path):
    """A depthwise layer over one input channel with depth multiplier 8 (TFLM's person_detect starts
    so) lowers to mn_conv2d_s8 with the filter read as [8, 3, 3, 1]; portable and DSP-path (emulated)
    builds of model.c equal the TFLM host interpreter."""
    import tflite_writer as writer

    from mncompile.validate.emulate import emulate

    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    rng = np.random.default_rng(8)
    filt = rng.integers(-127, 128, (1, 3, 3, 8)).astype(np.int8)
    model = verified(writer.depthwise_conv2d((1, 11, 11, 1), (0.02, -7), filt, list(rng.uniform(0.002, 0.02, 8)),
                                             rng.integers(-900, 900, 8).astype(np.int32), (0.05, 4), (2, 2), "SAME",
                                             (1, 1), 8, "RELU6"))
    program = generate(model)
    assert program.kernels == ("mn_conv2d_s8",) and "one input channel: run as a convolution" in program.model_c
    x = rng.integers(-128, 128, (3, 11, 11, 1)).astype(np.int8)
    want = emulate(model, x, "tflm").reshape(3, -1)
    (tmp_path / "model.c").write_text(program.model_c)
    (tmp_path / "model.h").write_text(program.model_h)
    for k, defines in enumerate(([], ["-DMN_KERNELS_EMULATE_DSP"])):
        lib = tmp_path / f"model{k}.so"
        proc = subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", *defines,
                               f"-I{KERNELS}", f"-I{tmp_path}", str(tmp_path / "model.c"),
                               *map(str, sorted(KERNELS.glob("*.c"))), "-o", str(lib)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        so = ctypes.CDLL(str(lib))
        for v in range(3):
            xin = np.ascontiguousarray(x[v])
            out = np.zeros(program.output_bytes, np.int8)
            assert so.model_invoke(xin.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p)) == 0
            assert np.array_equal(out, want[v]), (defines, v)


# ---------------------------------------------------------------------------------------------
# the arena: in-place depthwise, lower bound, TFLM


def test_inplace_depthwise_lowers_the_arena(tflite_zoo):
    """V2's peak is an expanded tensor feeding a depthwise layer: in place, that layer needs its
    input plus one scratch plane instead of input + output, and the arena drops below the
    layer-wise lower bound of the graph as TFLM sees it."""
    model = tflite_zoo["v2_0.35_96"]
    planned = plan_model(verified(model))
    auto, every, off = (generate(verified(model), inplace=m) for m in ("auto", "all", "off"))
    assert off.memory.inplace == () and off.arena_bytes == planned.lower_bound == 138_240
    assert auto.arena_bytes == every.arena_bytes == auto.memory.lower_bound < off.arena_bytes
    assert auto.arena_bytes == 129_024
    kinds = [planned.graph.ops[k].kind for k in every.memory.inplace]
    assert kinds.count("DEPTHWISE_CONV_2D") == 17 and kinds.count("MEAN") == 1 and len(kinds) == 18
    assert 0 < len(auto.memory.inplace) < len(every.memory.inplace)  # auto: only where it pays
    g = auto.memory
    for k in g.inplace:
        op = planned.graph.ops[k]
        assert op.kind == "DEPTHWISE_CONV_2D"
        assert g.offset(op.inputs[0]) == g.offset(op.outputs[0])  # the output overwrites the input
        start = g.scratch_offset(k)
        call = re.search(rf"mn_depthwise_conv_s8\(&L{k}, MN_T\((\d+)\), MN_T\((\d+)\), MN_T\((\d+)\)\)", auto.model_c)
        assert call and int(call.group(1)) == int(call.group(2)) and int(call.group(3)) == start
        assert f"node {k}: DEPTHWISE_CONV_2D" in auto.model_c and "(in place)" in auto.model_c
    # the QEMU runs of V2 (test_whole_model_is_bit_exact_on_qemu) use this in-place plan


@needs_arm_gcc
@needs_qemu
def test_every_depthwise_in_place_is_still_bit_exact(tflite_zoo, aot_projects, tmp_path):
    """inplace="all": all 13 depthwise layers of V1 write over their input; still every vector PASSes."""
    project = aot_projects("v1_0.25_96", tflite_zoo["v1_0.25_96"], "cortex-m55", "all")
    doc = json.loads((project / "mncompile.json").read_text())
    kinds = [doc["aot"]["layers"][k]["op"] for k in doc["plan"]["inplace_ops"]]
    assert kinds.count("DEPTHWISE_CONV_2D") == 13 and kinds == ["DEPTHWISE_CONV_2D"] * 13 + ["MEAN"]
    assert doc["options"]["inplace_depthwise"] == "all"
    _, result, report = _build_and_run(project, tmp_path / "build", "mps3-an547")
    assert result.exit_code == 0 and report.all_passed, result.output


@pytest.mark.parametrize("name", MODELS)
def test_aot_arena_against_lower_bound_and_tflm(name, request):
    model = _model(name, request)
    planned = plan_model(verified(model))
    program = generate(verified(model))
    tflm = device_arena(planned, "reference").total
    print(f"{name}: AOT {program.arena_bytes:,} B (scratch included, {len(program.memory.inplace)} in place), "
          f"layer-wise lower bound {planned.lower_bound:,} B, TFLM arena {tflm:,} B")
    assert program.arena_bytes <= planned.lower_bound < tflm
    if name == "vww":
        assert planned.lower_bound == VWW_LOWER_BOUND and program.arena_bytes <= VWW_LOWER_BOUND


# ---------------------------------------------------------------------------------------------
# the project, the manifest, errors, the CLI


def test_project_tree_and_manifest(aot_projects, tmp_path):
    out = aot_projects("tiny", TINY, "cortex-m7")
    files = set(_tree(out))
    for required in ("CMakeLists.txt", "README.md", "mncompile.json", "cmake/arm-none-eabi.cmake", "src/main.c",
                     "src/model.c", "src/model.h", "src/model_settings.h", "src/golden_data.c",
                     "src/golden_data.h", "firmware/kernels/mn_kernels.h", "firmware/common/board.h",
                     "firmware/boards/mps2-an500/linker.ld", "model/tiny_int8.tflite"):
        assert required in files, required
    assert not any(f.startswith("cmake/tflm") or f.endswith(".cc") for f in files)  # no TFLM anywhere
    for rel in files:
        if rel.startswith("firmware/") and rel != "firmware/kernels/mn_kernels_config.h":
            assert (out / rel).read_bytes() == (REPO / rel).read_bytes(), rel
    # the kernels' sizes for this model: its deepest convolution
    depth, one, generic, words = 0, 0, 0, 4
    for block in re.findall(r"mn_conv_params L\d+ = \{([^}]*)\}", (out / "src/model.c").read_text()):
        f = {k: int(v) for k, v in re.findall(r"\.(\w+) = (-?\d+),", block)}
        d = f["k_h"] * f["k_w"] * f["in_c"]
        depth = max(depth, d)
        pointwise = f["k_h"] == f["k_w"] == f["stride_h"] == f["stride_w"] == 1 and f["pad_top"] == f["pad_left"] == 0
        table = f["out_c"] * (4 + (d + 3) // 4 * 2)
        if table <= 768 and (d in (8, 16) if pointwise else d <= 32):
            one, generic, words = one or pointwise, generic or not pointwise, max(words, table)
    config = (out / "firmware/kernels/mn_kernels_config.h").read_text()
    assert f"#define MN_CONV_GEMM_MAX {-(-depth // 4) * 4}" in config
    assert f"#define MN_CONV_SHALLOW_1X1 {int(one)}" in config
    assert f"#define MN_CONV_SHALLOW_GENERIC {int(generic)}" in config
    assert f"#define MN_SMALL_TABLE_WORDS {words}" in config
    assert {f.split("/")[2] for f in files if f.startswith("firmware/boards/")} == {"mps2-an500"}
    cmake = (out / "CMakeLists.txt").read_text()
    assert "-Wall -Wextra -Werror" in cmake and "tflm" not in cmake.lower().replace("no tensorflow lite micro", "")
    # the toolchain file is the TFLM backend's template, rendered for this target
    assert "-mcpu=cortex-m7" in (out / "cmake/arm-none-eabi.cmake").read_text()
    doc = json.loads((out / "mncompile.json").read_text())
    assert doc["options"]["backend"] == "aot" and doc["options"]["target"] == "cortex-m7"
    assert doc["arena"]["predicted_bytes"] == doc["arena"]["reserved_bytes"] == {"aot": doc["plan"]["arena_bytes"]}
    assert doc["plan"]["tflm"]["device_arena_bytes"]["reference"] > doc["plan"]["arena_bytes"]
    import hashlib

    for rel, digest in doc["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    for rel in ("src/model.c", "src/model.h", "src/main.c", "src/golden_data.c", "src/model_settings.h"):
        (out / rel).read_text(encoding="ascii")  # labels are escaped, comments sanitized
    again = emit(TINY, "cortex-m7", tmp_path / "again", backend="aot").out
    assert _tree(again) == _tree(out)  # byte-identical


def test_tflm_manifest_records_its_backend(tmp_path):
    doc = json.loads((emit(TINY, "cortex-m4", tmp_path / "p").out / "mncompile.json").read_text())
    assert doc["options"]["backend"] == "tflm"


def _tanh_model(tmp_path: Path) -> Path:
    """A valid int8 model whose one op, TANH, TFLM runs and the AOT backend does not have: the MEAN
    model with its opcode, options and axes input dropped and the output shaped as the input."""
    import flatbuffers
    import tflite_writer as writer

    from mncompile.graph.reader import schema

    s = schema()
    m = s.ModelT.InitFromPackedBuf(writer.mean((1, 2, 2, 4), (0.1, 3), (1 / 128, 0)), 0)
    m.operatorCodes[0].builtinCode = s.BuiltinOperator.TANH
    m.operatorCodes[0].deprecatedBuiltinCode = s.BuiltinOperator.TANH
    sub = m.subgraphs[0]
    op = sub.operators[0]
    op.inputs, op.builtinOptionsType, op.builtinOptions = [op.inputs[0]], 0, None
    sub.tensors[op.outputs[0]].shape = list(sub.tensors[op.inputs[0]].shape)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "tanh_int8.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def test_unsupported_op_is_a_typed_error_through_the_cli(tmp_path):
    model = _tanh_model(tmp_path)
    out = tmp_path / "p"
    proc = run_cli("emit", str(model), "--target", "cortex-m7", "-o", str(out), "--backend", "aot")
    assert proc.returncode == 4, proc.stderr
    assert "unsupported op TANH at node 0" in proc.stderr and "--backend tflm" in proc.stderr
    assert not out.exists()
    proc = run_cli("emit", str(model), "--target", "cortex-m7", "-o", str(out), "--backend", "aot", "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 4 and doc["error"] == "unsupported-op" and "TANH at node 0" in doc["message"]
    assert "--backend tflm" in doc["hint"]
    bad = run_cli("emit", str(TINY), "--target", "cortex-m7", "-o", str(out), "--backend", "xla")
    assert bad.returncode == 2 and "unknown backend" in bad.stderr and not out.exists()


def test_unsupported_configurations_name_op_and_node(tmp_path):
    with pytest.raises(UnsupportedOpError, match=r"unsupported op TANH at node 0"):
        generate(verified(_tanh_model(tmp_path)))
    with pytest.raises(InvalidOptionError, match="unknown backend"):
        emit(TINY, "cortex-m7", Path("/nonexistent/x"), backend="nope")


@needs_arm_gcc
@needs_qemu
def test_cli_build_backend_aot_run(tmp_path, monkeypatch):
    """`build --backend aot --run` needs no TFLM: emit, CMake, QEMU, every vector PASS. Its report
    (OUT/report.html, checked in Chromium) shows the run: vectors, sizes, instructions, the profile."""
    from report_check import check_report

    monkeypatch.delenv("TFLM_ROOT", raising=False)
    out = tmp_path / "b"
    proc = run_cli("build", "--model", str(TINY), "--target", "cortex-m33", "--backend", "aot", "-o", str(out),
                   "--run", "--profile", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["emit"]["backend"] == "aot" and doc["run"]["status"] == "PASS"
    assert doc["run"]["golden"]["passed"] == 4 and doc["run"]["arena"]["matches_prediction"] is True
    assert json.loads((out / "build.json").read_text()) == doc  # what --json printed is what the report reads
    # the stack the firmware painted at reset: its size is the linker script's, its deepest use inside it
    linker = (out / "firmware" / "firmware" / "boards" / "mps2-an505" / "linker.ld").read_text()
    size_k = int(re.search(r"^__stack_size = (\d+)K;", linker, re.M).group(1))
    assert doc["run"]["stack"]["size"] == size_k * 1024 and 256 < doc["run"]["stack"]["used"] < size_k * 1024
    page = check_report(out, tmp_path / "report.png", {
        "build:run.instructions_per_inference", "build:run.arena.used", "build:run.sizes.text", "build:run.stack.used",
        "manifest:plan.arena_bytes", "manifest:plan.tflm.tflm_greedy_bytes", "manifest:arena.predicted_bytes.aot"})
    assert {i.alt for i in page.images} == {"memory timeline", "per-layer profile"}
    assert json.loads((out / "firmware" / "mncompile.json").read_text())["options"]["backend"] == "aot"
    text = run_cli("emit", str(TINY), "--target", "cortex-m33", "-o", str(tmp_path / "e"), "--backend", "aot")
    assert text.returncode == 0 and "AOT project (no TFLM)" in text.stdout and "static arena" in text.stdout


def test_camera_path_of_the_project_matches_mncompiles_quantization(aot_projects, tmp_path):
    """model_input_from_frame() of src/model_input.h, compiled for the host, on two 12x12 gray8
    frames (the model's side: no resize) holding every pixel value 0..255 == the host's
    preprocessing + quantization of those pixels (the path calibration and evaluation take)."""
    from mncompile.model.info import read_info
    from mncompile.validate.layers import quantize_array

    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    project = aot_projects("tiny", TINY, "cortex-m7")
    (tmp_path / "pixels.c").write_text(
        '#include <stdio.h>\n#include "model_input.h"\n'
        'int main(void) { uint8_t frame[144]; int8_t input[144];\n'
        '  for (int k = 0; k < 2; ++k) {\n'
        '    for (int i = 0; i < 144; ++i) frame[i] = (uint8_t)(k * 112 + i);\n'
        '    const mn_frame f = {frame, 12, 12, 0, MN_PIXEL_GRAY8};\n'
        '    if (model_input_from_frame(&f, input) != 0) return 1;\n'
        '    for (int i = 0; i < 144; ++i) printf("%d ", input[i]);\n  }\n  return 0; }\n')
    exe = tmp_path / "pixels"
    proc = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{project / 'src'}",
                           f"-I{project / 'firmware' / 'preprocess'}", str(tmp_path / "pixels.c"),
                           str(project / "src" / "model_input.c"),
                           str(project / "firmware" / "preprocess" / "mn_preprocess.c"), "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    graph = verified(TINY).graph
    pixels = np.concatenate([np.arange(144), 112 + np.arange(144)]).astype(np.uint8).reshape(2, 12, 12, 1)
    want = quantize_array(read_info(TINY).preprocessing.apply(pixels), graph.tensors[graph.inputs[0]].quant, "int8")
    assert got == want.reshape(-1).tolist()


@needs_arm_gcc
def test_real_board_project_links_with_tables_in_flash_and_the_arena_in_axi_sram(aot_projects, tmp_path):
    """stm32h743 (Nucleo-H743ZI, no QEMU): the project builds; constants sit in flash, the arena in AXI SRAM."""
    from mncompile.run.build import build_project

    project = aot_projects("tiny", TINY, "stm32h743")
    firmware = build_project(project, tmp_path / "build", timeout=600)
    symbols = {}
    for line in subprocess.run(["arm-none-eabi-nm", str(firmware.elf)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    assert 0x24000000 <= symbols["arena"] < 0x24000000 + 512 * 1024 and symbols["arena"] % 16 == 0
    assert 0x08000000 <= symbols["L0_filter"] < 0x08000000 + 2 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# float I/O edges: an int8 model converted with float32 input and output (QUANTIZE first,
# DEQUANTIZE last), and the variants with one float edge


def _pack(m) -> bytes:
    import flatbuffers

    from mncompile.plan.offline import aligned_buffer_class

    aligned = aligned_buffer_class()
    for i, buf in enumerate(m.buffers):
        if buf.data is not None and len(buf.data) > 0:
            a = aligned()
            a.data = buf.data
            m.buffers[i] = a
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _drop_edge(data: bytes, edge: str) -> bytes:
    """The model without its first QUANTIZE (edge "quantize": int8 input) or its last DEQUANTIZE
    ("dequantize": int8 output)."""
    from mncompile.graph.reader import schema

    s = schema()
    m = s.ModelT.InitFromPackedBuf(data, 0)
    g = m.subgraphs[0]
    code = {"quantize": s.BuiltinOperator.QUANTIZE, "dequantize": s.BuiltinOperator.DEQUANTIZE}[edge]
    k = 0 if edge == "quantize" else len(g.operators) - 1
    assert max(m.operatorCodes[g.operators[k].opcodeIndex].builtinCode,
               m.operatorCodes[g.operators[k].opcodeIndex].deprecatedBuiltinCode) == code
    op = g.operators.pop(k)
    if edge == "quantize":
        g.inputs = [op.outputs[0]]
    else:
        g.outputs = [op.inputs[0]]
    m.signatureDefs = []
    return _pack(m)


@pytest.fixture(scope="session")
def float_io_models(tmp_path_factory) -> dict[str, Path]:
    """A small int8 classifier converted with the TFLite converter's default float32 input and
    output (QUANTIZE -> CONV_2D -> DEPTHWISE_CONV_2D -> MEAN -> FULLY_CONNECTED -> DEQUANTIZE,
    12x12x1, 6 logits), and the same without the DEQUANTIZE ("float_in") or the QUANTIZE ("float_out")."""
    from mncompile.model.loader import LoadedModel
    from mncompile.quantize.convert import _converter
    from mncompile.tfenv import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(11)
    layers = keras.layers
    inputs = keras.Input((12, 12, 1), batch_size=1)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(6)(x)  # logits: DEQUANTIZE with a scale that is not a power of two
    model = keras.Model(inputs, outputs)
    folder = tmp_path_factory.mktemp("float_io")
    path = folder / "float_io.tflite"
    tf, converter = _converter(LoadedModel(path, "keras", model, (12, 12, 1), 6, None))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    calib = np.random.default_rng(3).uniform(-1, 1, (16, 12, 12, 1)).astype(np.float32)
    converter.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # inference types left float32, on purpose
        data = bytes(converter.convert())
    path.write_bytes(data)
    models = {"float": path}
    for name, edge in (("float_in", "dequantize"), ("float_out", "quantize")):
        models[name] = folder / f"{name}.tflite"
        models[name].write_bytes(_drop_edge(data, edge))
    return models


def _edge_inputs(model: Path, n: int) -> np.ndarray:
    """Inputs for `model`: int8, or float32 around the QUANTIZE op's range with exact half-way
    points, values that saturate, and signed zeros."""
    from mncompile.validate.golden import io_quant


    graph = verified(model).graph
    tin = graph.tensors[graph.inputs[0]]
    rng = np.random.default_rng(9)
    shape = (n, *tin.shape[1:])
    if tin.dtype == "INT8":
        return rng.integers(-128, 128, shape).astype(np.int8)
    q = io_quant(graph)[0]
    s32 = np.float32(q.scale)
    k = rng.integers(-140, 140, shape)
    x = ((k - q.zero_point).astype(np.float32) + np.float32(0.5)) * s32  # exact float32 half-way points
    uniform = (rng.uniform(-135, 135, shape) - q.zero_point) * float(s32)
    x = np.where(rng.integers(0, 2, shape) == 1, uniform, x).astype(np.float32)
    flat = x.reshape(n, -1)
    flat[:, 0], flat[:, 1], flat[:, 2] = np.float32(0.0), np.float32(-0.0), np.float32(1e6)
    return x


@pytest.mark.parametrize("name", ["float", "float_in", "float_out"])
def test_float_io_edges_compile_and_match_tflm_on_the_host(name, float_io_models, tmp_path):
    """QUANTIZE on a float32 input and DEQUANTIZE making a float32 output run in model_invoke();
    host gcc -pedantic, outputs bit-identical to the TFLM host interpreter's (float bits compared)."""
    from mncompile.validate.emulate import emulate

    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    model = float_io_models[name]
    graph = verified(model).graph
    float_in, float_out = name in ("float", "float_in"), name in ("float", "float_out")
    kinds = [op.kind for op in graph.ops]
    assert (kinds[0] == "QUANTIZE") == float_in and (kinds[-1] == "DEQUANTIZE") == float_out
    program = generate(verified(model))
    h, c = program.model_h, program.model_c
    ctype_in, ctype_out = ("float" if float_in else "int8_t"), ("float" if float_out else "int8_t")
    assert f"int model_invoke(const {ctype_in} *in, {ctype_out} *out);" in h
    assert f"#define MODEL_INPUT_IS_FLOAT {int(float_in)}" in h
    assert f"#define MODEL_OUTPUT_IS_FLOAT {int(float_out)}" in h
    assert ("model_input(void)" in h) != float_in and ("model_output(void)" in h) != float_out
    assert ("mn_quantize_f32_s8(&L0, in, MN_T(" in c) == float_in
    assert re.search(r"mn_dequantize_s8_f32\(&L\d+, MN_T\(\d+\), out\)", c) is not None if float_out else \
        "mn_dequantize" not in c
    # the float buffers are the caller's: the arena holds only int8 tensors
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    assert (program.input_offset is None) == float_in and (program.output_offset is None) == float_out
    planned = {t for group in program.memory.groups for t in group}
    assert (tin.index in planned) != float_in and (tout.index in planned) != float_out
    assert program.input_bytes == tin.nbytes and program.output_bytes == tout.nbytes
    assert program.to_json()["input"]["dtype"] == ("float32" if float_in else "int8")
    assert generate(verified(model)).model_c == c  # deterministic

    (tmp_path / "model.c").write_text(c)
    (tmp_path / "model.h").write_text(h)
    lib = tmp_path / "model.so"
    proc = subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off",
                           "-fPIC", "-shared", f"-I{KERNELS}", f"-I{tmp_path}", str(tmp_path / "model.c"),
                           *map(str, sorted(KERNELS.glob("*.c"))), "-o", str(lib)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    so = ctypes.CDLL(str(lib))
    x = _edge_inputs(model, 6)
    want = emulate(verified(model), x, "tflm").reshape(len(x), -1)
    assert want.dtype == (np.float32 if float_out else np.int8)
    for v in range(len(x)):
        xin = np.ascontiguousarray(x[v])
        out = np.full(want.shape[1], 7, want.dtype)
        assert so.model_invoke(xin.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p)) == 0
        assert np.array_equal(out.view(np.uint32 if float_out else np.int8),
                              want[v].view(np.uint32 if float_out else np.int8)), (name, v)


def _golden_float_inputs(project: Path) -> np.ndarray:
    text = (project / "src" / "golden_data.c").read_text()
    body = re.search(r"const float g_golden_inputs\[(\d+)\]\[(\d+)\](?: GOLDEN_SECTION)? = \{(.*?)\n\};", text, re.S)
    values = re.findall(r"-?[0-9.]+(?:e[-+]?\d+)?f", re.sub(r"//[^\n]*", "", body.group(3)))
    return np.array([float(v[:-1]) for v in values], np.float32).reshape(int(body.group(1)), int(body.group(2)))


@needs_arm_gcc
@needs_qemu
def test_float_io_model_is_bit_exact_on_qemu(float_io_models, tmp_path):
    """Float golden inputs (digits images, preprocessed, not quantized), the TFLM host interpreter's
    float32 outputs as expected outputs, compared bit for bit by the firmware; `mncompile run` checks it."""
    from mncompile.model.datasets import Preprocessing
    from mncompile.model.loader import load_model, model_dataset
    from mncompile.run.validate import run_project
    from mncompile.validate.emulate import emulate
    from mncompile.validate.golden import stratified_pick

    model = float_io_models["float"]
    result = emit(model, "cortex-m7", tmp_path / "p", backend="aot", dataset="digits")
    project = result.out
    doc = json.loads((project / "mncompile.json").read_text())
    golden = doc["golden"]
    assert golden["output_dtype"] == "float32" and golden["input_dtype"] == "float32"
    assert doc["aot"]["input"] == {"bytes": 576, "offset": None, "dtype": "float32"}
    assert doc["aot"]["output"] == {"bytes": 24, "offset": None, "dtype": "float32"}
    assert doc["memory"]["io_bytes"] == 576 + 24  # the caller's float buffers
    # the inputs the firmware holds are the preprocessed digits images, float32, not quantized (the
    # camera path of a 12x12 gray8 frame is the identity before the table)
    x = _golden_float_inputs(project)
    data = model_dataset(load_model(model), "digits")
    pick = stratified_pick(data.y_val, 4)
    prep = Preprocessing.from_json(doc["preprocessing"])  # no sidecar: the range its QUANTIZE covers
    assert "quantization" in doc["preprocessing"]["source"]
    assert np.array_equal(x.reshape(4, 12, 12, 1).view(np.uint32), prep.apply(data.x_val[pick]).view(np.uint32))
    # the expected outputs are TFLM's float32 outputs for them, as bit patterns
    graph = verified(model).graph
    y = emulate(verified(model), x.reshape(4, *graph.tensors[graph.inputs[0]].shape[1:]), "tflm").reshape(4, -1)
    assert y.dtype == np.float32 and len(np.unique(y)) > 4
    assert np.array_equal(np.array(golden["expected_outputs"], np.uint32), y.view(np.uint32))
    assert np.array_equal(np.array(golden["expected_outputs_float"], np.float32).view(np.uint32), y.view(np.uint32))
    assert "const uint32_t g_golden_outputs[4][6] GOLDEN_SECTION = {" in (project / "src" / "golden_data.c").read_text()
    assert "float_bits(output[i]) != want[i]" in (project / "src" / "main.c").read_text()

    run = run_project(project, build_dir=tmp_path / "build")
    assert run.passed and run.vectors_passed == 4 and run.reference_checked, (run.problems, run.qemu.output)
    assert run.report.arena_used == doc["arena"]["predicted_bytes"]["aot"] == result.aot["arena_bytes"]
    assert "summary: 4/4 PASS" in run.qemu.output


def test_float_io_random_golden_vectors(float_io_models, tmp_path):
    """Without a dataset: an image model gets seeded random pixel frames, whose float32 inputs are the
    contract's table values; TFLM's float outputs for them are expected."""
    from mncompile.preprocess import camera
    from mncompile.preprocess.contract import Preprocessing
    from mncompile.validate.emulate import emulate
    from mncompile.validate.golden import golden_vectors

    model = float_io_models["float"]
    g = golden_vectors(verified(model), None, 3)
    assert g.source.startswith("random pixels, seed 0") and g.warning and len(g.frames) == 3
    assert g.inputs.dtype == g.outputs.dtype == np.float32
    pixels = np.stack([camera.decode_frame(f, 12, 12, "gray8", 1) for f in g.frames])
    assert np.array_equal(g.inputs.view(np.uint32), Preprocessing.for_input(12, 1).apply(pixels).view(np.uint32))
    want = emulate(verified(model), g.inputs, "tflm").reshape(3, -1)
    assert np.array_equal(g.outputs.view(np.uint32), want.view(np.uint32))
    doc = g.to_json()
    assert doc["expected_outputs"] == want.view(np.uint32).astype(int).tolist()
    assert doc["predictions"] == [int(i) for i in np.argmax(want, axis=1)]


def test_float_input_tensor_random_golden_vectors(tmp_path):
    """A float-edged model whose input is a tensor, not an image: seeded random float32 inputs over
    its QUANTIZE range and 2 steps beyond, so some saturate."""
    import tflite_writer as writer

    from mncompile.graph.verified import verify_model
    from mncompile.validate.golden import golden_vectors, io_quant

    model = verify_model(writer.quantize((1, 40), (0.02, 5)), "q.tflite")
    g = golden_vectors(model, None, 3)
    assert g.source == "random float32 inputs, seed 0" and g.inputs.dtype == np.float32 and not g.frames
    q = io_quant(model.graph)[0]
    levels = g.inputs / np.float32(q.scale) + q.zero_point
    assert levels.min() < -128 and levels.max() > 127


def test_non_square_4d_input_is_a_tensor_not_an_image(tmp_path):
    """A (1, 6, 4, 1) int8 input (an MFCC map, as MLPerf Tiny's keyword spotting model takes): seeded
    random int8 golden inputs and no pixel contract; asking for golden images is an error."""
    import tflite_writer as writer

    from mncompile.graph.verified import verify_model
    from mncompile.validate.golden import golden_vectors

    data = writer.conv2d((1, 6, 4, 1), (0.05, 3), np.ones((2, 3, 3, 1), np.int8), [0.01], np.zeros(2, np.int32),
                         (0.1, -2), (1, 1), "SAME", (1, 1), "NONE")
    model = verify_model(data, "mfcc.tflite")
    g = golden_vectors(model, None, 3)
    assert g.source == "random int8 inputs, seed 0" and g.inputs.shape == (3, 6, 4, 1) and not g.frames
    with pytest.raises(InvalidOptionError, match="golden frames need a square one"):
        golden_vectors(model, None, 3, images=tmp_path)
    (tmp_path / "m.tflite").write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "mncompile", "emit", str(tmp_path / "m.tflite"), "--target",
                           "cortex-m7", "--backend", "aot", "-o", str(tmp_path / "fw")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "pixels are scaled" not in proc.stderr and "preprocessing from" not in proc.stderr


def _mid_graph_float_model() -> bytes:
    """int8 -> DEQUANTIZE -> float32 -> QUANTIZE -> int8: a float tensor that is not an I/O edge."""
    import tflite_writer as writer

    from mncompile.graph.reader import schema

    s = schema()
    m = s.ModelT.InitFromPackedBuf(writer.dequantize((1, 8), (0.05, 3)), 0)
    g = m.subgraphs[0]
    t = s.TensorT()
    t.name, t.shape, t.type, t.buffer = b"requantized", [1, 8], s.TensorType.INT8, 0
    t.quantization = s.QuantizationParametersT()
    t.quantization.scale, t.quantization.zeroPoint = [0.1], [-2]
    g.tensors.append(t)
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.QUANTIZE
    code.version = 1
    m.operatorCodes.append(code)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 1, [g.outputs[0]], [len(g.tensors) - 1]
    g.operators.append(op)
    g.outputs = [len(g.tensors) - 1]
    return _pack(m)


def test_float_tensor_off_the_edges_is_unsupported(float_io_models, tmp_path):
    from mncompile.errors import ModelError

    with pytest.raises(UnsupportedOpError, match=r"unsupported op DEQUANTIZE at node 0: tensor 1 is FLOAT32") as exc:
        generate(verified(_mid_graph_float_model()))
    assert "--backend tflm" in exc.value.hint
    # a float32 input that a non-QUANTIZE op reads: the QUANTIZE-less float model's first op is named
    from mncompile.graph.reader import schema

    s = schema()
    m = s.ModelT.InitFromPackedBuf(float_io_models["float"].read_bytes(), 0)
    g = m.subgraphs[0]
    quantize = g.operators.pop(0)
    conv = g.operators[0]
    conv.inputs = [int(quantize.inputs[0]), *(int(i) for i in conv.inputs[1:])]  # CONV_2D reads the float input
    m.signatureDefs = []
    with pytest.raises(ModelError, match=r"operator 0 \(CONV_2D\): has INT8 weights with a FLOAT32 input \(hybrid "
                                         r"models are not supported\)"):
        verified(_pack(m))  # TFLM does not run hybrid models: the front door refuses it before any backend
    # the TFLM project takes the float edges too: float32 golden inputs, float32 outputs held and
    # compared as their bit patterns (the ones TFLM's host interpreter gives)
    from test_corpus import golden_arrays

    from mncompile.model.loader import load_model
    from mncompile.validate.emulate import emulate

    for name in ("float", "float_out"):
        assert load_model(float_io_models[name]).format == "tflite-int8"  # every command calls it int8
        out = emit(float_io_models[name], "cortex-m7", tmp_path / name).out
        header, main = (out / "src" / "golden_data.h").read_text(), (out / "src" / "main.cc").read_text()
        g = verified(float_io_models[name]).graph
        float_in = g.tensors[g.inputs[0]].dtype == "FLOAT32"
        assert ("const float g_golden_inputs" in header) == float_in
        assert "const uint32_t g_golden_outputs" in header and "memcpy(&got_bits, &got[i]" in main
        assert ("kTfLiteFloat32 || input->bytes" in main) == float_in
        x, want = golden_arrays(out)  # as src/golden_data.cc holds them
        got = emulate(verified(float_io_models[name]), x.reshape(len(x), *g.tensors[g.inputs[0]].shape[1:]), "tflm")
        assert want.dtype == np.uint32 and np.array_equal(got.reshape(len(x), -1).view(np.uint32), want)
