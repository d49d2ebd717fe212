"""Commands that make and check projects: plan, emit, build, run, flash."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mncompile.cli.app import _handle_errors, app
from mncompile.cli.options import (
    ALPHA,
    ARCH,
    BACKEND_OPTION,
    BAUD_OPTION,
    CAMERA_FORMAT_OPTION,
    CAMERA_SIZE_OPTION,
    CHANNELS,
    EMIT_BACKEND_OPTION,
    EPOCHS,
    FINE_TUNE_OPTION,
    GOLDEN_IMAGES_OPTION,
    INPUT_RANGE_OPTION,
    JSON_OPTION,
    LABELS_OPTION,
    LAYOUT_OPTION,
    MAX_DROP_OPTION,
    MEAN_OPTION,
    MEMORY_OPTION,
    PACK_OPTION,
    PORT_OPTION,
    PROBE_OPTION,
    PROFILE_OPTION,
    QAT_EPOCHS_OPTION,
    QAT_LR_OPTION,
    QAT_OPTION,
    RESIZE_OPTION,
    RESOLUTION,
    RHO,
    SEED,
    STD_OPTION,
    VELA_MEMORY_OPTION,
    VELA_OPTIMISE_OPTION,
    VELA_SYSTEM_OPTION,
    WEIGHTS_OPTION,
    _camera,
    _flash_request,
    _pixels,
    _qat,
    _resolution,
    _vela,
)


@app.command()
@_handle_errors
def plan(
    model: Path = typer.Argument(..., help="An int8 .tflite (from `mncompile quantize`, or any full-integer "
                                 "model: int8 I/O or float32 I/O through QUANTIZE/DEQUANTIZE, any input shape)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for plan.json, memory.png and "
                                    "<model>_planned.tflite. [default: <model>.plan next to the model]"),
    target: str | None = typer.Option(None, "--target", "-t", help="Also check the target's memory; for an "
                                      "Ethos-U target, compile with Vela (into OUT/npu/) and show its figures "
                                      "next to the CPU plan."),
    budget: str | None = typer.Option(None, "--budget", help="With --target: total model memory, e.g. 6MB."),
    ram: str | None = typer.Option(None, "--ram", help="With --target: override the target's RAM."),
    flash: str | None = typer.Option(None, "--flash", help="With --target: override the target's flash."),
    vela_system_config: str | None = VELA_SYSTEM_OPTION,
    vela_memory_mode: str | None = VELA_MEMORY_OPTION,
    vela_optimise: str = VELA_OPTIMISE_OPTION,
    memory: str = MEMORY_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Plan the tensor arena: lifetimes, lower bound, TFLM greedy and mncompile's plan.

    Writes a memory-timeline picture (memory.png), the plan as JSON, and the
    model with mncompile's plan embedded as OfflineMemoryAllocation metadata,
    which stock TFLM follows. With --target, checks the budget (exit 8 when over);
    for an Ethos-U target it runs Vela and the budget counts Vela's figures.
    Next to them: the AOT backend's arena layer by layer and the schedule --memory
    picks (within the target's RAM; min: the least RAM patch stages reach), also
    drawn in memory.png and recorded in plan.json ("aot").
    """
    from mncompile.cli import render
    from mncompile.pipeline import plan as run_plan

    outcome = run_plan(model, out, target=target, budget=budget, ram=ram, flash=flash,
                       vela=_vela(vela_system_config, vela_memory_mode, vela_optimise), reporter=render.RichReporter(),
                       memory=memory)
    result, files, checked = outcome.plan, outcome.files, outcome.targeted
    if json_output:
        document = {**result.to_json(), **(checked.to_json() if checked else {}),
                    "aot": json.loads(files.json.read_text())["aot"],
                    "files": {"json": str(files.json), "picture": str(files.picture),
                              "planned_model": str(files.planned_model)}}
        outcome.enforce(document)  # over budget: the error's JSON is this document with the error added
        render.print_json(document)
        return
    render.out.print(render.plan_table(result))
    render.out.print(render.plan_summary(result), highlight=False)
    render.out.print(render.aot_plan_line(outcome.aot, outcome.aot_unsupported), highlight=False)
    if checked is not None:
        if checked.npu is not None:
            render.out.print(render.npu_table(result, checked.npu, checked.npu_arena))
            for line in render.npu_fallback_lines(checked.npu):
                render.out.print(line, highlight=False)
        render.out.print(render.memory_table(checked.memory))
    render.out.print(f"wrote {files.json}, {files.picture} and {files.planned_model}", highlight=False)
    outcome.enforce()



@app.command()
@_handle_errors
def emit(
    model: Path = typer.Argument(..., help="An int8 .tflite (from `mncompile quantize`, or any full-integer "
                                 "model: int8 I/O or float32 I/O through QUANTIZE/DEQUANTIZE, any input shape)."),
    target: str = typer.Option(..., "--target", "-t", help="Deployment target (see `mncompile targets`); "
                               "it picks the CPU flags and the board support."),
    out: Path = typer.Option(..., "--out", "-o", help="Project folder to create."),
    golden: int = typer.Option(4, "--golden", help="Golden images (each carried in every --camera-format): "
                               "the firmware converts their raw frames and must reproduce the TFLM host "
                               "outputs bit for bit."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Where golden images come from without "
                                       "--golden-images: digits, shapes or an image folder, validation split, "
                                       "stratified. [default: the model's, from its sidecar; seeded random "
                                       "pixels with a warning when it names none]"),
    budget: str | None = typer.Option(None, "--budget", help="Total model memory to check against, "
                                      "e.g. 6MB (1024-based)."),
    ram: str | None = typer.Option(None, "--ram", help="Override the target's RAM (arena + I/O buffers)."),
    flash: str | None = typer.Option(None, "--flash", help="Override the target's flash (the model)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing project folder written by "
                               "mncompile (a folder without mncompile.json is never deleted)."),
    backend: str | None = EMIT_BACKEND_OPTION,
    layout: str = LAYOUT_OPTION,
    input_range: str | None = INPUT_RANGE_OPTION,
    mean: str | None = MEAN_OPTION,
    std: str | None = STD_OPTION,
    labels: Path | None = LABELS_OPTION,
    golden_images: Path | None = GOLDEN_IMAGES_OPTION,
    camera_format: str | None = CAMERA_FORMAT_OPTION,
    camera_size: str | None = CAMERA_SIZE_OPTION,
    resize: str | None = RESIZE_OPTION,
    profile: bool = PROFILE_OPTION,
    memory: str = MEMORY_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Write a firmware project for an int8 model: TensorFlow Lite Micro, or AOT C (--backend aot).

    With --backend aot the project has no TFLM: src/model.c calls mncompile's
    int8 kernels layer by layer, constants folded, activations in one static arena.

    The project holds the model as a C array in a flash section (with mncompile's
    memory plan embedded), golden vectors with the TFLM host interpreter's outputs,
    a main.cc that checks them on the device, board support, CMake files and a
    README; mncompile.json records how it was made. For an image model every
    golden vector starts as a raw camera frame (--camera-format, --camera-size):
    the firmware converts it with mncompile's preprocessing (src/model_input.h)
    and checks the input tensor against the host's bit for bit first. The folder is written to a
    temporary name and renamed, so it is complete or absent.

    With --layout library the folder is a static library to link into your own
    application instead (AOT C, one header include/mncompile_model.h: init with a
    static or your own arena, input/output buffers and quantization, invoke, labels,
    the camera-frame preprocessing, a self-test of the golden vectors, of which
    --golden 0 makes none); it is also a Zephyr module and an Arduino library.
    """
    from mncompile.cli import render
    from mncompile.pipeline import emit as run_emit

    result = run_emit(model, target, out, golden=golden, dataset=dataset, force=force, budget=budget,
                      ram=ram, flash=flash, backend=backend, reporter=render.RichReporter(),
                      pixels=_pixels(input_range, mean, std, labels),
                      camera=_camera(camera_format, camera_size, resize), golden_images=golden_images,
                      profile=profile, layout=layout, memory=memory)
    if json_output:
        render.print_json(result.to_json())
        return
    for line in render.emit_lines(result) if result.backend == "tflm" and result.layout == "firmware" \
            else result.summary_lines():
        render.out.print(line, highlight=False)



@app.command()
@_handle_errors
def build(
    alpha: float = ALPHA,
    budget: str | None = typer.Option(None, "--budget", help="Total model memory: constants + arena + "
                                         "I/O buffers, e.g. 6MB or 512KB (1024-based)."),
    target: str = typer.Option("cortex-m7", "--target", help="Deployment target (see `mncompile "
                               "targets`): its RAM and flash are checked too."),
    ram: str | None = typer.Option(None, "--ram", help="Override the target's RAM (arena + I/O buffers)."),
    flash: str | None = typer.Option(None, "--flash", help="Override the target's flash (the .tflite)."),
    arch: str = ARCH,
    resolution: int | None = RESOLUTION,
    rho: float | None = RHO,
    channels: int | None = CHANNELS,
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="digits, shapes, or a folder "
                                       "DIR/<class_name>/*.{png,jpg,jpeg,bmp}. [default: digits; with "
                                       "--model, the model's own from its sidecar]"),
    model: Path | None = typer.Option(None, "--model", "-m", help="Use this model instead of "
                                         "training: .keras, .h5 (Keras 3 or 2), a SavedModel "
                                         "folder or an int8 .tflite."),
    epochs: int = EPOCHS,
    seed: int = SEED,
    weights: str | None = WEIGHTS_OPTION,
    fine_tune_epochs: int = FINE_TUNE_OPTION,
    calib_samples: int = typer.Option(200, "--calib-samples", help="Calibration images for int8 "
                                      "quantization (stratified over classes, training split)."),
    qat: bool = QAT_OPTION,
    qat_epochs: int = QAT_EPOCHS_OPTION,
    qat_learning_rate: float = QAT_LR_OPTION,
    layer_samples: int = typer.Option(32, "--layer-samples", help="Validation images for the "
                                      "per-layer SQNR (0 skips it)."),
    golden: int = typer.Option(4, "--golden", help="Golden images the firmware checks from their raw camera "
                               "frames (see emit)."),
    out: Path = typer.Option(Path("mncompile-build"), "--out", "-o",
                             help="Build folder; build owns it and replaces its own files."),
    run: bool = typer.Option(False, "--run", help="Validate: build OUT/firmware against the tflite-micro "
                             "checkout in $TFLM_ROOT (in OUT/firmware-build) and run it on the target's QEMU "
                             "machine, as `mncompile run` does (exit 10 when a vector FAILs)."),
    backend: str = BACKEND_OPTION,
    vela_system_config: str | None = VELA_SYSTEM_OPTION,
    vela_memory_mode: str | None = VELA_MEMORY_OPTION,
    vela_optimise: str = VELA_OPTIMISE_OPTION,
    max_drop: float | None = MAX_DROP_OPTION,
    input_range: str | None = INPUT_RANGE_OPTION,
    mean: str | None = MEAN_OPTION,
    std: str | None = STD_OPTION,
    labels: Path | None = LABELS_OPTION,
    golden_images: Path | None = GOLDEN_IMAGES_OPTION,
    camera_format: str | None = CAMERA_FORMAT_OPTION,
    camera_size: str | None = CAMERA_SIZE_OPTION,
    resize: str | None = RESIZE_OPTION,
    profile: bool = PROFILE_OPTION,
    memory: str = MEMORY_OPTION,
    flash_board: bool = typer.Option(False, "--flash-board", help="Validate on the board: after emit, flash "
                                     "OUT/firmware with pyOCD and check the golden vectors on its console, as "
                                     "`mncompile flash` does (exit 13 without a probe, 10 when a vector FAILs). "
                                     "The board and pyOCD's target are checked before any work."),
    probe: str | None = PROBE_OPTION,
    port: str | None = PORT_OPTION,
    baud: int = BAUD_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Run the pipeline: model -> quantize -> eval -> plan -> npu -> emit -> validate.

    Trains (or loads) the model, quantizes it to int8 (OUT/model_int8.tflite),
    compares float with int8 on the host emulators (OUT/eval.json), plans the
    arena (OUT/plan/), checks the budget and the target's RAM and flash (exit 8
    when over, saying what would fit) and writes the TFLM firmware project
    (OUT/firmware/, see `mncompile emit`). With --run, validate builds it and
    checks every golden vector on QEMU (see `mncompile run`); without, validate
    is skipped. For an Ethos-U target the npu stage compiles the int8 model with
    Vela (OUT/npu/), the budget counts Vela's figures, and the project is the
    TFLM + Ethos-U variant (no QEMU: --run is refused).
    """
    from mncompile.cli import render
    from mncompile.model.train import TrainConfig
    from mncompile.options import BuildOptions
    from mncompile.pipeline import build as run_build

    options = BuildOptions(arch=arch, alpha=alpha, resolution=_resolution(resolution, rho, 96),
                           channels=channels, dataset=dataset, model=model, budget=budget,
                           ram=ram, flash=flash, target=target, out=out,
                           train=TrainConfig(epochs=epochs, seed=seed, weights=weights,
                                             fine_tune_epochs=fine_tune_epochs),
                           calib_samples=calib_samples, qat=_qat(qat, qat_epochs, qat_learning_rate),
                           layer_samples=layer_samples, golden=golden, run=run,
                           backend=backend, vela=_vela(vela_system_config, vela_memory_mode, vela_optimise),
                           pixels=_pixels(input_range, mean, std, labels),
                           camera=_camera(camera_format, camera_size, resize), golden_images=golden_images,
                           max_drop=max_drop, profile=profile, memory=memory)
    from mncompile.flash import DEFAULT_TIMEOUT

    flash_request = _flash_request(probe, port, baud, DEFAULT_TIMEOUT, None) if flash_board else None
    result = run_build(options, render.RichReporter(), flash=flash_request)
    if json_output:
        if result.validation is not None:
            result.validation.raise_if_failed(result.to_json())
        if result.flashed is not None:
            result.flashed.raise_if_failed(result.to_json())
        render.print_json(result.to_json())
        return
    if result.summary is not None:
        render.out.print(f"model: {result.summary.spec.name}, "
                         + render.summary_totals(result.summary), highlight=False)
    if result.trained is not None:
        render.out.print(f"validation accuracy (float, Keras): {result.trained.val_accuracy:.2%}; "
                         f"saved {result.trained.model_path}", highlight=False)
    elif result.model is not None:
        m = result.model
        render.out.print(f"loaded {m.path} ({m.format}), input {m.input_shape}, "
                         f"{m.num_classes} classes", highlight=False)
    if result.quantized is not None:
        render.out.print(f"int8 model: {result.quantized.path} ({result.quantized.size_bytes:,} bytes)",
                         highlight=False)
    if result.evaluation is not None:
        for table in render.eval_tables(result.evaluation)[:1]:
            render.out.print(table)
        render.out.print(render.emulator_line(result.evaluation), highlight=False)
        render.out.print(f"full report (per class, per layer): {out / 'eval.json'} or "
                         f"`mncompile eval {result.model.path} {result.quantized.path}`", highlight=False)
    render.out.print(f"target: {result.target.name} ({result.target.description})", highlight=False)
    if result.plan is not None:
        render.out.print(render.plan_summary(result.plan), highlight=False)
    if result.npu is not None:
        render.out.print(render.npu_table(result.plan, result.npu, result.npu_arena))
        for line in render.npu_fallback_lines(result.npu):
            render.out.print(line, highlight=False)
    if result.memory is not None:
        render.out.print(render.memory_table(result.memory))
    if result.emitted is not None:
        for line in (render.emit_lines(result.emitted) if result.emitted.backend == "tflm"
                     else result.emitted.summary_lines()):
            render.out.print(line, highlight=False)
    if result.validation is not None:
        for line in render.run_renderables(result.validation):
            render.out.print(line, highlight=False)
        _print_profile(render, result.validation)
    if result.flashed is not None:
        for line in result.flashed.summary_lines():
            render.out.print(line, highlight=False, markup=False)
        _print_profile(render, result.flashed.run)
    render.out.print(render.build_summary(result), highlight=False)
    if result.validation is not None:
        result.validation.raise_if_failed(result.to_json())
    if result.flashed is not None:
        result.flashed.raise_if_failed(result.to_json())


def _print_profile(render, result) -> None:
    """The per-layer table of a run of a project emitted with --profile (Markdown, printed as it is)."""
    if result.profile is None:
        return
    for line in (*result.profile.table_lines(), result.profile.summary_line()):
        render.out.print(line, highlight=False, markup=False)


@app.command(name="run")
@_handle_errors
def run_command(
    project: Path = typer.Argument(..., help="A project folder written by `mncompile emit` (or OUT/firmware "
                                             "of `mncompile build`)."),
    target: str | None = typer.Option(None, "--target", "-t", help="The target to run as; it must be the one "
                                      "the project was emitted for. [default: the manifest's]"),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds the firmware may run on QEMU before "
                                  "it is stopped (exit 7)."),
    tflm_root: Path | None = typer.Option(None, "--tflm-root", help="A tflite-micro checkout with its "
                                          "third-party downloads. [default: $TFLM_ROOT]"),
    cmsis_nn_root: Path | None = typer.Option(None, "--cmsis-nn-root", help="A CMSIS-NN checkout: build "
                                              "TFLM's CMSIS-NN kernels instead of the reference ones."),
    build_dir: Path | None = typer.Option(None, "--build-dir", help="CMake build folder, kept between runs "
                                          "(TFLM compiles once). [default: PROJECT/build]"),
    json_output: bool = JSON_OPTION,
) -> None:
    """Build an emitted project, run it on QEMU and check every golden vector.

    Configures and builds the project with CMake and arm-none-eabi-gcc, runs
    firmware.elf on the target's QEMU machine (-icount shift=0: deterministic),
    and checks what the firmware printed against mncompile.json: every golden
    vector reported and PASS (bit-exact with the TFLM host interpreter). Prints
    text/data/bss, PASS/FAIL per vector, ticks and instructions per inference,
    instructions per MAC and the arena used against the prediction; for a project
    emitted with --profile, the per-layer table (op, MACs, instructions,
    instructions/MAC, share; --json carries it as "profile"). A TFLM
    project needs --tflm-root or TFLM_ROOT (mncompile never downloads TFLM
    behind your back: exit 9 says how). Exit 10 when a vector FAILs.
    """
    from mncompile.cli import render
    from mncompile.run.validate import run_project

    result = run_project(project, target=target, timeout=timeout, tflm_root=tflm_root, cmsis_nn_root=cmsis_nn_root,
                         build_dir=build_dir, reporter=render.RichReporter())
    if not json_output:
        for line in render.run_renderables(result):
            render.out.print(line, highlight=False)
        _print_profile(render, result)
    result.raise_if_failed()
    if json_output:
        render.print_json(result.to_json())


@app.command(name="flash")
@_handle_errors
def flash_command(
    project: Path = typer.Argument(..., help="A project folder written by `mncompile emit` for a real board's "
                                             "target (or OUT/firmware of `mncompile build`)."),
    probe: str | None = PROBE_OPTION,
    port: str | None = PORT_OPTION,
    baud: int = BAUD_OPTION,
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds from the reset to the firmware's last line "
                                  "before it is judged unfinished (exit 10)."),
    pack: Path | None = PACK_OPTION,
    target: str | None = typer.Option(None, "--target", "-t", help="The target to flash as; it must be the one "
                                      "the project was emitted for. [default: the manifest's]"),
    tflm_root: Path | None = typer.Option(None, "--tflm-root", help="A tflite-micro checkout with its "
                                          "third-party downloads. [default: $TFLM_ROOT]"),
    cmsis_nn_root: Path | None = typer.Option(None, "--cmsis-nn-root", help="A CMSIS-NN checkout: build "
                                              "TFLM's CMSIS-NN kernels instead of the reference ones."),
    build_dir: Path | None = typer.Option(None, "--build-dir", help="CMake build folder. [default: "
                                          "PROJECT/build]"),
    json_output: bool = JSON_OPTION,
) -> None:
    """Build a project, flash it to its board with pyOCD and check every golden vector on the board.

    Finds the debug probe (exit 13 when none is attached, saying what pyOCD
    looked for) and the board's console (the probe's virtual COM port, or
    --port), builds the project as `run` does, programs firmware.elf with
    pyOCD for the board's target (a target pyOCD lacks needs its CMSIS-Pack:
    `pyocd pack install PART`, never downloaded here), resets the board and
    reads its UART until the firmware's exit line. The lines are checked as
    `run` checks QEMU's: exit 10 when a vector FAILs or is missing. The
    OpenOCD and probe-rs commands that do the same are printed (and in --json).
    A QEMU project is exit 13: use `mncompile run`.
    """
    from mncompile.cli import render
    from mncompile.flash import flash_project

    result = flash_project(project, _flash_request(probe, port, baud, timeout, pack), target=target,
                           tflm_root=tflm_root, cmsis_nn_root=cmsis_nn_root, build_dir=build_dir,
                           reporter=render.RichReporter())
    if not json_output:
        for line in result.summary_lines():
            render.out.print(line, highlight=False, markup=False)
        _print_profile(render, result.run)
    result.raise_if_failed()
    if json_output:
        render.print_json(result.to_json())
