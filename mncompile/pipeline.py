"""The one place that orders the stages.

    model -> quantize -> eval -> plan -> npu -> emit -> validate

(eval: float vs int8 on the host emulators; plan: arena plan and the memory budget; npu: Vela
for an Ethos-U target, whose figures then make the budget; emit: the project, rendered from what
the stages before it produced; validate: firmware vs host, i.e. `mncompile run` on OUT/firmware.)

Three flows use them: `plan` (`mncompile plan`), `emit` (`mncompile emit`) and `build`
(`mncompile build`). Each resolves its options first (`mncompile.options.resolve`), checks its
inputs and outputs (`mncompile.files`), and only then does slow work. A .tflite is read and
verified once (`mncompile.graph.verified`); the verified model is what flows from stage to
stage. Between plan and emit, `project_inputs` runs what a project needs for its backend (Vela,
the AOT code generator, the budget with the project's own figures, the golden vectors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mncompile import __version__
from mncompile.budget import BudgetReport, check_budget, check_npu_budget, enforce
from mncompile.emit import EmitResult, ProjectInputs, render_project
from mncompile.emit.boards import load_board
from mncompile.emit.contract import pixel_contract
from mncompile.emit.manifest import MANIFEST_NAME
from mncompile.errors import InvalidOptionError, ModelError
from mncompile.files import check_destination, check_input_file, check_output_folder
from mncompile.flash import FlashRequest, FlashResult, check_flashable, flash_project
from mncompile.model.analytic import NetworkSummary
from mncompile.model.loader import LoadedModel, load_model
from mncompile.model.train import TrainResult
from mncompile.npu import NpuResult, VelaOptions, compile_for_npu, fast_memory_bytes, tflm_arena
from mncompile.options import DEFAULT_GOLDEN, BuildOptions, Resolved, check_layout, resolve
from mncompile.plan import PlanFiles, PlanResult, firmware_arena, plan_model, write_plan_files
from mncompile.plan.arena import ArenaPrediction
from mncompile.preprocess.camera import CameraOptions
from mncompile.preprocess.contract import PixelOptions
from mncompile.progress import NullReporter, Reporter
from mncompile.quantize import QuantizeResult
from mncompile.run.validate import RunResult, check_runnable, resolve_tflm, run_project
from mncompile.targets import Target
from mncompile.validate.accuracy import EvalReport
from mncompile.validate.gate import check_max_drop
from mncompile.validate.golden import golden_vectors
from mncompile.validate.golden_images import check_golden_images
from mncompile.validate.host_arena import measure_host_arena

NPU_DIR = "npu"  # plan -o OUT / build: Vela's outputs in OUT/npu


# ---------------------------------------------------------------------------------------------
# plan


@dataclass(frozen=True)
class TargetPlan:
    """The plan checked against a target: the budget that binds (Vela's figures for an NPU target,
    the CPU's otherwise) and, for an NPU target, Vela's result and its TFLM arena."""

    plan: PlanResult
    target: Target
    memory: BudgetReport
    cpu_memory: BudgetReport  # the model run by TFLM on the host CPU
    npu: NpuResult | None = None
    npu_arena: ArenaPrediction | None = None

    def enforce(self, suggestion: str | None = None, document: dict | None = None) -> None:
        enforce(self.memory, suggestion, npu=self.npu is not None, document=document)

    def to_json(self) -> dict:
        return {"target": self.target.name, "memory": self.memory.to_json(),
                "cpu_memory": self.cpu_memory.to_json(),
                "npu": self.npu.to_json() if self.npu else None,
                "npu_tflm_arena": self.npu_arena.to_json() if self.npu_arena else None}


def target_plan(planned: PlanResult, resolved: Resolved, npu_out: Path, reporter: Reporter) -> TargetPlan:
    """The budget of `planned` on the resolved target; an Ethos-U target runs Vela into `npu_out`."""
    target, limits = resolved.target, resolved.limits
    cpu = check_budget(planned.planned_model_bytes, planned.device_arena_bytes, planned.io_bytes, target,
                       limits.budget, limits.ram, limits.flash)
    if not resolved.npu:
        return TargetPlan(planned, target, cpu, cpu)
    npu = compile_for_npu(planned.model, target, npu_out, resolved.vela, reporter)
    arena = tflm_arena(npu)
    memory = check_npu_budget(npu.model_bytes, arena.total, npu.sram_bytes, planned.io_bytes, target,
                              npu.options.memory_mode, limits.budget, limits.ram, limits.flash)
    return TargetPlan(planned, target, memory, cpu, npu, arena)


@dataclass(frozen=True)
class PlanOutcome:
    plan: PlanResult
    files: PlanFiles
    targeted: TargetPlan | None
    aot: object | None = None  # mncompile.aot.codegen.AotProgram: the AOT backend's schedule under --memory
    aot_unsupported: str | None = None  # why the AOT backend cannot compile the model

    def enforce(self, document: dict | None = None) -> None:
        """BudgetError (exit 8) when the TFLM project does not fit the target; the message says whether
        the AOT backend's schedule fits instead."""
        if self.targeted is not None:
            self.targeted.enforce(self.aot_suggestion(), document)

    def aot_suggestion(self) -> str | None:
        c = self.aot.choice if self.aot is not None else None
        if c is None or c.room is None:
            return None
        stages = f" (patch stages: +{c.extra_macs / c.total_macs:.1%} MACs)" if c.extra_macs else ""
        if c.ram <= c.room:
            return f"the AOT backend fits: --backend aot --memory {c.mode} needs {c.ram:,} B of RAM{stages}"
        from mncompile.aot.budgeted import patch_note

        return f"nor does the AOT backend: {patch_note(c)}"


def aot_schedule(model, resolved: Resolved | None, memory: str):
    """(the AOT program --memory picks, why the AOT backend cannot compile the model): within the
    room the target's limits leave, or with no limit without a target."""
    from mncompile.aot.codegen import generate
    from mncompile.budget import ram_room
    from mncompile.errors import UnsupportedOpError

    room = None
    if resolved is not None and not resolved.npu:
        limits = resolved.limits

        def room(constants: int) -> int:
            return ram_room(constants, resolved.target, limits.budget, limits.ram, limits.flash)
    try:
        return generate(model, memory=memory, room=room), None
    except UnsupportedOpError as exc:
        return None, exc.message


def plan(model: str | Path, out: str | Path | None = None, *, target: str | None = None,
         budget: str | int | None = None, ram: str | int | None = None, flash: str | int | None = None,
         vela: VelaOptions | None = None, reporter: Reporter = NullReporter(), memory: str = "balanced") -> PlanOutcome:
    """`mncompile plan`: the arena plan of an int8 .tflite, written to `out` (default
    <model>.plan), checked against `target` when one is given (nothing is enforced here: the
    caller renders, then calls `PlanOutcome.enforce`). Next to TFLM's figures: the AOT backend's
    arena layer by layer and the schedule `memory` picks (patch stages, `mncompile.aot.patch_search`)."""
    from mncompile.graph.verified import read_model
    from mncompile.options import check_memory_mode

    check_memory_mode(memory)
    resolved = None
    if target is not None:
        resolved = resolve(target, budget=budget, ram=ram, flash=flash, vela=vela, memory=memory)
    elif (vela is not None and vela != VelaOptions()) or any(v is not None for v in (budget, ram, flash)):
        raise InvalidOptionError("--budget, --ram, --flash and --vela-* need a --target")
    out = Path(out) if out is not None else Path(model).with_name(Path(model).name + ".plan")
    check_output_folder(out)
    verified = read_model(model)
    planned = plan_model(verified, measure_host_arena)
    targeted = target_plan(planned, resolved, out / NPU_DIR, reporter) if resolved is not None else None
    reporter.info(f"AOT schedule (--memory {memory})")
    aot, unsupported = aot_schedule(verified, resolved, memory)
    extra = {**(targeted.to_json() if targeted else {}),
             "aot": ({"memory_mode": aot.choice.to_json(), "plan": aot.memory.to_json()} if aot is not None
                     else {"unsupported": unsupported})}
    files = write_plan_files(planned, out, extra=extra, aot=aot.memory if aot is not None else None)
    return PlanOutcome(planned, files, targeted, aot, unsupported)


# ---------------------------------------------------------------------------------------------
# emit


def check_model_for_backend(loaded: LoadedModel, backend: str) -> None:
    """emit takes an int8 .tflite (`mncompile.model.loader.tflite_format`: int8 I/O, or float32 I/O
    through QUANTIZE/DEQUANTIZE at the edges, both backends); AOT refuses an operator it lacks
    here, before any planning."""
    from mncompile.aot.lower import check_supported

    if loaded.format != "tflite-int8":
        raise ModelError(f"{loaded.path} is a {loaded.format} model; emit takes an int8 .tflite",
                         hint=f"make one first: mncompile quantize {loaded.path} -o model_int8.tflite")
    if backend == "aot":
        check_supported(loaded.verified.graph)


def project_inputs(loaded: LoadedModel, resolved: Resolved, planned: PlanResult, *, dataset: str | None,
                   npu: NpuResult | None = None, reporter: Reporter = NullReporter(),
                   pixels: PixelOptions = PixelOptions(), camera: CameraOptions = CameraOptions(),
                   golden_images: Path | None = None) -> ProjectInputs:
    """What the project of `resolved.backend` needs beyond the plan, each checked as it comes: the
    pixel contract, the board, Vela (NPU targets), the AOT program, the budget with the project's
    own figures (exit 8), the golden vectors (camera frames and the TFLM host interpreter's outputs)."""
    from mncompile.emit.tflm import board_npu, npu_reserved_arena

    model, target, limits = loaded.verified, resolved.target, resolved.limits
    prep, prep_source, labels = pixel_contract(loaded, pixels, reporter)
    board = load_board(target.board)
    options = {"golden": resolved.golden, "dataset": dataset, "budget": limits.budget, "ram": limits.ram,
               "flash": limits.flash, "golden_images": str(golden_images) if golden_images else None}
    if resolved.profile:  # recorded only when asked: the manifests of other projects stay as they were
        options["profile"] = True
    extra: dict = {}
    if resolved.npu:
        board_table, _ = board_npu(board, target)
        if npu is None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="mncompile-vela-") as tmp:
                npu = compile_for_npu(model, target, Path(tmp) / "vela", resolved.vela, reporter)
        fast = fast_memory_bytes(npu)
        if fast and "fast_memory_section" not in board_table:
            raise InvalidOptionError(f"Vela's {npu.options.memory_mode} memory mode needs {fast:,} B of NPU fast "
                                     f"memory, and board {board.name} has none",
                                     hint="use the target's memory mode (--vela-memory-mode), e.g. Shared_Sram")
        npu_arena = tflm_arena(npu)
        _, reserved = npu_reserved_arena(npu_arena)
        memory = check_npu_budget(npu.model_bytes, reserved["reference"], npu.sram_bytes, planned.io_bytes, target,
                                  npu.options.memory_mode, limits.budget, limits.ram, limits.flash)
        enforce(memory, npu=True)
        extra = {"npu": npu, "npu_arena": npu_arena, "fast_memory": fast}
        run_model = model  # the CPU reference numerics: the int8 model before Vela
    elif resolved.backend == "aot":
        from mncompile.aot.budgeted import compile_within

        program, memory = compile_within(model, resolved, profile=resolved.profile)  # unsupported ops fail here
        options["inplace_depthwise"] = resolved.inplace
        options["memory"] = resolved.memory
        extra = {"aot": program}
        run_model = model
    else:
        arena = firmware_arena(planned, target.cpu)
        memory = check_budget(planned.planned_model.size, max(arena.reserved.values()), planned.io_bytes, target,
                              limits.budget, limits.ram, limits.flash)
        enforce(memory)
        extra = {"arena": arena}
        run_model = planned.planned_model  # the model the firmware carries, plan embedded
    golden = golden_vectors(model, loaded.info, resolved.golden, dataset, run_model, reporter, preprocessing=prep,
                            camera=camera, images=golden_images, class_names=labels)
    return ProjectInputs(model, loaded.info, target, board, resolved.backend, planned, golden, memory, options,
                         **extra, preprocessing=prep, preprocessing_source=prep_source, labels=labels)


def emit(model: str | Path, target: str | Target, out: str | Path, *, golden: int = DEFAULT_GOLDEN,
         dataset: str | None = None, force: bool = False, budget: int | str | None = None,
         ram: int | str | None = None, flash: int | str | None = None, backend: str | None = None,
         inplace: str = "auto", vela: VelaOptions | None = None, reporter: Reporter = NullReporter(),
         pixels: PixelOptions = PixelOptions(), camera: CameraOptions = CameraOptions(),
         golden_images: str | Path | None = None, profile: bool = False, layout: str = "firmware",
         memory: str = "balanced", max_extra: float | None = None) -> EmitResult:
    """`mncompile emit`: the firmware project of `backend` ("tflm" or "aot") for the int8 `model`
    on `target`, in the folder `out`; with `layout` "library", the static library of
    `mncompile.emit.library` instead (AOT only, the default backend there; ``golden`` 0 allowed).
    `inplace` (AOT only): which depthwise layers run in place
    ("auto": those that lower the arena, "all", "off"). `vela` (Ethos-U targets): how Vela
    compiles the model (None: the target's defaults). `pixels`: the preprocessing contract's
    options; `camera`: the golden frames' formats, size and resize; `golden_images`: a folder of
    the user's pictures for the golden vectors; `profile`: the firmware times every layer and prints
    it (`mncompile.run.profile` reads it); `memory` (AOT only): the schedule --memory picks
    (`mncompile.aot.patch_search`: speed, balanced, min), `max_extra` the extra MACs it may cost
    (a fraction of the model's; None: any)."""
    from mncompile.emit.library import check_library_options, library_inputs, render_library

    library = check_layout(layout) == "library"
    backend = backend or ("aot" if library else "tflm")
    resolved = resolve(target, budget=budget, ram=ram, flash=flash, backend=backend, vela=vela, golden=golden,
                       inplace=inplace, profile=profile, layout=layout, memory=memory, max_extra=max_extra)
    pixels.check()
    camera.check()
    if library:
        check_library_options(resolved, dataset, golden_images)
    golden_images = check_golden_images(golden_images) if golden_images is not None else None
    out = check_destination(Path(out), force, MANIFEST_NAME)
    loaded = load_model(check_input_file(model, "model", hint="pass an int8 .tflite (from `mncompile quantize`)"))
    check_model_for_backend(loaded, backend)
    planned = plan_model(loaded.verified, measure_host_arena)
    if library:
        inputs = library_inputs(loaded, resolved, planned, dataset=dataset, reporter=reporter, pixels=pixels,
                                camera=camera, golden_images=golden_images)
        return render_library(inputs, out, reporter)
    inputs = project_inputs(loaded, resolved, planned, dataset=dataset, reporter=reporter, pixels=pixels,
                            camera=camera, golden_images=golden_images)
    return render_project(inputs, out, reporter)


# ---------------------------------------------------------------------------------------------
# build

STAGES = ("model", "quantize", "eval", "plan", "npu", "emit", "validate")
INT8_NAME = "model_int8.tflite"
EVAL_NAME = "eval.json"
PLAN_DIR = "plan"
FIRMWARE_DIR = "firmware"
RUN_BUILD_DIR = "firmware-build"  # beside OUT/firmware, which emit replaces: TFLM compiles once


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
    validation: RunResult | None = None
    npu: NpuResult | None = None
    cpu_memory: BudgetReport | None = None  # NPU targets: the budget running on the host CPU would have
    npu_arena: ArenaPrediction | None = None  # NPU targets: TFLM's arena for Vela's model
    flashed: FlashResult | None = None  # build --flash-board: the board's verdict (`mncompile flash`)

    def to_json(self) -> dict:
        o = self.options
        return {
            "mncompile": __version__,
            "target": {"name": self.target.name, "cpu": self.target.cpu, "board": self.target.board},
            "budget_bytes": self.budget_bytes,
            "dataset": o.dataset,
            "model": self.model.to_json() if self.model else None,
            "training": self.trained.to_json() if self.trained else None,
            "architecture": self.summary.to_json()["model"] if self.summary else None,
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
            "flash": self.flashed.to_json() if self.flashed else None,
            "stages": [{"name": s, "status": "done" if s in self.completed else "skipped"} for s in STAGES],
        }


def build(options: BuildOptions, reporter: Reporter = NullReporter(), flash: FlashRequest | None = None
          ) -> BuildResult:
    """`mncompile build`: train (or load) a model and take it through every stage into OUT. With `flash`
    (build --flash-board), `mncompile flash` follows on the emitted project: the board, pyOCD's target and
    the options are checked first, the probe itself when the firmware is ready."""
    from mncompile.files import write_text_atomic
    from mncompile.fit import check_estimate, estimate, suggestion
    from mncompile.model.analytic import summarize
    from mncompile.model.datasets import load_dataset, natural_channels
    from mncompile.model.spec import MobileNetSpec
    from mncompile.model.train import train
    from mncompile.quantize import quantize
    from mncompile.validate.accuracy import evaluate

    # Every option, input and output is checked before any slow work starts.
    resolved = resolve(options.target, budget=options.budget, ram=options.ram, flash=options.flash,
                       backend=options.backend, vela=options.vela, run=options.run, golden=options.golden,
                       profile=options.profile, memory=options.memory,
                       run_hint=f"run {options.out / FIRMWARE_DIR} on Arm's Corstone-300 FVP or the board (see its "
                                "README)")
    target, limits = resolved.target, resolved.limits
    check_output_folder(options.out)
    if options.model is not None:
        check_input_file(options.model, "model", folder_ok=True)
        if options.train.weights is not None or options.train.fine_tune_epochs:
            raise InvalidOptionError("--weights and --fine-tune-epochs start the training of a new model, and "
                                     "--model gives a trained one", hint="leave out --model to train, or leave "
                                                                         "out --weights")
    else:
        from mncompile.model.pretrained import check_weights

        if options.train.weights is not None:
            channels = options.channels or natural_channels(options.dataset or "digits")
            check_weights(options.train.weights, MobileNetSpec(options.arch, options.alpha, options.resolution,
                                                               channels, 2))
    options.pixels.check()
    options.camera.check()
    check_max_drop(options.max_drop)
    if options.golden_images is not None:
        check_golden_images(options.golden_images)
    if options.run:  # what validate needs, checked before hours of work: QEMU, a TFLM to build with
        check_runnable(target)
        resolve_tflm(None, options.out / RUN_BUILD_DIR, options.out / FIRMWARE_DIR,
                     needs_tflm=options.backend == "tflm")
    if flash is not None:  # the board must be one to flash, and pyOCD must know it, before hours of work
        if options.run:
            raise InvalidOptionError("--run and --flash-board both validate the firmware: --run on QEMU, "
                                     "--flash-board on the board", hint="pass one of them")
        check_flashable(target.board, flash)
        resolve_tflm(None, options.out / RUN_BUILD_DIR, options.out / FIRMWARE_DIR,
                     needs_tflm=options.backend == "tflm")
    completed = ["model"]

    reporter.stage("model")
    trained = summary = spec = None
    if options.model is not None:
        model = load_model(options.model)
        spec = _spec_of(model)
    else:
        dataset_name = options.dataset or "digits"
        channels = options.channels or natural_channels(dataset_name)
        dataset = load_dataset(dataset_name, options.resolution, channels, seed=options.train.seed)
        spec = MobileNetSpec(options.arch, options.alpha, options.resolution, channels, len(dataset.class_names))
        summary = summarize(spec)
        # Before training: the analytic estimate (the same one `mncompile fit` uses) must fit.
        if options.backend == "aot":  # the AOT schedule --memory picks, patch stages included
            from mncompile.fit import check_aot_estimate

            check_aot_estimate(spec, target, *_limits(limits), mode=options.memory)
        else:
            enforce(check_estimate(estimate(spec), target, *_limits(limits)),
                    suggestion(spec, target, *_limits(limits)))
        options.out.mkdir(parents=True, exist_ok=True)
        prep = options.pixels.preprocessing(options.resolution, channels)  # --input-range/--mean/--std
        trained = train(spec, dataset, options.out / "model.keras", options.train, reporter, force=True,
                        preprocessing=prep)
        model = load_model(trained.model_path)
    hint = suggestion(spec, target, *_limits(limits)) if spec else None

    options.out.mkdir(parents=True, exist_ok=True)  # with --model, nothing has made it yet
    quantized = quantize(model.path, options.out / INT8_NAME, dataset=options.dataset,
                         calib_samples=options.calib_samples, force=True, reporter=reporter, pixels=options.pixels,
                         qat=options.qat)
    int8 = LoadedModel(quantized.path, "tflite-int8", None, model.input_shape, model.num_classes, quantized.info,
                       quantized.model)
    check_model_for_backend(int8, options.backend)
    completed.append("quantize")

    evaluation = None
    if model.format == "tflite-int8":
        reporter.info("eval skipped: the model given is already int8, there is no float model to compare with")
    else:
        evaluation = evaluate(model, int8, dataset=options.dataset, layer_samples=options.layer_samples,
                              reporter=reporter, pixels=options.pixels, max_drop=options.max_drop)
        import json

        write_text_atomic(options.out / EVAL_NAME, json.dumps(evaluation.to_json(), indent=2, sort_keys=True) + "\n")
        completed.append("eval")
        if evaluation.warning():
            reporter.info(f"warning: {evaluation.warning()}")
        evaluation.enforce()  # --max-drop: exit 12 before any firmware is made (OUT/eval.json says why)

    reporter.stage("plan", f"arena plan of {quantized.path.name}, checked against {target.name}")
    planned = plan_model(quantized.model, measure_host_arena)
    write_plan_files(planned, options.out / PLAN_DIR)
    completed.append("plan")
    reporter.info(f"lower bound {planned.lower_bound:,} B, TFLM greedy {planned.greedy.arena_bytes:,} B, "
                  f"mncompile {planned.ours.arena_bytes:,} B; device arena {planned.device_arena_bytes:,} B")
    targeted = target_plan(planned, resolved, options.out / NPU_DIR, reporter)
    npu = targeted.npu
    if npu is not None:
        completed.append("npu")
        for line in npu.summary_lines():
            reporter.info(line)
        targeted.enforce(hint)
    elif options.backend == "tflm":  # the AOT backend's project checks its own, smaller, static arena
        enforce(targeted.memory, hint)

    firmware = check_destination(options.out / FIRMWARE_DIR, True, MANIFEST_NAME)
    inputs = project_inputs(int8, resolved, planned, dataset=options.dataset, npu=npu, reporter=reporter,
                            pixels=options.pixels, camera=options.camera, golden_images=options.golden_images)
    emitted = render_project(inputs, firmware, reporter)
    completed.append("emit")

    validation = flashed = None
    if options.run:
        reporter.stage("validate", f"building {emitted.out} and running it on QEMU {target.qemu_machine}")
        validation = run_project(emitted.out, build_dir=options.out / RUN_BUILD_DIR, reporter=reporter)
        completed.append("validate")
    elif flash is not None:
        reporter.stage("validate", f"building {emitted.out} and flashing it to the board {target.board}")
        flashed = flash_project(emitted.out, flash, build_dir=options.out / RUN_BUILD_DIR, reporter=reporter)
        completed.append("validate")
    elif npu is not None:
        reporter.info(f"validate skipped: QEMU has no {target.npu.name} model; the golden vectors in "
                      f"{emitted.out} are the host's CPU reference numerics, checked on Arm's Corstone-300 FVP "
                      "or the board")
    else:
        reporter.info("validate skipped: pass --run to build the firmware (TFLM_ROOT) and check it on QEMU, "
                      f"or run `mncompile run {emitted.out}`")
    if summary is None and spec is not None:  # --model: its sidecar names the MobileNet; the card shows its costs
        summary = summarize(spec)
    result = BuildResult(options, target, limits.budget, model, trained, summary, quantized, evaluation, planned,
                         emitted.memory, emitted, tuple(completed), validation, npu,
                         targeted.cpu_memory if npu is not None else None, targeted.npu_arena, flashed)
    write_report_files(result, options.out, reporter)
    return result


def write_report_files(result: BuildResult, out: Path, reporter: Reporter) -> None:
    """OUT/build.json (what `build --json` prints) and OUT/report.html made from it (`mncompile report`)."""
    import json

    from mncompile.files import write_text_atomic
    from mncompile.report import BUILD_JSON, write_report

    write_text_atomic(out / BUILD_JSON, json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    report = write_report(out)
    reporter.info(f"report: {report.path} ({', '.join(report.sections)})")


def _limits(limits) -> tuple[int | None, int | None, int | None]:
    return limits.budget, limits.ram, limits.flash


def _spec_of(model: LoadedModel):
    """The MobileNet spec of a loaded model, when its sidecar names one we can rebuild."""
    from mncompile.model.spec import MobileNetSpec

    info = model.info
    if info is None or info.arch is None or info.alpha is None:
        return None
    try:
        return MobileNetSpec(info.arch, info.alpha, info.resolution, info.channels, len(info.class_names))
    except Exception:  # a sidecar from elsewhere may describe something we cannot rebuild
        return None
