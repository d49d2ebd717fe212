"""`emit` for Arm Ethos-U targets: the TFLM project's NPU variant.

The firmware carries Vela's model; its resolver registers TFLM's ethos-u kernel (AddEthosU); main()
initializes Arm's Ethos-U core driver before the interpreter; the board support is the Corstone-300's;
cmake/ethosu.cmake needs the driver (ETHOSU_DRIVER_ROOT). The golden vectors stay the CPU reference
numerics: the TFLM host interpreter's outputs for the int8 model before Vela.

The full firmware build needs TFLM and the Ethos-U driver and is not part of CI (nor is a run: QEMU
has no Ethos-U model, Arm's FVP is a separate download). Here the project's own sources (src/,
firmware/) compile with arm-none-eabi-gcc -Wall -Wextra -Werror against minimal stub headers for
the TFLM and ethosu_driver.h APIs written by the test, and link against trivial stub definitions so
that the memory map (model, arena, NPU fast memory, the NPU's interrupt vector) can be checked.
cmake/ethosu.cmake is configured against a fake TFLM tree and a fake driver (no compilation).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, verified

from mncompile.errors import InvalidOptionError
from mncompile.graph.support import tflm_resolver_methods
from mncompile.npu import ETHOSU_OP, VelaOptions, compile_for_npu, tflm_arena
from mncompile.pipeline import emit
from mncompile.plan import ARENA_MARGIN_BYTES
from mncompile.targets import get_target

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
TARGETS = ("ethos-u55-128", "ethos-u65-256")
BOARDS = {"ethos-u55-128": "corstone-300-ethos-u55", "ethos-u65-256": "corstone-300-ethos-u65"}
FVP = {"ethos-u55-128": "FVP_Corstone_SSE-300_Ethos-U55", "ethos-u65-256": "FVP_Corstone_SSE-300_Ethos-U65"}
ETHOSU_CMAKE = REPO / "templates" / "tflm" / "npu" / "cmake" / "ethosu.cmake"
NPU_IRQ = 56

needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                   reason="arm-none-eabi-gcc is not installed (make setup installs it)")
needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ninja") is None
                                 or shutil.which("arm-none-eabi-gcc") is None,
                                 reason="cmake, ninja and arm-none-eabi-gcc are needed to configure the project")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _model_array(project: Path) -> bytes:
    body = (project / "src" / "model_data.cc").read_text()
    array = re.search(r"g_model_data\[MNCOMPILE_MODEL_BYTES\][^=]*= \{(.*?)\};", body, re.S).group(1)
    return bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", array))


@pytest.fixture(scope="module")
def vela_runs(tmp_path_factory) -> dict:
    """Vela on the tiny model, run independently of emit, once per target."""
    root = tmp_path_factory.mktemp("vela")
    return {t: compile_for_npu(verified(TINY), get_target(t), root / t) for t in TARGETS}


def _emit_with_vela_result(model: Path, target: str, out: Path, npu, golden: int = 4):
    """The build flow's way: Vela already ran (`npu`), the project reuses its result."""
    from mncompile.emit import render_project
    from mncompile.model.loader import load_model
    from mncompile.options import resolve
    from mncompile.pipeline import project_inputs
    from mncompile.plan import plan_model

    loaded = load_model(model)
    inputs = project_inputs(loaded, resolve(target, golden=golden), plan_model(loaded.verified), dataset=None,
                            npu=npu)
    return render_project(inputs, out)


@pytest.fixture(scope="module")
def tiny_npu_projects(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("npu-emit")
    return {t: emit(TINY, t, root / t).out for t in TARGETS}


@pytest.fixture(scope="module")
def vww_npu_projects(shared_data, tmp_path_factory) -> dict[str, tuple[Path, object]]:
    model = shared_data / "vww_96_int8.tflite"
    if not model.is_file():
        pytest.skip(f"{model} is absent")
    root = tmp_path_factory.mktemp("npu-vww")
    out = {}
    for t in TARGETS:
        npu = compile_for_npu(verified(model), get_target(t), root / f"vela-{t}")
        out[t] = (_emit_with_vela_result(model, t, root / t, npu, golden=2).out, npu)
    return out


# ---------------------------------------------------------------------------------------------
# What Vela makes of the tiny model


@pytest.mark.parametrize("target", TARGETS)
def test_vela_puts_every_operator_of_the_tiny_model_on_the_npu(vela_runs, target):
    npu = vela_runs[target]
    assert npu.all_on_npu and npu.input_ops == npu.npu_input_ops == 6
    graph = verified(npu.model).graph
    assert [op.kind for op in graph.ops] == [ETHOSU_OP]
    # Dedicated_Sram (the U65 target): a scratch_fast tensor of its own, the NPU cache
    inputs = graph.ops[0].inputs
    assert (inputs[2] != inputs[3]) == (target == "ethos-u65-256")


# ---------------------------------------------------------------------------------------------
# The tree


@pytest.mark.parametrize("target", TARGETS)
def test_npu_project_tree(tiny_npu_projects, vela_runs, target):
    out = tiny_npu_projects[target]
    files = set(_tree(out))
    npu = vela_runs[target]
    for required in ("CMakeLists.txt", "README.md", "mncompile.json", "cmake/arm-none-eabi.cmake",
                     "cmake/tflm.cmake", "cmake/ethosu.cmake", "src/main.cc", "src/model_settings.h",
                     "src/model_data.h", "src/model_data.cc", "src/golden_data.h", "src/golden_data.cc",
                     "src/ethosu_npu.h", "src/ethosu_npu.c", f"vela/{npu.model.name}", f"vela/{npu.summary_csv.name}",
                     "vela/vela.log", "firmware/common/board_corstone300.h",
                     f"firmware/boards/{BOARDS[target]}/linker.ld"):
        assert required in files, required
    assert not any(f.startswith(("model/", "npu/")) for f in files)
    boards = {f.split("/")[2] for f in files if f.startswith("firmware/boards/")}
    assert boards == {BOARDS[target]}
    for rel in files:
        if rel.startswith("firmware/"):
            assert (out / rel).read_bytes() == (REPO / rel).read_bytes(), rel
    assert (out / "cmake/ethosu.cmake").read_bytes() == ETHOSU_CMAKE.read_bytes()
    # Vela's outputs, byte for byte (Vela is deterministic)
    for path in (npu.model, npu.summary_csv, npu.model.parent / "vela.log"):
        assert (out / "vela" / path.name).read_bytes() == path.read_bytes(), path.name
    for rel in ("src/main.cc", "src/ethosu_npu.c", "src/ethosu_npu.h", "src/model_settings.h", "CMakeLists.txt"):
        (out / rel).read_text(encoding="ascii")


@pytest.mark.parametrize("target", TARGETS)
def test_model_array_is_velas_model(tiny_npu_projects, vela_runs, target):
    out = tiny_npu_projects[target]
    vela_model = vela_runs[target].model.read_bytes()
    assert _model_array(out) == vela_model == (out / "vela" / "tiny_int8_vela.tflite").read_bytes()
    body = (out / "src/model_data.cc").read_text()
    assert f"#define MNCOMPILE_MODEL_BYTES {len(vela_model)}" in body
    assert re.search(r'alignas\(16\) const unsigned char g_model_data.*section\("\.model"\)', body)
    assert "Vela-optimized" in (out / "src/model_data.h").read_text()


@pytest.mark.parametrize("target", TARGETS)
def test_main_registers_ethos_u_and_starts_the_driver_before_the_interpreter(tiny_npu_projects, target):
    main = (tiny_npu_projects[target] / "src/main.cc").read_text()
    assert re.findall(r"resolver\.(Add\w+)\(\)", main) == ["AddEthosU"]
    assert "MicroMutableOpResolver<1>" in main
    assert '#include "ethosu_npu.h"' in main
    assert main.index("board_init();") < main.index("mncompile_npu_init()") < main.index(
        "tflite::MicroInterpreter interpreter(")
    assert "return 4;" in main
    npu_c = (tiny_npu_projects[target] / "src/ethosu_npu.c").read_text()
    assert "ethosu_init(&npu_driver, (void *)(uintptr_t)NPU_BASE_ADDRESS" in npu_c
    assert "#define NPU_BASE_ADDRESS 0x48102000u" in npu_c and f"#define NPU_IRQ {NPU_IRQ}u" in npu_c
    assert "ethosu_irq_handler(&npu_driver);" in npu_c
    dedicated = target == "ethos-u65-256"
    assert ("section(\".ethosu_fast_memory\")" in npu_c) == dedicated
    assert ("NULL, 0u," in npu_c) == (not dedicated)


@pytest.mark.parametrize("target", TARGETS)
def test_cmake_needs_the_ethos_u_driver(tiny_npu_projects, target):
    cmake = (tiny_npu_projects[target] / "CMakeLists.txt").read_text()
    arch = target.split("-")[1]
    assert f'set(MNCOMPILE_ETHOSU_ARCH "{arch}")' in cmake
    assert cmake.index('include("${CMAKE_CURRENT_SOURCE_DIR}/cmake/tflm.cmake")') < cmake.index(
        'include("${CMAKE_CURRENT_SOURCE_DIR}/cmake/ethosu.cmake")')
    assert "src/ethosu_npu.c" in cmake and "ethosu_core_driver" in cmake
    assert "-DETHOSU_DRIVER_ROOT=" in cmake and "qemu-system-arm" not in cmake and "QEMU has no Ethos-U model" in cmake
    assert f"find_program(MNCOMPILE_FVP NAMES {FVP[target]})" in cmake
    # -Wall -Wextra -Werror for our own sources only: the driver drops inherited warning options
    assert "target_compile_options(firmware PRIVATE -Wall -Wextra -Werror" in cmake
    text = ETHOSU_CMAKE.read_text()
    assert "-Wno-error" in text and "ETHOSU_DRIVER_ROOT is not set" in text


@pytest.mark.parametrize("target", TARGETS)
def test_readme_says_plainly_that_qemu_has_no_ethos_u_model(tiny_npu_projects, target):
    readme = (tiny_npu_projects[target] / "README.md").read_text()
    macs = get_target(target).npu.macs_per_cycle
    assert "QEMU has no Ethos-U model" in readme
    assert "-DTFLM_ROOT=/path/to/tflite-micro -DETHOSU_DRIVER_ROOT=/path/to/ethos-u-core-driver" in readme
    assert re.search(rf"^{FVP[target]} -C ethosu.num_macs={macs} .*-C mps3_board.uart0.out_file=- .*"
                     r"-a build/firmware.elf$", readme, re.M), readme
    assert "-C cpu0.semihosting-enable=1" in readme and "shutdown_on_eot=1" in readme
    assert "CPU-side reference" in readme and "reports a difference as FAIL" in readme
    assert "Vela's estimate" in readme and "qemu-system-arm" not in readme
    assert "### On hardware" in readme and "pyocd" not in readme


@pytest.mark.parametrize("target", TARGETS)
def test_manifest_has_the_npu_section_with_project_paths(tiny_npu_projects, vela_runs, target):
    out = tiny_npu_projects[target]
    text = (out / "mncompile.json").read_text()
    doc = json.loads(text)
    npu = vela_runs[target]
    expected = npu.to_json()
    section = doc["npu"]
    assert section["model"] == f"vela/{npu.model.name}" and section["summary_csv"] == f"vela/{npu.summary_csv.name}"
    assert section["log"] == "vela/vela.log" and section["fvp"] == FVP[target]
    for key in ("target", "npu", "accelerator_config", "system_config", "memory_mode", "vela_version",
                "model_bytes", "sram_bytes", "cycles_total", "cycles_npu", "macs", "ops", "cpu_fallback"):
        assert section[key] == expected[key], key
    assert section["fast_memory_bytes"] == (1792 if target == "ethos-u65-256" else 0)
    assert section["board"] == {"base": "0x48102000", "irq": NPU_IRQ, "secure": True, "privileged": True}
    assert doc["model"]["firmware_sha256"] == hashlib.sha256(npu.model.read_bytes()).hexdigest()
    assert doc["options"]["vela"] == {"system_config": npu.options.system_config,
                                      "memory_mode": npu.options.memory_mode, "optimise": "Performance"}
    predicted = tflm_arena(npu).total
    assert doc["arena"]["predicted_bytes"] == {"reference": predicted, "cmsis-nn": predicted}
    assert doc["arena"]["reserved_bytes"]["reference"] == (predicted + ARENA_MARGIN_BYTES + 15) // 16 * 16
    assert f"kTensorArenaPredicted = {predicted};" in (out / "src/model_settings.h").read_text()
    assert doc["memory"]["fits"] is True and doc["versions"]["ethos-u-vela"] == npu.vela_version
    assert str(out) not in text and "/tmp" not in text  # no paths of this run
    for rel, digest in doc["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest


def test_golden_vectors_are_the_cpu_reference_of_the_int8_model(tiny_npu_projects):
    from mncompile.validate.emulate import emulate

    for target in TARGETS:
        doc = json.loads((tiny_npu_projects[target] / "mncompile.json").read_text())
        golden = (tiny_npu_projects[target] / "src/golden_data.cc").read_text()
        inputs = re.search(r"g_golden_inputs.*?= \{(.*?)\n\};", golden, re.S).group(1)
        x = np.array([int(v) for v in re.findall(r"-?\d+", re.sub(r"//.*", "", inputs))], np.int8).reshape(4, 12, 12, 1)
        assert np.array_equal(emulate(verified(TINY), x, "tflm"), np.array(doc["golden"]["expected_outputs"]))
        assert "before Vela" in doc["golden"]["reference"]


def test_rendering_is_deterministic_and_reuses_a_given_vela_result(tiny_npu_projects, vela_runs, tmp_path):
    for target in TARGETS:
        again = emit(TINY, target, tmp_path / f"again-{target}").out
        assert _tree(again) == _tree(tiny_npu_projects[target])
    # the pipeline's way: Vela already ran, emit reuses its result and gives the same tree
    given = _emit_with_vela_result(TINY, "ethos-u65-256", tmp_path / "given", vela_runs["ethos-u65-256"]).out
    assert _tree(given) == _tree(tiny_npu_projects["ethos-u65-256"])


def test_emit_result_records_the_npu(vela_runs, tmp_path):
    result = _emit_with_vela_result(TINY, "ethos-u55-128", tmp_path / "p", vela_runs["ethos-u55-128"])
    assert result.npu is vela_runs["ethos-u55-128"]
    doc = result.to_json()
    assert doc["npu"]["model"] == "vela/tiny_int8_vela.tflite" and doc["firmware_model_bytes"] == result.npu.model_bytes
    lines = result.npu_lines()
    assert len(lines) == 2 and "Ethos-U55" in lines[0] and "no QEMU model" in lines[1]
    assert result.summary_lines() == lines


# ---------------------------------------------------------------------------------------------
# Errors


def test_aot_backend_on_an_npu_target_is_an_invalid_option(tmp_path):
    with pytest.raises(InvalidOptionError, match="cannot drive the Ethos-U55") as err:
        emit(TINY, "ethos-u55-128", tmp_path / "aot", backend="aot")
    assert "--backend tflm" in err.value.hint
    assert not (tmp_path / "aot").exists()


def test_vela_options_are_checked(tmp_path):
    with pytest.raises(InvalidOptionError, match="no NPU"):
        emit(TINY, "cortex-m55", tmp_path / "a", vela=VelaOptions(optimise="Size"))
    with pytest.raises(InvalidOptionError, match="memory mode"):
        emit(TINY, "ethos-u55-128", tmp_path / "e", vela=VelaOptions(memory_mode="Bogus"))


def test_resolver_of_a_vela_model_with_cpu_operators():
    """Operators Vela leaves on the CPU are registered beside AddEthosU (sorted by kind, like the
    CPU project's); an operator TFLM's resolver does not know is a ModelError."""
    from types import SimpleNamespace

    from mncompile.emit.tflm import npu_ops as _npu_ops
    from mncompile.errors import ModelError

    def graph(*kinds):
        return SimpleNamespace(ops=[SimpleNamespace(kind=k) for k in kinds])

    assert _npu_ops(graph(ETHOSU_OP, "SOFTMAX", ETHOSU_OP, "MEAN")) == [
        {"kind": ETHOSU_OP, "method": "AddEthosU"}, {"kind": "MEAN", "method": "AddMean"},
        {"kind": "SOFTMAX", "method": "AddSoftmax"}]
    with pytest.raises(ModelError, match="CUSTOM:other"):
        _npu_ops(graph(ETHOSU_OP, "CUSTOM:other"))


# ---------------------------------------------------------------------------------------------
# The reference model of the shared data (VWW, 96x96), when present


@pytest.mark.parametrize("target", TARGETS)
def test_vww_project(vww_npu_projects, target):
    out, npu = vww_npu_projects[target]
    assert _model_array(out) == npu.model.read_bytes() == (out / "vela" / npu.model.name).read_bytes()
    main = (out / "src/main.cc").read_text()
    kinds = sorted({op.kind for op in verified(npu.model).graph.ops})
    assert "resolver.AddEthosU()" in main and f"MicroMutableOpResolver<{len(kinds)}>" in main
    assert "QEMU has no Ethos-U model" in (out / "README.md").read_text()
    doc = json.loads((out / "mncompile.json").read_text())
    assert doc["npu"]["model_bytes"] == npu.model_bytes and doc["npu"]["sram_bytes"] == npu.sram_bytes
    assert len(doc["golden"]["expected_outputs"]) == 2


# ---------------------------------------------------------------------------------------------
# The project's own sources compile with -Wall -Wextra -Werror (stub TFLM and driver headers)
#
# The full build needs TFLM and Arm's Ethos-U core driver and is not part of CI: these stubs
# declare just enough of their APIs to type-check src/ (trivial definitions, below, only let the
# check link so the memory map can be read). The real headers come from -DTFLM_ROOT and
# -DETHOSU_DRIVER_ROOT.

STUB_COMMON = r"""
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt8 = 9 } TfLiteType;
typedef union { int8_t* int8; uint8_t* uint8; float* f; } TfLitePtrUnion;
typedef struct { TfLiteType type; TfLitePtrUnion data; size_t bytes; } TfLiteTensor;
"""

STUB_SCHEMA = r"""
#pragma once
#include <stdint.h>
#define TFLITE_SCHEMA_VERSION (3)
namespace tflite {
struct Model { uint32_t version() const; };
const Model* GetModel(const void* buf);
}  // namespace tflite
"""

STUB_INTERPRETER = r"""
#pragma once
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/schema/schema_generated.h"
namespace tflite {
class MicroOpResolver {};
class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, uint8_t* tensor_arena,
                   size_t tensor_arena_size);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
  size_t arena_used_bytes() const;
};
}  // namespace tflite
"""

STUB_DRIVER = r"""
#pragma once
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
struct ethosu_driver { uint64_t fast_memory; size_t fast_memory_size; uint32_t opaque[8]; };
#ifdef STUB_OLD_DRIVER_API
int ethosu_init(struct ethosu_driver *drv, const void *base_address, const void *fast_memory,
                const size_t fast_memory_size, uint32_t secure_enable, uint32_t privilege_enable);
#else
int ethosu_init(struct ethosu_driver *drv, void *const base_address, const void *fast_memory,
                const size_t fast_memory_size, uint32_t secure_enable, uint32_t privilege_enable);
#endif
void ethosu_irq_handler(struct ethosu_driver *drv);
#ifdef __cplusplus
}
#endif
"""

# Trivial definitions, only so that the check links against the board's linker script.
STUB_DEFINITIONS = r"""
#include "ethosu_driver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
namespace tflite {
uint32_t Model::version() const { return 3; }
const Model* GetModel(const void* buf) { return static_cast<const Model*>(buf); }
MicroInterpreter::MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t*, size_t) {}
TfLiteStatus MicroInterpreter::AllocateTensors() { return kTfLiteError; }
TfLiteStatus MicroInterpreter::Invoke() { return kTfLiteError; }
TfLiteTensor* MicroInterpreter::input(size_t) { return nullptr; }
TfLiteTensor* MicroInterpreter::output(size_t) { return nullptr; }
size_t MicroInterpreter::arena_used_bytes() const { return 0; }
}  // namespace tflite
extern "C" int ethosu_init(struct ethosu_driver* drv, void* const, const void*, const size_t, uint32_t,
                           uint32_t) { return drv == nullptr; }
extern "C" void ethosu_irq_handler(struct ethosu_driver* drv) { drv->opaque[0]++; }
"""


def _write_stubs(root: Path) -> None:
    methods = sorted(set(tflm_resolver_methods().values()) | {"AddEthosU"})
    resolver = ["#pragma once", '#include "tensorflow/lite/micro/micro_interpreter.h"', "namespace tflite {",
                "template <unsigned int tOpCount>", "class MicroMutableOpResolver : public MicroOpResolver {",
                " public:", *[f"  TfLiteStatus {m}() {{ return kTfLiteOk; }}" for m in methods], "};",
                "}  // namespace tflite", ""]
    for rel, text in {"tensorflow/lite/c/common.h": STUB_COMMON,
                      "tensorflow/lite/schema/schema_generated.h": STUB_SCHEMA,
                      "tensorflow/lite/micro/micro_interpreter.h": STUB_INTERPRETER,
                      "tensorflow/lite/micro/micro_mutable_op_resolver.h": "\n".join(resolver),
                      "ethosu_driver.h": STUB_DRIVER}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _run(command: list[str]) -> str:
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


def _sections(elf: Path) -> dict[str, tuple[int, int]]:
    out = _run(["arm-none-eabi-readelf", "-SW", str(elf)])
    return {m.group(1): (int(m.group(2), 16), int(m.group(3), 16))
            for m in re.finditer(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]{8})\s+[0-9a-f]+\s+([0-9a-f]+)", out)}


def _symbols(elf: Path) -> dict[str, tuple[int, str]]:
    out = _run(["arm-none-eabi-nm", str(elf)])
    return {p[2]: (int(p[0], 16), p[1]) for p in (line.split() for line in out.splitlines()) if len(p) == 3}


@needs_arm_gcc
@pytest.mark.parametrize("target", TARGETS)
def test_own_sources_compile_with_werror_and_link_to_the_corstone_300_map(tiny_npu_projects, target, tmp_path):
    project = tiny_npu_projects[target]
    stubs = tmp_path / "stubs"
    _write_stubs(stubs)
    (tmp_path / "stub_definitions.cc").write_text(STUB_DEFINITIONS)
    board = project / "firmware" / "boards" / BOARDS[target]
    cpu = ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"]
    assert list(get_target(target).cpu_flags) == cpu
    warnings = ["-Wall", "-Wextra", "-Werror", "-Wconversion"]
    flags = ["-O2", *warnings, "-ffunction-sections", "-fdata-sections", "-ffp-contract=off",
             f"-I{project / 'src'}", f"-I{project / 'firmware' / 'common'}", f"-I{project / 'firmware' / 'preprocess'}",
             "-isystem", str(stubs)]
    c = ["arm-none-eabi-gcc", "-std=c11", *cpu, *flags]
    cxx = ["arm-none-eabi-g++", "-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics", *cpu, *flags]
    own = (sorted((project / "src").glob("*.c")) + sorted((project / "src").glob("*.cc"))
           + sorted((project / "firmware" / "common").glob("*.c")) + sorted(board.glob("*.c"))
           + sorted((project / "firmware" / "preprocess").glob("*.c")))
    assert project / "src" / "ethosu_npu.c" in own and project / "src" / "main.cc" in own
    jobs, objects = [], []
    for src in own:
        obj = tmp_path / f"{src.parent.name}_{src.name}.o"
        jobs.append([*(c if src.suffix == ".c" else cxx), "-c", str(src), "-o", str(obj)])
        objects.append(str(obj))
    # the older driver API (const void *base_address) must type-check too
    jobs.append([*c, "-DSTUB_OLD_DRIVER_API", "-c", str(project / "src" / "ethosu_npu.c"), "-o",
                 str(tmp_path / "old_api.o")])
    definitions = tmp_path / "stub_definitions.o"
    jobs.append([*cxx[:1], "-std=c++17", *cpu, "-O2", "-isystem", str(stubs), "-c",
                 str(tmp_path / "stub_definitions.cc"), "-o", str(definitions)])
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        list(pool.map(_run, jobs))

    elf = tmp_path / "firmware.elf"
    _run(["arm-none-eabi-g++", *cpu, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
          "-T", str(board / "linker.ld"), *objects, str(definitions), "-o", str(elf)])
    secs, syms = _sections(elf), _symbols(elf)
    doc = json.loads((project / "mncompile.json").read_text())
    itcm, dtcm, sram, ddr = (0x10000000, 0x10080000), (0x30000000, 0x30080000), (0x31000000, 0x31200000), (
        0x70000000, 0x72000000)
    assert secs[".isr_vector"][0] == itcm[0]
    model_at, model_size = secs[".model"]
    assert ddr[0] <= model_at and model_at + model_size <= ddr[1]
    assert model_size >= doc["npu"]["model_bytes"]
    arena_at, arena_size = secs[".tensor_arena"]
    assert arena_size == doc["arena"]["reserved_bytes"]["reference"]
    where = sram if target == "ethos-u55-128" else ddr  # Shared_Sram: arena in SRAM; Dedicated_Sram: DDR
    assert where[0] <= arena_at and arena_at + arena_size <= where[1]
    assert syms["__stack_top"][0] == dtcm[1]
    fast = doc["npu"]["fast_memory_bytes"]
    if fast:
        assert secs[".ethosu_fast_memory"] == (sram[0], fast)
    else:
        assert secs.get(".ethosu_fast_memory", (0, 0))[1] == 0
    # the NPU interrupt is the project's handler (a strong definition replacing the board's weak one)
    handler, kind = syms["NPU_IRQHandler"]
    assert kind == "T"
    raw = tmp_path / "vectors.bin"
    _run(["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.isr_vector", str(elf), str(raw)])
    words = raw.read_bytes()
    assert int.from_bytes(words[4 * (16 + NPU_IRQ):4 * (17 + NPU_IRQ)], "little") == handler | 1
    assert len(words) == 4 * (16 + 128)


# ---------------------------------------------------------------------------------------------
# cmake/ethosu.cmake, configured against a fake TFLM tree and a fake driver (nothing compiled)


def _fake_tree(root: Path, files: tuple[str, ...]) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("/* fake */\n")
    return root


FAKE_TFLM = ("tensorflow/lite/micro/micro_interpreter.cc", "tensorflow/lite/micro/kernels/ethosu.cc",
             "tensorflow/lite/micro/kernels/conv.cc", "tensorflow/lite/micro/kernels/ethos_u/ethosu.cc",
             "tensorflow/lite/micro/tools/make/downloads/flatbuffers/include/flatbuffers/flatbuffers.h",
             "tensorflow/lite/micro/tools/make/downloads/flatbuffers/include/flatbuffers/base.h",
             "tensorflow/lite/micro/tools/make/downloads/gemmlowp/fixedpoint/fixedpoint.h",
             "tensorflow/lite/micro/tools/make/downloads/ruy/ruy/profiler/instrumentation.h",
             "tensorflow/lite/micro/tools/make/downloads/cmsis/CMSIS/Core/Include/cmsis_compiler.h")
FAKE_DRIVER = ("include/ethosu_driver.h", "src/ethosu_driver.c", "src/ethosu_pmu.c", "src/ethosu_device_u55_u65.c")


def _configure(project: Path, build: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(["cmake", "-S", str(project), "-B", str(build), "-G", "Ninja", *options],
                          capture_output=True, text=True, timeout=300)


@needs_cmake
def test_cmake_configure_requires_the_driver_and_swaps_in_the_ethos_u_kernel(tiny_npu_projects, tmp_path):
    project = tiny_npu_projects["ethos-u55-128"]
    tflm = _fake_tree(tmp_path / "tflm", FAKE_TFLM)
    missing = _configure(project, tmp_path / "b1", f"-DTFLM_ROOT={tflm}")
    assert missing.returncode != 0
    message = missing.stdout + missing.stderr
    assert "ETHOSU_DRIVER_ROOT is not set" in message and "ethos-u-core-driver" in message, message

    driver = _fake_tree(tmp_path / "driver", FAKE_DRIVER)
    wrong = _configure(project, tmp_path / "b2", f"-DTFLM_ROOT={tflm}", f"-DETHOSU_DRIVER_ROOT={tmp_path}")
    assert wrong.returncode != 0 and "is not an Ethos-U core driver checkout" in wrong.stdout + wrong.stderr

    build = tmp_path / "b3"
    ok = _configure(project, build, f"-DTFLM_ROOT={tflm}", f"-DETHOSU_DRIVER_ROOT={driver}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    ninja = (build / "build.ninja").read_text()
    assert "kernels/ethos_u/ethosu.cc" in ninja
    assert not re.search(r"kernels/ethosu\.cc", ninja)  # the stub is gone
    for name in ("ethosu_driver.c", "ethosu_pmu.c", "ethosu_device_u55_u65.c"):
        assert f"driver/src/{name}" in ninja
    driver_flags = re.search(r"build \S*ethosu_driver\.c\.obj: .*?\n((?:  .*\n)+)", ninja).group(1)
    assert "-DETHOSU55" in driver_flags and "-DETHOSU_ARCH=u55" in driver_flags
    assert "-Werror" not in driver_flags
    main_flags = re.search(r"build \S*main\.cc\.obj: .*?\n((?:  .*\n)+)", ninja).group(1)
    assert "-Werror" in main_flags and f"-isystem {driver}/include" in main_flags
