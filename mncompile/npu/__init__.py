"""The npu stage: compile the int8 model for an Arm Ethos-U NPU with Vela, and read what it says.

Vela (the PyPI package ``ethos-u-vela``) rewrites an int8 .tflite for Ethos-U55/U65/U85: every
run of NPU-supported operators becomes one ``ethos-u`` custom operator holding a command stream
and compressed weights; the operators the NPU cannot run stay TFLite operators that TFLM runs
on the host Cortex-M. `compile_for_npu` runs Vela's command line (``python -m ethosu.vela``) in
a child process on the int8 model, with the target's accelerator config and the system config,
memory mode and optimisation strategy from `VelaOptions`, into a folder it writes atomically.
It returns a frozen `NpuResult`:

- from Vela's summary CSV (``<model>_summary_<system config>.csv``, one row): SRAM, off-chip
  flash, on-chip flash and DRAM used (Vela writes KiB; a byte figure is ``KiB * 1024``, exact
  because Vela divides byte counts by 1024), NPU cycles and total cycles, the inference time and
  inferences per second at the system config's core clock, and the MACs;
- from Vela's console report: its own CPU and NPU operator counts (after its graph rewrites, so
  they count Vela's operators, not the input model's) and, for each operator it leaves on the
  CPU, the operator, its output tensor and Vela's reason (the "Warning (supported operators)"
  lines);
- from the optimized model itself: which operators of the input model run on the CPU (every
  operator of the output that is not ``ethos-u``), matched to the input model's node indices
  through their output tensor names. `NpuResult.all_on_npu` is true when the output model is
  exactly one ``ethos-u`` operator.

`tflm_arena` predicts the TFLM tensor arena the optimized model needs on the device (see its
docstring); the budget of an NPU target counts that arena, which is Vela's SRAM figure plus
TFLM's own overhead.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import InvalidOptionError, NpuCompilerError
from mncompile.graph.verified import VerifiedModel, verify_model
from mncompile.progress import NullReporter, Reporter
from mncompile.targets import Target

VELA_PACKAGE = "ethos-u-vela"
VELA_VERSION = "5.2"  # the series pyproject.toml pins and the reference figures come from
OPTIMISE = ("Performance", "Size")
ETHOSU_OP = "CUSTOM:ethos-u"
VELA_TIMEOUT_S = 600

# The system configs and memory modes of Vela's built-in Arm/vela.ini.
SYSTEM_CONFIGS = ("Ethos_U55_Deep_Embedded", "Ethos_U55_High_End_Embedded", "Ethos_U65_Embedded",
                  "Ethos_U65_Mid_End", "Ethos_U65_High_End", "Ethos_U65_Client_Server")
MEMORY_MODES = ("Sram_Only", "Shared_Sram", "Dedicated_Sram", "Dedicated_Sram_256KB", "Dedicated_Sram_384KB",
                "Dedicated_Sram_512KB")


@dataclass(frozen=True)
class VelaOptions:
    """What the user may change; None takes the target's value."""

    system_config: str | None = None
    memory_mode: str | None = None
    optimise: str = "Performance"

    def resolved(self, target: Target) -> VelaOptions:
        if target.npu is None:
            raise InvalidOptionError(f"target {target.name} has no NPU",
                                     hint="the Ethos-U targets are listed by `mncompile targets`")
        system = self.system_config or target.npu.vela_system_config
        memory = self.memory_mode or target.npu.vela_memory_mode
        if system not in SYSTEM_CONFIGS:
            raise InvalidOptionError(f"unknown Vela system config {system!r}",
                                     hint=f"use one of: {', '.join(SYSTEM_CONFIGS)}")
        if memory not in MEMORY_MODES:
            raise InvalidOptionError(f"unknown Vela memory mode {memory!r}",
                                     hint=f"use one of: {', '.join(MEMORY_MODES)}")
        if self.optimise not in OPTIMISE:
            raise InvalidOptionError(f"unknown Vela optimisation strategy {self.optimise!r}",
                                     hint=f"use one of: {', '.join(OPTIMISE)}")
        if target.npu.name == "Ethos-U55" and "U65" in system:
            raise InvalidOptionError(f"system config {system} is for the Ethos-U65, and {target.name} "
                                     "has an Ethos-U55", hint="use an Ethos_U55_* system config")
        return VelaOptions(system, memory, self.optimise)


@dataclass(frozen=True)
class CpuOp:
    """An operator of the input model that Vela leaves on the CPU."""

    node: int | None  # index in the input model (None when Vela made the operator up)
    op: str  # the TFLite operator, e.g. "QUANTIZE"
    output: str  # its output tensor's name
    reason: str  # Vela's words, or "" when Vela gave none

    def describe(self) -> str:
        where = f"node {self.node}" if self.node is not None else "an operator Vela added"
        return f"{self.op} at {where} (output {self.output!r}): {self.reason or 'no reason given by Vela'}"

    def to_json(self) -> dict:
        return {"node": self.node, "op": self.op, "output": self.output, "reason": self.reason}


@dataclass(frozen=True)
class NpuResult:
    target: str
    npu: str  # "Ethos-U55"
    accelerator_config: str  # Vela's, e.g. "ethos-u55-128"
    options: VelaOptions  # resolved: the system config, memory mode and strategy Vela used
    vela_version: str
    model: Path  # the Vela-optimized .tflite
    summary_csv: Path
    model_bytes: int  # the optimized .tflite: what the firmware carries in flash
    clock_hz: int
    sram_bytes: int
    off_chip_flash_bytes: int
    on_chip_flash_bytes: int
    dram_bytes: int
    cycles_npu: int
    cycles_total: int
    inference_time_s: float
    inferences_per_second: float | None  # None when Vela estimates 0 cycles (no NPU operator)
    macs: int
    vela_npu_ops: int  # Vela's count, after its rewrites
    vela_cpu_ops: int
    input_ops: int  # operators of the input model
    cpu_ops: tuple[CpuOp, ...]  # the input model's operators that stay on the CPU
    ethosu_ops: int  # ethos-u custom operators in the optimized model
    optimized: VerifiedModel | None = None  # Vela's model, verified: what the firmware carries
    summary_data: bytes = b""  # Vela's summary CSV, as Vela wrote it
    log_text: str = ""  # Vela's console report

    @property
    def all_on_npu(self) -> bool:
        return not self.cpu_ops and self.ethosu_ops == 1 and self.vela_cpu_ops == 0

    @property
    def npu_input_ops(self) -> int:
        """Operators of the input model that run on the NPU."""
        return self.input_ops - sum(1 for c in self.cpu_ops if c.node is not None)

    def summary_lines(self) -> list[str]:
        o = self.options
        lines = [f"NPU {self.npu} ({self.accelerator_config}), Vela {self.vela_version}: {o.system_config}, "
                 f"{o.memory_mode}, optimise {o.optimise}",
                 f"  SRAM {self.sram_bytes:,} B, off-chip flash {self.off_chip_flash_bytes:,} B"
                 + (f", on-chip flash {self.on_chip_flash_bytes:,} B" if self.on_chip_flash_bytes else "")
                 + (f", DRAM {self.dram_bytes:,} B" if self.dram_bytes else "")
                 + f"; optimized model {self.model_bytes:,} B",
                 f"  {self.cycles_total:,} cycles ({self.cycles_npu:,} NPU) at {self.clock_hz / 1e6:g} MHz: "
                 f"{self.inference_time_s * 1e3:.3f} ms, "
                 + (f"{self.inferences_per_second:,.1f} inferences/s, " if self.inferences_per_second else "")
                 + f"{self.macs:,} MACs",
                 f"  operators: {self.npu_input_ops} of {self.input_ops} on the NPU, {len(self.cpu_ops)} on the CPU "
                 f"(Vela: {self.vela_npu_ops} NPU, {self.vela_cpu_ops} CPU)"]
        lines += [f"  CPU fallback: {c.describe()}" for c in self.cpu_ops]
        return lines

    def to_json(self) -> dict:
        o = self.options
        return {"target": self.target, "npu": self.npu, "accelerator_config": self.accelerator_config,
                "system_config": o.system_config, "memory_mode": o.memory_mode, "optimise": o.optimise,
                "vela_version": self.vela_version, "model": str(self.model), "summary_csv": str(self.summary_csv),
                "model_bytes": self.model_bytes, "clock_hz": self.clock_hz, "sram_bytes": self.sram_bytes,
                "off_chip_flash_bytes": self.off_chip_flash_bytes, "on_chip_flash_bytes": self.on_chip_flash_bytes,
                "dram_bytes": self.dram_bytes, "cycles_npu": self.cycles_npu, "cycles_total": self.cycles_total,
                "inference_time_s": self.inference_time_s, "inferences_per_second": self.inferences_per_second,
                "macs": self.macs, "all_on_npu": self.all_on_npu,
                "ops": {"input": self.input_ops, "npu": self.npu_input_ops, "cpu": len(self.cpu_ops),
                        "ethos_u_custom_ops": self.ethosu_ops, "vela_npu": self.vela_npu_ops,
                        "vela_cpu": self.vela_cpu_ops},
                "cpu_fallback": [c.to_json() for c in self.cpu_ops]}


def vela_version() -> str:
    """The installed Vela's version; `NpuCompilerError` when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(VELA_PACKAGE)
    except metadata.PackageNotFoundError:
        raise NpuCompilerError(f"Vela ({VELA_PACKAGE}) is not installed; NPU targets need it",
                               hint=f"pip install '{VELA_PACKAGE}=={VELA_VERSION}.*' "
                                    "(make setup installs it)") from None


def vela_command(model: Path, target: Target, options: VelaOptions, out: Path) -> list[str]:
    """The Vela command line for `model` on `target` (options resolved)."""
    return [sys.executable, "-m", "ethosu.vela", str(model),
            "--accelerator-config", target.npu.vela_accelerator_config,
            "--config", "Arm/vela.ini",
            "--system-config", options.system_config, "--memory-mode", options.memory_mode,
            "--optimise", options.optimise, "--output-dir", str(out), "--show-cpu-operations"]


_WARNING = re.compile(r"^Warning \(supported operators\) operator: (\S+), ofm: '(.*)'$")
_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+) ")


def parse_vela_report(text: str) -> tuple[dict[str, str], int, int]:
    """Vela's console report: ({output tensor name: reason}, NPU operator count, CPU operator count).
    A reason is the "Reason:" line and the lines that explain it, up to the next blank line,
    warning or section."""
    reasons: dict[str, str] = {}
    counts = {"CPU": 0, "NPU": 0}
    lines = text.splitlines()
    for k, line in enumerate(lines):
        m = _WARNING.match(line.strip())
        if m:
            words = []
            for follow in lines[k + 1:]:
                follow = follow.strip()
                if not follow or follow.startswith(("Warning", "Network summary", "Info")):
                    break
                words.append(follow.removeprefix("Reason: "))
            reasons.setdefault(m.group(2), " ".join(words))
        m = _COUNT.match(line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return reasons, counts["NPU"], counts["CPU"]


def read_summary_csv(text: str, name: str = "summary") -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if len(rows) != 1:
        raise NpuCompilerError(f"Vela's summary {name} has {len(rows)} rows, expected one")
    return rows[0]


def kib_to_bytes(kib: str) -> int:
    """Vela's KiB figures are byte counts divided by 1024: multiplying back is exact."""
    value = float(kib) * 1024
    if value != int(value):
        raise NpuCompilerError(f"Vela reported {kib} KiB, not a whole number of bytes")
    return int(value)


def compile_for_npu(model: VerifiedModel, target: Target, out: str | Path, options: VelaOptions = VelaOptions(),
                    reporter: Reporter = NullReporter(), timeout: float = VELA_TIMEOUT_S) -> NpuResult:
    """Run Vela on the verified int8 `model` for `target` into the folder `out` (replaced as a
    whole: Vela writes to a temporary folder beside it, renamed when Vela succeeded). Vela reads
    the verified bytes from a file of their own, and its output is verified in turn."""
    out = Path(out)
    options = options.resolved(target)
    version = vela_version()
    reporter.stage("npu", f"Vela {version}: {model.name} for {target.npu.vela_accelerator_config}, "
                          f"{options.system_config}, {options.memory_mode}, optimise {options.optimise}")
    out.parent.mkdir(parents=True, exist_ok=True)
    # absolute: Vela runs in the temporary folder, where a relative --output-dir would nest
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent)).resolve()
    try:
        with tempfile.TemporaryDirectory(prefix="mncompile-vela-in-") as source:
            command = vela_command(model.write_to(Path(source)), target, options, tmp)
            try:
                proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tmp,
                                      env={**os.environ, "PYTHONHASHSEED": "0"})
            except subprocess.TimeoutExpired:
                raise NpuCompilerError(f"Vela did not finish in {timeout:g} s on {model.source}",
                                       hint="try --vela-optimise Size, or report the model") from None
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
            raise NpuCompilerError(f"Vela failed on {model.source} (exit {proc.returncode}):\n{tail}",
                                   hint="Vela needs an int8 (or int16) .tflite; `mncompile quantize` makes one")
        report = proc.stdout + proc.stderr
        (tmp / "vela.log").write_bytes(report.encode("utf-8"))
        result = _result(model, target, options, version, tmp, out, report)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _result(model: VerifiedModel, target: Target, options: VelaOptions, version: str, folder: Path, out: Path,
            report: str) -> NpuResult:
    """What Vela wrote to `folder` (which becomes `out`) and said in `report`."""
    graph = model.graph
    names = (f"{model.stem}_vela.tflite", f"{model.stem}_summary_{options.system_config}.csv")
    for name in names:
        if not (folder / name).is_file():
            raise NpuCompilerError(f"Vela did not write {name} (its report: {out / 'vela.log'})")
    optimized = verify_model((folder / names[0]).read_bytes(), names[0], out / names[0],
                             source=f"Vela's output {names[0]}")
    summary_data = (folder / names[1]).read_bytes()
    row = read_summary_csv(summary_data.decode("utf-8", errors="replace"), names[1])
    reasons, vela_npu, vela_cpu = parse_vela_report(report)
    vela_graph = optimized.graph
    producer = {graph.tensors[o].name: op for op in graph.ops for o in op.outputs}
    cpu_ops = []
    for op in vela_graph.ops:
        if op.kind == ETHOSU_OP:
            continue
        name = vela_graph.tensors[op.outputs[0]].name if op.outputs else ""
        original = producer.get(name)
        cpu_ops.append(CpuOp(original.index if original is not None else None, op.kind, name, reasons.get(name, "")))
    try:
        return NpuResult(
            target=target.name, npu=target.npu.name, accelerator_config=target.npu.vela_accelerator_config,
            options=options, vela_version=version, model=out / names[0], summary_csv=out / names[1],
            model_bytes=optimized.size, clock_hz=int(float(row["core_clock"])),
            sram_bytes=kib_to_bytes(row["sram_memory_used"]),
            off_chip_flash_bytes=kib_to_bytes(row["off_chip_flash_memory_used"]),
            on_chip_flash_bytes=kib_to_bytes(row["on_chip_flash_memory_used"]),
            dram_bytes=kib_to_bytes(row["dram_memory_used"]),
            cycles_npu=int(float(row["cycles_npu"])), cycles_total=int(float(row["cycles_total"])),
            inference_time_s=float(row["inference_time"]),
            inferences_per_second=_finite(row["inferences_per_second"]),
            macs=int(float(row["nn_macs"])), vela_npu_ops=vela_npu, vela_cpu_ops=vela_cpu, input_ops=len(graph.ops),
            cpu_ops=tuple(cpu_ops), ethosu_ops=sum(1 for op in vela_graph.ops if op.kind == ETHOSU_OP),
            optimized=optimized, summary_data=summary_data, log_text=report)
    except (KeyError, ValueError) as exc:
        raise NpuCompilerError(f"Vela's summary {names[1]} lacks or garbles {exc}",
                               hint="check the Vela version (mncompile reads ethos-u-vela 5.2)") from None


def _finite(text: str) -> float | None:
    import math

    value = float(text)
    return value if math.isfinite(value) else None


def tflm_arena(result: NpuResult, pointer_size: int = 4):
    """The TFLM tensor arena the Vela-optimized model needs on a 32-bit Cortex-M build
    (`mncompile.plan.arena.ArenaPrediction`; ``.total`` is the byte count). `pointer_size` 8
    predicts the x86-64 host interpreter instead, which runs a Vela output without ethos-u
    operators (tests compare the two).

    The head is Vela's own plan: Vela embeds an OfflineMemoryAllocation in its output, which puts
    the NPU's scratch tensor (Vela's SRAM figure in the Shared_Sram and Sram_Only modes) at offset
    0 and the CPU-visible tensors (graph input and output, the tensors of CPU operators) at the
    offsets it chose, usually inside that scratch area. TFLM keeps those offsets and its greedy
    planner places the kernels' scratch buffers around them: the ethos-u kernel's two tables of
    NPU base addresses and sizes (micro/kernels/ethos_u/ethosu.cc), plus those of CPU operators.
    A tensor no operator produces (the scratch tensors are only ethos-u inputs) is planned by TFLM
    from the start (its lifetime starts at -1). The tail is TFLM's persistent part as
    `mncompile.plan.arena.predict_arena` replays it, with the ethos-u kernel's OpData (three ints).
    Raises `ModelError` for a CPU operator the predictor does not model."""
    from mncompile.plan.arena import kernel_scratch_requests, predict_arena
    from mncompile.plan.lifetimes import Buffer, align_up
    from mncompile.plan.offline import read_offline_plan
    from mncompile.plan.planners import MemoryPlan, head_with_scratch

    graph = result.optimized.graph
    offsets = read_offline_plan(result.optimized)
    consumed = {i for op in graph.ops for i in op.inputs if i >= 0}
    produced = {i for op in graph.ops for i in op.outputs} | set(graph.inputs)
    end = len(graph.ops)
    first: dict[int, int] = {i: 0 for i in graph.inputs}
    last: dict[int, int] = {i: 0 for i in graph.inputs}
    for k, op in enumerate(graph.ops, start=1):
        for i in op.outputs:
            first.setdefault(i, k)
            last[i] = k
        for i in op.inputs:
            if i >= 0:
                last[i] = k
    for i in graph.outputs:
        first.setdefault(i, end)
        last[i] = end
    for i in consumed - produced:  # TFLM: first_created stays -1, i.e. alive from the start
        first[i] = 0
    buffers: list[Buffer] = []
    fixed: list[int] = []
    for t in graph.tensors:
        if t.is_constant or t.nbytes == 0 or t.index not in first:
            continue
        buffers.append(Buffer(len(buffers), t.index, t.name, align_up(t.nbytes), first[t.index], last[t.index]))
        fixed.append(int(offsets[t.index]) if offsets is not None and offsets[t.index] >= 0 else -1)
    if any(o < 0 for o in fixed):
        raise NpuCompilerError(f"Vela's output {result.model.name} has no offline offset for every planned "
                               "tensor; its TFLM arena cannot be predicted",
                               hint="report the model and the Vela version")
    plan = MemoryPlan("vela", tuple(fixed), max((o + b.size for b, o in zip(buffers, fixed, strict=True)),
                                                default=0))
    scratch = [(r.op_index, r.bytes) for r in kernel_scratch_requests(graph)]
    head = head_with_scratch(buffers, plan, scratch)
    return predict_arena(graph, head, pointer_size=pointer_size)


def fast_memory_bytes(result: NpuResult) -> int:
    """The NPU fast memory the driver needs: in Vela's Dedicated_Sram modes every ethos-u operator's
    fourth input is the scratch_fast tensor (the SRAM cache; Ethos-U core driver:
    FAST_MEMORY_BASE_ADDR_INDEX 2 of the base addresses, after the read-only data and the scratch
    area), whose arena address the driver replaces with its fast memory, refusing one smaller than
    the tensor. In the other modes scratch and scratch_fast are one tensor: no fast memory."""
    if not result.options.memory_mode.startswith("Dedicated_Sram"):
        return 0
    graph = result.optimized.graph
    sizes = [graph.tensors[op.inputs[3]].nbytes for op in graph.ops
             if op.kind == ETHOSU_OP and len(op.inputs) > 3 and op.inputs[3] >= 0 and op.inputs[3] != op.inputs[2]]
    return (max(sizes, default=0) + 15) // 16 * 16
