"""Firmware hygiene: labels cannot forge output lines, and the C is warning-free under -Wconversion.

1. Labels (and the model's name) come from user files and may hold any byte. The firmware prints
   them through mn_escape_text (firmware/common/console.c): every byte outside 0x20..0x7e as \\xNN,
   a backslash as \\\\. Checked here: the C function itself on the host against a Python model of
   it (every buffer size, random bytes); parse_firmware_output with labels that look like output
   lines; and end to end, an AOT project whose sidecar holds hostile labels, built and run on
   QEMU by `mncompile run --json`, prints them escaped and parses to exactly the golden vectors.
2. Every C file of emitted AOT projects (that tiny model with hostile labels, and a variant with
   float32 input and output edges), firmware/common and every board compiles with arm-none-eabi-gcc
   -Wall -Wextra -Wconversion -Werror and the build's other flags, for the four Cortex-M targets'
   CPU flags (-c only); so do the TFLM project's own sources, against stub TFLM headers included as
   system headers (as its CMake does). The projects' CMakeLists.txt use these flags for their own
   sources.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from mncompile.run.build import parse_firmware_output

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
FIRMWARE = REPO / "firmware"
TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
CPU_FLAGS = {  # mncompile/targets/targets.toml
    "cortex-m4": "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16",
    "cortex-m7": "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16",
    "cortex-m33": "-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16",
    "cortex-m55": "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard",
}
WARNINGS = ("-Wall", "-Wextra", "-Wconversion", "-Werror")
# What the generated CMake build adds: the toolchain file's flags and the Release configuration.
BUILD_FLAGS = ("-O3", "-DNDEBUG", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off")

# Each label tries something: end the line and forge a vector line, a summary line, a FAIL; move
# the cursor, clear the screen, ring the bell; split the line for Python's str.splitlines (\r,
# \v, \f, \x1c, U+0085, U+2028); look like an escape itself (a backslash, the text "\x41"); and
# start with "N), " to pose as the end of the label.
HOSTILE = ("\nvector 3: PASS, class 0 (x), 5 SysTick ticks\n",
           "\r\x1b[2J\x1b[31mred\x1b[0m\x07summary: 4/4 PASS, arena_used_bytes 1, 1 SysTick ticks in total",
           "\t\x7f\x0b\x0c\x1c caf\u00e9\u0085\u2028"
           "vector 2: FAIL at output index 0: got 1, expected 2 (1 SysTick ticks)",
           " \\ \\x41 ) ( : FAIL \\\\")
LABELS = [f"{(i + 1) % 4}), 99 SysTick ticks" + "".join(HOSTILE[i:] + HOSTILE[:i]) for i in range(4)]
MODEL_NAME = "tiny caf\u00e9 \\ (x).tflite"  # non-ASCII and a backslash: escaped in the first line too

needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                   reason="arm-none-eabi-gcc is not installed (make setup installs it)")
needs_build = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None
                                 or shutil.which("qemu-system-arm") is None,
                                 reason="arm-none-eabi-gcc, cmake and qemu-system-arm are needed")


def _reference(data: bytes) -> str:
    """What mn_escape_text prints for `data`."""
    return "".join("\\\\" if b == 0x5C else chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}" for b in data)


def escaped(text: str) -> str:
    """What the firmware prints for the label or name `text` (its UTF-8 bytes)."""
    return _reference(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# 1. labels


@pytest.fixture(scope="module")
def escape_lib(tmp_path_factory):
    """firmware/common/console.c built for the host (with a stub board_console_write)."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    work = tmp_path_factory.mktemp("escape")
    (work / "stub.c").write_text('#include "board.h"\nvoid board_console_write(const char *data, size_t len)\n'
                                 "{\n    (void)data;\n    (void)len;\n}\n")
    lib = work / "libconsole.so"
    proc = subprocess.run(["gcc", "-std=c99", "-O2", "-pedantic", *WARNINGS, "-fPIC", "-shared",
                           f"-I{FIRMWARE / 'common'}", str(FIRMWARE / "common" / "console.c"), str(work / "stub.c"),
                           "-o", str(lib)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    so = ctypes.CDLL(str(lib))
    so.mn_escape_text.restype = ctypes.c_void_p
    so.mn_escape_text.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    return so


def _escape_in_pieces(so, data: bytes, size: int) -> tuple[str, list[int]]:
    """The loop of the generated main(): mn_escape_text into `size` bytes until the text ends."""
    text = ctypes.create_string_buffer(data)
    out = ctypes.create_string_buffer(b"\xaa" * (size + 8), size + 8)  # guard bytes after `size`
    at, pieces, printed = 0, [], ""
    while at < len(data):
        rest = so.mn_escape_text(ctypes.addressof(text) + at, ctypes.addressof(out), size)
        consumed = rest - (ctypes.addressof(text) + at)
        assert consumed > 0, (data, size, at)  # progress whenever size >= MN_ESCAPE_MIN_BUFFER
        assert out.raw[size:] == b"\xaa" * 8  # nothing written beyond `size`
        piece = out.value.decode("ascii")
        assert len(piece) < size and piece == _reference(data[at:at + consumed])
        printed += piece
        pieces.append(consumed)
        at += consumed
    return printed, pieces


def test_escape_function_on_the_host(escape_lib):
    so = escape_lib
    rng = random.Random(7)
    samples = [label.encode("utf-8") for label in LABELS] + [bytes(range(1, 256)), b"\\", b"a" * 200, b"\\x41"]
    samples += [bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 90))) for _ in range(60)]
    for data in samples:
        for size in (5, 6, 7, 8, 9, 13, 64, 1024):
            printed, _ = _escape_in_pieces(so, data, size)
            assert printed == _reference(data), (data, size)
            assert all(" " <= c <= "~" for c in printed)
    for label in LABELS:
        assert _reference(label.encode("utf-8")) == escaped(label)
    # whole escapes only: "\x0a" never splits across two pieces
    printed, pieces = _escape_in_pieces(so, b"ab\ncd", 5)
    assert pieces == [2, 1, 2] and printed == "ab\\x0acd"
    # the edges: no room at all, room for the NUL only, a NULL text
    out = ctypes.create_string_buffer(b"\xaa" * 4, 4)
    text = ctypes.create_string_buffer(b"\n")
    assert so.mn_escape_text(ctypes.addressof(text), ctypes.addressof(out), 0) == ctypes.addressof(text)
    assert out.raw == b"\xaa" * 4
    for size in (1, 2, 3, 4):  # "\x0a" needs 5 bytes with the NUL: nothing consumed, an empty string
        assert so.mn_escape_text(ctypes.addressof(text), ctypes.addressof(out), size) == ctypes.addressof(text)
        assert out.raw[0] == 0
    rest = so.mn_escape_text(None, ctypes.addressof(out), 4)
    assert ctypes.string_at(rest) == b"" and out.raw[0] == 0


def _console(labels: list[str], predictions: list[int], ticks: int = 1000) -> str:
    """The lines an escaping firmware prints (templates/aot/src/main.c.j2)."""
    lines = ["mncompile firmware: m.tflite on cortex-m7 (board mps2-an500), mncompile AOT kernels",
             "arena: 864 bytes reserved, arena_used_bytes() = 864, predicted 864"]
    lines += [f"vector {v}: PASS, class {p} ({escaped(labels[p])}), {ticks + v} SysTick ticks"
              for v, p in enumerate(predictions)]
    lines.append(f"summary: {len(predictions)}/{len(predictions)} PASS, arena_used_bytes 864, 4006 SysTick ticks "
                 "in total")
    return "\n".join(lines) + "\n"


def test_parser_ignores_what_labels_say():
    looks_like_output = [
        "1), 99 SysTick ticks",
        "PASS, class 3 (x), 5 SysTick ticks",
        "x), 5 SysTick ticks), 6 SysTick ticks",
        "FAIL at output index 0: got 1, expected 2 (3 SysTick ticks)",
        ": ) ( :",
        "vector 0: FAIL",
        *LABELS,
    ]
    predictions = [2, 0, 3, 1, 6, 5, 4, 9, 8, 7]
    report = parse_firmware_output(_console(looks_like_output, predictions))
    assert [(v.index, v.passed, v.predicted, v.ticks, v.mismatch) for v in report.vectors] == \
        [(v, True, p, 1000 + v, None) for v, p in enumerate(predictions)]
    assert report.all_passed and report.total == len(predictions) and report.ticks_unit == "SysTick ticks"
    assert (report.arena_reserved, report.arena_used, report.arena_predicted) == (864, 864, 864)


def test_parser_lines_end_at_newlines_only():
    # A firmware that does not escape (emitted before mn_escape_text) and a label with carriage
    # returns, form feeds or Unicode line separators: still one line, the firmware's own ticks.
    label = "a\rvector 1: FAIL\x0bvector 2: FAIL\x0c\x1c\x1d\x1e\u0085\u2028\u2029vector 3: FAIL), 1 SysTick ticks"
    text = (f"vector 0: PASS, class 2 ({label}), 1234 SysTick ticks\r\n"
            "summary: 1/1 PASS, arena_used_bytes 8, 1234 SysTick ticks in total\r\n")
    report = parse_firmware_output(text)
    assert [(v.index, v.passed, v.predicted, v.ticks) for v in report.vectors] == [(0, True, 2, 1234)]
    assert report.all_passed


def test_parser_never_passes_a_broken_line():
    # A raw newline in a label (again, a firmware that does not escape) cuts the PASS line in two:
    # its first half is no PASS, and the forged second half duplicates a real vector line.
    text = ("vector 0: PASS, class 1 (cat\nvector 1: PASS, class 0 (x), 5 SysTick ticks), 1000 SysTick ticks\n"
            "vector 1: FAIL at output index 2: got 3, expected 4 (1001 SysTick ticks)\n"
            "vector 2: PASSED\n"
            "vector 3: FAIL: model_invoke() returned 2 (node 1 rejected its parameters)\n"
            "summary: 1/4 PASS, arena_used_bytes 8, 2001 SysTick ticks in total\n")
    report = parse_firmware_output(text)
    got = [(v.index, v.passed, v.ticks, v.mismatch) for v in report.vectors]
    assert got == [(0, False, None, None), (1, True, 1000, None), (1, False, 1001, (2, 3, 4)), (2, False, None, None),
                   (3, False, None, None)]
    assert report.vectors[3].detail.startswith("unrecognised line")
    assert report.vectors[4].detail == "model_invoke() returned 2 (node 1 rejected its parameters)"
    assert report.vectors[2].detail == "at output index 2: got 3, expected 4 (1001 SysTick ticks)"
    assert not report.all_passed


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory) -> Path:
    """The tiny model under a non-ASCII name, with a sidecar of hostile labels."""
    folder = tmp_path_factory.mktemp("hostile")
    model = folder / MODEL_NAME
    shutil.copyfile(TINY, model)
    sidecar = json.loads(TINY.with_name(TINY.name + ".json").read_text(encoding="utf-8"))
    sidecar["classes"] = LABELS
    model.with_name(model.name + ".json").write_text(json.dumps(sidecar), encoding="utf-8")
    return model


@needs_build
def test_hostile_labels_are_printed_escaped_and_cannot_forge_lines(projects):
    """`mncompile emit MODEL --target cortex-m7 --backend aot` of the hostile model (the `projects`
    fixture), then `mncompile run --json` on QEMU."""
    project = projects["aot", "int8", "cortex-m7"]
    manifest = json.loads((project / "mncompile.json").read_text(encoding="utf-8"))
    assert manifest["model"]["classes"] == LABELS
    proc = run_cli("run", str(project), "--json", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    output = doc["output"]
    assert doc["status"] == "PASS" and doc["problems"] == [] and doc["qemu"]["exit_status"] == 0, output
    # nothing but printable ASCII and line ends: no raw control byte, escape sequence or UTF-8
    assert all(c == "\n" or " " <= c <= "~" for c in output), repr(output)
    assert output.startswith(f"mncompile firmware: {escaped(MODEL_NAME)} on cortex-m7 (board mps2-an500), ")
    predictions = manifest["golden"]["predictions"]
    lines = output.splitlines()
    vector_lines = [line for line in lines if line.startswith("vector ")]
    assert len(vector_lines) == len(predictions) == manifest["golden"]["count"] == 4
    for v, (line, p) in enumerate(zip(vector_lines, predictions, strict=True)):
        assert re.fullmatch(rf"vector {v}: PASS, class {p} \({re.escape(escaped(LABELS[p]))}\), \d+ SysTick ticks",
                            line), line
    # the parsed vectors are exactly the golden ones
    assert [(v["index"], v["status"], v["class"], v["label"], v["detail"]) for v in doc["vectors"]] == \
        [(v, "PASS", p, LABELS[p], "") for v, p in enumerate(predictions)]
    assert doc["golden"] == {"expected": 4, "reported": 4, "passed": 4, "reference_checked": True}
    report = parse_firmware_output(output)
    assert [(v.index, v.passed, v.predicted) for v in report.vectors] == [(v, True, p) for v, p in
                                                                        enumerate(predictions)]
    assert [v.ticks for v in report.vectors] == [v["ticks"] for v in doc["vectors"]]
    assert all(t > 100 for t in (v.ticks for v in report.vectors))  # the firmware's ticks, not a label's


# ---------------------------------------------------------------------------------------------
# 2. -Wall -Wextra -Wconversion -Werror on every Cortex-M target


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _pack(m) -> bytes:
    """The model `m` (object API) as .tflite bytes, each buffer's data 16-byte aligned as the converter writes it."""
    import flatbuffers

    s = _schema()

    class AlignedBufferT(s.BufferT):
        def Pack(self, builder):  # noqa: N802 - flatbuffers' name
            payload = bytes(bytearray(self.data))
            builder.StartVector(1, len(payload), 16)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
            s.BufferStart(builder)
            s.BufferAddData(builder, data)
            return s.BufferEnd(builder)

    for i, buf in enumerate(m.buffers):
        if buf.data is not None and len(buf.data) > 0:
            aligned = AlignedBufferT()
            aligned.data = buf.data
            m.buffers[i] = aligned
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _float_edges(data: bytes) -> bytes:
    """The tiny int8 model with a float32 input (QUANTIZE into the int8 input) and a float32
    output (DEQUANTIZE of the int8 output), as the converter writes them."""
    s = _schema()
    m = s.ModelT.InitFromPackedBuf(data, 0)
    g = m.subgraphs[0]

    def code(builtin: int) -> int:
        oc = s.OperatorCodeT()
        oc.builtinCode = oc.deprecatedBuiltinCode = builtin
        oc.version = 1
        m.operatorCodes.append(oc)
        return len(m.operatorCodes) - 1

    def tensor(name: str, like: int) -> int:
        m.buffers.append(s.BufferT())
        t = s.TensorT()
        t.name, t.type, t.shape = name.encode(), s.TensorType.FLOAT32, list(g.tensors[like].shape)
        t.buffer = len(m.buffers) - 1
        g.tensors.append(t)
        return len(g.tensors) - 1

    def op(opcode: int, inputs: list[int], outputs: list[int]):
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = opcode, inputs, outputs
        return o

    q_in, q_out = int(g.inputs[0]), int(g.outputs[0])
    f_in, f_out = tensor("float_input", q_in), tensor("float_output", q_out)
    g.operators = [op(code(s.BuiltinOperator.QUANTIZE), [f_in], [q_in]), *g.operators,
                   op(code(s.BuiltinOperator.DEQUANTIZE), [q_out], [f_out])]
    g.inputs, g.outputs = [f_in], [f_out]
    m.signatureDefs = []
    return _pack(m)


@pytest.fixture(scope="module")
def projects(tmp_path_factory, hostile_model) -> dict[tuple[str, str, str], Path]:
    """Emitted through the command line, in parallel, keyed (backend, model, target): AOT projects of
    the tiny model with hostile labels ("int8") and of its float-edged variant ("float") for the four
    targets, and the TFLM projects of both for cortex-m7 (their sources differ between targets only
    in names)."""
    folder = tmp_path_factory.mktemp("projects")
    models = {"int8": hostile_model, "float": folder / "tiny_float_io.tflite"}
    models["float"].write_bytes(_float_edges(TINY.read_bytes()))
    keys = [("aot", name, target) for name in models for target in TARGETS]
    keys += [("tflm", "int8", "cortex-m7"), ("tflm", "float", "cortex-m7")]
    out = {key: folder / "_".join(key) for key in keys}

    def one(key: tuple[str, str, str]) -> None:
        backend, name, target = key
        run_cli("emit", str(models[name]), "--target", target, "--backend", backend, "-o", str(out[key]),
                check=True)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(one, keys))
    return out


def _compile_all(jobs: list[list[str]]) -> list[str]:
    """Run every compile command; the failures, each with its command and diagnostics."""
    def one(cmd: list[str]) -> str | None:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or proc.stderr.strip():
            return f"$ {' '.join(cmd)}\n{proc.stderr}"
        return None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return [r for r in pool.map(one, jobs) if r is not None]


def _cpu_flags(project: Path) -> list[str]:
    """The CPU flags the project's build uses (its toolchain file), checked against the target's."""
    toolchain = (project / "cmake" / "arm-none-eabi.cmake").read_text()
    flags = re.search(r'^set\(MNCOMPILE_CPU_FLAGS "([^"]*)"\)$', toolchain, re.M).group(1)
    target = json.loads((project / "mncompile.json").read_text())["options"]["target"]
    assert flags == CPU_FLAGS[target], (project, flags)
    return flags.split()


@needs_arm_gcc
def test_aot_projects_compile_without_a_warning_on_every_target(projects):
    """Every .c of each project: src/ (model.c, main.c, golden_data.c), firmware/kernels (DSP paths;
    on cortex-m4 also the portable ones), firmware/common and the board, with the project's include
    path. A file with the same bytes in both projects of a target (the firmware/ copies) is compiled
    once."""
    float_project = projects["aot", "float", "cortex-m7"]
    model_h = (float_project / "src" / "model.h").read_text()
    assert "#define MODEL_INPUT_IS_FLOAT 1" in model_h and "#define MODEL_OUTPUT_IS_FLOAT 1" in model_h
    assert "mn_quantize_f32_s8(" in (float_project / "src" / "model.c").read_text()
    assert "float_bits(output[i]) != want[i]" in (float_project / "src" / "main.c").read_text()
    jobs, seen = [], set()
    for (backend, _model, target), project in sorted(projects.items()):
        if backend != "aot":
            continue
        cpu = _cpu_flags(project)
        include = [f"-I{project / d}" for d in ("src", "firmware/kernels", "firmware/common", "firmware/preprocess")]
        sources = sorted(p.relative_to(project) for p in project.rglob("*.c") if "build" not in p.parts)
        assert {"src/main.c", "src/model.c", "src/golden_data.c", "src/model_input.c",
                "firmware/preprocess/mn_preprocess.c"} <= {p.as_posix() for p in sources}
        assert len([p for p in sources if p.parts[:2] == ("firmware", "kernels")]) >= 8
        for src in sources:
            key = (target, src, (project / src).read_bytes())
            if key in seen:
                continue
            seen.add(key)
            # the CMake option MN_KERNELS_PORTABLE: the same C on every core, so checked on one
            portable = target == "cortex-m4" and ("kernels" in src.parts or src.name == "model.c")
            for defines in ([], ["-DMN_KERNELS_PORTABLE=1"]) if portable else ([],):
                jobs.append(["arm-none-eabi-gcc", *cpu, "-std=c11", *BUILD_FLAGS, *WARNINGS, *defines, *include,
                             "-c", str(project / src), "-o", os.devnull])
    failures = _compile_all(jobs)
    assert not failures, f"{len(failures)} of {len(jobs)} compiles warned:\n" + "\n".join(failures[:10])


@needs_arm_gcc
def test_board_support_compiles_without_a_warning_on_every_board():
    """firmware/common and every board's sources, with each board's CPU flags (board.toml); board.c
    also with the semihosting console of the real boards (MNCOMPILE_CONSOLE_SEMIHOSTING)."""
    import tomllib

    jobs = []
    boards = sorted(p for p in (FIRMWARE / "boards").iterdir() if (p / "board.toml").is_file())
    assert len(boards) >= 7
    for board in boards:
        flags = tomllib.loads((board / "board.toml").read_text())["cpu_flags"].split()
        for src in sorted((FIRMWARE / "common").glob("*.c")) + sorted(board.glob("*.c")):
            for defines in ([], ["-DMNCOMPILE_CONSOLE_SEMIHOSTING=1"]) if src.name == "board.c" else ([],):
                jobs.append(["arm-none-eabi-gcc", *flags, "-std=c11", *BUILD_FLAGS, *WARNINGS, "-Wpedantic",
                             *defines, f"-I{FIRMWARE / 'common'}", "-c", str(src), "-o", os.devnull])
    failures = _compile_all(jobs)
    assert not failures, f"{len(failures)} of {len(jobs)} compiles warned:\n" + "\n".join(failures[:10])


# Just enough of TFLM's API for src/main.cc to type-check (the real headers come from TFLM_ROOT).
STUB_HEADERS = {
    "tensorflow/lite/c/common.h": """#pragma once
#include <stddef.h>
#include <stdint.h>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt8 = 9 } TfLiteType;
typedef union { int8_t* int8; uint8_t* uint8; float* f; } TfLitePtrUnion;
typedef struct { TfLiteType type; TfLitePtrUnion data; size_t bytes; } TfLiteTensor;
""",
    "tensorflow/lite/schema/schema_generated.h": """#pragma once
#include <stdint.h>
#define TFLITE_SCHEMA_VERSION (3)
namespace tflite {
struct Model { uint32_t version() const; };
const Model* GetModel(const void* buf);
}  // namespace tflite
""",
    "tensorflow/lite/micro/micro_interpreter.h": """#pragma once
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
""",
}


@needs_arm_gcc
def test_tflm_projects_own_sources_compile_without_a_warning(projects, tmp_path):
    """The TFLM project's own C++ (main.cc, model_data.cc, golden_data.cc) with each target's CPU
    flags, against stub TFLM headers included as system headers (its firmware/ C is the AOT
    projects'). Its main() prints labels and the model's name escaped, as the AOT main() does."""
    stubs = tmp_path / "stubs"
    for rel, text in STUB_HEADERS.items():
        (stubs / rel).parent.mkdir(parents=True, exist_ok=True)
        (stubs / rel).write_text(text)
    jobs = []
    for kind in ("int8", "float"):  # the float one feeds float32 and compares float32 bit patterns
        project = projects["tflm", kind, "cortex-m7"]
        _cpu_flags(project)
        main = (project / "src" / "main.cc").read_text()
        assert "PrintEscaped(g_labels[top]);" in main and "PrintEscaped(mncompile::kModelName);" in main
        assert '#include "console.h"' in main and "g_labels[top]," not in main
        assert ("memcpy(&got_bits, &got[i], sizeof got_bits);" in main) == (kind == "float")
        methods = sorted(set(re.findall(r"resolver\.(\w+)\(\)", main)))
        kind_stubs = tmp_path / f"stubs-{kind}"
        shutil.copytree(stubs, kind_stubs)
        resolver = kind_stubs / "tensorflow" / "lite" / "micro" / "micro_mutable_op_resolver.h"
        resolver.write_text('#pragma once\n#include "tensorflow/lite/micro/micro_interpreter.h"\n'
                            "namespace tflite {\ntemplate <unsigned int tOpCount>\n"
                            "class MicroMutableOpResolver : public MicroOpResolver {\n public:\n"
                            + "".join(f"  TfLiteStatus {m}() {{ return kTfLiteOk; }}\n" for m in methods)
                            + "};\n}  // namespace tflite\n")
        include = [f"-I{project / 'src'}", f"-I{project / 'firmware' / 'common'}",
                   f"-I{project / 'firmware' / 'preprocess'}", "-isystem", str(kind_stubs)]
        jobs += [["arm-none-eabi-g++", *CPU_FLAGS[target].split(), "-std=c++17", "-fno-rtti", "-fno-exceptions",
                  "-fno-threadsafe-statics", *BUILD_FLAGS, *WARNINGS, *include, "-c", str(src), "-o", os.devnull]
                 for target in TARGETS for src in sorted((project / "src").glob("*.cc"))]
        # the camera path (C, shared with the AOT backend)
        jobs += [["arm-none-eabi-gcc", *CPU_FLAGS[target].split(), "-std=c11", *BUILD_FLAGS, *WARNINGS, *include,
                  "-c", str(src), "-o", os.devnull]
                 for target in TARGETS for src in (project / "src" / "model_input.c",
                                                   project / "firmware" / "preprocess" / "mn_preprocess.c")]
    assert len(jobs) == 2 * 5 * len(TARGETS)
    failures = _compile_all(jobs)
    assert not failures, f"{len(failures)} of {len(jobs)} compiles warned:\n" + "\n".join(failures[:10])


def test_cmake_builds_use_the_warning_flags_for_own_sources_only(projects):
    aot = (projects["aot", "int8", "cortex-m7"] / "CMakeLists.txt").read_text()
    assert "target_compile_options(firmware PRIVATE -Wall -Wextra -Werror -Wconversion)" in aot
    tflm = (projects["tflm", "int8", "cortex-m7"] / "CMakeLists.txt").read_text()
    assert "target_compile_options(firmware PRIVATE -Wall -Wextra -Werror -Wconversion" in tflm
    # TFLM's headers are system headers for our sources; TFLM itself gets none of our warning flags
    assert "target_include_directories(firmware SYSTEM PRIVATE ${MNCOMPILE_TFLM_INCLUDES})" in tflm
    tflm_cmake = (projects["tflm", "int8", "cortex-m7"] / "cmake" / "tflm.cmake").read_text()
    assert "target_include_directories(tflm SYSTEM PUBLIC" in tflm_cmake
    assert "-Wconversion" not in re.sub(r"#[^\n]*", "", tflm_cmake)
