"""Firmware benchmark: arena, stack, flash and speed of emitted firmware on QEMU's Cortex-M boards.

    .venv/bin/python bench/firmware.py [--backends aot,tflm] [--targets cortex-m4,...]
                                       [--model PATH ...] [--build-root DIR] [--markdown]

One row per model x backend x target. Each project is written with `mncompile.emit.emit`,
built and run on QEMU (-icount shift=0) and checked against its golden vectors with
`mncompile.run.validate.run_project` (which calls `build_project`, `run_qemu` and
`parse_firmware_output`). Progress goes to stderr, the table to stdout.

Models: tests/data/tiny_int8.tflite and /work/shared/data/vww_96_int8.tflite (skipped, with a
message, when absent), plus any --model. Backends: `aot` always; `tflm` only when the
TFLM_ROOT environment variable names a tflite-micro checkout (its build takes ~10 minutes: pass
--build-root DIR to keep the build folders and reuse them on the next run).

Columns, and exactly how each is obtained:

- arena B: the arena the firmware reserves, from the manifest (mncompile.json
  arena.reserved_bytes for the kernels the firmware reports; the AOT backend's equals its
  model.h arena size). The firmware's own arena_used_bytes() is checked against the prediction
  by run_project.
- stack B: NOT measured at run time (the firmware/ sources are not changed, and there is no
  debugger to read painted memory after QEMU exits). It is a static bound: the project is
  compiled with CFLAGS/CXXFLAGS ``-fstack-usage -fcallgraph-info=su`` (through the environment,
  so CMake prepends them to the toolchain's flags; they do not change the generated code), the
  per-function frames (.su) and call edges (.ci) of every compiled file are read, and
      stack = frame(Reset_Handler) + frame(main) + deepest path from the inference entry
              (model_invoke for AOT, the deepest call made from main otherwise)
              + 104 B (an exception frame with FP context) + deepest path from SysTick_Handler.
  Library functions not compiled by the project (newlib's memcpy, memset; printf, which main
  calls only outside the timed inference) have no .su entry and count 0 B; they are listed on
  stderr. A path through an indirect call (function pointer, C++ virtual call: TFLM's kernel
  dispatch) cannot be followed, and a frame GCC marks "dynamic" has no fixed size: either way
  the figure is a lower bound and is printed with a leading ">=".
- arena+stack B: the two above added (the RAM the inference needs beyond .data/.bss and I/O).
- flash B: the sum of the ELF's sections .isr_vector, .text, .rodata, .ARM.exidx,
  .init_array, .fini_array, .model and .data (its initial values are stored in flash), as
  `arm-none-eabi-size -A` lists them; absent sections count 0.
- flash w/o golden B: flash B minus the golden vectors the generated project carries for its
  self-check (not part of a deployed model): the sizes `arm-none-eabi-nm -S` gives the symbols
  g_golden_inputs, g_golden_outputs and g_golden_labels (both backends' golden_data.c/.cc name them
  so; a symbol the linker dropped counts 0). For VWW (4 inputs of 96x96x3) that is 110,600 B. This
  is the column to compare with a deployment budget, e.g. AOT <= 0.65 x the TFLM build's.
- ticks: SysTick ticks per inference, the mean over the golden vectors (deterministic under
  -icount shift=0).
- instructions: ticks x the board's instructions_per_tick (firmware/boards/<board>/board.toml).
- MACs: mult-adds of the model (`mncompile.graph.metrics.graph_costs`).
- instr/MAC: instructions / MACs.
- check: PASS when every golden vector matched the host reference.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mncompile.errors import MncompileError  # noqa: E402
from mncompile.pipeline import emit  # noqa: E402
from mncompile.run.validate import run_project  # noqa: E402

MODELS = (ROOT / "tests" / "data" / "tiny_int8.tflite", Path("/work/shared/data/vww_96_int8.tflite"))
TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
BACKENDS = ("aot", "tflm")
FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".init_array", ".fini_array", ".model", ".data")
STACK_FLAGS = "-fstack-usage -fcallgraph-info=su"
EXCEPTION_FRAME_FP = 104  # bytes an exception pushes with the FP context (all four targets have an FPU)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    model: str
    backend: str
    target: str
    board: str = ""
    arena: int | None = None
    stack: int | None = None
    stack_exact: bool = True
    flash: int | None = None
    flash_no_golden: int | None = None
    ticks: float | None = None
    instructions: int | None = None
    macs: int | None = None
    per_mac: float | None = None
    check: str = ""


# --- static stack bound -----------------------------------------------------------------

# FILE:LINE:COLUMN:NAME<TAB>BYTES<TAB>KIND; a C++ NAME is a signature with spaces
# ("TfLiteStatus tflite::MicroInterpreter::Invoke()"), so NAME runs to the tab
_SU = re.compile(r"^(.*?):\d+:\d+:([^\t]+)\t(\d+)\t(\S+)$")
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def read_stack_info(build_dir: Path) -> tuple[dict[str, tuple[int, bool]], dict[str, set[str]]]:
    """Frames (name -> (bytes, fixed size)) and call edges from the build's .su and .ci files. A name
    defined in several files (static functions) keeps its largest frame: conservative."""
    frames: dict[str, tuple[int, bool]] = {}
    calls: dict[str, set[str]] = {}
    for su in build_dir.rglob("*.su"):
        for line in su.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _SU.match(line)
            if not m:
                continue
            name, size, kind = m.group(2), int(m.group(3)), m.group(4)
            old = frames.get(name, (0, True))
            frames[name] = (max(old[0], size), old[1] and kind == "static")
    for ci in build_dir.rglob("*.ci"):
        for m in _EDGE.finditer(ci.read_text(encoding="utf-8", errors="replace")):
            calls.setdefault(m.group(1), set()).add(m.group(2))
    return frames, calls


def deepest(name: str, frames, calls, unknown: set[str], memo: dict | None = None,
            active: set[str] | None = None) -> tuple[int, bool]:
    """Bytes of the deepest call chain from `name`, and whether the bound is exact (False: an indirect
    call, recursion or a dynamic frame on the way)."""
    memo = {} if memo is None else memo
    active = set() if active is None else active
    if name in memo:
        return memo[name]
    if name in active:
        return 0, False  # recursion: unbounded
    # .ci files name a static function FILE:NAME; .su files by NAME only.
    key = name if name in frames else name.rsplit(":", 1)[-1]
    if key not in frames:
        if "indirect" in name:
            return 0, False
        unknown.add(name)
        return 0, True
    size, exact = frames[key]
    active.add(name)
    best = 0
    for callee in calls.get(name, ()):
        depth, ok = deepest(callee, frames, calls, unknown, memo, active)
        exact = exact and ok
        best = max(best, depth)
    active.discard(name)
    memo[name] = (size + best, exact)
    return memo[name]


def stack_bound(build_dir: Path, backend: str) -> tuple[int | None, bool]:
    frames, calls = read_stack_info(build_dir)
    if "main" not in frames:
        log(f"no .su for main in {build_dir}: no stack figure")
        return None, False
    unknown: set[str] = set()
    if backend == "aot" and "model_invoke" in frames:
        inference, exact = deepest("model_invoke", frames, calls, unknown)
    else:  # the deepest call main makes (includes setup calls: conservative within what is known)
        depths = [deepest(c, frames, calls, unknown, active={"main"}) for c in calls.get("main", ())]
        inference = max((d for d, _ in depths), default=0)
        exact = all(ok for _, ok in depths)
    isr, isr_exact = deepest("SysTick_Handler", frames, calls, unknown)
    total = frames.get("Reset_Handler", (0, True))[0] + frames["main"][0] + inference + EXCEPTION_FRAME_FP + isr
    if unknown:
        log(f"  stack: no frame size for {', '.join(sorted(unknown))} (not compiled by the project; counted 0 B)")
    return total, exact and isr_exact and frames["main"][1]


# --- flash ------------------------------------------------------------------------------

def flash_bytes(elf: Path) -> int:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sum(sizes.get(s, 0) for s in FLASH_SECTIONS)


GOLDEN_SYMBOLS = ("g_golden_inputs", "g_golden_outputs", "g_golden_labels", "g_golden_frames")
GOLDEN_PREFIXES = ("golden_frame_",)  # the camera frames (static arrays, one per vector)


def golden_bytes(elf: Path) -> int:
    """Bytes of the golden-vector arrays in the ELF, camera frames included (arm-none-eabi-nm -S; each
    symbol counted once)."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    seen = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and (parts[3] in GOLDEN_SYMBOLS or parts[3].startswith(GOLDEN_PREFIXES)):
            seen[(parts[3], parts[0])] = int(parts[1], 16)
    return sum(seen.values())


# --- one row ----------------------------------------------------------------------------

def bench_one(model: Path, backend: str, target: str, root: Path, timeout: float) -> Row:
    row = Row(model.stem, backend, target)
    folder = root / f"{model.stem}-{backend}-{target}"
    project, build = folder / "project", folder / "build"
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    log(f"{model.name} {backend} {target}: emit")
    result = emit(model, target, project, backend=backend, force=True)
    row.board = result.board.name
    # CMake prepends $CFLAGS/$CXXFLAGS to the toolchain's flags when it first configures a build folder.
    saved = {k: os.environ.get(k) for k in ("CFLAGS", "CXXFLAGS")}
    os.environ["CFLAGS"] = os.environ["CXXFLAGS"] = STACK_FLAGS
    try:
        log(f"{model.name} {backend} {target}: build + QEMU")
        run = run_project(project, build_dir=build, timeout=timeout)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    row.check = "PASS" if run.passed else "FAIL: " + "; ".join(run.problems)
    row.arena = run.arena_reserved if run.arena_reserved is not None else run.report.arena_reserved
    row.stack, row.stack_exact = stack_bound(run.firmware.build_dir, backend)
    row.flash = flash_bytes(run.firmware.elf)
    row.flash_no_golden = row.flash - golden_bytes(run.firmware.elf)
    row.ticks = run.ticks_per_inference
    row.instructions = run.instructions_per_inference
    row.macs = run.macs
    row.per_mac = run.instructions_per_mac
    log(f"{model.name} {backend} {target}: {row.check} in {time.monotonic() - t0:.0f} s")
    return row


# --- table ------------------------------------------------------------------------------

HEADER = ("model", "backend", "target (board)", "arena B", "stack B", "arena+stack B", "flash B",
          "flash w/o golden B", "ticks/inf", "instr/inf", "MACs", "instr/MAC", "check")


def cells(r: Row) -> tuple[str, ...]:
    def n(v):
        return "-" if v is None else f"{v:,}"

    ge = "" if r.stack_exact else ">="
    both = None if r.arena is None or r.stack is None else r.arena + r.stack
    return (r.model, r.backend, f"{r.target} ({r.board})" if r.board else r.target, n(r.arena),
            "-" if r.stack is None else ge + n(r.stack), "-" if both is None else ge + n(both), n(r.flash),
            n(r.flash_no_golden), "-" if r.ticks is None else f"{r.ticks:,.0f}", n(r.instructions), n(r.macs),
            "-" if r.per_mac is None else f"{r.per_mac:.2f}", r.check)


def render(rows: list[Row], markdown: bool) -> str:
    table = [HEADER, *(cells(r) for r in rows)]
    numeric = {3, 4, 5, 6, 7, 8, 9, 10, 11}
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |",
                 "|" + "|".join("---:" if i in numeric else "---" for i in range(len(HEADER))) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in table[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in
                               enumerate(zip(row, widths, strict=True))).rstrip() for row in table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help="comma-separated (default aot,tflm; tflm only runs when TFLM_ROOT is set)")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: the four QEMU targets)")
    p.add_argument("--model", action="append", type=Path, default=[], help="another int8 .tflite (repeatable)")
    p.add_argument("--build-root", type=Path,
                   help="keep projects and build folders here and reuse them (default: a temporary folder)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds QEMU may run per firmware")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = p.parse_args(argv)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        p.error(f"unknown backend(s) {', '.join(bad)}; use {', '.join(BACKENDS)}")
    if "tflm" in backends and not os.environ.get("TFLM_ROOT"):
        log("skipping the tflm backend: TFLM_ROOT is not set (a tflite-micro checkout is needed)")
        backends.remove("tflm")
    models: list[Path] = []
    digests: set[str] = set()
    for m in (*MODELS, *args.model):
        if not m.is_file():
            log(f"skipping {m}: not found")
            continue
        digest = hashlib.sha256(m.read_bytes()).hexdigest()
        if digest in digests:  # the same model under another path (a copy, a link) runs once
            log(f"skipping {m}: the same bytes as a model already measured")
        else:
            digests.add(digest)
            models.append(m)

    tmp = None
    if args.build_root is None:
        tmp = tempfile.TemporaryDirectory(prefix="mncompile-bench-")
        root = Path(tmp.name)
    else:
        root = args.build_root.resolve()
        root.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for model in models:
            for backend in backends:
                for target in targets:
                    try:
                        rows.append(bench_one(model, backend, target, root, args.timeout))
                    except MncompileError as exc:
                        log(f"{model.name} {backend} {target}: {exc.message}")
                        rows.append(Row(model.stem, backend, target, check=f"error: {exc.message.splitlines()[0]}"))
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(render(rows, args.markdown))
    return 0 if rows and all(r.check == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
