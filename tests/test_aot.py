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
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli

from mncompile.aot.codegen import generate
from mncompile.emit import emit
from mncompile.errors import InvalidOptionError, UnsupportedOpError
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
    body = re.search(r"g_golden_inputs\[(\d+)\]\[(\d+)\] = \{(.*?)\n\};", text, re.S)
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
    """Emitted on first use, keyed (model name, target, inplace mode)."""
    root = tmp_path_factory.mktemp("aot")
    cache: dict[tuple[str, str, str], Path] = {}

    def get(name: str, model: Path, target: str, inplace: str = "auto") -> Path:
        key = (name, target, inplace)
        if key not in cache:
            cache[key] = emit(model, target, root / f"{name}_{target}_{inplace}", backend="aot",
                              inplace=inplace).out
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


@pytest.mark.parametrize("name", MODELS)
def test_golden_outputs_are_the_tflm_host_interpreters(name, request, aot_projects):
    """What the firmware compares with is TFLM's answer for the inputs the firmware holds."""
    from mncompile.validate.emulate import emulate

    model = _model(name, request)
    project = aot_projects(name, model, "cortex-m7")
    doc = json.loads((project / "mncompile.json").read_text())
    x = _golden_inputs(project)
    from mncompile.graph.reader import read_graph

    graph = read_graph(model)
    y = emulate(model, x.reshape(len(x), *graph.tensors[graph.inputs[0]].shape[1:]), "tflm")
    assert np.array_equal(np.array(doc["golden"]["expected_outputs"], np.int8), y.reshape(len(x), -1))


# ---------------------------------------------------------------------------------------------
# the generated code


def test_generated_code_shape(request):
    vww = _model("vww", request)
    program = generate(vww)
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
    assert re.search(r"\.per_channel = 1,", generate(TINY).model_c)
    assert generate(vww).model_c == c  # deterministic


def test_generated_c_compiles_warning_free_on_the_host_and_matches_tflm(tflite_zoo, tmp_path):
    """model.c is plain C99: host gcc -pedantic, every in-place mode, outputs equal to TFLM's."""
    from mncompile.graph.reader import read_graph
    from mncompile.validate.emulate import emulate

    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    model = tflite_zoo["v2_0.35_96"]
    graph = read_graph(model)
    x = np.random.default_rng(5).integers(-128, 128, (2, *graph.tensors[graph.inputs[0]].shape[1:])).astype(np.int8)
    want = emulate(model, x, "tflm").reshape(2, -1)
    for mode in ("all", "off"):
        program = generate(model, inplace=mode)
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


# ---------------------------------------------------------------------------------------------
# the arena: in-place depthwise, lower bound, TFLM


def test_inplace_depthwise_lowers_the_arena(tflite_zoo):
    """V2's peak is an expanded tensor feeding a depthwise layer: in place, that layer needs its
    input plus one scratch plane instead of input + output, and the arena drops below the
    layer-wise lower bound of the graph as TFLM sees it."""
    model = tflite_zoo["v2_0.35_96"]
    planned = plan_model(model)
    auto, every, off = (generate(model, inplace=m) for m in ("auto", "all", "off"))
    assert off.memory.inplace == () and off.arena_bytes == planned.lower_bound == 138_240
    assert auto.arena_bytes == every.arena_bytes == auto.memory.lower_bound < off.arena_bytes
    assert auto.arena_bytes == 129_024
    assert 0 < len(auto.memory.inplace) < len(every.memory.inplace) == 17  # auto: only where it pays
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
    assert len(doc["plan"]["inplace_depthwise_ops"]) == 13
    assert doc["options"]["inplace_depthwise"] == "all"
    _, result, report = _build_and_run(project, tmp_path / "build", "mps3-an547")
    assert result.exit_code == 0 and report.all_passed, result.output


@pytest.mark.parametrize("name", MODELS)
def test_aot_arena_against_lower_bound_and_tflm(name, request):
    model = _model(name, request)
    planned = plan_model(model)
    program = generate(model)
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
        if rel.startswith("firmware/"):
            assert (out / rel).read_bytes() == (REPO / rel).read_bytes(), rel
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


def _sum_model(tmp_path: Path) -> Path:
    """A valid int8 classifier-shaped model whose one op, SUM, the AOT backend does not have."""
    import flatbuffers

    from mncompile.graph import writer
    from mncompile.graph.reader import schema

    s = schema()
    m = s.ModelT.InitFromPackedBuf(writer.mean((1, 2, 2, 4), (0.1, 3), (0.2, -1), keep_dims=False), 0)
    m.operatorCodes[0].builtinCode = s.BuiltinOperator.SUM
    m.operatorCodes[0].deprecatedBuiltinCode = s.BuiltinOperator.SUM
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "sum_int8.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def test_unsupported_op_is_a_typed_error_through_the_cli(tmp_path):
    model = _sum_model(tmp_path)
    out = tmp_path / "p"
    proc = run_cli("emit", str(model), "--target", "cortex-m7", "-o", str(out), "--backend", "aot")
    assert proc.returncode == 4, proc.stderr
    assert "unsupported op SUM at node 0" in proc.stderr and "--backend tflm" in proc.stderr
    assert not out.exists()
    proc = run_cli("emit", str(model), "--target", "cortex-m7", "-o", str(out), "--backend", "aot", "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 4 and doc["error"] == "unsupported-op" and "SUM at node 0" in doc["message"]
    assert "--backend tflm" in doc["hint"]
    bad = run_cli("emit", str(TINY), "--target", "cortex-m7", "-o", str(out), "--backend", "xla")
    assert bad.returncode == 2 and "unknown backend" in bad.stderr and not out.exists()


def test_unsupported_configurations_name_op_and_node():
    from mncompile.graph import writer

    with pytest.raises(UnsupportedOpError, match=r"unsupported op MEAN at node 0: reduces axes \[3\]"):
        generate(writer.mean((1, 4, 4, 8), (0.1, 3), (0.2, -1), axes=(3,)))
    with pytest.raises(InvalidOptionError, match="unknown backend"):
        emit(TINY, "cortex-m7", Path("/nonexistent/x"), backend="nope")


@needs_arm_gcc
@needs_qemu
def test_cli_build_backend_aot_run(tmp_path, monkeypatch):
    """`build --backend aot --run` needs no TFLM: emit, CMake, QEMU, every vector PASS."""
    monkeypatch.delenv("TFLM_ROOT", raising=False)
    out = tmp_path / "b"
    proc = run_cli("build", "--model", str(TINY), "--target", "cortex-m33", "--backend", "aot", "-o", str(out),
                   "--run", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["emit"]["backend"] == "aot" and doc["run"]["status"] == "PASS"
    assert doc["run"]["golden"]["passed"] == 4 and doc["run"]["arena"]["matches_prediction"] is True
    assert json.loads((out / "firmware" / "mncompile.json").read_text())["options"]["backend"] == "aot"
    text = run_cli("emit", str(TINY), "--target", "cortex-m33", "-o", str(tmp_path / "e"), "--backend", "aot")
    assert text.returncode == 0 and "AOT project (no TFLM)" in text.stdout and "static arena" in text.stdout


def test_quantize_pixel_matches_mncompiles_quantization(aot_projects, tmp_path):
    """model_quantize_pixel() in src/model_settings.h == the host's preprocessing + quantization."""
    from mncompile.graph.reader import read_graph
    from mncompile.model.info import read_info
    from mncompile.validate.layers import quantize_array

    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    project = aot_projects("tiny", TINY, "cortex-m7")
    (tmp_path / "pixels.c").write_text(
        '#include <stdio.h>\n#include "model_settings.h"\n'
        'int main(void) { for (int p = 0; p < 256; ++p) printf("%d ", model_quantize_pixel((uint8_t)p)); '
        'return 0; }\n')
    exe = tmp_path / "pixels"
    proc = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                           f"-I{project / 'src'}", f"-I{project / 'firmware' / 'kernels'}", str(tmp_path / "pixels.c"),
                           str(project / "firmware" / "kernels" / "mn_quantize.c"), "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    graph = read_graph(TINY)
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
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
