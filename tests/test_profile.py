"""Per-layer profiles (`emit --profile`, `mncompile run`'s per-layer table).

- Without --profile the generated code has no profiling code at all (zero cost by construction).
- The tiny model's AOT project with --profile on QEMU mps2-an500 (cortex-m7): every golden vector
  still PASSes bit for bit, every operator appears once with the model's kind, every node that
  runs a kernel has > 0 ticks, and the nodes' sum stays within the stated tolerance of the
  whole-inference figure the vector lines give. The same through the CLI's --json.
- The MLPerf VWW model (reference data, when present) likewise: its RESHAPE is a view (0 ticks).
- MACs per op equal an independent count: the operators and tensor shapes as LiteRT's own
  flatbuffer reader reports them, with the mult-add formula written out here.
- The firmware-line parser and the mapping flag every disagreement (a missing node, another
  operator, a sum that is not the lines', nodes longer than the inference, no profile at all).
- TFLM: the profiler (`NodeProfiler` in src/main.cc) compiles with the project's own flags
  (-Werror) against real TFLM headers; skips without TFLM_ROOT.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import REPO, run_cli

from mncompile.errors import InvalidOptionError
from mncompile.graph.verified import read_model
from mncompile.pipeline import emit
from mncompile.run.build import parse_firmware_output
from mncompile.run.profile import layer_profile

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
TFLM_ROOT = os.environ.get("TFLM_ROOT")
# The nodes' sum is the whole inference less what runs outside them: the output copy, the call,
# and the timer reads at the two edges (the AOT golden path writes the input tensor in place).
# Stated bound: 10 SysTick ticks = 400 instructions per inference; measured: 2 ticks (tiny and VWW).
OUTSIDE_TICKS_MAX = 10

needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None,
                                   reason="arm-none-eabi-gcc and cmake are needed (make setup installs them)")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None,
                                reason="qemu-system-arm is not installed (make setup installs it)")


def independent_macs(model_path) -> list[tuple[str, int]]:
    """(operator, mult-adds) per node from LiteRT's reader: one mult-add per weight use, padding
    taps included (the convention of `mncompile.graph.metrics`); every other operator 0."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path))
    shapes = {d["index"]: [int(v) for v in d["shape"]] for d in interpreter.get_tensor_details()}
    result = []
    for op in interpreter._get_ops_details():
        kind = op["op_name"]
        out = shapes[op["outputs"][0]]
        outputs = 1
        for v in out:
            outputs *= v
        macs = 0
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            weights = shapes[op["inputs"][1]]
            count = 1
            for v in weights:
                count *= v
            per_output = count // (weights[0] if kind != "DEPTHWISE_CONV_2D" else weights[-1])
            macs = outputs * per_output  # each output element uses the weights of its channel once
        result.append((kind, macs))
    return result


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny model's AOT project emitted with --profile, built and run on QEMU (cortex-m7)."""
    from mncompile.run.validate import run_project

    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed")
    project = emit(TINY, "cortex-m7", tmp_path_factory.mktemp("profile") / "tiny", backend="aot", profile=True).out
    return run_project(project, timeout=120)


# ---------------------------------------------------------------------------------------------
# the generated code


def test_without_profile_the_code_has_no_profiling(tmp_path):
    from mncompile.aot.codegen import generate

    model = read_model(TINY)
    plain, profiled = generate(model), generate(model, profile=True)
    for text in (plain.model_c, plain.model_h):
        assert not re.search(r"profile|board_ticks|board\.h", text, re.I)
    assert plain.model_c == generate(model).model_c
    kernels = [layer for layer in profiled.layers if layer.kernel]
    assert profiled.model_c.count("    MN_PROFILE_MARK(") == len(kernels) == len(model.graph.ops)
    assert "extern uint64_t model_profile_ticks[MODEL_NODES];" in profiled.model_h
    # the project: main.c prints the profile only when asked; the manifest records it only then
    out = emit(TINY, "cortex-m7", tmp_path / "plain", backend="aot").out
    assert "profile" not in (out / "src" / "main.c").read_text()
    assert "profile" not in json.loads((out / "mncompile.json").read_text())["options"]
    tflm = emit(TINY, "cortex-m7", tmp_path / "tflm").out
    assert "Profiler" not in (tflm / "src" / "main.cc").read_text()


def test_npu_targets_refuse_profile():
    from mncompile.options import resolve

    with pytest.raises(InvalidOptionError, match="ethos-u"):
        resolve("ethos-u55-128", profile=True)
    assert resolve("cortex-m7", profile=True).profile


# ---------------------------------------------------------------------------------------------
# on QEMU


@needs_arm_gcc
@needs_qemu
def test_tiny_aot_profile_on_qemu(tiny_run):
    run, graph = tiny_run, read_model(TINY).graph
    assert run.passed, run.problems
    assert run.vectors_passed == run.golden_count == 4  # profiling changes no output: still bit-exact
    profile = run.profile
    assert profile is not None and profile.unit == "SysTick ticks" and profile.inferences == 4
    assert [t.node for t in profile.layers] == list(range(len(graph.ops)))
    assert [t.kind for t in profile.layers] == [op.kind for op in graph.ops]
    assert [t.node for t in run.report.profile.nodes] == list(range(len(graph.ops)))  # each line once
    assert all(t.runs and t.ticks > 0 for t in profile.layers)
    assert all(t.instructions == round(t.ticks * 40) for t in profile.layers)  # mps2-an500: 40 per tick
    whole = run.ticks_per_inference
    assert whole - OUTSIDE_TICKS_MAX <= profile.node_ticks <= whole, (profile.node_ticks, whole)
    assert sum(t.share for t in profile.layers) == pytest.approx(1.0)
    assert len(profile.table_lines()) == 2 + len(graph.ops) + 1


@needs_arm_gcc
@needs_qemu
def test_cli_run_json_carries_the_profile(tiny_run):
    proc = run_cli("run", str(tiny_run.project), "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["profile"]
    assert [row["op"] for row in doc["layers"]] == [op.kind for op in read_model(TINY).graph.ops]
    assert doc["nodes"]["instructions"] == sum(row["instructions"] for row in doc["layers"]) == \
        tiny_run.profile.node_instructions
    assert 0 <= doc["outside_nodes"]["ticks"] <= OUTSIDE_TICKS_MAX
    text = run_cli("run", str(tiny_run.project), timeout=300).stdout
    assert "| 0 | CONV_2D | conv2d_1 | 2,592 |" in text and "per-layer profile over 4 inferences" in text


@needs_arm_gcc
@needs_qemu
def test_vww_aot_profile_on_qemu(shared_data, tmp_path):
    from mncompile.run.validate import run_project

    model = shared_data / "vww_96_int8.tflite"
    project = emit(model, "cortex-m7", tmp_path / "vww", backend="aot", golden=1, profile=True).out
    run = run_project(project, timeout=300)
    assert run.passed, run.problems
    profile, graph = run.profile, read_model(model).graph
    assert [t.kind for t in profile.layers] == [op.kind for op in graph.ops]
    views = [t for t in profile.layers if not t.runs]
    assert [(t.kind, t.ticks) for t in views] == [("RESHAPE", 0)]
    assert all(t.ticks > 0 for t in profile.layers if t.runs)
    assert run.ticks_per_inference - OUTSIDE_TICKS_MAX <= profile.node_ticks <= run.ticks_per_inference
    assert [t.macs for t in profile.layers] == [m for _, m in independent_macs(model)]




# ---------------------------------------------------------------------------------------------
# the parser and the mapping, on firmware output written here


def _output(lines: list[str], whole: int = 100) -> str:
    vectors = [f"vector {v}: PASS, class 0 (profile: node 9 X: 1 SysTick ticks), {whole} SysTick ticks"
               for v in range(2)]
    return "\n".join([*vectors, *lines, "summary: 2/2 PASS, arena_used_bytes 864, 200 SysTick ticks in total"])


GOOD = ["profile: node 0 CONV_2D: 60 SysTick ticks", "profile: node 1 DEPTHWISE_CONV_2D: 40 SysTick ticks",
        "profile: node 2 CONV_2D: 50 SysTick ticks", "profile: node 3 MEAN: 20 SysTick ticks",
        "profile: node 4 FULLY_CONNECTED: 10 SysTick ticks", "profile: node 5 SOFTMAX: 8 SysTick ticks",
        "profile: 6 nodes, 2 inferences: 188 SysTick ticks in the nodes"]


def _map(lines: list[str], whole: float = 100.0):
    report = parse_firmware_output(_output(lines))
    return layer_profile(report.profile, read_model(TINY).graph, instructions_per_tick=40,
                         inference_ticks=whole, expected_inferences=2)


def test_parser_reads_the_profile_lines():
    report = parse_firmware_output(_output([*GOOD[:-1], "profile: 6 nodes, 2 inferences: 188 SysTick ticks in "
                                            "the nodes, 3 other events"]))
    p = report.profile
    assert len(report.vectors) == 2 and report.all_passed  # a label that looks like a profile line is a label
    assert [(t.node, t.kind, t.ticks) for t in p.nodes][:2] == [(0, "CONV_2D", 60), (1, "DEPTHWISE_CONV_2D", 40)]
    assert (p.node_count, p.inferences, p.total_ticks, p.unit, p.other_events) == (6, 2, 188, "SysTick ticks", 3)
    assert p.complete
    odd = parse_firmware_output("profile: node 0 my op: 1\\x0a: 7 DWT cycles").profile
    assert (odd.nodes[0].kind, odd.nodes[0].ticks, odd.unit, odd.node_count) == ("my op: 1\\x0a", 7, "DWT cycles",
                                                                                  None)
    assert parse_firmware_output(_output([])).profile is None


def test_mapping_per_inference_and_its_checks():
    good = _map(GOOD)
    assert not good.problems
    assert [(t.kind, t.macs) for t in good.layers] == independent_macs(TINY)
    assert [t.ticks for t in good.layers] == [30, 20, 25, 10, 5, 4]  # summed over 2 inferences, halved
    assert [t.instructions for t in good.layers] == [1200, 800, 1000, 400, 200, 160]
    assert good.node_ticks == 94 and good.outside_ticks == 6 and good.coverage == pytest.approx(0.94)
    assert [t.share for t in good.layers][0] == pytest.approx(60 / 188)

    def problems(lines, whole=100.0):
        return " ".join(_map(lines, whole).problems)

    assert "is a MEAN in the model, the firmware timed a AVERAGE_POOL_2D" in problems(
        [*GOOD[:3], GOOD[3].replace("MEAN", "AVERAGE_POOL_2D"), *GOOD[4:]])
    assert "missing [4]" in problems([*GOOD[:4], *GOOD[5:]])
    assert "twice [0]" in problems([GOOD[0], *GOOD])
    assert "its lines add up to 188" in problems([*GOOD[:-1], GOOD[-1].replace("188", "187")])
    assert "no closing" in problems(GOOD[:-1])
    assert "more than the whole inference" in problems(GOOD, whole=90.0)
    assert "the model has 6" in problems([*GOOD[:-1], GOOD[-1].replace("6 nodes", "7 nodes")])


@needs_arm_gcc
@needs_qemu
def test_a_profile_project_without_profile_lines_fails(tiny_run):
    from mncompile.run.validate import assess, load_project

    run = tiny_run
    stripped = "\n".join(line for line in run.qemu.output.split("\n") if not line.startswith("profile:"))
    proj = load_project(run.project)
    again = assess(proj, run.target, run.machine, run.firmware, dataclasses.replace(run.qemu, output=stripped))
    assert not again.passed and any("printed no \"profile:\" lines" in p for p in again.problems)
    swapped = run.qemu.output.replace("profile: node 3 MEAN:", "profile: node 3 SUM:")
    again = assess(proj, run.target, run.machine, run.firmware, dataclasses.replace(run.qemu, output=swapped))
    assert any("node 3 is a MEAN in the model, the firmware timed a SUM" in p for p in again.problems)


# ---------------------------------------------------------------------------------------------
# TFLM: the profiler compiles against real TFLM


@needs_arm_gcc
@pytest.mark.skipif(not TFLM_ROOT, reason="TFLM_ROOT is unset: point it at a tflite-micro checkout with its "
                                          "third-party downloads (README: Testing against real TFLM)")
@pytest.mark.skipif(shutil.which("ninja") is None, reason="ninja is needed to build one object")
def test_tflm_profiler_compiles_with_the_projects_flags(tmp_path):
    project = emit(TINY, "cortex-m7", tmp_path / "tflm", profile=True).out
    main = (project / "src" / "main.cc").read_text()
    assert "class NodeProfiler : public tflite::MicroProfilerInterface" in main
    assert "static constexpr int kNodes = 6;" in main and "nullptr, &profiler);" in main
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(project), "-B", str(build), "-G", "Ninja", f"-DTFLM_ROOT={TFLM_ROOT}"],
                   check=True, capture_output=True, timeout=300)
    proc = subprocess.run(["ninja", "-C", str(build), "CMakeFiles/firmware.dir/src/main.cc.obj"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (build / "CMakeFiles" / "firmware.dir" / "src" / "main.cc.obj").stat().st_size > 0
    assert "-Werror" in (build / "build.ninja").read_text()
