"""The `mncompile` command line.

Commands parse options, call the library and render. Library errors
(`MncompileError`) become exit codes here, in `_handle_errors`, and nowhere else.
TensorFlow is never imported at start-up: `--help` and `--version` stay fast.
"""

from __future__ import annotations

import functools
import sys
import traceback
from pathlib import Path

import typer

from mncompile import __version__
from mncompile.errors import EXIT_CODES, InvalidOptionError, MncompileError

EXIT_CODE_HELP = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES) + "."

app = typer.Typer(
    name="mncompile",
    help="Compile a MobileNet into microcontroller firmware that provably fits and computes "
         "the right numbers.\n\nPipeline: model -> quantize -> plan -> emit -> validate. "
         "Progress goes to stderr; results to stdout, or one JSON document with --json.",
    epilog=EXIT_CODE_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

JSON_OPTION = typer.Option(False, "--json", help="Print exactly one JSON document on stdout.")
PROFILE_OPTION = typer.Option(False, "--profile", help="Per-layer profile: the firmware times every operator "
                              "(instructions on QEMU, cycles with DWT) and `mncompile run` prints the per-layer "
                              "table. Without it the firmware has no profiling code.")
BACKEND_OPTION = typer.Option("tflm", "--backend", help="tflm: a TensorFlow Lite Micro project (the "
                              "interpreter runs the model); aot: C code calling mncompile's int8 kernels, "
                              "compiled ahead of time (no TFLM, one static arena, bit-exact with TFLM).")
VELA_SYSTEM_OPTION = typer.Option(None, "--vela-system-config", help="Ethos-U targets: Vela's system config "
                                   "(Arm/vela.ini), e.g. Ethos_U55_High_End_Embedded. [default: the target's]")
VELA_MEMORY_OPTION = typer.Option(None, "--vela-memory-mode", help="Ethos-U targets: Vela's memory mode: "
                                  "Shared_Sram, Sram_Only, Dedicated_Sram. [default: the target's]")
VELA_OPTIMISE_OPTION = typer.Option("Performance", "--vela-optimise", help="Ethos-U targets: Vela's strategy, "
                                    "Performance or Size (least SRAM).")
INPUT_RANGE_OPTION = typer.Option(None, "--input-range", help="How 0..255 pixels map onto the model's input: "
                                  "linearly onto [LO,HI], e.g. 0,1 or -1,1. [default: the sidecar's, else the "
                                  "range an int8 input's quantization covers, else -1,1 with a warning]")
MEAN_OPTION = typer.Option(None, "--mean", help="Per-channel mean R,G,B (with --std): x = (pixel - mean) / std, "
                           "on pixel/255 when every mean and std is at most 1 (torch), on 0..255 otherwise (caffe).")
STD_OPTION = typer.Option(None, "--std", help="Per-channel standard deviation R,G,B (with --mean).")
LABELS_OPTION = typer.Option(None, "--labels", help="Class labels, one a line, in the order of the model's "
                             "outputs. [default: the sidecar's]")
GOLDEN_IMAGES_OPTION = typer.Option(None, "--golden-images", help="A folder of your own pictures for the golden "
                                    "vectors (files, or class folders named after the labels). [default: the "
                                    "dataset's validation split, else random pixels with a warning]")
CAMERA_FORMAT_OPTION = typer.Option(None, "--camera-format", help="Pixel format(s) of the golden camera frames, "
                                    "comma-separated: rgb888, rgb565, rgb565be, gray8, yuv422 (YUYV); every golden "
                                    "image is carried in each. [default: rgb888, gray8 for a 1-channel model]")
CAMERA_SIZE_OPTION = typer.Option(None, "--camera-size", help="Size of the golden camera frames, WIDTHxHEIGHT, "
                                  "e.g. 160x120; the firmware resizes them to the model's side. [default: the "
                                  "model's side]")
RESIZE_OPTION = typer.Option(None, "--resize", help="How the firmware resizes a camera frame: nearest or bilinear. "
                             "[default: the preprocessing's, bilinear]")
WEIGHTS_OPTION = typer.Option(None, "--weights", help="Start from a pretrained base: imagenet (Keras "
                              "applications' weights, for the alphas and resolutions Keras publishes; downloaded "
                              "into Keras' cache when online) or a weights file of that base (model.save_weights). "
                              "The base is frozen while the new classifier trains for --epochs.")
FINE_TUNE_OPTION = typer.Option(0, "--fine-tune-epochs", help="With --weights: then unfreeze the top quarter of the "
                                "base (batch norms stay frozen) and train this many more epochs at a tenth of the "
                                "learning rate.")
QAT_OPTION = typer.Option(False, "--qat", help="Quantization-aware training instead of post-training calibration: "
                          "fine-tune the float model with fake int8 quantization (tensorflow-model-optimization) on "
                          "the dataset's training split, then convert it (--calib-samples is not used).")
QAT_EPOCHS_OPTION = typer.Option(3, "--qat-epochs", help="With --qat: epochs of quantization-aware fine-tuning.")
QAT_LR_OPTION = typer.Option(1e-4, "--qat-learning-rate", help="With --qat: Adam learning rate of the fine-tune.")
MAX_DROP_OPTION = typer.Option(None, "--max-drop", help="Accuracy gate: exit 12 when int8 top-1 accuracy is more "
                                "than this many points below float (the message names the likely culprit). "
                                "Without it, a drop over 1 point is a warning.")
DEBUG = {"on": False}


def _pixels(input_range: str | None, mean: str | None, std: str | None, labels: Path | None):
    from mncompile.preprocess.contract import PixelOptions

    return PixelOptions(input_range, mean, std, labels)


def _qat(qat: bool, epochs: int, learning_rate: float):
    from mncompile.quantize.qat import QatConfig

    if qat:
        return QatConfig(epochs=epochs, learning_rate=learning_rate)
    default = QatConfig()
    if (epochs, learning_rate) != (default.epochs, default.learning_rate):
        raise InvalidOptionError("--qat-epochs and --qat-learning-rate tune quantization-aware training, and --qat "
                                 "was not given", hint="add --qat, or leave them out")
    return None


def _camera(formats: str | None, size: str | None, resize: str | None):
    from mncompile.preprocess.camera import CameraOptions

    return CameraOptions(formats, size, resize)


def _vela(system_config: str | None, memory_mode: str | None, optimise: str):
    from mncompile.npu import VelaOptions

    return VelaOptions(system_config, memory_mode, optimise)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mncompile {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for internal errors."),
) -> None:
    DEBUG["on"] = debug


def _handle_errors(command):
    """Map library errors to exit codes: the one place where that happens."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from rich.markup import escape

        from mncompile.cli import render

        as_json = bool(kwargs.get("json_output"))
        try:
            return command(*args, **kwargs)
        except MncompileError as exc:
            render.err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
            if exc.hint:
                render.err.print(f"[yellow]hint:[/] {escape(exc.hint)}", highlight=False)
            if as_json:
                render.print_json(exc.to_json())
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            render.err.print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: say so, keep the contract of one JSON document
            render.err.print(f"[bold red]internal error:[/] {escape(f'{type(exc).__name__}: {exc}')}",
                             highlight=False)
            if DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            else:
                render.err.print("run again with --debug for the traceback, and please report it")
            if as_json:
                render.print_json({"error": "internal", "message": f"{type(exc).__name__}: {exc}",
                                   "hint": None, "exit_code": 1})
            raise typer.Exit(1) from None

    return wrapper


def _resolution(resolution: int | None, rho: float | None, default: int) -> int:
    from mncompile.model.spec import resolution_from_rho

    if resolution is not None and rho is not None:
        raise InvalidOptionError("give --resolution or --rho, not both")
    if rho is not None:
        return resolution_from_rho(rho)
    return default if resolution is None else resolution


ARCH = typer.Option("v1", "--arch", help="MobileNet version: v1 or v2.")
ALPHA = typer.Option(0.25, "--alpha", help="Width multiplier alpha, in (0, 1.4].")
RESOLUTION = typer.Option(None, "--resolution", "-r",
                          help="Input side in pixels (32-1024). [default: 96; inspect: 224]")
RHO = typer.Option(None, "--rho", help="Resolution multiplier as in the paper: side = 224*rho.")
CHANNELS = typer.Option(None, "--channels", help="Input channels, 1 or 3. [default: the "
                                                  "dataset's own: digits 1, shapes 3, folders by image mode]")
DATASET = typer.Option("digits", "--dataset", "-d",
                       help="digits, shapes, or a folder DIR/<class_name>/*.{png,jpg,jpeg,bmp}.")
EPOCHS = typer.Option(15, "--epochs", help="Training epochs.")
BATCH = typer.Option(32, "--batch-size", help="Training batch size.")
LR = typer.Option(2e-3, "--learning-rate", help="Adam learning rate (cosine-decayed to 0).")
SEED = typer.Option(0, "--seed", help="Seed for the split, augmentation and initialisation.")


@app.command()
@_handle_errors
def inspect(
    arch: str = ARCH,
    alpha: float = typer.Option(1.0, "--alpha", help="Width multiplier alpha, in (0, 1.4]."),
    resolution: int | None = RESOLUTION,
    rho: float | None = RHO,
    channels: int = typer.Option(3, "--channels", help="Input channels, 1 or 3."),
    classes: int = typer.Option(1000, "--classes", help="Classifier outputs (ImageNet: 1000)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Per-layer mult-adds and parameters of a MobileNet, computed analytically (no Keras).

    Each depthwise-separable pair shows, on its 1x1 row, what a standard convolution
    would cost and the saving factor 1/N + 1/Dk² from the paper.
    """
    from mncompile.cli import render
    from mncompile.model.analytic import summarize
    from mncompile.model.spec import MobileNetSpec

    spec = MobileNetSpec(arch, alpha, _resolution(resolution, rho, 224), channels, classes)
    summary = summarize(spec)
    if json_output:
        render.print_json(summary.to_json())
        return
    render.out.print(render.summary_table(summary))
    render.out.print(render.summary_totals(summary), highlight=False)


@app.command()
@_handle_errors
def train(
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the model (.keras); "
                                                           "a sidecar <output>.json is written next to it."),
    arch: str = ARCH,
    alpha: float = ALPHA,
    resolution: int | None = RESOLUTION,
    rho: float | None = RHO,
    channels: int | None = CHANNELS,
    dataset: str = DATASET,
    epochs: int = EPOCHS,
    batch_size: int = BATCH,
    learning_rate: float = LR,
    seed: int = SEED,
    weights: str | None = WEIGHTS_OPTION,
    fine_tune_epochs: int = FINE_TUNE_OPTION,
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Share of each class held out for validation "
                                       "(stratified, seeded); the sidecar records it, so quantize and eval use the "
                                       "same split."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Train a MobileNet on a dataset and save it as .keras plus a JSON sidecar.

    The sidecar records the class names and the exact pixel preprocessing
    (x = pixel * scale + offset) that quantization and the firmware reuse.
    """
    from mncompile.cli import render
    from mncompile.model.datasets import check_val_fraction, load_dataset, natural_channels
    from mncompile.model.spec import MobileNetSpec
    from mncompile.model.train import TrainConfig, check_output
    from mncompile.model.train import train as train_model

    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         seed=seed, weights=weights, fine_tune_epochs=fine_tune_epochs)
    check_output(output, force)
    check_val_fraction(val_fraction)
    size = _resolution(resolution, rho, 96)
    reporter = render.RichReporter()
    reporter.stage("dataset", dataset)
    channels = channels or natural_channels(dataset)
    data = load_dataset(dataset, size, channels, seed=seed, val_fraction=val_fraction)
    spec = MobileNetSpec(arch, alpha, size, channels, len(data.class_names))
    result = train_model(spec, data, output, config, reporter, force=force)
    if json_output:
        render.print_json(result.to_json())
        return
    render.out.print(f"validation accuracy {result.val_accuracy:.2%} "
                     f"({len(data.y_val)} images, {len(data.class_names)} classes) "
                     f"after {config.epochs} epochs in {result.seconds:.0f} s", highlight=False)
    render.out.print(f"saved {result.model_path} and {result.sidecar_path}", highlight=False)


@app.command()
@_handle_errors
def quantize(
    model: Path = typer.Argument(..., help="Float model (.keras, .h5, SavedModel folder) or an "
                                           "int8 .tflite to check and pass through."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the int8 .tflite; a "
                                                            "sidecar <output>.json goes next to it."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Calibration data: digits, "
                                       "shapes or an image folder. [default: the model's, from its sidecar]"),
    calib_samples: int = typer.Option(200, "--calib-samples", help="Calibration images, drawn "
                                      "stratified over classes from the training split."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    input_range: str | None = INPUT_RANGE_OPTION,
    mean: str | None = MEAN_OPTION,
    std: str | None = STD_OPTION,
    labels: Path | None = LABELS_OPTION,
    qat: bool = QAT_OPTION,
    qat_epochs: int = QAT_EPOCHS_OPTION,
    qat_learning_rate: float = QAT_LR_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Full-integer int8 quantization (int8 weights per channel, activations, input and output).

    Post-training (calibrated on --calib-samples training images) by default;
    with --qat, quantization-aware training fine-tunes the float model first.

    The result is checked before it is written: only builtin ops TFLM runs,
    static batch-1 shapes, and quantization parameters TFLM kernels accept. A
    collapsed layer (an untrained model, wrong calibration data) is an error
    naming the layer, and nothing is written.
    """
    from mncompile.cli import render
    from mncompile.quantize import quantize as run_quantize

    result = run_quantize(model, output, dataset=dataset, calib_samples=calib_samples, force=force,
                          reporter=render.RichReporter(), pixels=_pixels(input_range, mean, std, labels),
                          qat=_qat(qat, qat_epochs, qat_learning_rate))
    if json_output:
        render.print_json(result.to_json())
        return
    q = result.info.quantization
    what = "checked and copied" if result.passthrough else "quantized"
    render.out.print(f"{what} {result.source} -> {result.path} ({result.size_bytes:,} bytes)",
                     highlight=False)
    render.out.print("ops: " + ", ".join(f"{k} x{v}" for k, v in result.ops), highlight=False)
    for role in ("input", "output"):
        t = q[role]
        render.out.print(f"{role}: {t['dtype']} {t['shape']}, scale {t['scale']:.9g}, zero point "
                         f"{t['zero_point']}", highlight=False)
    if result.calibration:
        c = result.calibration
        render.out.print(f"calibration: {c.samples} {c.dataset} training images, per class "
                         f"{list(c.per_class)}", highlight=False)
    if result.qat:
        render.out.print(f"quantization-aware training: validation accuracy float {result.qat.float_val_accuracy:.2%}"
                         f", fake-quantized after {len(result.qat.history)} epochs "
                         f"{result.qat.qat_val_accuracy:.2%}", highlight=False)


@app.command(name="eval")
@_handle_errors
def eval_command(
    float_model: Path = typer.Argument(..., help="The float model (.keras, .h5, SavedModel, float .tflite)."),
    int8_model: Path = typer.Argument(..., help="Its int8 .tflite (from `mncompile quantize`)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="digits, shapes or an image folder. "
                                       "[default: the model's, from its sidecar]"),
    layer_samples: int = typer.Option(32, "--layer-samples", help="Validation images for the "
                                      "per-layer SQNR (0 skips it)."),
    blame: bool = typer.Option(False, "--blame", help="Rank the layers by what keeping each alone in float "
                               "recovers (accuracy points, output SQNR), end to end on the validation images: "
                               "one re-quantized model a layer, from one calibration (needs the Keras/SavedModel "
                               "float model)."),
    max_drop: float | None = MAX_DROP_OPTION,
    input_range: str | None = INPUT_RANGE_OPTION,
    mean: str | None = MEAN_OPTION,
    std: str | None = STD_OPTION,
    labels: Path | None = LABELS_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Float vs int8 accuracy on the validation split, per class and per layer.

    Float runs on LiteRT (the float model converted by the same converter),
    int8 on the TFLM host interpreter, the reference the firmware must match.
    Per-layer SQNR compares each int8 activation with the float one; layers are
    ranked by the error each adds on its own, worst first. --blame measures
    instead what each layer costs end to end, the way TF's QuantizationDebugger
    does selective quantization, and the accuracy gate then names its top layer.
    """
    from rich.markup import escape

    from mncompile.cli import render
    from mncompile.validate.accuracy import evaluate

    report = evaluate(float_model, int8_model, dataset=dataset, layer_samples=layer_samples,
                      reporter=render.RichReporter(), pixels=_pixels(input_range, mean, std, labels), max_drop=max_drop,
                      blame=blame)
    if json_output:
        report.enforce()
        render.print_json(report.to_json())
        return
    for table in render.eval_tables(report):
        render.out.print(table)
    render.out.print(render.emulator_line(report), highlight=False)
    if report.warning():
        render.err.print(f"[yellow]warning:[/] {escape(report.warning())}", highlight=False)
    report.enforce()


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
    json_output: bool = JSON_OPTION,
) -> None:
    """Plan the tensor arena: lifetimes, lower bound, TFLM greedy and mncompile's plan.

    Writes a memory-timeline picture (memory.png), the plan as JSON, and the
    model with mncompile's plan embedded as OfflineMemoryAllocation metadata,
    which stock TFLM follows. With --target, checks the budget (exit 8 when over);
    for an Ethos-U target it runs Vela and the budget counts Vela's figures.
    """
    from mncompile.cli import render
    from mncompile.pipeline import plan as run_plan

    outcome = run_plan(model, out, target=target, budget=budget, ram=ram, flash=flash,
                       vela=_vela(vela_system_config, vela_memory_mode, vela_optimise), reporter=render.RichReporter())
    result, files, checked = outcome.plan, outcome.files, outcome.targeted
    if json_output:
        render.print_json({**result.to_json(), **(checked.to_json() if checked else {}),
                           "files": {"json": str(files.json), "picture": str(files.picture),
                                     "planned_model": str(files.planned_model)}})
        if checked:
            checked.enforce()
        return
    render.out.print(render.plan_table(result))
    render.out.print(render.plan_summary(result), highlight=False)
    if checked is not None:
        if checked.npu is not None:
            render.out.print(render.npu_table(result, checked.npu, checked.npu_arena))
            for line in render.npu_fallback_lines(checked.npu):
                render.out.print(line, highlight=False)
        render.out.print(render.memory_table(checked.memory))
    render.out.print(f"wrote {files.json}, {files.picture} and {files.planned_model}", highlight=False)
    if checked:
        checked.enforce()


EMIT_BACKEND_OPTION = typer.Option(None, "--backend", help="tflm: a TensorFlow Lite Micro project (the "
                                   "interpreter runs the model); aot: C code calling mncompile's int8 kernels, "
                                   "compiled ahead of time (no TFLM, one static arena, bit-exact with TFLM). "
                                   "[default: tflm; aot with --layout library, the only backend it takes]")
LAYOUT_OPTION = typer.Option("firmware", "--layout", help="firmware: a project with a golden-vector main and board "
                             "support; library: a static library (CMake target mncompile::model, one header) to "
                             "link into your application, also a Zephyr module and an Arduino library "
                             "(--backend aot; --golden 0 allowed).")


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
                      profile=profile, layout=layout)
    if json_output:
        render.print_json(result.to_json())
        return
    for line in render.emit_lines(result) if result.backend == "tflm" and result.layout == "firmware" \
            else result.summary_lines():
        render.out.print(line, highlight=False)


PROBE_OPTION = typer.Option(None, "--probe", help="The debug probe's unique id (or a part of it), as `pyocd list` "
                            "shows it. [default: the only probe attached]")
PORT_OPTION = typer.Option(None, "--port", help="The serial port of the board's console. [default: the probe's own "
                           "virtual COM port, found by its USB serial number]")
BAUD_OPTION = typer.Option(115200, "--baud", help="The console's baud rate (the firmware's UART runs 115200 8N1).")
PACK_OPTION = typer.Option(None, "--pack", help="A CMSIS-Pack file (.pack) for a target pyOCD lacks, when "
                           "`pyocd pack install` cannot download it. [default: pyOCD's installed packs]")


def _flash_request(probe: str | None, port: str | None, baud: int, timeout: float, pack: Path | None):
    from mncompile.flash import FlashRequest

    return FlashRequest(probe=probe, port=port, baud=baud, timeout=timeout, pack=pack)


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
                           max_drop=max_drop, profile=profile)
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


@app.command()
@_handle_errors
def targets(
    notes: bool = typer.Option(False, "--notes", help="Also print each target's description, "
                               "compiler flags and where its figures come from."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Deployment targets: CPU, clock, RAM and flash in bytes, QEMU machine, board, NPU.

    RAM is the largest contiguous SRAM block (one TFLM arena must be contiguous);
    flash holds the .tflite. The table is mncompile/targets/targets.toml.
    """
    from rich.table import Table

    from mncompile.cli import render
    from mncompile.targets import all_targets

    known = all_targets()
    if json_output:
        render.print_json({"targets": [t.to_json() for t in known]})
        return
    table = Table(title="targets (RAM: largest contiguous block, for arena + I/O; flash: the .tflite)",
                  title_justify="left")
    for name in ("target", "cpu", "clock", "RAM bytes", "flash bytes", "QEMU machine", "board", "NPU"):
        table.add_column(name, justify="right" if "bytes" in name or name == "clock" else "left")
    for t in known:
        npu = (f"{t.npu.name} {t.npu.macs_per_cycle} MACs/cycle, Vela {t.npu.vela_system_config} / "
               f"{t.npu.vela_memory_mode}") if t.npu else "-"
        table.add_row(t.name, t.cpu, f"{t.cpu_hz / 1e6:g} MHz", f"{t.ram_bytes:,}", f"{t.flash_bytes:,}",
                      t.qemu_machine or "-", t.board, npu)
    render.out.print(table)
    for t in known if notes else ():
        render.out.print(f"\n{t.name}: {t.description}\n  flags: {' '.join(t.cpu_flags)}; fpu: {t.fpu}\n"
                         f"  {t.notes}", highlight=False)


def _fit_table(result):
    from rich.table import Table

    table = Table(title=f"MobileNet{result.arch.upper()} configurations that fit {result.target.name}, "
                        "best first (ImageNet top-1 as published)", title_justify="left")
    for name in ("#", "alpha", "resolution", "MACs", "params", "constants B", "arena B", "I/O B",
                 "total B", "top-1 %", "headroom B"):
        table.add_column(name, justify="left" if name == "#" else "right")
    for k, c in enumerate(result.fitting, start=1):
        e = c.estimate
        table.add_row(str(k), f"{e.spec.alpha:g}", str(e.spec.resolution), f"{e.macs / 1e6:,.1f}M",
                      f"{e.params / 1e6:,.3f}M", f"{e.constants_bytes:,}", f"{e.arena_bytes:,}",
                      f"{e.io_bytes:,}", f"{e.total_bytes:,}",
                      f"{c.accuracy.top1:.1f}" if c.accuracy else "unpublished", f"{c.report.headroom:,}")
    return table


@app.command(name="fit")
@_handle_errors
def fit_command(
    budget: str | None = typer.Option(None, "--budget", help="Total model memory: constants + arena "
                                      "+ I/O buffers, e.g. 6MB (KB/MB are 1024-based)."),
    target: str = typer.Option("cortex-m7", "--target", help="Deployment target (`mncompile targets`): "
                               "its RAM and flash are limits too."),
    arch: str = ARCH,
    ram: str | None = typer.Option(None, "--ram", help="RAM for arena + I/O buffers, instead of the "
                                   "target's."),
    flash: str | None = typer.Option(None, "--flash", help="Flash for the .tflite, instead of the "
                                     "target's."),
    channels: int = typer.Option(3, "--channels", help="Input channels, 1 or 3."),
    classes: int = typer.Option(1000, "--classes", help="Classifier outputs (ImageNet: 1000)."),
    confirm: bool = typer.Option(False, "--confirm", help="Also build the winner and convert it to "
                                 "int8 (TensorFlow, some seconds), and report its exact constants and "
                                 "activation lower bound next to the estimate."),
    json_output: bool = JSON_OPTION,
) -> None:
    """The MobileNets (alpha x resolution) that fit a memory budget, ranked by published accuracy.

    Memory is estimated analytically, without TensorFlow: constants (the .tflite:
    int8 weights, int32 biases, flatbuffer overhead), arena (activation lower
    bound plus TFLM's persistent allocations) and I/O buffers. Nothing fits:
    exit 8.
    """
    from mncompile import fit as fitting
    from mncompile.cli import render
    from mncompile.targets import get_target

    result = fitting.fit(arch, get_target(target), budget=budget, ram=ram, flash=flash,
                         channels=channels, classes=classes)
    confirmation = (fitting.confirm_fit(result.winner, render.RichReporter()) if confirm else None)
    if json_output:
        document = result.to_json()
        if confirmation is not None:
            document["confirm"] = confirmation.to_json()
        render.print_json(document)
        return
    limits = "; ".join(f"{row.name} {row.limit:,} B ({row.source}: {row.what})"
                       for row in result.winner.report.rows)
    render.out.print(f"limits: {limits}", highlight=False)
    render.out.print(_fit_table(result))
    w = result.winner
    source = f" ({w.accuracy.source})" if w.accuracy else " (accuracy unpublished; ranked by MACs)"
    render.out.print(f"winner: --arch {arch} --alpha {w.estimate.spec.alpha:g} --resolution "
                     f"{w.estimate.spec.resolution}{source}", highlight=False)
    if result.not_fitting:
        s = result.not_fitting[0].estimate
        render.out.print(f"{len(result.not_fitting)} of {len(result.fitting) + len(result.not_fitting)} "
                         f"configurations do not fit (the smallest of them, alpha {s.spec.alpha:g} at "
                         f"{s.spec.resolution} px, needs {s.total_bytes:,} B)", highlight=False)
    if confirmation is not None:
        c = confirmation.to_json()
        render.out.print(f"confirmed by building and converting {c['model']} (batch 1, int8):", highlight=False)
        for key, what in (("constants_bytes", ".tflite size"), ("tensor_bytes", "constant tensors"),
                          ("activation_lower_bound_bytes", "activation lower bound")):
            est, exact = c[key]["estimate"], c[key]["exact"]
            render.out.print(f"  {what}: estimate {est:,} B, exact {exact:,} B ({est - exact:+,} B)",
                             highlight=False)


def main() -> None:
    app()
