"""Configure and build a generated firmware project with CMake and arm-none-eabi-gcc,
and read what the firmware prints.

`build_project` runs ``cmake -S PROJECT -B BUILD -G Ninja`` (Unix Makefiles when Ninja
is missing) with the TFLM paths given, then ``cmake --build``, and reports the ELF and
its text/data/bss sizes. `parse_firmware_output` reads the lines `main.cc` prints
("vector k: PASS ...", "summary: ...", "arena: ...", "error: ...", and with emit --profile
"profile: node k KIND: T unit" and "profile: N nodes, I inferences: S unit in the nodes"): whole lines of the exact
shapes the firmware prints, so a class label inside a PASS line (which the firmware prints
escaped, firmware/common/console.h) cannot change a vector's index, status, class or ticks.
`configured_tflm` says which TFLM an existing build folder was configured with.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import FirmwareBuildError
from mncompile.progress import NullReporter, Reporter


@dataclass(frozen=True)
class FirmwareBuild:
    elf: Path
    build_dir: Path
    text: int
    data: int
    bss: int
    kernels: str  # "reference" or "cmsis-nn" (from BUILD/mncompile-kernels.txt), "unknown" without it


def _require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise FirmwareBuildError(f"{program} is not installed",
                                 hint=f"install {package} (Debian: apt-get install {package}), or run `make setup`")
    return path


def _run(cmd: list[str], what: str, timeout: float, log: Path) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FirmwareBuildError(f"{what} took longer than {timeout:.0f} s: {' '.join(cmd)}") from None
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise FirmwareBuildError(f"{what} failed (exit {proc.returncode}):\n{tail}", hint=f"full log: {log}")


def elf_sizes(elf: Path) -> tuple[int, int, int]:
    """text, data, bss of `elf`, as arm-none-eabi-size (Berkeley format) counts them."""
    size = _require("arm-none-eabi-size", "binutils-arm-none-eabi")
    out = subprocess.run([size, "-B", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return text, data, bss


def build_project(project: Path, build_dir: Path | None = None, *, tflm_root: Path | None = None,
                  cmsis_nn_root: Path | None = None, third_party: Path | None = None,
                  extra_args: tuple[str, ...] = (), timeout: float = 3600,
                  reporter: Reporter = NullReporter()) -> FirmwareBuild:
    """Configure and build `project` in `build_dir` (default PROJECT/build)."""
    project = Path(project).resolve()
    if not (project / "CMakeLists.txt").is_file():
        raise FirmwareBuildError(f"{project} has no CMakeLists.txt", hint="pass a folder written by `mncompile emit`")
    cmake = _require("cmake", "cmake")
    _require("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    build_dir = Path(build_dir or project / "build").resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "mncompile-build.log"
    log.write_text("", encoding="utf-8")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else ["-G", "Unix Makefiles"]
    args = [cmake, "-S", str(project), "-B", str(build_dir), *generator]
    for name, value in (("TFLM_ROOT", tflm_root), ("CMSIS_NN_ROOT", cmsis_nn_root),
                        ("TFLM_THIRD_PARTY_DIR", third_party)):
        if value is not None:
            args.append(f"-D{name}={Path(value).resolve()}")
    reporter.stage("firmware", f"configuring {project.name} with CMake")
    _run([*args, *extra_args], "CMake configure", timeout, log)
    reporter.stage("firmware", f"compiling (TFLM's sources take minutes the first time; log {log})")
    _run([cmake, "--build", str(build_dir), "--parallel", str(os.cpu_count() or 2)], "the firmware build",
         timeout, log)
    elf = build_dir / "firmware.elf"
    if not elf.is_file():
        raise FirmwareBuildError(f"the build finished without {elf}", hint=f"see {log}")
    marker = build_dir / "mncompile-kernels.txt"  # the generated CMakeLists.txt writes it
    kernels = marker.read_text(encoding="utf-8").strip() if marker.is_file() else "unknown"
    return FirmwareBuild(elf, build_dir, *elf_sizes(elf), kernels=kernels)


def configured_tflm(build_dir: Path) -> str | None:
    """The TFLM source an existing build folder was configured with: its TFLM_ROOT, or the
    tflite-micro tree FetchContent downloaded there; None when it has none (or no cache)."""
    cache = Path(build_dir) / "CMakeCache.txt"
    if not cache.is_file():
        return None
    values = dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*):[A-Z]+=(.*)$",
                             cache.read_text(encoding="utf-8", errors="replace"), re.M))
    if values.get("TFLM_ROOT"):
        return values["TFLM_ROOT"]
    base = Path(values.get("FETCHCONTENT_BASE_DIR") or Path(build_dir) / "_deps")
    downloaded = base / "tflite_micro-src"
    if (downloaded / "tensorflow" / "lite" / "micro" / "micro_interpreter.cc").is_file():
        return str(downloaded)
    return None


@dataclass(frozen=True)
class VectorResult:
    index: int
    passed: bool
    ticks: int | None
    detail: str
    predicted: int | None = None  # the class a PASS line names
    mismatch: tuple[int, int, int] | None = None  # a FAIL line's (output index, got, expected)


@dataclass(frozen=True)
class NodeTime:
    """One "profile: node K KIND: T unit" line: node K's ticks, summed over the profiled inferences."""

    node: int
    kind: str  # as the firmware names the operator (TFLM's tag, escaped; the AOT code's kind)
    ticks: int
    unit: str


@dataclass(frozen=True)
class FirmwareProfile:
    """The per-node lines of a firmware emitted with --profile, and its closing line."""

    nodes: tuple[NodeTime, ...]  # in the order printed
    node_count: int | None  # the closing line's N (None: the firmware never printed it)
    inferences: int | None  # the closing line's I: how many inferences the ticks are summed over
    total_ticks: int | None  # the closing line's S: the firmware's own sum over the nodes
    unit: str | None
    other_events: int = 0  # TFLM: profiler events that were not a top-level node (nested, or beyond the last)

    @property
    def complete(self) -> bool:
        """Every node 0..N-1 printed once, and the closing line's sum is the sum of the lines."""
        return (self.node_count is not None and [t.node for t in self.nodes] == list(range(self.node_count))
                and self.total_ticks == sum(t.ticks for t in self.nodes))


@dataclass(frozen=True)
class FirmwareReport:
    vectors: tuple[VectorResult, ...]
    passed: int | None  # from the summary line; None when the firmware never printed one
    total: int | None
    arena_reserved: int | None
    arena_used: int | None
    arena_predicted: int | None
    ticks_unit: str | None
    errors: tuple[str, ...] = ()  # the firmware's "error: ..." lines
    camera_frames: int | None = None  # the "camera path:" line: frames converted to input tensors
    camera_ticks: int | None = None  # and the ticks that took in total
    profile: FirmwareProfile | None = None  # the "profile:" lines (emit --profile); None without any
    stack_used: int | None = None  # the "stack:" line: the deepest the main stack went (painted at reset)
    stack_size: int | None = None  # and its size in the linker script

    @property
    def all_passed(self) -> bool:
        return (self.total is not None and self.passed == self.total and len(self.vectors) == self.total
                and all(v.passed for v in self.vectors))


# The lines of templates/*/src/main.c(c).j2, whole. A PASS line carries a label from the user's files;
# the firmware prints it escaped (firmware/common/console.h: no byte outside 0x20..0x7e), and these
# patterns fix everything around it: the index, PASS and the class before it, the ticks after it
# (the label is greedy, so the last "), <ticks> <unit>" is the firmware's own). A line that starts
# like a vector's but has none of these shapes is a FAIL, never a PASS.
_VECTOR_START = re.compile(r"^vector (\d+): ")
_UNIT = r"[A-Za-z][A-Za-z ]*?"
_PASS = re.compile(rf"^vector (\d+): PASS, class (-?\d+) \((.*)\), (\d+) ({_UNIT})$")
_FAIL_AT = re.compile(rf"^vector (\d+): FAIL at output index (\d+): got (-?\d+), expected (-?\d+) "
                      rf"\((\d+) ({_UNIT})\)$")
_FAIL = re.compile(r"^vector (\d+): FAIL(?:[:,] (.*))?$")
_SUMMARY = re.compile(r"^summary: (\d+)/(\d+) PASS, arena_used_bytes (\d+)")
_CAMERA = re.compile(rf"^camera path: (\d+) frames to input tensors, (\d+) ({_UNIT}) in total$")
_PROFILE_NODE = re.compile(rf"^profile: node (\d+) (.+?): (\d+) ({_UNIT})$")
_PROFILE_END = re.compile(rf"^profile: (\d+) nodes, (\d+) inferences: (\d+) ({_UNIT}) in the nodes"
                          rf"(?:, (\d+) other events)?$")
_STACK = re.compile(r"^stack: (\d+) of (\d+) bytes used$")
_ARENA = re.compile(r"^arena: (\d+) bytes reserved, arena_used_bytes\(\) = (\d+), predicted (\d+)")


def _vector_line(line: str) -> tuple[VectorResult, str | None] | None:
    """The vector line `line` as a VectorResult and its ticks unit; None when it is no vector line."""
    if m := _PASS.match(line):
        index, predicted, _label, ticks, unit = m.groups()
        detail = line[m.end(1) + len(": PASS"):].strip(", :")
        return VectorResult(int(index), True, int(ticks), detail, int(predicted)), unit
    if m := _FAIL_AT.match(line):
        index, at, got, want, ticks, unit = m.groups()
        detail = line[m.end(1) + len(": FAIL"):].strip(", :")
        return VectorResult(int(index), False, int(ticks), detail, None, (int(at), int(got), int(want))), unit
    if m := _FAIL.match(line):
        return VectorResult(int(m.group(1)), False, None, (m.group(2) or "").strip()), None
    if m := _VECTOR_START.match(line):
        return VectorResult(int(m.group(1)), False, None, f"unrecognised line: {line[m.end():]!r}"), None
    return None


def parse_firmware_output(text: str) -> FirmwareReport:
    """What the firmware printed, line by line. Lines end at a line feed only: a stray carriage return,
    form feed or Unicode line separator inside a line does not start a new one (str.splitlines would)."""
    vectors, summary, arena, unit, errors, camera = [], None, None, None, [], None
    nodes, profile_end, stack = [], None, None
    for line in text.split("\n"):
        line = line.strip(" \t\r")
        if (vector := _vector_line(line)) is not None:
            vectors.append(vector[0])
            if vector[1] is not None:
                unit = vector[1]
        elif m := _SUMMARY.match(line):
            summary = m
        elif m := _ARENA.match(line):
            arena = m
        elif m := _STACK.match(line):
            stack = m
        elif m := _CAMERA.match(line):
            camera = m
        elif m := _PROFILE_NODE.match(line):
            nodes.append(NodeTime(int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)))
        elif m := _PROFILE_END.match(line):
            profile_end = m
        elif line.startswith("error:"):
            errors.append(line)
    return FirmwareReport(tuple(vectors), int(summary.group(1)) if summary else None,
                          int(summary.group(2)) if summary else None,
                          int(arena.group(1)) if arena else None, int(arena.group(2)) if arena else None,
                          int(arena.group(3)) if arena else None, unit, tuple(errors),
                          int(camera.group(1)) if camera else None, int(camera.group(2)) if camera else None,
                          _profile(nodes, profile_end), int(stack.group(1)) if stack else None,
                          int(stack.group(2)) if stack else None)


def _profile(nodes: list[NodeTime], end: re.Match | None) -> FirmwareProfile | None:
    if not nodes and end is None:
        return None
    if end is None:
        return FirmwareProfile(tuple(nodes), None, None, None, nodes[0].unit)
    count, inferences, total, unit, other = end.groups()
    return FirmwareProfile(tuple(nodes), int(count), int(inferences), int(total), unit, int(other or 0))
