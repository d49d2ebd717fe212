"""The plan stage: tensor lifetimes, memory planners, arena prediction, offline plans.

`plan_model` reads an int8 .tflite, computes lifetimes and the lower bound,
plans with TFLM's greedy algorithm (the baseline) and with ours, checks both
plans with the one invariant checker, and returns a frozen `PlanResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mncompile.graph.ir import Graph
from mncompile.graph.reader import read_graph
from mncompile.plan.arena import ArenaPrediction, predict_arena
from mncompile.plan.lifetimes import Buffer, lifetimes, lower_bound
from mncompile.plan.planners import PLANNERS, MemoryPlan
from mncompile.plan.verify import check_plan


@dataclass(frozen=True)
class PlanResult:
    model: Path
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
        return {"model": str(self.model), "model_bytes": self.model_bytes,
                "constant_bytes": self.constant_bytes, "io_bytes": self.io_bytes,
                "lower_bound_bytes": self.lower_bound,
                "tflm_greedy_bytes": self.greedy.arena_bytes, "mncompile_bytes": self.ours.arena_bytes,
                "strategy": self.ours.strategy, "alignment": 16,
                "planned_model_bytes": self.planned_model_bytes,
                "tflm_arena": {key: p.to_json() for key, p in self.arena},
                "time": "TFLM allocation scopes: inputs at 0, op i at i + 1",
                "buffers": self.buffer_rows()}


def plan_model(path: str | Path) -> PlanResult:
    path = Path(path)
    graph = read_graph(path)
    buffers = lifetimes(graph)
    greedy = PLANNERS["tflm-greedy"](buffers)
    ours = PLANNERS["mncompile"](buffers)
    for plan in (greedy, ours):
        check_plan(buffers, plan)
    from mncompile.plan.offline import embed_plan

    constants = sum(t.nbytes for t in graph.tensors if t.is_constant)
    io = sum(graph.tensors[i].nbytes for i in graph.inputs + graph.outputs)
    planned_model = len(embed_plan(path.read_bytes(), buffers, ours))
    arena = tuple((f"{where}-{name}", predict_arena(graph, plan.arena_bytes, pointer_size=size))
                  for where, size in (("host", 8), ("device", 4))
                  for name, plan in (("tflm-greedy", greedy), ("mncompile", ours)))
    return PlanResult(path, graph, buffers, lower_bound(buffers), greedy, ours, path.stat().st_size,
                      constants, io, planned_model, arena)


@dataclass(frozen=True)
class PlanFiles:
    json: Path
    picture: Path
    planned_model: Path  # the model with our plan embedded as OfflineMemoryAllocation


def write_plan_files(result: PlanResult, out: Path, extra: dict | None = None) -> PlanFiles:
    """plan.json, memory.png and <model>_planned.tflite in `out`; each written to a
    temporary name and renamed, so a failure leaves no partial file."""
    import json
    import os

    from mncompile.model.info import write_bytes_atomic, write_text_atomic
    from mncompile.plan.offline import embed_plan
    from mncompile.plan.timeline import draw_timeline

    out.mkdir(parents=True, exist_ok=True)
    files = PlanFiles(out / "plan.json", out / "memory.png", out / f"{result.model.stem}_planned.tflite")
    tmp_png = out / f".memory.tmp-{os.getpid()}.png"  # matplotlib writes to a path
    try:
        draw_timeline(result.buffers, [result.greedy, result.ours], result.lower_bound, tmp_png,
                      f"{result.model.name}: arena plans")
        os.replace(tmp_png, files.picture)
    finally:
        tmp_png.unlink(missing_ok=True)
    write_bytes_atomic(files.planned_model, embed_plan(result.model.read_bytes(), result.buffers, result.ours))
    document = {**result.to_json(), **(extra or {}),
                "files": {"picture": files.picture.name, "planned_model": files.planned_model.name}}
    write_text_atomic(files.json, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return files


def device_arena(result: PlanResult, kernels: str = "reference") -> ArenaPrediction:
    """The arena a 32-bit Cortex-M build of TFLM uses with our plan embedded and `kernels`
    ("reference" or "cmsis-nn"): kernel scratch buffers are placed around the offline plan
    exactly as TFLM's greedy planner places them."""
    from mncompile.plan.arena import kernel_scratch_requests
    from mncompile.plan.planners import head_with_scratch

    scratch = [(r.op_index, r.bytes) for r in kernel_scratch_requests(result.graph, kernels)]
    head = head_with_scratch(result.buffers, result.ours, scratch)
    return predict_arena(result.graph, head, pointer_size=4, kernels=kernels)
