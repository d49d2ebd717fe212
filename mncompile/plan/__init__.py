"""The plan stage: tensor lifetimes, memory planners, arena prediction, offline plans.

`plan_model` takes the verified int8 model, computes lifetimes and the lower bound,
plans with TFLM's greedy algorithm (the baseline) and with ours, checks both
plans with the one invariant checker, embeds ours in the model (the planned model the TFLM
firmware carries, verified again) and returns a frozen `PlanResult`. `firmware_arena` is the
arena a TFLM project reserves: the 32-bit prediction plus `ARENA_MARGIN_BYTES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import ModelError
from mncompile.graph.ir import Graph
from mncompile.graph.verified import VerifiedModel, verify_model
from mncompile.plan.arena import KERNELS, ArenaPrediction, predict_arena
from mncompile.plan.lifetimes import Buffer, lifetimes, lower_bound
from mncompile.plan.planners import PLANNERS, MemoryPlan
from mncompile.plan.verify import check_plan

# Added to the predicted arena of a TFLM project: room for a TFLM other than the commit the
# prediction models (its persistent structs can grow by a few words per op). On that commit,
# arena_used_bytes() equals the prediction exactly, which the firmware prints.
ARENA_MARGIN_BYTES = 1024
# Cores with Helium (MVE): CMSIS-NN is built with ARM_MATH_MVEI there and sizes its buffers so.
HELIUM_CPUS = ("cortex-m55", "cortex-m85")


@dataclass(frozen=True)
class PlanResult:
    model: VerifiedModel
    graph: Graph
    buffers: tuple[Buffer, ...]
    lower_bound: int
    greedy: MemoryPlan  # TFLM's GreedyMemoryPlanner, replicated
    ours: MemoryPlan
    model_bytes: int  # the .tflite file: what flash holds (weights, biases, the graph)
    constant_bytes: int  # constant tensor data alone
    io_bytes: int  # graph input and output tensors
    planned_model_bytes: int  # the .tflite with our plan embedded: what the firmware carries
    # Whole TFLM arenas (plan + persistent part), reference kernels. "host": the tflite-micro
    # interpreter on x86-64; "device": a 32-bit Cortex-M build. "greedy": TFLM's own plan;
    # "mncompile": with our plan embedded as OfflineMemoryAllocation.
    arena: tuple[tuple[str, ArenaPrediction], ...]
    planned_model: VerifiedModel  # the model with our plan embedded, verified


    @property
    def exact(self) -> bool:
        """The arena figures are predictions (False: measured on the host, an operator is not modelled)."""
        return all(p.exact for _, p in self.arena)

    def arena_total(self, key: str) -> int:
        return dict(self.arena)[key].total

    @property
    def device_arena_bytes(self) -> int:
        """What the firmware's tensor arena must hold: our plan on a 32-bit device."""
        return self.arena_total("device-mncompile")

    def buffer_rows(self) -> list[dict]:
        rows = []
        for b, o, g in zip(self.buffers, self.ours.offsets, self.greedy.offsets, strict=True):
            rows.append({"id": b.id, "tensor": b.tensor, "name": b.name, "bytes": b.size, "first": b.first,
                         "last": b.last, "offset": o, "tflm_offset": g})
        return rows

    def to_json(self) -> dict:
        return {"model": self.model.source, "model_bytes": self.model_bytes,
                "constant_bytes": self.constant_bytes, "io_bytes": self.io_bytes,
                "lower_bound_bytes": self.lower_bound,
                "tflm_greedy_bytes": self.greedy.arena_bytes, "mncompile_bytes": self.ours.arena_bytes,
                "strategy": self.ours.strategy, "alignment": 16,
                "planned_model_bytes": self.planned_model_bytes,
                "tflm_arena": {key: p.to_json() for key, p in self.arena},
                "time": "TFLM allocation scopes: inputs at 0, op i at i + 1",
                "buffers": self.buffer_rows()}


def plan_model(model: VerifiedModel, measure: Callable[[VerifiedModel], dict] | None = None) -> PlanResult:
    """The plan of `model`. Its TFLM arena is predicted; when an operator's registry entry does not
    say what TFLM allocates for it, `measure` (the host interpreter's report,
    `mncompile.validate.host_arena.measure_host_arena`) gives it instead, labelled as measured."""
    from mncompile.plan.arena import measured_arena, modelled_ops
    from mncompile.plan.offline import embed_plan

    graph = model.graph
    buffers = lifetimes(graph)
    greedy = PLANNERS["tflm-greedy"](buffers)
    ours = PLANNERS["mncompile"](buffers)
    for plan in (greedy, ours):
        check_plan(buffers, plan)
    constants = sum(t.nbytes for t in graph.tensors if t.is_constant)
    io = sum(graph.tensors[i].nbytes for i in graph.inputs + graph.outputs)
    planned = verify_model(embed_plan(model, buffers, ours), f"{model.stem}_planned.tflite",
                           source=f"{model.source} with its plan embedded")
    unmodelled = tuple(sorted({op.kind for op in graph.ops} - set(modelled_ops())))
    if not unmodelled:
        arena = tuple((f"{where}-{name}", predict_arena(graph, plan.arena_bytes, pointer_size=size))
                      for where, size in (("host", 8), ("device", 4))
                      for name, plan in (("tflm-greedy", greedy), ("mncompile", ours)))
    elif measure is None:
        raise ModelError(f"{model.source}: the arena predictor does not model {', '.join(unmodelled)}",
                         hint="mncompile plan, emit and build measure such a model on the TFLM host interpreter")
    else:
        reports = {"tflm-greedy": measure(model), "mncompile": measure(planned)}
        arena = tuple((f"{where}-{name}", measured_arena(reports[name], size, "reference", unmodelled))
                      for where, size in (("host", 8), ("device", 4)) for name in ("tflm-greedy", "mncompile"))
    return PlanResult(model, graph, buffers, lower_bound(buffers), greedy, ours, model.size,
                      constants, io, planned.size, arena, planned)


@dataclass(frozen=True)
class PlanFiles:
    json: Path
    picture: Path
    planned_model: Path  # the model with our plan embedded as OfflineMemoryAllocation


def write_plan_files(result: PlanResult, out: Path, extra: dict | None = None, aot=None) -> PlanFiles:
    """plan.json, memory.png and <model>_planned.tflite in `out`; each written to a
    temporary name and renamed, so a failure leaves no partial file. `aot`: the AOT backend's
    arena plan (`mncompile.aot.memory.AotMemory`), drawn next to TFLM's with its patch stages."""
    import json
    import os

    from mncompile.files import write_bytes_atomic, write_text_atomic
    from mncompile.plan.timeline import draw_timeline

    out.mkdir(parents=True, exist_ok=True)
    files = PlanFiles(out / "plan.json", out / "memory.png", out / result.planned_model.name)
    tmp_png = out / f".memory.tmp-{os.getpid()}.png"  # matplotlib writes to a path
    try:
        draw_timeline(result.buffers, [result.greedy, result.ours], result.lower_bound, tmp_png,
                      f"{result.model.name}: arena plans", aot=aot)
        os.replace(tmp_png, files.picture)
    finally:
        tmp_png.unlink(missing_ok=True)
    write_bytes_atomic(files.planned_model, result.planned_model.data)
    document = {**result.to_json(), **(extra or {}),
                "files": {"picture": files.picture.name, "planned_model": files.planned_model.name}}
    write_text_atomic(files.json, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return files


def device_arena(result: PlanResult, kernels: str = "reference", mve: bool = False) -> ArenaPrediction:
    """The arena a 32-bit Cortex-M build of TFLM uses with our plan embedded and `kernels`
    ("reference" or "cmsis-nn"; `mve`: CMSIS-NN built for a Helium core): kernel scratch buffers
    are placed around the offline plan exactly as TFLM's greedy planner places them."""
    from mncompile.plan.arena import kernel_persistent_bytes, kernel_scratch_requests, measured_arena, modelled_ops
    from mncompile.plan.planners import head_with_scratch

    if not result.exact:  # measured: the host figure, plus CMSIS-NN's scratch of the modelled operators
        modelled = set(modelled_ops())
        graph = result.graph
        known = Graph(graph.tensors, tuple(op for op in graph.ops if op.kind in modelled), graph.inputs, graph.outputs)
        extra = (sum(r.bytes for r in kernel_scratch_requests(known, kernels, mve))
                 + kernel_persistent_bytes(known, kernels, mve)) if kernels != "reference" else 0
        host = dict(result.arena)["host-mncompile"]
        unmodelled = tuple(sorted({op.kind for op in graph.ops} - modelled))
        return measured_arena({"head": host.planned, "tail": host.persistent}, 4, kernels, unmodelled, extra)
    scratch = [(r.op_index, r.bytes) for r in kernel_scratch_requests(result.graph, kernels, mve)]
    head = head_with_scratch(result.buffers, result.ours, scratch)
    return predict_arena(result.graph, head, pointer_size=4, kernels=kernels, mve=mve)


def _align16(n: int) -> int:
    return (n + 15) // 16 * 16


@dataclass(frozen=True)
class FirmwareArena:
    """The arena of a TFLM project, by kernel set: predicted ``arena_used_bytes()``, and what the
    project reserves (prediction + `ARENA_MARGIN_BYTES`, 16-aligned)."""

    predicted: dict  # kernels -> bytes
    reserved: dict
    predictions: dict  # kernels -> ArenaPrediction
    mve: bool = False  # "cmsis-nn" as built for a Helium core (`HELIUM_CPUS`)

    @property
    def bounds(self) -> list[str]:
        """Kernel sets whose figure is an upper bound (measured on the host), not an exact prediction."""
        return sorted(k for k, p in self.predictions.items() if not p.exact)


def firmware_arena(result: PlanResult, cpu: str | None = None) -> FirmwareArena:
    """The arena of a TFLM project for a core `cpu` (a target's; on a Helium core CMSIS-NN's MVE
    kernels run, whose buffers differ from the DSP kernels')."""
    mve = cpu in HELIUM_CPUS
    predictions = {k: device_arena(result, k, mve=mve) for k in KERNELS}
    predicted = {k: p.total for k, p in predictions.items()}
    return FirmwareArena(predicted, {k: _align16(v + ARENA_MARGIN_BYTES) for k, v in predicted.items()}, predictions,
                         mve)
