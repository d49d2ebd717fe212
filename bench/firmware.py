"""Firmware benchmark: arena, stack, flash and speed of emitted firmware on QEMU's Cortex-M boards.

    TFLM_ROOT=/path/to/tflite-micro CMSIS_NN_ROOT=/path/to/CMSIS-NN \
    .venv/bin/python bench/firmware.py [--backends aot-portable,aot-dsp,aot,tflm,tflm-cmsis]
                                       [--targets cortex-m4,...] [--model PATH ...] [--models-dir DIR]
                                       [--no-default-models] [--build-root DIR] [--markdown] [--summary]
                                       [--layers N]

One row per model x backend x target, all measured in the same run. Each project is written with
`mncompile.emit.emit`, built and run on QEMU (-icount shift=0) and checked against its golden vectors
with `mncompile.run.validate.run_project` (which calls `build_project`, `run_qemu` and
`parse_firmware_output`). Progress goes to stderr, the tables to stdout. `--layers N` emits the AOT
projects with --profile (it adds under 0.01 % to their instructions) and prints each one's N slowest
layers: what holds its instructions per MAC.

Backends (kernel sets; default: all five, each skipped with a logged reason when it cannot run):
- aot-portable: the AOT backend with CFLAGS -DMN_KERNELS_PORTABLE (plain C loops);
- aot-dsp: the AOT backend with -DMN_KERNELS_NO_MVE, the DSP (SMLAD) kernels on a Helium core; only run
  on Helium targets (cortex-m55), since elsewhere it is the same build as `aot`;
- aot: the AOT backend with its default kernels (DSP on M4/M7/M33, Helium on M55);
- tflm: TFLM's reference kernels; needs TFLM_ROOT (a tflite-micro checkout with its third-party
  downloads: scripts/tflm_sources.py lays them out offline);
- tflm-cmsis: TFLM with its CMSIS-NN kernels; needs TFLM_ROOT and CMSIS_NN_ROOT (a CMSIS-NN checkout,
  passed to the generated project's CMake as -DCMSIS_NN_ROOT; MVE on Helium targets).
The defines reach the compiler through the CFLAGS/CXXFLAGS environment, with the stack flags below:
CMake reads them when it first configures a build folder, so each backend has its own folder. TFLM's
library takes ~10 minutes to build on 2 cores; it is the same for every model, so the TFLM projects of
one backend and target share one build folder (BACKEND-TARGET/) and only the application is rebuilt per
model. Pass --build-root DIR to keep the build folders and reuse them in the next run.

Models: tests/data/tiny_int8.tflite and /work/shared/data/vww_96_int8.tflite (unless
--no-default-models), the MLPerf Tiny KWS DS-CNN (kws_ref_model.tflite), TFLM's person detection
(person_detect.tflite) and MLPerf Tiny ResNet8 (pretrainedResnet_quant.tflite) found in --models-dir,
and any --model; a missing file is skipped with a message, and models are de-duplicated by content.

--summary prints a second, compact table from the same rows: one line per model x target with
instructions per MAC for each kernel set (portable, DSP, MVE, TFLM reference, TFLM + CMSIS-NN), the
AOT firmware's flash without golden vectors over TFLM reference's, and both arenas.

Columns, and exactly how each is obtained:

- arena B: the arena the firmware reserves, from the manifest (mncompile.json
  arena.reserved_bytes for the kernels the firmware reports; the AOT backend's equals its
  model.h arena size). The firmware's own arena_used_bytes() is checked against the prediction
  by run_project.
- stack B: NOT measured at run time (the firmware/ sources are not changed, and there is no
  debugger to read painted memory after QEMU exits). It is a static bound: the project is
  compiled with CFLAGS/CXXFLAGS ``-fstack-usage -fcallgraph-info=su`` (through the environment,
  so CMake prepends them to the toolchain's flags; they do not change the generated code), the
  per-function frames and call edges of every compiled file are read (the .ci files' nodes and
  edges, which name a C++ function by its mangled name; .su lines for files without a .ci; a C1/D1
  constructor or destructor call runs the C2/D2 body GCC emits), and
      stack = frame(Reset_Handler) + frame(main) + deepest path from the inference entry
              (model_invoke for AOT, the deepest call made from main otherwise)
              + 104 B (an exception frame with FP context) + deepest path from SysTick_Handler.
  Library functions not compiled by the project (newlib's memcpy, memset; printf, which main
  calls only outside the timed inference) have no frame and count 0 B; they are listed on
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
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.firmware_stack import STACK_FLAGS, flash_bytes, golden_bytes, log, read_stack_info, stack_bound  # noqa: E402
from mncompile.errors import MncompileError  # noqa: E402
from mncompile.pipeline import emit  # noqa: E402
from mncompile.run.validate import run_project  # noqa: E402
from mncompile.targets import get_target  # noqa: E402

__all__ = ["read_stack_info", "stack_bound", "main"]

MODELS = (ROOT / "tests" / "data" / "tiny_int8.tflite", Path("/work/shared/data/vww_96_int8.tflite"))
# file names looked for in --models-dir: MLPerf Tiny KWS DS-CNN, TFLM person detection, MLPerf Tiny ResNet8
EXTRA_MODELS = ("kws_ref_model.tflite", "person_detect.tflite", "pretrainedResnet_quant.tflite")
TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")


@dataclass(frozen=True)
class Variant:
    """A kernel set: which emit backend, the defines it is compiled with, what it needs."""

    name: str
    backend: str  # mncompile emit backend: "aot" or "tflm"
    defines: tuple[str, ...] = ()
    cmsis_nn: bool = False  # TFLM built with its CMSIS-NN kernels (CMSIS_NN_ROOT)
    helium_only: bool = False  # only differs from `aot` on a core with the M-profile Vector Extension


VARIANTS = {v.name: v for v in (
    Variant("aot-portable", "aot", ("-DMN_KERNELS_PORTABLE",)),
    Variant("aot-dsp", "aot", ("-DMN_KERNELS_NO_MVE",), helium_only=True),
    Variant("aot", "aot"),
    Variant("tflm", "tflm"),
    Variant("tflm-cmsis", "tflm", cmsis_nn=True),
)}
BACKENDS = tuple(VARIANTS)


def is_helium(target: str) -> bool:
    return "Helium" in get_target(target).fpu


def compile_flags(variant: Variant) -> str:
    """CFLAGS/CXXFLAGS for a variant's build: the stack-usage flags and its defines."""
    return " ".join((STACK_FLAGS, *variant.defines))


def skip_reason(variant: Variant, target: str, env: dict[str, str]) -> str | None:
    """Why `variant` cannot (or need not) run on `target` with environment `env`; None: it runs."""
    if variant.helium_only and not is_helium(target):
        return f"{variant.name} only differs from aot on a Helium core ({target} has none)"
    if variant.backend == "tflm" and not env.get("TFLM_ROOT"):
        return f"{variant.name} needs TFLM_ROOT (a tflite-micro checkout with its third-party downloads)"
    if variant.cmsis_nn and not env.get("CMSIS_NN_ROOT"):
        return f"{variant.name} needs CMSIS_NN_ROOT (a CMSIS-NN checkout)"
    return None


@dataclass
class Row:
    model: str
    backend: str  # the variant's name
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
    layers: tuple = ()  # --layers: the slowest layers, (node, kind, MACs, instr/MAC, share), slowest first


# --- one row ----------------------------------------------------------------------------

def bench_one(model: Path, variant: Variant | str, target: str, root: Path, timeout: float,
              layers: int = 0) -> Row:
    """One row; `layers` > 0: an AOT project is emitted with --profile and the row keeps its `layers`
    slowest layers (profiling adds under 0.01 % to the inference's instructions)."""
    variant = VARIANTS[variant] if isinstance(variant, str) else variant
    row = Row(model.stem, variant.name, target)
    # TFLM's library is the same for every model on a target: its projects share a build folder, so it is
    # compiled once per target and kernel set; the application's objects (and their .su/.ci) are deleted
    # first, so nothing of the previous model is linked or counted.
    shared = variant.backend == "tflm"
    folder = root / (f"{variant.name}-{target}" if shared else f"{model.stem}-{variant.name}-{target}")
    project, build = folder / "project", folder / "build"
    folder.mkdir(parents=True, exist_ok=True)
    if shared:
        for objects in (build / "CMakeFiles").glob("*.dir"):
            if objects.name != "tflm.dir":
                shutil.rmtree(objects)
    t0 = time.monotonic()
    log(f"{model.name} {variant.name} {target}: emit")
    profile = layers > 0 and variant.backend == "aot"
    result = emit(model, target, project, backend=variant.backend, force=True, profile=profile)
    row.board = result.board.name
    # CMake prepends $CFLAGS/$CXXFLAGS to the toolchain's flags when it first configures a build folder.
    saved = {k: os.environ.get(k) for k in ("CFLAGS", "CXXFLAGS")}
    os.environ["CFLAGS"] = os.environ["CXXFLAGS"] = compile_flags(variant)
    nn_root = os.environ.get("CMSIS_NN_ROOT") if variant.cmsis_nn else None
    try:
        log(f"{model.name} {variant.name} {target}: build + QEMU ({compile_flags(variant)})")
        run = run_project(project, build_dir=build, timeout=timeout, cmsis_nn_root=nn_root)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    want = "cmsis-nn" if variant.cmsis_nn else "reference" if variant.backend == "tflm" else None
    row.check = "PASS" if run.passed else "FAIL: " + "; ".join(run.problems)
    if want is not None and run.kernels != want:  # e.g. a build folder configured earlier with other kernels
        row.check = f"FAIL: the firmware runs TFLM's {run.kernels} kernels, not {want} (delete {build})"
    row.arena = run.arena_reserved if run.arena_reserved is not None else run.report.arena_reserved
    row.stack, row.stack_exact = stack_bound(run.firmware.build_dir, variant.backend)
    row.flash = flash_bytes(run.firmware.elf)
    row.flash_no_golden = row.flash - golden_bytes(run.firmware.elf)
    row.ticks = run.ticks_per_inference
    row.instructions = run.instructions_per_inference
    row.macs = run.macs
    row.per_mac = run.instructions_per_mac
    if profile and run.profile is not None:
        timed = sorted((t for t in run.profile.layers if t.instructions), key=lambda t: -t.instructions)
        row.layers = tuple((t.node, t.kind, t.macs, t.instructions_per_mac, t.share) for t in timed[:layers])
    log(f"{model.name} {variant.name} {target}: {row.check} in {time.monotonic() - t0:.0f} s")
    return row


# --- tables -----------------------------------------------------------------------------

HEADER = ("model", "backend", "target (board)", "arena B", "stack B", "arena+stack B", "flash B",
          "flash w/o golden B", "ticks/inf", "instr/inf", "MACs", "instr/MAC", "check")


def n(v) -> str:
    return "-" if v is None else f"{v:,}"


def cells(r: Row) -> tuple[str, ...]:
    ge = "" if r.stack_exact else ">="
    both = None if r.arena is None or r.stack is None else r.arena + r.stack
    return (r.model, r.backend, f"{r.target} ({r.board})" if r.board else r.target, n(r.arena),
            "-" if r.stack is None else ge + n(r.stack), "-" if both is None else ge + n(both), n(r.flash),
            n(r.flash_no_golden), "-" if r.ticks is None else f"{r.ticks:,.0f}", n(r.instructions), n(r.macs),
            "-" if r.per_mac is None else f"{r.per_mac:.2f}", r.check)


def table(header: tuple[str, ...], body: list[tuple[str, ...]], numeric: set[int], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if i in numeric else "---" for i in range(len(header))) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in body])
    rows = [header, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in
                               enumerate(zip(row, widths, strict=True))).rstrip() for row in rows)


def render(rows: list[Row], markdown: bool) -> str:
    return table(HEADER, [cells(r) for r in rows], set(range(3, 12)), markdown)


SUMMARY_HEADER = ("model", "target", "MACs", "portable", "DSP", "MVE", "TFLM ref", "TFLM+CMSIS-NN",
                  "flash w/o golden AOT/TFLM", "arena AOT B", "arena TFLM B")


def summary_cells(found: dict[str, Row], helium: bool) -> tuple[str, ...]:
    """instr/MAC per kernel set for one model x target: on a Helium core `aot` is the MVE build and
    `aot-dsp` the DSP one; elsewhere `aot` is the DSP build and there is no MVE figure."""
    def per_mac(name: str | None) -> str:
        r = found.get(name) if name else None
        if r is None or r.per_mac is None:
            return "-" if r is None or r.check == "PASS" else "FAIL"
        return f"{r.per_mac:.2f}" + ("" if r.check == "PASS" else " (FAIL)")

    aot, ref = found.get("aot"), found.get("tflm")
    ratio = "-"
    if aot and ref and aot.flash_no_golden and ref.flash_no_golden:
        ratio = f"{aot.flash_no_golden / ref.flash_no_golden:.3f}"
    first = next(iter(found.values()))
    macs = next((r.macs for r in found.values() if r.macs is not None), None)
    return (first.model, first.target, n(macs), per_mac("aot-portable"), per_mac("aot-dsp" if helium else "aot"),
            per_mac("aot" if helium else None), per_mac("tflm"), per_mac("tflm-cmsis"), ratio,
            n(aot.arena if aot else None), n(ref.arena if ref else None))


def render_summary(rows: list[Row], markdown: bool, helium=is_helium) -> str:
    groups: dict[tuple[str, str], dict[str, Row]] = {}
    for r in rows:
        groups.setdefault((r.model, r.target), {})[r.backend] = r
    body = [summary_cells(found, helium(target)) for (_, target), found in groups.items()]
    return table(SUMMARY_HEADER, body, set(range(2, 11)), markdown)


LAYERS_HEADER = ("model", "backend", "target", "instr/MAC", "slowest layers: node kind (instr/MAC, share)")


def render_layers(rows: list[Row], markdown: bool) -> str:
    """Per profiled row, its slowest layers: what holds the whole model's instructions per MAC."""
    def layer(t) -> str:
        node, kind, macs, per_mac, share = t
        cost = f"{per_mac:.2f}/MAC" if macs else "no MACs"
        return f"{node} {kind} ({cost}, {100 * share:.0f}%)"

    body = [(r.model, r.backend, r.target, "-" if r.per_mac is None else f"{r.per_mac:.2f}",
             "; ".join(layer(t) for t in r.layers)) for r in rows if r.layers]
    return table(LAYERS_HEADER, body, {3}, markdown)


# --- command line -----------------------------------------------------------------------

def unique_models(paths: list[Path]) -> list[Path]:
    """The files among `paths` that exist, each content once (a copy or a link of a model runs once)."""
    models, digests = [], set()
    for m in paths:
        if not m.is_file():
            log(f"skipping {m}: not found")
            continue
        digest = hashlib.sha256(m.read_bytes()).hexdigest()
        if digest in digests:
            log(f"skipping {m}: the same bytes as a model already measured")
        else:
            digests.add(digest)
            models.append(m)
    return models


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help=f"comma-separated, of {', '.join(BACKENDS)} (default: all; tflm needs TFLM_ROOT, "
                        "tflm-cmsis also CMSIS_NN_ROOT)")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: the four QEMU targets)")
    p.add_argument("--model", action="append", type=Path, default=[], help="another int8 .tflite (repeatable)")
    p.add_argument("--models-dir", type=Path,
                   help=f"a folder holding any of {', '.join(EXTRA_MODELS)} (measured when present)")
    p.add_argument("--no-default-models", action="store_true", help="leave out tiny_int8 and VWW")
    p.add_argument("--build-root", type=Path,
                   help="keep projects and build folders here and reuse them (default: a temporary folder)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds QEMU may run per firmware")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")
    p.add_argument("--summary", action="store_true", help="also print the compact instr/MAC table")
    p.add_argument("--layers", type=int, default=0, metavar="N",
                   help="profile the AOT rows (emit --profile) and print each one's N slowest layers")
    args = p.parse_args(argv)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [b for b in backends if b not in VARIANTS]
    if bad:
        p.error(f"unknown backend(s) {', '.join(bad)}; use {', '.join(BACKENDS)}")
    bad = [t for t in targets if t not in TARGETS]
    if bad:
        p.error(f"unknown target(s) {', '.join(bad)}; use {', '.join(TARGETS)}")
    paths = [] if args.no_default_models else list(MODELS)
    if args.models_dir is not None:
        paths += [args.models_dir / name for name in EXTRA_MODELS]
    models = unique_models(paths + args.model)
    jobs = []
    for variant in (VARIANTS[b] for b in backends):
        for target in targets:
            reason = skip_reason(variant, target, dict(os.environ))
            if reason:
                log(f"skipping {variant.name} on {target}: {reason}")
            else:
                jobs.append((variant, target))

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
            for target in targets:
                for variant in (v for v, t in jobs if t == target):
                    try:
                        rows.append(bench_one(model, variant, target, root, args.timeout, args.layers))
                    except MncompileError as exc:
                        log(f"{model.name} {variant.name} {target}: {exc.message}")
                        first = exc.message.splitlines()[0]
                        rows.append(Row(model.stem, variant.name, target, check=f"error: {first}"))
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(render(rows, args.markdown))
    if args.summary:
        print()
        print(render_summary(rows, args.markdown))
    if args.layers > 0:
        print()
        print(render_layers(rows, args.markdown))
    return 0 if rows and all(r.check == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
