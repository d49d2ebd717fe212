"""Rendering: Rich tables on stdout, progress and diagnostics on stderr, or one JSON document."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mncompile.model.analytic import NetworkSummary
from mncompile.progress import Task

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def print_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


class _RichTask:
    def __init__(self, progress: Progress, task_id):
        self._progress, self._id = progress, task_id
        self.done = 0

    def advance(self, steps: int = 1, **fields: object) -> None:
        self.done += steps
        self._progress.advance(self._id, steps)


class RichReporter:
    """Progress bars and stage announcements on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def stage(self, name: str, detail: str = "") -> None:
        if not self.quiet:
            err.print(f"[bold cyan]==> {name}[/]" + (f": {detail}" if detail else ""),
                      highlight=False)

    def info(self, message: str) -> None:
        if not self.quiet:
            err.print(f"    {message}", highlight=False, markup=False)

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        columns = (TextColumn("    {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        live = err.is_terminal and not self.quiet
        started = time.monotonic()
        with Progress(*columns, console=err, disable=not live, transient=True) as progress:
            task = _RichTask(progress, progress.add_task(description, total=total))
            yield task
        if not live and not self.quiet:  # logs and pipes: one line per finished task, no bars
            count = f"{task.done}/{total}" if total else f"{task.done}"
            err.print(f"    {description}: {count} in {time.monotonic() - started:.1f} s",
                      highlight=False, markup=False)


def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f}M"


def summary_table(summary: NetworkSummary) -> Table:
    s = summary.spec
    table = Table(title=f"MobileNet{s.arch.upper()} alpha={s.alpha:g} "
                        f"{s.resolution}x{s.resolution}x{s.channels}, {s.classes} classes",
                  title_justify="left")
    for name in ("layer", "type", "output", "mult-adds", "params", "std-conv mult-adds",
                 "saving"):
        table.add_column(name, justify="left" if name in ("layer", "type", "output") else "right")
    for row in summary.rows:
        h, w, c = row.output_shape
        table.add_row(row.name, row.kind, f"{h}x{w}x{c}", f"{row.macs:,}", f"{row.params:,}",
                      f"{row.standard_macs:,}" if row.standard_macs else "",
                      f"{row.saving:.4f}" if row.saving is not None else "")
    ratio = summary.separable_macs / summary.standard_macs if summary.standard_macs else None
    table.add_section()
    table.add_row("total", "", "", f"{summary.macs:,}", f"{summary.params:,}",
                  f"{summary.standard_macs:,}", f"{ratio:.4f}" if ratio else "")
    table.caption = ("saving = (depthwise + pointwise) / standard conv = 1/N + 1/Dk², "
                     "shown on the 1x1 row of each separable pair")
    table.caption_justify = "left"
    return table


def summary_totals(summary: NetworkSummary) -> str:
    return (f"{_millions(summary.macs)} mult-adds, {_millions(summary.params)} parameters "
            f"({summary.keras_params:,} as Keras counts them, with batch-norm statistics)")


def _db(value: float | None) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "exact"
    return f"{value:.1f}"


def eval_tables(report) -> list:
    """Rich renderables for an `EvalReport`: overall, per class, per layer."""
    overall = Table(title=f"float vs int8 on {report.samples} {report.dataset} validation images",
                    title_justify="left")
    for name in ("model", "emulator", "top-1 accuracy"):
        overall.add_column(name, justify="right" if name == "top-1 accuracy" else "left")
    overall.add_row(str(report.float_model), "LiteRT (float .tflite)", f"{report.float_accuracy:.2%}")
    overall.add_row(str(report.int8_model), "TFLM host interpreter", f"{report.int8_accuracy:.2%}")
    overall.caption = (f"int8 - float: {-report.accuracy_drop_pp:+.2f} pp; top-1 agreement "
                       f"{report.top1_agreement:.2%}; mean |float - dequantized int8| output "
                       f"{report.mean_abs_output_diff:.5f}")
    overall.caption_justify = "left"
    classes = Table(title="per class", title_justify="left")
    for name in ("class", "images", "float", "int8", "agreement"):
        classes.add_column(name, justify="left" if name == "class" else "right")
    for row in report.per_class:
        n = row.samples
        classes.add_row(row.name, str(n), f"{row.float_correct / n:.1%}", f"{row.int8_correct / n:.1%}",
                        f"{row.top1_agree / n:.1%}")
    out = [overall, classes]
    if report.layers is not None:
        layers = Table(title=f"per-layer SQNR on {report.layers.samples} images, worst first "
                             f"(float and int8 ops mapped by {report.layers.mapped_by})",
                       title_justify="left")
        for name in ("rank", "op", "layer", "type", "SQNR alone dB", "SQNR end-to-end dB", "scale"):
            layers.add_column(name, justify="left" if name in ("layer", "type") else "right")
        for rank, e in enumerate(report.layers.layers, 1):
            layers.add_row(str(rank), str(e.op), e.name, e.kind, _db(e.sqnr_alone), _db(e.sqnr_end_to_end),
                           f"{e.scale:.3g}")
        layers.caption = ("alone: the op on its float inputs, quantized; end-to-end: the int8 network "
                          "from the image. Higher is better; each 6 dB is one bit.")
        layers.caption_justify = "left"
        out.append(layers)
    if getattr(report, "blame", None) is not None:
        out.append(blame_table(report.blame))
    return out


def blame_table(blame) -> Table:
    """A `BlameReport`: each layer kept in float (and alone int8), ranked by what it recovers."""
    base = blame.fully_int8
    table = Table(title=f"blame on {blame.samples} images: each layer alone kept in float, the rest int8 "
                        f"(fully int8: {base.accuracy:.2%}, {_db(base.sqnr_db)} dB; float {blame.float_accuracy:.2%})",
                  title_justify="left")
    for name in ("rank", "op", "layer", "type", "accuracy gain pp", "SQNR gain dB", "accuracy kept float",
                 "SQNR only-int8 dB"):
        table.add_column(name, justify="left" if name in ("layer", "type") else "right")
    for rank, r in enumerate(blame.rows, 1):
        gain = r.sqnr_gain_db
        table.add_row(str(rank), str(r.op), r.name, r.kind, f"{r.accuracy_gain_pp:+.2f}",
                      f"{gain:+.1f}" if gain not in (float("inf"), float("-inf")) else _db(gain),
                      f"{r.kept_float.accuracy:.2%}", _db(r.only_int8.sqnr_db) if r.only_int8 else "-")
    same = {True: "the fully int8 model is the int8 model given (same calibration)",
            False: "the fully int8 model re-quantized here differs from the one given",
            None: ""}[blame.baseline_is_int8_model]
    table.caption = ("gains: end-to-end top-1 accuracy and output SQNR against float, with the layer in float, "
                     "minus the fully int8 model's; only-int8: the layer alone int8, the rest float. "
                     f"LiteRT, calibrated once on {blame.calibration_samples} images; {same}.")
    table.caption_justify = "left"
    return table


def emulator_line(report) -> str:
    a = report.emulators
    return (f"emulators on the int8 model: TFLM and LiteRT outputs bit-identical on {a.identical}/{a.samples} "
            f"images, largest difference {a.max_abs_lsb} LSB, same top-1 on {a.top1_agree}/{a.samples}")


def plan_table(result) -> Table:
    table = Table(title=f"arena plan of {result.model.name} (time: inputs 0, op i at i + 1)", title_justify="left")
    for name in ("id", "tensor", "bytes", "first", "last", "offset", "TFLM offset"):
        table.add_column(name, justify="left" if name == "tensor" else "right")
    for row in result.buffer_rows():
        name = row["name"].split(";")[0]
        table.add_row(str(row["id"]), name if len(name) <= 60 else name[:57] + "...", f"{row['bytes']:,}",
                      str(row["first"]), str(row["last"]), f"{row['offset']:,}", f"{row['tflm_offset']:,}")
    return table


def plan_summary(result) -> str:
    lb, greedy, ours = result.lower_bound, result.greedy.arena_bytes, result.ours.arena_bytes
    a = dict(result.arena)
    how = ("predicted" if result.exact else
           "measured (an operator is not modelled; 32-bit device: an upper bound from the host)")
    return (f"lower bound {lb:,} B; TFLM greedy {greedy:,} B ({greedy / lb:.2f}x); mncompile {ours:,} B "
            f"({ours / lb:.2f}x, {result.ours.strategy}); constants {result.constant_bytes:,} B, "
            f"model file {result.model_bytes:,} B, input+output {result.io_bytes:,} B\n"
            f"{how} whole TFLM arena (plan + persistent, reference kernels): host x86-64 "
            f"{a['host-tflm-greedy'].total:,} B with TFLM's plan, {a['host-mncompile'].total:,} B with ours; "
            f"32-bit device {a['device-tflm-greedy'].total:,} B with TFLM's plan, "
            f"{a['device-mncompile'].total:,} B with ours")


def aot_plan_line(program, unsupported: str | None) -> str:
    """The AOT backend's figures next to TFLM's: layer by layer, and the schedule --memory picked."""
    if program is None:
        return f"AOT backend: cannot compile this model ({unsupported})"
    c = program.choice
    text = (f"AOT backend (--memory {c.mode}): RAM layer by layer {c.layerwise_ram:,} B; chosen {c.ram:,} B "
            f"(arena {program.arena_bytes:,} B")
    text += f", input {program.input_bytes:,} B read in place)" if program.memory.external_input else ")"
    for s in program.memory.schedules:
        text += (f"; patch stage nodes {s.nodes[0].node}..{s.last_node} in {s.grid[0]}x{s.grid[1]} tiles")
    if c.extra_macs:
        text += f"; {c.extra_macs:,} extra MACs (+{c.extra_macs / c.total_macs:.1%})"
    return text


def memory_table(report) -> Table:
    table = Table(title=f"memory on {report.target}: constants {report.constants_bytes:,} B, arena "
                        f"{report.arena_bytes:,} B, I/O buffers {report.io_bytes:,} B", title_justify="left")
    for name in ("limit", "counts", "used B", "limit B", "headroom B", "source"):
        table.add_column(name, justify="right" if name.endswith(" B") else "left")
    for row in report.rows:
        table.add_row(row.name, row.what, f"{row.used:,}", f"{row.limit:,}",
                      f"{row.headroom:,}" if row.fits else f"[red]{row.headroom:,}[/]", row.source)
    return table


def npu_table(plan, npu, arena) -> Table:
    """Vela's figures next to mncompile's own CPU plan: the same int8 model run by TFLM on the
    target's Cortex-M (reference kernels, our arena plan) or offloaded to its Ethos-U."""
    o = npu.options
    table = Table(title=f"{npu.target}: the host CPU (TFLM, mncompile plan) vs the {npu.npu} (Vela {npu.vela_version}, "
                        f"{o.system_config}, {o.memory_mode}, optimise {o.optimise})", title_justify="left")
    for name in ("", "CPU only", f"{npu.npu} ({npu.accelerator_config})"):
        table.add_column(name, justify="left" if not name else "right")
    sram = f"{arena.total:,} B (Vela SRAM {npu.sram_bytes:,} B + TFLM {arena.total - npu.sram_bytes:,} B)"
    if o.memory_mode.startswith("Dedicated_Sram"):
        sram = f"{arena.total:,} B in DRAM; NPU cache {npu.sram_bytes:,} B in SRAM"
    table.add_row("tensor arena", f"{plan.device_arena_bytes:,} B", sram)
    table.add_row("flash (model)", f"{plan.planned_model_bytes:,} B",
                  f"{npu.model_bytes:,} B (Vela off-chip flash {npu.off_chip_flash_bytes:,} B)")
    table.add_row("operators", f"{len(plan.graph.ops)} on the CPU",
                  f"{npu.npu_input_ops} on the NPU, {len(npu.cpu_ops)} on the CPU")
    speed = f"{npu.cycles_total:,} cycles at {npu.clock_hz / 1e6:g} MHz = {npu.inference_time_s * 1e3:.3f} ms"
    table.add_row("time per inference", "not estimated (run it: `mncompile run` on a QEMU target)", speed)
    table.add_row("MACs", f"{npu.macs:,}", f"{npu.macs:,}")
    return table


def npu_fallback_lines(npu) -> list[str]:
    if not npu.cpu_ops:
        return [f"all {npu.input_ops} operators run on the {npu.npu}"]
    return [f"{len(npu.cpu_ops)} operator(s) fall back to the CPU:"] + [f"  {c.describe()}" for c in npu.cpu_ops]


def emit_lines(result) -> list[str]:
    """What `emit` (and the end of `build`) prints about the written project."""
    t = result.target
    if result.npu is not None:
        return [f"wrote {result.out}/ ({len(result.files) + 1} files): TFLM + Ethos-U project for {t.name}, "
                f"board {result.board.name}",
                f"flash: Vela's model {result.firmware_model_bytes:,} B; RAM: tensor arena "
                f"{result.arena_bytes['reference']:,} B (predicted {result.arena_predicted['reference']:,} B "
                "+ margin)",
                f"golden vectors: {result.golden.count} ({result.golden.source}), expected outputs from "
                "the TFLM host interpreter (CPU reference kernels)",
                *result.npu_lines(),
                f"build: cmake -S {result.out} -B {result.out}/build -G Ninja -DTFLM_ROOT=/path/to/tflite-micro "
                f"-DETHOSU_DRIVER_ROOT=/path/to/ethos-u-core-driver && cmake --build {result.out}/build"]
    lines = [f"wrote {result.out}/ ({len(result.files) + 1} files): TFLM project for {t.name}, "
             f"board {result.board.name}",
             f"flash: model {result.firmware_model_bytes:,} B (memory plan embedded); "
             f"RAM: tensor arena {result.arena_bytes['reference']:,} B "
             f"(predicted {result.arena_predicted['reference']:,} B + margin; CMSIS-NN "
             f"{result.arena_bytes['cmsis-nn']:,} B)",
             f"golden vectors: {result.golden.count} ({result.golden.source}), expected outputs from "
             "the TFLM host interpreter",
             f"build: cmake -S {result.out} -B {result.out}/build -G Ninja -DTFLM_ROOT=/path/to/tflite-micro "
             f"&& cmake --build {result.out}/build"]
    if t.qemu_machine:
        lines.append(f"run on QEMU {t.qemu_machine}: cmake --build {result.out}/build --target run")
    return lines


def build_summary(result) -> str:
    """The last lines of `build`: accuracy, RAM, flash, headroom, where the project is."""
    parts = []
    e = result.evaluation
    if e is not None:
        parts.append(f"accuracy float {e.float_accuracy:.2%}, int8 {e.int8_accuracy:.2%} "
                     f"({e.samples} validation images)")
    m = result.memory
    if m is not None:
        rows = {row.name: row for row in m.rows}
        for name in ("ram", "flash", "budget"):
            row = rows.get(name)
            if row is not None:
                parts.append(f"{name} {row.used:,} / {row.limit:,} B")
        parts.append(f"headroom {m.headroom:,} B")
    if result.emitted is not None:
        parts.append(f"project {result.emitted.out}")
    done = "stages done: " + ", ".join(result.completed)
    warning = f"\nwarning: {e.warning()}" if e is not None and e.warning() else ""
    return "summary: " + "; ".join(parts) + warning + "\n" + done


def printable(text: str) -> str:
    """A label or name from the user's files as the firmware prints it: every character outside
    printable ASCII as \\xNN (each byte of its UTF-8 form) and a backslash as \\\\, so it
    cannot break a table row or a line."""
    out = []
    for b in text.encode("utf-8", errors="surrogatepass"):
        out.append("\\\\" if b == 0x5C else chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}")
    return "".join(out)


def run_renderables(result) -> list:
    """What `run` (and `build --run`) prints about a firmware run: the build, a table of the
    golden vectors, time per inference, the arena and the verdict. Rich markup strings (their
    data escaped) and a table."""
    from rich.markup import escape

    fw = result.firmware
    unit = result.report.ticks_unit or "ticks"
    lines: list = [
        escape(f"project {result.project}: {result.target.name} (board {result.board}), "
               + ("mncompile AOT kernels" if result.kernels == "aot" else f"TFLM {result.kernels} kernels")),
        escape(f"firmware {fw.elf}: text {fw.text:,} B, data {fw.data:,} B, bss {fw.bss:,} B"
               + (f"; stack used {result.report.stack_used:,} of {result.report.stack_size:,} B"
                  if result.report.stack_used is not None else "")),
        f"ran on QEMU {result.machine} (-icount shift=0): firmware exit status {result.qemu.exit_code}",
    ]
    table = Table(title=escape(f"golden vectors (expected outputs: {result.project}/mncompile.json)"),
                  title_justify="left")
    for name in ("vector", "result", "class", unit, "instructions", "detail"):
        table.add_column(name, justify="right" if name in ("vector", unit, "instructions") else "left")
    for v in result.vectors:
        style = "green" if v.status == "PASS" else "red"
        cls = "" if v.predicted is None else f"{v.predicted}" + (f" ({printable(v.label)})" if v.label else "")
        table.add_row(str(v.index), f"[{style}]{v.status}[/]", escape(cls), "" if v.ticks is None else f"{v.ticks:,}",
                      "" if v.instructions is None else f"{v.instructions:,}", escape(v.detail))
    lines.append(table)
    lines.append(f"vectors: {result.vectors_passed}/{result.golden_count} PASS ({len(result.report.vectors)} "
                 f"reported, mncompile.json has {result.golden_count})")
    ticks = result.ticks_per_inference
    if ticks is not None:
        text = f"per inference: {ticks:,.0f} {unit}"
        if result.instructions_per_tick is not None:
            text += (f" x {result.instructions_per_tick:g} instructions/tick = "
                     f"{result.instructions_per_inference:,} instructions")
            if result.instructions_per_mac is not None:
                text += f"; {result.macs:,} MACs: {result.instructions_per_mac:.2f} instructions/MAC"
        lines.append(text + " (QEMU counts instructions, not a real core's cycles)")
    r = result.report
    if r.camera_frames and r.camera_ticks is not None:
        per = r.camera_ticks / r.camera_frames
        text = f"camera path: {r.camera_frames} raw frames converted to input tensors, {per:,.0f} {unit}"
        if result.instructions_per_tick is not None:
            text += f" = {per * result.instructions_per_tick:,.0f} instructions"
        lines.append(text + " per frame")
    if r.arena_used is not None:
        reserved = r.arena_reserved if r.arena_reserved is not None else result.arena_reserved
        text = f"arena: arena_used_bytes() {r.arena_used:,} B"
        if result.arena_predicted is not None:
            text += f" {'=' if result.arena_matches else 'vs'} predicted {result.arena_predicted:,} B"
        if reserved is not None:
            text += f" (reserved {reserved:,} B)"
        lines.append(text)
    lines.extend(escape(f"note: {n}") for n in result.notes)
    if result.passed:
        lines.append("[bold green]PASS[/]: every golden vector reproduces the expected output of mncompile.json")
    else:
        lines.extend(f"[bold red]FAIL[/]: {escape(p)}" for p in result.problems)
    return lines
