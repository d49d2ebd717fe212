"""The plan stage against a target: the arena plan, then the budget that target imposes.

For a CPU target the budget counts the TFLM model with our plan embedded and its predicted
32-bit arena (`mncompile.budget.check_budget`). For an Ethos-U target the npu stage runs first
(Vela, `mncompile.npu.compile_for_npu`, into ``OUT/npu/``) and the budget counts Vela's
figures (`mncompile.budget.check_npu_budget`); the CPU budget is kept beside it as
`cpu_memory`, so a user can compare running on the host Cortex-M with offloading.
`mncompile plan --target` and `mncompile build` both go through `plan_for_target`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mncompile.budget import BudgetReport, check_budget, check_npu_budget, enforce
from mncompile.npu import NpuResult, VelaOptions, compile_for_npu, tflm_arena
from mncompile.plan import PlanResult, plan_model
from mncompile.plan.arena import ArenaPrediction
from mncompile.progress import NullReporter, Reporter
from mncompile.targets import Target, get_target
from mncompile.units import parse_size

NPU_DIR = "npu"


@dataclass(frozen=True)
class TargetPlan:
    plan: PlanResult
    target: Target
    memory: BudgetReport  # what binds: Vela's figures for an NPU target, the CPU's otherwise
    cpu_memory: BudgetReport  # the model run by TFLM on the host CPU
    npu: NpuResult | None = None
    npu_arena: ArenaPrediction | None = None

    def enforce(self, suggestion: str | None = None) -> None:
        enforce(self.memory, suggestion, npu=self.npu is not None)

    def to_json(self) -> dict:
        return {"target": self.target.name, "memory": self.memory.to_json(),
                "cpu_memory": self.cpu_memory.to_json(),
                "npu": self.npu.to_json() if self.npu else None,
                "npu_tflm_arena": self.npu_arena.to_json() if self.npu_arena else None}


def plan_for_target(model: str | Path, target: str | Target, out: str | Path, budget: int | str | None = None,
                    ram: int | str | None = None, flash: int | str | None = None,
                    vela: VelaOptions = VelaOptions(), plan: PlanResult | None = None,
                    reporter: Reporter = NullReporter()) -> TargetPlan:
    """Plan `model` (or take `plan`) and check it against `target`; an Ethos-U target also runs
    Vela into ``out/npu``. Nothing is enforced here: call `TargetPlan.enforce`."""
    from mncompile.errors import InvalidOptionError

    target = get_target(target) if isinstance(target, str) else target
    budget, ram, flash = (parse_size(v) if isinstance(v, str) else v for v in (budget, ram, flash))
    if target.npu is not None:
        vela.resolved(target)
    elif vela != VelaOptions():
        raise InvalidOptionError(f"--vela-* options apply to Ethos-U targets, and {target.name} has no NPU",
                                 hint="see `mncompile targets` for the ethos-u* targets")
    plan = plan or plan_model(model)
    cpu = check_budget(plan.planned_model_bytes, plan.device_arena_bytes, plan.io_bytes, target, budget, ram, flash)
    if target.npu is None:
        return TargetPlan(plan, target, cpu, cpu)
    npu = compile_for_npu(model, target, Path(out) / NPU_DIR, vela, reporter)
    arena = tflm_arena(npu)
    memory = check_npu_budget(npu.model_bytes, arena.total, npu.sram_bytes, plan.io_bytes, target,
                              npu.options.memory_mode, budget, ram, flash)
    return TargetPlan(plan, target, memory, cpu, npu, arena)
