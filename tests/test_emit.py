"""`mncompile emit`: the TFLM project, its determinism, its C arrays on real boards, its errors.

The tiny model (tests/data/tiny_int8.tflite, made by tests/data/make_tiny_model.py) has
class names that are hostile to C. Its generated arrays are compiled with
arm-none-eabi-gcc -Wall -Wextra -Werror for every target together with the board
support, and run on QEMU, where a check program prints what the arrays hold; the
test compares that with Python's own view of the model, labels and quantization.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli, verified

from mncompile.errors import BudgetError, InvalidOptionError, ModelError, OutputExistsError
from mncompile.model.info import read_info
from mncompile.pipeline import emit
from mncompile.targets import get_target

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
SNAPSHOT = REPO / "tests" / "snapshots" / "tflm_tiny_cortex-m7"
FIRMWARE = REPO / "firmware"
# Files the snapshot covers: everything mncompile renders from templates/tflm/*.j2. firmware/
# and cmake/tflm.cmake are copied from the repository (checked byte for byte), model/ and
# mncompile.json hold bytes and tool versions.
SNAPSHOT_GLOBS = ("CMakeLists.txt", "README.md", "cmake/*.cmake", "src/*")
COPIED = {"cmake/tflm.cmake": REPO / "templates" / "tflm" / "cmake" / "tflm.cmake"}
COMPILE_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "stm32h743")

needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                   reason="arm-none-eabi-gcc is not installed (make setup installs it)")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None,
                                reason="qemu-system-arm is not installed (make setup installs it)")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def tiny_projects(tmp_path_factory) -> dict[str, Path]:
    """The tiny model emitted once per target."""
    root = tmp_path_factory.mktemp("emit")
    return {t: emit(TINY, t, root / t).out for t in COMPILE_TARGETS}


# ---------------------------------------------------------------------------------------------
# The tree: complete, deterministic, equal to the snapshot


def test_project_tree_is_complete(tiny_projects):
    out = tiny_projects["cortex-m7"]
    files = set(_tree(out))
    for required in ("CMakeLists.txt", "README.md", "mncompile.json", "cmake/arm-none-eabi.cmake", "cmake/tflm.cmake",
                     "src/main.cc", "src/model_settings.h", "src/model_data.h", "src/model_data.cc",
                     "src/golden_data.h", "src/golden_data.cc", "model/tiny_int8_planned.tflite",
                     "firmware/common/board.h", "firmware/boards/mps2-an500/linker.ld"):
        assert required in files, required
    # only the target's own board is copied, byte for byte from the repository
    boards = {f.split("/")[2] for f in files if f.startswith("firmware/boards/")}
    assert boards == {"mps2-an500"}
    for rel in files:
        if rel.startswith("firmware/"):
            assert (out / rel).read_bytes() == (REPO / rel).read_bytes(), rel


def test_two_runs_give_byte_identical_trees(tiny_projects, tmp_path):
    again = emit(TINY, "cortex-m7", tmp_path / "again").out
    assert _tree(again) == _tree(tiny_projects["cortex-m7"])


def test_rendered_files_match_the_snapshot(tiny_projects):
    """Set UPDATE_SNAPSHOTS=1 to rewrite tests/snapshots/ after an intended change."""
    out = tiny_projects["cortex-m7"]
    rendered = {p.relative_to(out).as_posix(): p.read_bytes() for g in SNAPSHOT_GLOBS for p in sorted(out.glob(g))
                if p.relative_to(out).as_posix() not in COPIED}
    for rel, source in COPIED.items():
        assert (out / rel).read_bytes() == source.read_bytes(), rel
    if os.environ.get("UPDATE_SNAPSHOTS"):
        shutil.rmtree(SNAPSHOT, ignore_errors=True)
        for rel, data in rendered.items():
            (SNAPSHOT / rel).parent.mkdir(parents=True, exist_ok=True)
            (SNAPSHOT / rel).write_bytes(data)
    stored = {p.relative_to(SNAPSHOT).as_posix(): p.read_bytes() for p in sorted(SNAPSHOT.rglob("*")) if p.is_file()}
    assert sorted(rendered) == sorted(stored)
    for rel in rendered:
        assert rendered[rel] == stored[rel], f"{rel} differs from the snapshot (UPDATE_SNAPSHOTS=1 to accept)"


def test_generated_sources_are_ascii_and_model_array_is_the_planned_model(tiny_projects):
    out = tiny_projects["cortex-m7"]
    for rel in ("src/model_data.cc", "src/golden_data.cc", "src/main.cc", "src/model_settings.h"):
        (out / rel).read_text(encoding="ascii")
    from mncompile.plan.offline import read_offline_plan

    model = (out / "model/tiny_int8_planned.tflite").read_bytes()
    assert read_offline_plan(verified(model)) is not None  # our plan travels inside the model
    body = (out / "src/model_data.cc").read_text()
    array = re.search(r"g_model_data\[MNCOMPILE_MODEL_BYTES\][^=]*= \{(.*?)\};", body, re.S).group(1)
    assert bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", array)) == model
    assert f"#define MNCOMPILE_MODEL_BYTES {len(model)}" in body
    assert re.search(r'alignas\(16\) const unsigned char g_model_data.*section\("\.model"\)', body)


def test_op_resolver_registers_exactly_the_models_ops(tiny_projects):
    """Independent reference: LiteRT's own reading of the model's operators."""
    from ai_edge_litert.interpreter import Interpreter

    kinds = {d["op_name"] for d in Interpreter(model_path=str(TINY))._get_ops_details()}
    main = (tiny_projects["cortex-m7"] / "src/main.cc").read_text()
    added = re.findall(r"resolver\.(Add\w+)\(\)", main)
    expected = {"CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "MEAN": "AddMean",
                "FULLY_CONNECTED": "AddFullyConnected", "SOFTMAX": "AddSoftmax"}
    assert kinds == set(expected)
    assert sorted(added) == sorted(expected.values())
    assert f"MicroMutableOpResolver<{len(expected)}>" in main


def test_manifest_records_inputs_versions_plan_budget_and_expected_outputs(tiny_projects):
    import hashlib

    out = tiny_projects["cortex-m7"]
    doc = json.loads((out / "mncompile.json").read_text())
    assert doc["model"]["sha256"] == hashlib.sha256(TINY.read_bytes()).hexdigest()
    assert doc["options"]["target"] == "cortex-m7" and doc["options"]["golden"] == 4
    assert set(doc["versions"]) >= {"mncompile", "tensorflow", "tflite-micro", "tflite-micro-commit",
                                     "arm-none-eabi-gcc"}
    assert doc["plan"]["mncompile_bytes"] > 0 and doc["plan"]["buffers"]
    assert doc["memory"]["fits"] is True and doc["memory"]["target"] == "cortex-m7"
    assert len(doc["golden"]["expected_outputs"]) == 4
    text = (out / "mncompile.json").read_text()
    assert not re.search(r"20\d\d-\d\d-\d\d", text)  # no dates
    assert str(out) not in text  # no paths of this run
    for rel, digest in doc["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest


def test_golden_outputs_agree_with_an_independent_interpreter(tiny_projects):
    """The expected outputs come from the TFLM host interpreter; LiteRT's reference kernels
    (a separate implementation) must give the same int8 values for the same inputs."""
    from mncompile.validate.emulate import emulate

    out = tiny_projects["cortex-m7"]
    golden = (out / "src/golden_data.cc").read_text()
    inputs_text, outputs_text = re.search(r"g_golden_inputs.*?= \{(.*?)\n\};.*g_golden_outputs.*?= \{(.*?)\n\};",
                                          golden, re.S).groups()

    def values(text):
        return [int(v) for v in re.findall(r"-?\d+", re.sub(r"//.*", "", text))]

    x = np.array(values(inputs_text), np.int8).reshape(4, 12, 12, 1)
    y = np.array(values(outputs_text), np.int8).reshape(4, 4)
    assert np.array_equal(emulate(verified(out / "model/tiny_int8_planned.tflite"), x, "litert-ref"), y)
    doc = json.loads((out / "mncompile.json").read_text())
    assert np.array_equal(np.array(doc["golden"]["expected_outputs"]), y)
    # the tiny model names no dataset: seeded random pixels, and the manifest warns about it
    assert doc["golden"]["source"].startswith("random pixels") and "weak check" in doc["golden"]["warning"]


# ---------------------------------------------------------------------------------------------
# Compiled for every target with the board support; run on QEMU where there is one

CHECK_MAIN = r"""
#include <stdint.h>
#include <stdio.h>
#include "board.h"
#include "golden_data.h"
#include "model_data.h"
#include "model_input.h"
#include "model_settings.h"

alignas(16) static uint8_t tensor_arena[mncompile::kTensorArenaSize] __attribute__((section(".tensor_arena")));

static uint32_t Fnv1a(const unsigned char* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

int main() {
  board_init();
  for (int i = 0; i < mncompile::kNumClasses; ++i) {
    printf("label %d ", i);
    for (const char* c = g_labels[i]; *c; ++c) printf("%02x", static_cast<unsigned char>(*c));
    printf("\n");
  }
  printf("model %lu %08lx %08lx\n", static_cast<unsigned long>(g_model_data_size),
         static_cast<unsigned long>(Fnv1a(g_model_data, g_model_data_size)),
         static_cast<unsigned long>(reinterpret_cast<uintptr_t>(g_model_data)));
  printf("golden %08lx %08lx\n",
         static_cast<unsigned long>(Fnv1a(reinterpret_cast<const unsigned char*>(g_golden_inputs),
                                          sizeof g_golden_inputs)),
         static_cast<unsigned long>(Fnv1a(reinterpret_cast<const unsigned char*>(g_golden_outputs),
                                          sizeof g_golden_outputs)));
  tensor_arena[0] = 1;
  printf("arena %08lx %lu\n", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(tensor_arena)),
         static_cast<unsigned long>(sizeof tensor_arena));
  // the camera path (model_input.h) on two 12x12 gray8 frames (no resize) holding every value
  printf("pixels");
  static uint8_t frame[144];
  static int8_t input[144];
  for (int k = 0; k < 2; ++k) {
    for (int i = 0; i < 144; ++i) frame[i] = static_cast<uint8_t>(k * 112 + i);
    const mn_frame f = {frame, 12, 12, 0, MN_PIXEL_GRAY8};
    if (model_input_from_frame(&f, input) != 0) return 2;
    for (int i = 0; i < 144; ++i) printf(" %d", input[i]);
  }
  printf("\n");
  return 0;
}
"""

COMMON_FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off"]


def _fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def _compile_check_program(project: Path, target: str, work: Path) -> Path:
    """The project's C arrays and board support, plus CHECK_MAIN instead of the TFLM main.cc,
    compiled and linked exactly as the generated CMake project does."""
    t = get_target(target)
    board = project / "firmware" / "boards" / t.board
    cpu = list(t.cpu_flags)
    inc = [f"-I{project / 'src'}", f"-I{project / 'firmware' / 'common'}", f"-I{project / 'firmware' / 'preprocess'}"]
    work.mkdir(parents=True, exist_ok=True)
    (work / "check_main.cc").write_text(CHECK_MAIN)
    objects = []
    c_sources = (sorted((project / "firmware" / "common").glob("*.c")) + sorted(board.glob("*.c"))
                 + [project / "src" / "model_input.c", project / "firmware" / "preprocess" / "mn_preprocess.c"])
    cxx_sources = [project / "src" / "model_data.cc", project / "src" / "golden_data.cc", work / "check_main.cc"]
    for src in c_sources + cxx_sources:
        obj = work / (src.name + ".o")
        if src.suffix == ".c":
            cmd = ["arm-none-eabi-gcc", "-std=c11", *cpu, *COMMON_FLAGS, *inc, "-c", str(src), "-o", str(obj)]
        else:
            cmd = ["arm-none-eabi-g++", "-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
                   *cpu, *COMMON_FLAGS, *inc, "-c", str(src), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
        objects.append(str(obj))
    elf = work / "check.elf"
    cmd = ["arm-none-eabi-g++", *cpu, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
           "-T", str(board / "linker.ld"), *objects, "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return elf


def _symbol(elf: Path, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"{name} not in {elf}")


def _expected_pixels(project: Path) -> list[int]:
    from mncompile.validate.layers import quantize_array

    graph = verified(project / "model" / "tiny_int8_planned.tflite").graph
    prep = read_info(TINY).preprocessing
    pixels = np.concatenate([np.arange(144), 112 + np.arange(144)]).astype(np.uint8).reshape(2, 12, 12, 1)
    return quantize_array(prep.apply(pixels), graph.tensors[graph.inputs[0]].quant, "int8").reshape(-1).tolist()


@needs_arm_gcc
@pytest.mark.parametrize("target", COMPILE_TARGETS)
def test_arrays_and_board_support_compile_with_werror_and_hold_the_right_bytes(tiny_projects, target, tmp_path):
    project = tiny_projects[target]
    elf = _compile_check_program(project, target, tmp_path / "build")
    model = (project / "model" / "tiny_int8_planned.tflite").read_bytes()
    model_at = _symbol(elf, "g_model_data")
    assert model_at % 16 == 0
    sections = subprocess.run(["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True, text=True,
                              check=True).stdout
    assert re.search(r"^\s*\d+ \.model\s", sections, re.M), sections  # the flash-resident section exists
    t = get_target(target)
    if t.qemu_machine is None:  # a real board: check the memory map instead of running
        assert 0x08000000 <= model_at < 0x08000000 + 2 * 1024 * 1024  # STM32H743 flash
        arena_at = _symbol(elf, "_ZL12tensor_arena")
        assert 0x24000000 <= arena_at < 0x24000000 + 512 * 1024  # AXI SRAM
        return
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed")
    from mncompile.run.qemu import run_qemu

    result = run_qemu(elf, t.qemu_machine, timeout=60)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    labels = [line.split(" ", 2)[2] if line.count(" ") >= 2 else "" for line in lines if line.startswith("label ")]
    assert labels == [name.encode("utf-8").hex() for name in read_info(TINY).class_names]
    size, digest, address = next(line for line in lines if line.startswith("model ")).split()[1:]
    assert int(size) == len(model) and int(digest, 16) == _fnv1a(model) and int(address, 16) == model_at
    golden = (project / "src" / "golden_data.cc").read_text()
    doc = json.loads((project / "mncompile.json").read_text())
    outputs = np.array(doc["golden"]["expected_outputs"], np.int8)
    g_in, g_out = next(line for line in lines if line.startswith("golden ")).split()[1:]
    assert int(g_out, 16) == _fnv1a(outputs.tobytes())
    inputs_text = re.search(r"g_golden_inputs.*?= \{(.*?)\n\};", golden, re.S).group(1)
    inputs = np.array([int(v) for v in re.findall(r"-?\d+", re.sub(r"//.*", "", inputs_text))], np.int8)
    assert int(g_in, 16) == _fnv1a(inputs.tobytes())
    arena_at, arena_size = next(line for line in lines if line.startswith("arena ")).split()[1:]
    assert int(arena_at, 16) % 16 == 0 and int(arena_size) == doc["arena"]["reserved_bytes"]["reference"]
    pixels = [int(v) for v in next(line for line in lines if line.startswith("pixels")).split()[1:]]
    assert pixels == _expected_pixels(project)  # the camera path on the device == mncompile's quantization


# ---------------------------------------------------------------------------------------------
# Errors: typed, before any work, nothing half-written


def test_existing_output_is_refused_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "p"
    emit(TINY, "cortex-m4", out)
    with pytest.raises(OutputExistsError):
        emit(TINY, "cortex-m4", out)
    (out / "stale.txt").write_text("from an older run")
    emit(TINY, "cortex-m7", out, force=True)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "mncompile.json").read_text())["options"]["target"] == "cortex-m7"
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no temporary folders left


def test_force_never_deletes_a_folder_mncompile_did_not_write(tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(InvalidOptionError, match="not written by mncompile"):
        emit(TINY, "cortex-m7", precious, force=True)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import mncompile.emit.project as project

    calls = {"n": 0}
    real = Path.write_bytes

    def failing(self, data):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, data)

    monkeypatch.setattr(project.Path, "write_bytes", failing)
    with pytest.raises(KeyboardInterrupt):
        emit(TINY, "cortex-m7", tmp_path / "p")
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_are_typed_errors(tmp_path, trained_digits):
    with pytest.raises(ModelError, match="emit takes an int8 .tflite"):
        emit(trained_digits["path"], "cortex-m7", tmp_path / "a")
    with pytest.raises(InvalidOptionError, match="unknown target"):
        emit(TINY, "cortex-a53", tmp_path / "b")
    with pytest.raises(InvalidOptionError, match="does not exist"):
        emit(TINY, "cortex-m7", tmp_path / "missing" / "c")
    with pytest.raises(InvalidOptionError, match="--golden"):
        emit(TINY, "cortex-m7", tmp_path / "d", golden=0)
    with pytest.raises(BudgetError):
        emit(TINY, "cortex-m7", tmp_path / "e", budget="4KB")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_emit_exit_codes_and_json(tmp_path):
    out = tmp_path / "p"
    proc = run_cli("emit", str(TINY), "--target", "cortex-m33", "-o", str(out), "--golden", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["golden"]["count"] == 2 and doc["board"] == "mps2-an505"
    again = run_cli("emit", str(TINY), "--target", "cortex-m33", "-o", str(out))
    assert again.returncode == 5 and "--force" in again.stderr
    budget = run_cli("emit", str(TINY), "--target", "cortex-m33", "-o", str(tmp_path / "q"), "--budget", "4KB")
    assert budget.returncode == 8 and not (tmp_path / "q").exists()
    text = run_cli("emit", str(TINY), "--target", "stm32h743", "-o", str(tmp_path / "r"))
    assert text.returncode == 0 and "nucleo-h743zi" in text.stdout and "tensor arena" in text.stdout
