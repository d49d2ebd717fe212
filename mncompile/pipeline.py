"""The one place that orders the stages of `mncompile build`.

    model -> quantize -> eval -> plan -> npu -> emit -> validate

(eval: float vs int8 on the host emulators; plan: arena plan and the memory
budget; npu: Vela for an Ethos-U target, whose figures then make the budget;
validate: firmware vs host, i.e. `mncompile run` on OUT/firmware.)

Each stage is a function from frozen inputs to a frozen result. Stages not
yet implemented in this release are listed in `PENDING` (none now) and reported
as such, so `build` says plainly where it stopped. validate runs only with
`BuildOptions.run` (it needs TFLM and QEMU); without it the stage is "skipped".
npu runs only for a target with an NPU (skipped otherwise); validate cannot run for one
(QEMU has no Ethos-U model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mncompile import __version__
from mncompile.budget import BudgetReport, enforce
from mncompile.emit import BACKENDS, EmitResult, emit
from mncompile.emit.golden import DEFAULT_GOLDEN
from mncompile.fit import check_estimate, estimate, suggestion
from mncompile.model.analytic import NetworkSummary, summarize
from mncompile.model.datasets import load_dataset, natural_channels
from mncompile.model.info import write_text_atomic
from mncompile.model.loader import LoadedModel, load_model
from mncompile.model.spec import MobileNetSpec
from mncompile.model.train import TrainConfig, TrainResult, train
from mncompile.npu import NpuResult, VelaOptions
from mncompile.plan import PlanResult, plan_model, write_plan_files
from mncompile.plan.arena import ArenaPrediction
from mncompile.plan.targeted import plan_for_target
from mncompile.progress import NullReporter, Reporter
from mncompile.quantize import DEFAULT_CALIB_SAMPLES, QuantizeResult, quantize
from mncompile.run.validate import RunResult, check_runnable, resolve_tflm, run_project
from mncompile.targets import Target, get_target
from mncompile.units import parse_size
from mncompile.validate.accuracy import DEFAULT_LAYER_SAMPLES, EvalReport, evaluate

STAGES = ("model", "quantize", "eval", "plan", "npu", "emit", "validate")
PENDING: tuple[str, ...] = ()
INT8_NAME = "model_int8.tflite"
EVAL_NAME = "eval.json"
PLAN_DIR = "plan"
FIRMWARE_DIR = "firmware"
RUN_BUILD_DIR = "firmware-build"  # beside OUT/firmware, which emit replaces: TFLM compiles once


@dataclass(frozen=True)
class BuildOptions:
    arch: str = "v1"
    alpha: float = 0.25
    resolution: int = 96
    channels: int | None = None  # None: the dataset's own (digits: 1, shapes: 3)
    dataset: str | None = None  # None: digits for training, the model's sidecar with --model
    model: Path | None = None  # an existing model instead of training one
    budget: str | None = None
    ram: str | None = None  # overrides the target's RAM
    flash: str | None = None  # overrides the target's flash
    target: str = "cortex-m7"
    out: Path = Path("mncompile-build")
    train: TrainConfig = field(default_factory=TrainConfig)
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    layer_samples: int = DEFAULT_LAYER_SAMPLES
    golden: int = DEFAULT_GOLDEN
    run: bool = False  # validate: build OUT/firmware (TFLM_ROOT from the environment) and run it on QEMU
    backend: str = "tflm"  # emit's backend: "tflm" (TFLM project) or "aot" (C calling mncompile's kernels)
    vela: VelaOptions = field(default_factory=VelaOptions)  # Ethos-U targets: how Vela compiles


@dataclass(frozen=True)
class BuildResult:
    options: BuildOptions
    target: Target
    budget_bytes: int | None
    model: LoadedModel | None
    trained: TrainResult | None
    summary: NetworkSummary | None
    quantized: QuantizeResult | None
    evaluation: EvalReport | None
    plan: PlanResult | None
    memory: BudgetReport | None
    emitted: EmitResult | None
    completed: tuple[str, ...]
    pending: tuple[str, ...]
    validation: RunResult | None = None
    npu: NpuResult | None = None
    cpu_memory: BudgetReport | None = None  # NPU targets: the budget running on the host CPU would have
    npu_arena: ArenaPrediction | None = None  # NPU targets: TFLM's arena for Vela's model

    def to_json(self) -> dict:
        o = self.options
        return {
            "mncompile": __version__,
            "target": {"name": self.target.name, "cpu": self.target.cpu, "board": self.target.board},
            "budget_bytes": self.budget_bytes,
            "dataset": o.dataset,
            "model": self.model.to_json() if self.model else None,
            "training": self.trained.to_json() if self.trained else None,
            "analytic": self.summary.to_json()["totals"] if self.summary else None,
            "quantize": self.quantized.to_json() if self.quantized else None,
            "eval": self.evaluation.to_json() if self.evaluation else None,
            "plan": ({k: v for k, v in self.plan.to_json().items() if k != "buffers"}
                     if self.plan else None),
            "memory": self.memory.to_json() if self.memory else None,
            "npu": self.npu.to_json() if self.npu else None,
            "cpu_memory": self.cpu_memory.to_json() if self.cpu_memory else None,
            "npu_tflm_arena": self.npu_arena.to_json() if self.npu_arena else None,
            "emit": self.emitted.to_json() if self.emitted else None,
            "run": self.validation.to_json() if self.validation else None,
            "stages": [{"name": s, "status": "done" if s in self.completed
                        else "not implemented" if s in self.pending else "skipped"}
                       for s in STAGES],
        }


def build(options: BuildOptions, reporter: Reporter = NullReporter()) -> BuildResult:
    # Validate every option before any slow work starts.
    target = get_target(options.target)
    budget = parse_size(options.budget) if options.budget is not None else None
    ram = parse_size(options.ram) if options.ram is not None else None
    flash = parse_size(options.flash) if options.flash is not None else None
    from mncompile.errors import InvalidOptionError

    if options.backend not in BACKENDS:
        raise InvalidOptionError(f"unknown backend {options.backend!r}", hint=f"use one of: {', '.join(BACKENDS)}")
    if target.npu is not None:
        options.vela.resolved(target)  # bad Vela options fail now, not after training
        if options.backend != "tflm":
            raise InvalidOptionError(f"--backend {options.backend} cannot drive the {target.npu.name} of {target.name}",
                                     hint="NPU targets use the TFLM project (--backend tflm) with the ethos-u operator")
        if options.run:
            raise InvalidOptionError(f"--run needs a QEMU machine, and QEMU has no {target.npu.name} model",
                                     hint=f"drop --run; run {options.out / FIRMWARE_DIR} on Arm's Corstone-300 FVP "
                                          "or the board (see its README)")
    elif options.vela != VelaOptions():
        raise InvalidOptionError(f"--vela-* options apply to Ethos-U targets, and {target.name} has no NPU",
                                 hint="see `mncompile targets` for the ethos-u* targets")
    if options.run:  # what validate needs, checked before hours of work: QEMU, a TFLM to build with
        check_runnable(target)
        resolve_tflm(None, options.out / RUN_BUILD_DIR, options.out / FIRMWARE_DIR,
                     needs_tflm=options.backend == "tflm")
    completed = ["model"]

    reporter.stage("model")
    trained = None
    summary = None
    if options.model is not None:
        model = load_model(options.model)
    else:
        dataset_name = options.dataset or "digits"
        channels = options.channels or natural_channels(dataset_name)
        dataset = load_dataset(dataset_name, options.resolution, channels, seed=options.train.seed)
        spec = MobileNetSpec(options.arch, options.alpha, options.resolution, channels,
                             len(dataset.class_names))
        summary = summarize(spec)
        # Before training: the analytic estimate (the same one `mncompile fit` uses) must fit.
        enforce(check_estimate(estimate(spec), target, budget, ram, flash),
                suggestion(spec, target, budget, ram, flash))
        options.out.mkdir(parents=True, exist_ok=True)
        trained = train(spec, dataset, options.out / "model.keras", options.train, reporter,
                        force=True)
        model = load_model(trained.model_path)

    options.out.mkdir(parents=True, exist_ok=True)  # with --model, nothing has made it yet
    quantized = quantize(model.path, options.out / INT8_NAME, dataset=options.dataset,
                         calib_samples=options.calib_samples, force=True, reporter=reporter)
    completed.append("quantize")

    evaluation = None
    if model.format == "tflite-int8":
        reporter.info("eval skipped: the model given is already int8, there is no float model to "
                      "compare with")
    else:
        evaluation = evaluate(model.path, quantized.path, dataset=options.dataset,
                              layer_samples=options.layer_samples, reporter=reporter)
        write_text_atomic(options.out / EVAL_NAME,
                          json.dumps(evaluation.to_json(), indent=2, sort_keys=True) + "\n")
        completed.append("eval")

    reporter.stage("plan", f"arena plan of {quantized.path.name}, checked against {target.name}")
    planned = plan_model(quantized.path)
    write_plan_files(planned, options.out / PLAN_DIR)
    completed.append("plan")
    reporter.info(f"lower bound {planned.lower_bound:,} B, TFLM greedy {planned.greedy.arena_bytes:,} B, "
                  f"mncompile {planned.ours.arena_bytes:,} B; device arena {planned.device_arena_bytes:,} B")
    targeted = plan_for_target(quantized.path, target, options.out, budget, ram, flash, options.vela,
                               plan=planned, reporter=reporter)
    memory = targeted.memory
    spec = _spec_of(model, trained)
    npu = targeted.npu
    cpu_memory = targeted.cpu_memory if npu is not None else None
    npu_args: dict = {}
    if npu is not None:
        completed.append("npu")
        for line in npu.summary_lines():
            reporter.info(line)
        targeted.enforce(suggestion(spec, target, budget, ram, flash) if spec else None)
        npu_args = {"npu": npu, "vela": options.vela}
    elif options.backend == "tflm":  # the AOT backend's emit checks its own, smaller, static arena
        enforce(memory, suggestion(spec, target, budget, ram, flash) if spec else None)

    emitted = emit(quantized.path, target, options.out / FIRMWARE_DIR, golden=options.golden,
                   dataset=options.dataset, force=True, budget=budget, ram=ram, flash=flash, plan=planned,
                   backend=options.backend, reporter=reporter, **npu_args)
    completed.append("emit")
    memory = emitted.memory  # the firmware's own figures: the arena it reserves, the model it carries

    validation = None
    if options.run:
        reporter.stage("validate", f"building {emitted.out} and running it on QEMU {target.qemu_machine}")
        validation = run_project(emitted.out, build_dir=options.out / RUN_BUILD_DIR, reporter=reporter)
        completed.append("validate")
    elif npu is not None:
        reporter.info(f"validate skipped: QEMU has no {target.npu.name} model; the golden vectors in "
                      f"{emitted.out} are the host's CPU reference numerics, checked on Arm's Corstone-300 FVP "
                      "or the board")
    else:
        reporter.info("validate skipped: pass --run to build the firmware (TFLM_ROOT) and check it on QEMU, "
                      f"or run `mncompile run {emitted.out}`")
    return BuildResult(options, target, budget, model, trained, summary, quantized, evaluation,
                       planned, memory, emitted, tuple(completed), PENDING, validation, npu, cpu_memory,
                       targeted.npu_arena)


def _spec_of(model: LoadedModel, trained: TrainResult | None) -> MobileNetSpec | None:
    """The MobileNet spec of the model, when known (trained here, or named in its sidecar)."""
    if trained is not None:
        return trained.spec
    info = model.info
    if info is None or info.arch is None or info.alpha is None:
        return None
    try:
        return MobileNetSpec(info.arch, info.alpha, info.resolution, info.channels, len(info.class_names))
    except Exception:  # a sidecar from elsewhere may describe something we cannot rebuild
        return None
