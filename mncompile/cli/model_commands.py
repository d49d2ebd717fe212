"""Commands of the model stages: inspect, train, quantize, eval."""

from __future__ import annotations

from pathlib import Path

import typer

from mncompile.cli.app import _handle_errors, app
from mncompile.cli.options import (
    ALPHA,
    ARCH,
    AUGMENT,
    BATCH,
    CHANNELS,
    DATASET,
    DEVICES_OPTION,
    DROPOUT,
    EPOCHS,
    FINE_TUNE_OPTION,
    INPUT_RANGE_OPTION,
    JSON_OPTION,
    LABELS_OPTION,
    LR,
    MAX_DROP_OPTION,
    MEAN_OPTION,
    PEER_TIMEOUT_OPTION,
    QAT_EPOCHS_OPTION,
    QAT_LR_OPTION,
    QAT_OPTION,
    RESOLUTION,
    RHO,
    SEED,
    STD_OPTION,
    WEIGHTS_OPTION,
    WORKER_INDEX_OPTION,
    WORKERS_OPTION,
    _pixels,
    _qat,
    _resolution,
)


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
    dropout: float = DROPOUT,
    augment: float = AUGMENT,
    weights: str | None = WEIGHTS_OPTION,
    fine_tune_epochs: int = FINE_TUNE_OPTION,
    workers: str | None = WORKERS_OPTION,
    worker_index: int | None = WORKER_INDEX_OPTION,
    devices: int | None = DEVICES_OPTION,
    peer_timeout: float = PEER_TIMEOUT_OPTION,
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Share of each class held out for validation "
                                       "(stratified, seeded); the sidecar records it, so quantize and eval use the "
                                       "same split."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Train a MobileNet on a dataset and save it as .keras plus a JSON sidecar.

    The sidecar records the class names and the exact pixel preprocessing
    (x = pixel * scale + offset) that quantization and the firmware reuse.

    On a cluster (--workers/--worker-index, or TF_CONFIG) every worker runs this
    command and saves the model it trained, equal on all, to its own --output.
    """
    from mncompile.cli import render
    from mncompile.model.datasets import check_val_fraction, load_dataset, natural_channels
    from mncompile.model.distribute import resolve
    from mncompile.model.spec import MobileNetSpec
    from mncompile.model.train import TrainConfig, check_output
    from mncompile.model.train import train as train_model

    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         seed=seed, dropout=dropout, augment=augment, weights=weights,
                         fine_tune_epochs=fine_tune_epochs,
                         distribute=resolve(workers, worker_index, devices, peer_timeout))
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
