"""Memory benchmark: the AOT backend's RAM per `--memory` mode (speed, balanced, min) and what it costs.

    .venv/bin/python bench/memory.py [--work-dir DIR] [--models v1-0.25-96,v1-0.5-128,v2-0.35-96,v2-1.0-224]
                                     [--no-run] [--markdown] [--timeout SECONDS]

For four MobileNets (3 channels, untrained random weights whose batch-norm statistics are estimated from
random images, int8 by `mncompile.quantize.convert.to_int8_tflite`; the .tflite files are cached in
--work-dir, default /tmp/bench-mem, so a rerun skips Keras and the converter):

- V1 alpha 0.25 @96, 2 classes (shaped like Visual Wake Words);
- V1 alpha 0.5 @128, V2 alpha 0.35 @96, V2 alpha 1.0 @224, 1000 classes.

Per model it prints the layer-wise lower bound (`mncompile.plan.plan_model(...).lower_bound`: TFLM's time
axis, the largest sum of tensors alive at one operator) and the AOT layer-wise arena (`--memory speed`),
then one row per mode (`mncompile.aot.codegen.generate(model, memory=MODE, room=ROOM)`):

- balanced runs with room = half the model's layer-wise RAM (patch stages with the fewest extra MACs whose
  RAM fits it); speed and min ignore the room. When nothing fits the room, balanced keeps the least RAM
  its search reached and the mode cell says "over": emit's budget check refuses that project, so its
  figures come from the mode with the same schedule (min, usually), else it is not run;
- arena B: the static arena; RAM B: arena + the model's buffers outside it (an int8 input a patch stage
  reads in place from the caller's buffer is RAM too); arena/LB: arena over the layer-wise lower bound;
- extra MACs: what the patch stages compute again (tile overlaps), absolute and as % of the model's MACs
  (`Choice.total_macs`, convolutions and fully connected layers run once);
- min-15: min within 15 % extra MACs (`generate(..., max_extra=0.15)`, emit's `max_extra`; no CLI option);
- stages: each patch stage as first..last graph node and its tile grid (rows x columns);
- instr/inf, instr/MAC: each mode's project is emitted for cortex-m7 (`mncompile.pipeline.emit`, backend
  aot, one golden vector; balanced with ram=room so the budget's room is the same, and the chosen
  schedule is checked against generate()'s), built and run on QEMU (mps2-an500, -icount shift=0) by
  `mncompile.run.validate.run_project`, which checks the output bit-exact against the host reference;
  instructions = SysTick ticks x the board's instructions per tick, per MAC = over the MACs
  `run_project` counts for the model. Two modes with the same schedule share one build. The speed and
  min projects are emitted with --ram/--flash of the QEMU board's 4 MB regions (V2 1.0@224 exceeds an
  STM32H743's 512 KB of RAM layer by layer and its 2 MB of flash).

`--no-run` skips emit/QEMU (memory figures only). Progress goes to stderr, the tables to stdout; the
last lines check the issue's goals (met / NOT met with the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = "cortex-m7"
BOARD_BYTES = 4 * 1024 * 1024  # mps2-an500's RAM, ARENA, FLASH and MODEL regions (4 MB each)
ROOM_FRACTION = 0.5  # balanced: within 50 % of the layer-wise RAM
MODES = ("speed", "balanced", "min", "min-15")  # min-15: min within 15 % extra MACs (generate's max_extra)
MIN_15 = 0.15


@dataclass(frozen=True)
class Net:
    key: str
    label: str
    arch: str
    alpha: float
    resolution: int
    classes: int


NETS = {n.key: n for n in (
    Net("v1-0.25-96", "V1 0.25@96 (VWW)", "v1", 0.25, 96, 2),
    Net("v1-0.5-128", "V1 0.5@128", "v1", 0.5, 128, 1000),
    Net("v2-0.35-96", "V2 0.35@96", "v2", 0.35, 96, 1000),
    Net("v2-1.0-224", "V2 1.0@224", "v2", 1.0, 224, 1000),
)}


@dataclass
class ModeRow:
    mode: str
    arena: int
    ram: int
    extra_macs: int
    total_macs: int
    stages: list[dict]  # Schedule.to_json() of each patch stage
    room: int | None = None
    instructions: int | None = None
    run_macs: int | None = None
    check: str = ""
    shared_with: str | None = None  # built once with this mode (same schedule)

    @property
    def extra_share(self) -> float:
        return self.extra_macs / self.total_macs if self.total_macs else 0.0

    @property
    def over_room(self) -> bool:
        """balanced found nothing within its room (it then keeps the least RAM it reached)."""
        return self.room is not None and self.ram > self.room

    @property
    def schedule_key(self) -> str:
        return json.dumps([self.arena, self.stages], sort_keys=True)


@dataclass
class NetResult:
    net: Net
    path: Path
    lower_bound: int
    layerwise_arena: int
    layerwise_ram: int
    rows: list[ModeRow] = field(default_factory=list)

    def row(self, mode: str) -> ModeRow:
        return next(r for r in self.rows if r.mode == mode)


def log(message: str) -> None:
    print(f"[memory] {message}", file=sys.stderr, flush=True)


# --- models -----------------------------------------------------------------------------

def bn_calibrated_int8(net: Net, seed: int = 0) -> bytes:
    """An untrained MobileNet whose batch-norm statistics come from random images (training-mode passes
    with momentum 0, no weight update; tests/conftest.py's bn_calibrated_keras), converted to int8 with
    random calibration images (its tflite_zoo fixture). Without the statistics an untrained network's
    activations shrink to nothing and quantize to degenerate scales."""
    import numpy as np

    from mncompile.model.builder import build_keras
    from mncompile.model.loader import LoadedModel
    from mncompile.model.spec import MobileNetSpec
    from mncompile.quantize.convert import to_int8_tflite
    from mncompile.tfenv import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(seed)
    spec = MobileNetSpec(net.arch, net.alpha, net.resolution, 3, net.classes)
    model = build_keras(spec, batch_size=1, bn_momentum=0.0)
    x = np.random.default_rng(seed).uniform(-1, 1, (4, net.resolution, net.resolution, 3)).astype("float32")
    for _ in range(2):  # momentum 0: each pass sets the statistics of every layer in turn
        for i in range(len(x)):
            model(x[i:i + 1], training=True)
    calib = np.random.default_rng(1).uniform(-1, 1, (8, *spec.input_shape)).astype(np.float32)
    path = Path(f"{net.key}.tflite")
    return to_int8_tflite(LoadedModel(path, "keras", model, spec.input_shape, spec.classes, None), calib)


def model_file(net: Net, work: Path) -> Path:
    """The cached int8 .tflite of `net` in `work` (built on first use)."""
    path = work / "models" / f"{net.key}.tflite"
    if not path.exists():
        log(f"{net.label}: building the Keras model and converting it to int8")
        t0 = time.monotonic()
        data = bn_calibrated_int8(net)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        log(f"{net.label}: {path} ({len(data):,} B) in {time.monotonic() - t0:.0f} s")
    return path


# --- memory figures ---------------------------------------------------------------------

def measure(net: Net, path: Path) -> NetResult:
    """The layer-wise bound and each mode's schedule, from generate() (no emit)."""
    from mncompile.aot.codegen import generate
    from mncompile.graph.verified import read_model
    from mncompile.plan import plan_model

    model = read_model(path)
    bound = plan_model(model).lower_bound
    result = None
    for mode in MODES:
        t0 = time.monotonic()
        room = int(result.layerwise_ram * ROOM_FRACTION) if mode == "balanced" else None
        program = generate(model, memory=mode.split("-")[0], room=room,
                           max_extra=MIN_15 if mode == "min-15" else None)
        choice = program.choice
        if result is None:  # speed comes first
            result = NetResult(net, path, bound, program.arena_bytes, choice.layerwise_ram)
        row = ModeRow(mode, program.arena_bytes, program.arena_bytes + program.outside_arena_bytes,
                      choice.extra_macs, choice.total_macs, [s.to_json() for s in program.memory.schedules], room)
        if row.ram != choice.ram:
            raise AssertionError(f"{net.label} {mode}: RAM {row.ram:,} B != Choice.ram {choice.ram:,} B")
        result.rows.append(row)
        log(f"{net.label} {mode}: arena {row.arena:,} B, RAM {row.ram:,} B, extra MACs {row.extra_macs:,} "
            f"({row.extra_share:.1%}), {len(row.stages)} stage(s) in {time.monotonic() - t0:.1f} s")
    return result


# --- QEMU ---------------------------------------------------------------------------------

def run_mode(result: NetResult, row: ModeRow, work: Path, timeout: float) -> None:
    """Emit `row`'s project for cortex-m7, check it has generate()'s schedule, build and run it on QEMU."""
    from mncompile.errors import MncompileError
    from mncompile.pipeline import emit
    from mncompile.run.validate import run_project

    label = f"{result.net.label} {row.mode}"
    folder = work / "projects" / f"{result.net.key}-{row.mode}"
    ram = row.room if row.mode == "balanced" else BOARD_BYTES
    log(f"{label}: emit (ram {ram:,} B)")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        emitted = emit(result.path, TARGET, folder / "project", backend="aot", memory=row.mode.split("-")[0],
                       golden=1, ram=ram, flash=BOARD_BYTES, force=True,
                       max_extra=MIN_15 if row.mode == "min-15" else None)
    except MncompileError as e:
        row.check = f"emit failed: {str(e).splitlines()[0]}"
        log(f"{label}: {row.check}")
        return
    stages, arena = emitted.aot["patch_stages"], emitted.aot["arena_bytes"]
    if json.dumps([arena, stages], sort_keys=True) != row.schedule_key:
        row.check = f"FAIL: emit chose another schedule (arena {arena:,} B, {len(stages)} stage(s)) than generate()"
        log(f"{label}: {row.check}")
        return
    log(f"{label}: build + QEMU")
    t0 = time.monotonic()
    run = run_project(folder / "project", build_dir=folder / "build", timeout=timeout)
    row.check = "PASS" if run.passed else "FAIL: " + "; ".join(run.problems)
    row.instructions, row.run_macs = run.instructions_per_inference, run.macs
    log(f"{label}: {row.check}, {row.instructions or 0:,} instructions per inference "
        f"in {time.monotonic() - t0:.0f} s")


def run_all(result: NetResult, work: Path, timeout: float) -> None:
    """Each mode once per distinct schedule; a mode with the same schedule as an earlier one shares its run."""
    done: dict[str, ModeRow] = {}
    # balanced last: when its room cannot be met it takes min's schedule, which emit only gives with more RAM
    for row in sorted(result.rows, key=lambda r: r.mode == "balanced"):
        same = done.get(row.schedule_key)
        if same is not None:
            row.instructions, row.run_macs, row.check, row.shared_with = \
                same.instructions, same.run_macs, same.check, same.mode
            log(f"{result.net.label} {row.mode}: same schedule as {same.mode}, not built again")
            continue
        if row.over_room:
            row.check = "not run: over its room (emit's budget check refuses it)"
            log(f"{result.net.label} {row.mode}: {row.check}")
            continue
        run_mode(result, row, work, timeout)
        done[row.schedule_key] = row


# --- tables -------------------------------------------------------------------------------

HEADER = ("model", "layer-wise LB B", "mode", "arena B", "RAM B", "arena/LB", "extra MACs", "extra %",
          "stages (nodes, tiles)", "instr/inf", "instr/MAC", "check")


def stages_text(stages: list[dict]) -> str:
    if not stages:
        return "layer by layer"
    return "; ".join(f"{s['first_node']}..{s['last_node']} {s['tiles'][0]}x{s['tiles'][1]}" for s in stages)


def cells(result: NetResult, row: ModeRow) -> tuple[str, ...]:
    per_mac = row.instructions / row.run_macs if row.instructions and row.run_macs else None
    check = row.check + (f" (= {row.shared_with})" if row.shared_with else "")
    mode = row.mode + (f" (room {row.room:,}{': over' if row.over_room else ''})" if row.room is not None else "")
    return (result.net.label, f"{result.lower_bound:,}", mode, f"{row.arena:,}", f"{row.ram:,}",
            f"{row.arena / result.lower_bound:.3f}", f"{row.extra_macs:,}", f"{row.extra_share:.1%}",
            stages_text(row.stages), "-" if row.instructions is None else f"{row.instructions:,}",
            "-" if per_mac is None else f"{per_mac:.2f}", check or "-")


def header_lines(results: list[NetResult]) -> list[str]:
    lines = [f"AOT memory modes on {TARGET}; balanced within {ROOM_FRACTION * 100:.0f} % of the layer-wise RAM "
             "(room = half of arena + I/O buffers, layer by layer)",
             "LB: layer-wise lower bound (TFLM's time axis: the largest sum of tensors alive at one operator); "
             "RAM: arena + buffers outside it (an int8 input read in place by a patch stage)"]
    for r in results:
        lines.append(f"{r.net.label}: lower bound {r.lower_bound:,} B, AOT layer-wise arena {r.layerwise_arena:,} B, "
                     f"layer-wise RAM {r.layerwise_ram:,} B, {r.rows[0].total_macs:,} MACs ({r.path.name})")
    return lines


def plain_table(results: list[NetResult]) -> str:
    rows = [HEADER] + [cells(r, row) for r in results for row in r.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    right = {1, 3, 4, 5, 6, 7, 9, 10}
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(results: list[NetResult]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---:" if i in {1, 3, 4, 5, 6, 7, 9, 10} else "---"
                                                            for i in range(len(HEADER))) + "|"]
    out += ["| " + " | ".join(cells(r, row)) + " |" for r in results for row in r.rows]
    return "\n".join(out)


# --- goals ----------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def goal_lines(results: dict[str, NetResult]) -> list[str]:
    """The issue's goals for `min`, each met / NOT met with its figures (a model not benchmarked: skipped)."""
    lines = []
    r = results.get("v1-0.25-96")
    if r:
        m = r.row("min")
        lines.append(f"goal V1 0.25@96: min arena <= 16,384 B with <= 15 % extra MACs: "
                     f"{verdict(m.arena <= 16384 and m.extra_share <= 0.15)} "
                     f"(arena {m.arena:,} B, extra MACs {m.extra_macs:,} = {m.extra_share:.1%})")
    r = results.get("v2-0.35-96")
    if r:
        m = r.row("min")
        lines.append(f"goal V2 0.35@96: min arena <= 0.25 x the layer-wise bound: "
                     f"{verdict(m.arena <= 0.25 * r.lower_bound)} (arena {m.arena:,} B = "
                     f"{m.arena / r.lower_bound:.3f} x {r.lower_bound:,} B; limit {r.lower_bound / 4:,.0f} B)")
    r = results.get("v2-1.0-224")
    if r:
        m = r.row("min")
        lines.append(f"goal V2 1.0@224: min arena < 172 kB: {verdict(m.arena < 172000)} against 172,000 B, "
                     f"{verdict(m.arena < 176128)} against 176,128 B (172 KiB) (arena {m.arena:,} B; "
                     f"RAM incl. the input read in place {m.ram:,} B: {verdict(m.ram < 172000)} / "
                     f"{verdict(m.ram < 176128)})")
    return lines


# --- main ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/bench-mem"),
                        help="cached .tflite files (models/) and projects (projects/)")
    parser.add_argument("--models", default=",".join(NETS), help=f"comma-separated subset of {','.join(NETS)}")
    parser.add_argument("--no-run", action="store_true", help="memory figures only: no emit, build or QEMU")
    parser.add_argument("--markdown", action="store_true", help="the table as Markdown (for the README)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds one QEMU run may take")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in NETS]
    if unknown or not keys:
        parser.error(f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(NETS)}")
    work = args.work_dir.resolve()
    results: dict[str, NetResult] = {}
    for key in keys:
        net = NETS[key]
        result = measure(net, model_file(net, work))
        if not args.no_run:
            run_all(result, work, args.timeout)
        results[key] = result
    ordered = list(results.values())
    print("\n".join(header_lines(ordered)))
    print()
    print(markdown_table(ordered) if args.markdown else plain_table(ordered))
    print()
    print("\n".join(goal_lines(results)))
    failed = [f"{r.net.label} {row.mode}" for r in ordered for row in r.rows
              if row.check and row.check != "PASS" and not row.check.startswith("not run")]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
