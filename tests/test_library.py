"""`emit --layout library`: the model as a static library with one header, linked into applications.

The independent reference is the TFLM host interpreter (`run_tflm`): the example application
of the library (extras/cmake-app, built with CMake and the host's gcc) runs seeded random inputs
from a file and its raw outputs must equal TFLM's (array_equal). The same application built with
arm-none-eabi-gcc for cortex-m4, with the repository's mps2-an386 startup code standing in for
the user's platform, runs on QEMU: its self-test reproduces the golden vectors (the TFLM host
interpreter's outputs, from raw camera frames) bit for bit. Without a platform it must still link
against newlib's stubs with the static arena left out. The same host comparison runs for a model
with float32 edges (MCUNet-shaped) and a tensor-input model (keyword spotting), and the Arduino
example sketch compiles as C++ and runs against a stub Arduino core.

The API's contract, through ctypes on a host build of src/: status codes for a missing, small or
misaligned arena and for calls before init, the labels, the camera path against the host's
preprocessing, a self-test that fails when a golden output is corrupted, --golden 0. And the
options: an unknown layout, --golden 0 without the library, --backend tflm with it.
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
from conftest import REPO, run_cli, verified

from mncompile.emit.library import library_network
from mncompile.errors import InvalidOptionError

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
FIRMWARE = REPO / "firmware"

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("cmake") is None,
                               reason="host gcc and cmake are needed")
needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None,
                                   reason="arm-none-eabi-gcc and cmake are needed (make setup installs them)")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm is not installed")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _emit(model, out: Path, *, target: str = "cortex-m4", golden: int = 4, backend: str = "aot",
          profile: bool = False, **kwargs) -> Path:
    """What `mncompile emit --layout library` does."""
    from mncompile.pipeline import emit

    return emit(model, target, out, backend=backend, golden=golden, profile=profile, layout="library", **kwargs).out


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """The tiny model's library with 4 golden vectors and with none (cortex-m4), emitted once."""
    root = tmp_path_factory.mktemp("library")
    return {"golden": _emit(TINY, root / "golden"), "none": _emit(TINY, root / "none", golden=0)}


def _cmake(source: Path, build: Path, *args: str) -> None:
    for cmd in (["cmake", "-S", str(source), "-B", str(build), "-DMNCOMPILE_MODEL_WERROR=ON", *args],
                ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "warning" not in proc.stdout.lower() + proc.stderr.lower(), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def host_example(libraries, tmp_path_factory) -> Path:
    """extras/cmake-app linked with the library by CMake and the host's compiler."""
    if shutil.which("gcc") is None or shutil.which("cmake") is None:
        pytest.skip("host gcc and cmake are needed")
    build = tmp_path_factory.mktemp("host-example")
    _cmake(libraries["golden"] / "extras" / "cmake-app", build, "-DCMAKE_BUILD_TYPE=Release")
    return build / "example"


@pytest.fixture(scope="module")
def none_so(libraries, tmp_path_factory) -> ctypes.CDLL:
    """The --golden 0 library's src/ as a host shared library, built once (its state is shared: the
    tests that use it initialise it themselves)."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    return _shared_library(libraries["none"], tmp_path_factory.mktemp("none-so") / "none.so")


def _shared_library(project: Path, out: Path, *defines: str) -> ctypes.CDLL:
    """src/*.c as a host shared library (gcc -pedantic, every warning an error)."""
    sources = sorted(str(p) for p in (project / "src").glob("*.c"))
    cmd = ["gcc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Wconversion", "-Werror", "-pedantic", "-fPIC", "-shared",
           f"-I{project / 'src'}", *defines, *sources, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    so = ctypes.CDLL(str(out))
    so.mncompile_model_input.restype = ctypes.c_void_p
    so.mncompile_model_output.restype = ctypes.c_void_p
    so.mncompile_model_label.restype = ctypes.c_char_p
    so.mncompile_model_arena_bytes.restype = ctypes.c_size_t
    so.mncompile_model_init_with_arena.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    so.mncompile_model_preprocess.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return so


# ---------------------------------------------------------------------------------------------
# the tree


def test_library_tree_manifest_and_determinism(libraries, tmp_path):
    out = libraries["golden"]
    files = _tree(out)
    for required in ("CMakeLists.txt", "README.md", "mncompile.json", "include/mncompile_model.h",
                     "src/mncompile_model.h", "src/mncompile_model.c", "src/mncompile_model_net.c",
                     "src/mncompile_model_camera.c", "src/mncompile_model_golden.c", "src/mn_kernels.h",
                     "src/mn_preprocess.c", "library.properties", "examples/Classify/Classify.ino",
                     "zephyr/module.yml", "zephyr/CMakeLists.txt", "zephyr/Kconfig", "extras/cmake-app/main.c",
                     "extras/cmake-app/CMakeLists.txt", "cmake/arm-none-eabi.cmake"):
        assert required in files, required
    # no firmware: no golden-vector main, no board support, no TFLM; Arduino's src/ is flat
    assert not any(f.startswith(("firmware/", "src/main")) or f.endswith(".cc") for f in files)
    assert not any(f.count("/") > 1 for f in files if f.startswith("src/"))
    assert [f for f in files if f.startswith("include/")] == ["include/mncompile_model.h"]
    sources = sorted(f for f in files if f.startswith("src/") and f.endswith(".c"))
    cmake, zephyr = (out / "CMakeLists.txt").read_text(), (out / "zephyr/CMakeLists.txt").read_text()
    assert re.findall(r"^  (src/\S+\.c)$", cmake, re.M) == sources
    assert [f"src/{s}" for s in re.findall(r'/src/(\S+\.c)"', zephyr)] == sources
    assert "add_library(mncompile::model ALIAS mncompile_model)" in cmake and "zephyr_library_named" in zephyr
    props = dict(line.split("=", 1) for line in (out / "library.properties").read_text().splitlines())
    assert props["includes"] == "mncompile_model.h" and props["dot_a_linkage"] == "true"
    assert "build:\n  cmake: zephyr\n  kconfig: zephyr/Kconfig" in (out / "zephyr/module.yml").read_text()
    doc = json.loads(files["mncompile.json"])
    assert doc["options"]["layout"] == "library" and doc["options"]["backend"] == "aot"
    assert doc["library"]["sources"] == sources and doc["golden"]["count"] == 4
    assert set(doc["files"]) == set(files) - {"mncompile.json"}
    none = json.loads((libraries["none"] / "mncompile.json").read_text())
    assert none["golden"]["count"] == 0 and none["options"]["golden"] == 0
    assert "src/mncompile_model_camera.c" in _tree(libraries["none"])  # the camera path without vectors
    again = _emit(TINY, tmp_path / "again", golden=0)
    assert _tree(again) == _tree(libraries["none"])  # deterministic, no paths or times inside


def test_generated_network_is_rewritten_or_refused():
    from mncompile.aot.codegen import generate

    program = generate(verified(TINY))
    c, h = library_network(program.model_c, program.model_h)
    assert "static uint8_t *arena;" in c and ".tensor_arena" not in c.split("#define MN_T")[1]
    assert re.search(r"\bmodel_(invoke|input|output)\b", c + h) is None
    assert "int mncompile_net_invoke(const int8_t *in, int8_t *out)" in c and '#include "mncompile_model_net.h"' in c
    with pytest.raises(AssertionError, match="arena declaration"):
        library_network(program.model_c.replace("static uint8_t arena[", "static uint8_t arena2["), program.model_h)


# ---------------------------------------------------------------------------------------------
# applications linking the library


@needs_gcc
def test_host_example_matches_the_tflm_host_interpreter(host_example, tmp_path):
    from mncompile.validate.emulate import Job, run_tflm

    model = verified(TINY)
    shape = model.graph.tensors[model.graph.inputs[0]].shape
    x = np.random.default_rng(17).integers(-128, 128, (6, *shape[1:])).astype(np.int8)
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    proc = subprocess.run([str(host_example), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "ran 6 inputs" in proc.stdout, proc.stdout + proc.stderr
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8).reshape(6, -1)
    want = run_tflm([Job(model, (x,))])[0]["output_0"].reshape(6, -1)
    np.testing.assert_array_equal(got, want)
    selftest = subprocess.run([str(host_example)], capture_output=True, text=True, timeout=60)
    assert selftest.returncode == 0 and "selftest: 4/4 PASS" in selftest.stdout, selftest.stdout


@needs_gcc
@pytest.mark.parametrize("name", ["mcunet", "keyword_spotting"])
def test_float_edges_and_tensor_inputs_match_the_tflm_host_interpreter(name, tmp_path):
    """The library's other shapes: float32 in and out through the model's QUANTIZE/DEQUANTIZE with a
    float camera table (an MCUNet-shaped model), and a (1, 1960) int8 tensor without a camera path
    (a keyword-spotting model). Host example vs TFLM, float outputs compared as bit patterns; the
    self-test passes."""
    from corpus_models import keyword_spotting, mcunet

    from mncompile.validate.emulate import Job, run_tflm

    path = tmp_path / f"{name}.tflite"
    path.write_bytes(mcunet(resolution=32) if name == "mcunet" else keyword_spotting())
    out = _emit(path, tmp_path / "lib", golden=2)
    assert ("src/mncompile_model_camera.c" in _tree(out)) == (name == "mcunet")
    _cmake(out / "extras" / "cmake-app", tmp_path / "build")
    model = verified(path)
    tin = model.graph.tensors[model.graph.inputs[0]]
    rng = np.random.default_rng(23)
    if tin.dtype == "FLOAT32":
        x = rng.uniform(-1.2, 1.2, (3, *tin.shape[1:])).astype(np.float32)
    else:
        x = rng.integers(-128, 128, (3, *tin.shape[1:])).astype(np.int8)
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    example = tmp_path / "build" / "example"
    proc = subprocess.run([str(example), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "ran 3 inputs" in proc.stdout, proc.stdout + proc.stderr
    want = run_tflm([Job(model, (x,))])[0]["output_0"].reshape(3, -1)
    bits = np.uint32 if want.dtype == np.float32 else np.int8
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), bits).reshape(3, -1)
    np.testing.assert_array_equal(got, want.view(bits))
    selftest = subprocess.run([str(example)], capture_output=True, text=True, timeout=60)
    assert selftest.returncode == 0 and "selftest: 2/2 PASS" in selftest.stdout, selftest.stdout


@needs_arm_gcc
@needs_qemu
def test_cortex_m4_example_passes_its_selftest_on_qemu(libraries, tmp_path):
    """The library built with the application's toolchain (cortex-m4, DSP kernels), the repository's
    mps2-an386 startup code and linker script as the user's platform."""
    from mncompile.run.qemu import run_qemu

    out = libraries["golden"]
    board = FIRMWARE / "boards" / "mps2-an386"
    platform = tmp_path / "platform.cmake"
    platform.write_text(f'file(GLOB platform_sources "{FIRMWARE}/common/*.c" "{board}/*.c")\n'
                        "target_sources(example PRIVATE ${platform_sources})\n"
                        f'target_include_directories(example PRIVATE "{FIRMWARE}/common" "{board}")\n'
                        f'target_link_options(example PRIVATE -T "{board}/linker.ld" -nostartfiles '
                        "--specs=nano.specs -Wl,--gc-sections)\n")
    build = tmp_path / "arm"
    _cmake(out / "extras" / "cmake-app", build, f"-DCMAKE_TOOLCHAIN_FILE={out / 'cmake' / 'arm-none-eabi.cmake'}",
           f"-DMNCOMPILE_EXAMPLE_PLATFORM={platform}")
    assert "-mcpu=cortex-m4" in (build / "CMakeCache.txt").read_text()
    result = run_qemu(build / "example", "mps2-an386", timeout=120)
    assert result.exit_code == 0, result.output
    assert "selftest: 4/4 PASS" in result.output and "top-1: class" in result.output, result.output


@needs_arm_gcc
def test_cortex_m4_example_links_without_a_platform_and_without_the_static_arena(libraries, tmp_path):
    out = libraries["none"]
    build = tmp_path / "arm"
    _cmake(out / "extras" / "cmake-app", build, f"-DCMAKE_TOOLCHAIN_FILE={out / 'cmake' / 'arm-none-eabi.cmake'}",
           "-DMNCOMPILE_MODEL_STATIC_ARENA=OFF")
    symbols = subprocess.run(["arm-none-eabi-nm", str(build / "example")], capture_output=True, text=True).stdout
    assert "mncompile_model_invoke" in symbols and "mncompile_model_static_arena" not in symbols
    assert "mncompile_net_invoke" in symbols


ARDUINO_STUB = """#pragma once
#include <cstdint>
#include <cstdio>
struct FakeSerial {
    void begin(long) {}
    explicit operator bool() const { return true; }
    void print(const char *s) { std::printf("%s", s != nullptr ? s : "(null)"); }
    void print(int v) { std::printf("%d", v); }
    void print(unsigned long v) { std::printf("%lu", v); }
    template <typename T> void println(T v) { print(v); std::printf("\\n"); }
};
static FakeSerial Serial __attribute__((unused));
inline unsigned long micros() { return 0; }
inline void delay(unsigned long) {}
"""


@needs_gcc
def test_arduino_sketch_compiles_as_cpp_and_runs_against_a_stub_core(libraries, tmp_path):
    """examples/Classify/Classify.ino as Arduino builds it (C++, the library's src/ on the include
    path), against a stub of Arduino.h that prints with printf: setup() and one loop()."""
    if shutil.which("g++") is None:
        pytest.skip("host g++ is not installed")
    out = libraries["golden"]
    (tmp_path / "Arduino.h").write_text(ARDUINO_STUB)
    (tmp_path / "main.cpp").write_text('#include "Arduino.h"\nvoid setup();\nvoid loop();\n'
                                       "int main() { setup(); loop(); return 0; }\n")
    objects = []
    for source in sorted((out / "src").glob("*.c")):
        obj = tmp_path / f"{source.stem}.o"
        subprocess.run(["gcc", "-std=c11", "-O1", "-c", f"-I{out / 'src'}", str(source), "-o", str(obj)], check=True)
        objects.append(str(obj))
    exe = tmp_path / "sketch"
    proc = subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}", f"-I{out / 'src'}",
                           "-include", "Arduino.h", "-x", "c++", str(out / "examples" / "Classify" / "Classify.ino"),
                           "-x", "none", str(tmp_path / "main.cpp"), *objects, "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "selftest: 4/4 PASS" in run.stdout and "class " in run.stdout, run.stdout


# ---------------------------------------------------------------------------------------------
# the API's contract


@needs_gcc
def test_api_status_codes_labels_and_arena_checks(libraries, none_so, tmp_path):
    out, so = libraries["none"], none_so
    header = (out / "src" / "mncompile_model.h").read_text()
    codes = {m[0]: int(m[1]) for m in re.findall(r"#define (MNCOMPILE_MODEL_(?:OK|ERR_\w+)) \(?(-?\d+)\)?", header)}
    arena_bytes = int(re.search(r"#define MNCOMPILE_MODEL_ARENA_BYTES (\d+)", header).group(1))
    assert so.mncompile_model_arena_bytes() == arena_bytes == json.loads(
        (out / "mncompile.json").read_text())["library"]["arena_bytes"]
    # before init
    assert so.mncompile_model_invoke() == codes["MNCOMPILE_MODEL_ERR_NOT_INITIALIZED"]
    assert so.mncompile_model_input() is None and so.mncompile_model_top1() < 0
    # the caller's arena: NULL, one byte short, misaligned
    buf = ctypes.create_string_buffer(arena_bytes + 64)
    base = (ctypes.addressof(buf) + 15) // 16 * 16
    assert so.mncompile_model_init_with_arena(None, arena_bytes) == codes["MNCOMPILE_MODEL_ERR_ARGUMENT"]
    assert so.mncompile_model_init_with_arena(base, arena_bytes - 1) == codes["MNCOMPILE_MODEL_ERR_ARENA_TOO_SMALL"]
    assert so.mncompile_model_init_with_arena(base + 4, arena_bytes) == codes["MNCOMPILE_MODEL_ERR_ARENA_ALIGNMENT"]
    assert so.mncompile_model_invoke() == codes["MNCOMPILE_MODEL_ERR_NOT_INITIALIZED"]  # nothing was set
    assert so.mncompile_model_init_with_arena(base, arena_bytes) == codes["MNCOMPILE_MODEL_OK"]
    assert so.mncompile_model_input() == base + json.loads((out / "mncompile.json").read_text())["aot"]["input"][
        "offset"]  # the arena's own input tensor, inside the caller's buffer
    assert so.mncompile_model_invoke() == 0 and 0 <= so.mncompile_model_top1() < 4
    # labels: the manifest's, bytes as given (quotes and all); NULL outside the range
    classes = json.loads((out / "mncompile.json").read_text())["model"]["classes"]
    assert so.mncompile_model_label_count() == len(classes) == 4
    assert [so.mncompile_model_label(k).decode() for k in range(4)] == classes
    assert so.mncompile_model_label(-1) is None and so.mncompile_model_label(4) is None
    assert so.mncompile_model_selftest() == codes["MNCOMPILE_MODEL_ERR_NO_GOLDEN"]
    assert so.mncompile_model_init() == 0  # the static arena, in this build
    static = _shared_library(out, tmp_path / "nostatic.so", "-DMNCOMPILE_MODEL_STATIC_ARENA=0")
    assert static.mncompile_model_init() == codes["MNCOMPILE_MODEL_ERR_NO_STATIC_ARENA"]


@needs_gcc
def test_camera_path_matches_the_hosts_preprocessing(none_so):
    """mncompile_model_preprocess() on two 12x12 gray8 frames holding every pixel value == the
    host's preprocessing + quantization; a frame of width 0 is MNCOMPILE_MODEL_ERR_FRAME."""
    from mncompile.model.info import read_info
    from mncompile.validate.layers import quantize_array

    so = none_so

    class Frame(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("width", ctypes.c_int32), ("height", ctypes.c_int32),
                    ("stride", ctypes.c_int32), ("format", ctypes.c_int)]

    pixels = np.concatenate([np.arange(144), 112 + np.arange(144)]).astype(np.uint8).reshape(2, 12, 12, 1)
    got = np.zeros((2, 144), np.int8)
    for k in range(2):
        frame = Frame(pixels[k].ctypes.data, 12, 12, 0, 3)  # MNCOMPILE_MODEL_PIXEL_GRAY8
        assert so.mncompile_model_preprocess(ctypes.addressof(frame), got[k].ctypes.data) == 0
    graph = verified(TINY).graph
    want = quantize_array(read_info(TINY).preprocessing.apply(pixels), graph.tensors[graph.inputs[0]].quant, "int8")
    np.testing.assert_array_equal(got, want.reshape(2, -1))
    bad = Frame(pixels[0].ctypes.data, 0, 12, 0, 3)
    assert so.mncompile_model_preprocess(ctypes.addressof(bad), got[0].ctypes.data) == -7


@needs_gcc
def test_selftest_passes_and_catches_a_corrupted_golden_output(libraries, tmp_path):
    project = tmp_path / "copy"
    shutil.copytree(libraries["golden"], project)
    so = _shared_library(project, tmp_path / "good.so")
    assert so.mncompile_model_init() == 0 and so.mncompile_model_selftest() == 0
    golden = project / "src" / "mncompile_model_golden.c"
    text = golden.read_text()
    body = re.search(r"golden_outputs\[4\]\[4\] = \{\n    \{ /\* vector 0 \*/\n    (-?\d+)", text)
    value = int(body.group(1))
    golden.write_text(text[:body.start(1)] + str(value - 1 if value > -128 else value + 1) + text[body.end(1):])
    bad = _shared_library(project, tmp_path / "bad.so")
    assert bad.mncompile_model_init() == 0 and bad.mncompile_model_selftest() == 1


# ---------------------------------------------------------------------------------------------
# options


def test_layout_options_are_checked_before_any_work(tmp_path):
    from mncompile.options import resolve
    from mncompile.pipeline import emit

    with pytest.raises(InvalidOptionError, match="unknown layout 'libary'"):
        resolve("cortex-m7", backend="aot", layout="libary")
    with pytest.raises(InvalidOptionError, match="allowed only with --layout library"):
        emit(TINY, "cortex-m7", tmp_path / "x", golden=0, backend="aot")
    with pytest.raises(InvalidOptionError, match="built on the AOT backend"):
        _emit(TINY, tmp_path / "x", backend="tflm")
    with pytest.raises(InvalidOptionError, match="--golden must be between 0 and"):
        _emit(TINY, tmp_path / "x", golden=-1)
    with pytest.raises(InvalidOptionError, match="--golden 0 makes no golden vectors"):
        _emit(TINY, tmp_path / "x", golden=0, dataset="digits")
    with pytest.raises(InvalidOptionError, match="a library has no board"):
        _emit(TINY, tmp_path / "x", profile=True)
    assert not (tmp_path / "x").exists()
    for args, message in ((("--layout", "libary"), "unknown layout"),
                          (("--golden", "0"), "allowed only with --layout library"),
                          (("--layout", "library", "--backend", "tflm"), "built on the AOT backend")):
        proc = run_cli("emit", str(TINY), "--target", "cortex-m7", "-o", str(tmp_path / "y"), *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    proc = run_cli("emit", str(TINY), "--target", "cortex-m7", "-o", str(tmp_path / "z"), "--layout", "library",
                   "--golden", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["layout"] == "library" and doc["backend"] == "aot" and doc["golden"]["count"] == 0
    assert doc["library"]["header"] == "include/mncompile_model.h"
