"""The quantize stage: full-integer int8 post-training quantization, checked for TFLM.

`quantize` takes a float model (or an int8 .tflite, which passes through after
the same checks) and writes ``<out>.tflite`` plus its sidecar
``<out>.tflite.json`` (input/output scale and zero point, class names,
preprocessing, calibration). Nothing is written when a check fails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mncompile.errors import InvalidOptionError
from mncompile.files import check_new_output, write_bytes_atomic
from mncompile.graph.ir import Graph
from mncompile.graph.verified import VerifiedModel, verify_model
from mncompile.model.datasets import load_dataset
from mncompile.model.info import ModelInfo, write_info
from mncompile.model.loader import load_model, model_dataset
from mncompile.preprocess.contract import PixelOptions, resolve
from mncompile.progress import NullReporter, Reporter
from mncompile.quantize.calibrate import DEFAULT_CALIB_SAMPLES, Calibration, calibration_set
from mncompile.quantize.checks import check_int8
from mncompile.quantize.qat import QatConfig, QatResult

__all__ = ["DEFAULT_CALIB_SAMPLES", "QatConfig", "QuantizeResult", "check_output", "quantize"]


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    sidecar: Path
    source: Path
    passthrough: bool  # the source was already an int8 .tflite
    calibration: Calibration | None
    info: ModelInfo
    ops: tuple[tuple[str, int], ...]  # (operator, count), sorted
    size_bytes: int
    model: VerifiedModel  # the int8 model written to `path`, verified: what later stages take
    qat: QatResult | None = None  # --qat: the quantization-aware fine-tune that made it

    def to_json(self) -> dict:
        return {"model": str(self.path), "sidecar": str(self.sidecar), "source": str(self.source),
                "passthrough": self.passthrough, "bytes": self.size_bytes,
                "method": "passthrough" if self.passthrough else "qat" if self.qat else "ptq",
                "qat": self.qat.to_json() if self.qat else None,
                "calibration": self.calibration.to_json() if self.calibration else None,
                "quantization": self.info.quantization, "ops": dict(self.ops),
                "classes": list(self.info.class_names)}


def check_output(out: Path, force: bool) -> Path:
    return check_new_output(out, ".tflite", force, "model_int8.tflite")


def _io_quant(graph: Graph) -> dict:
    def one(i: int) -> dict:
        t = graph.tensors[i]
        return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.lower(),
                "scale": t.quant.scale if t.quant else None,
                "zero_point": t.quant.zero_point if t.quant else None}
    return {"input": one(graph.inputs[0]), "output": one(graph.outputs[0]),
            "formula": "real = scale * (q - zero_point)"}


def _op_counts(graph: Graph) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    for op in graph.ops:
        counts[op.kind] = counts.get(op.kind, 0) + 1
    return tuple(sorted(counts.items()))


def quantize(model: str | Path, out: str | Path, dataset: str | None = None,
             calib_samples: int = DEFAULT_CALIB_SAMPLES, force: bool = False,
             reporter: Reporter = NullReporter(), pixels: PixelOptions = PixelOptions(),
             qat: QatConfig | None = None) -> QuantizeResult:
    """`pixels`: the user's --input-range/--mean/--std/--labels, which the sidecar then records
    (`mncompile.preprocess.contract.resolve` says which source wins). `qat`: quantization-aware
    training (`mncompile.quantize.qat`) instead of post-training calibration."""
    out = check_output(Path(out), force)
    pixels.check()
    if calib_samples < 1:
        raise InvalidOptionError(f"--calib-samples must be at least 1, not {calib_samples}")
    loaded = load_model(model)
    if qat is not None and loaded.format not in ("keras", "h5-keras3", "h5-legacy"):
        raise InvalidOptionError(f"--qat fine-tunes a Keras model, and {model} is a {loaded.format} model",
                                 hint="pass the .keras or .h5 model, or leave out --qat")
    trained_qat = None
    labels = pixels.class_names(loaded.num_classes)
    source = Path(model)
    calibration = None
    if loaded.format == "tflite-int8":
        reporter.stage("quantize", f"{source} is already int8: checking it for TFLM")
        verified = loaded.verified
        graph = verified.graph
        check_int8(graph, str(source))
        info = loaded.info
        if info is None and not loaded.is_image_classifier:
            if dataset or pixels.given:
                raise InvalidOptionError(f"{source} has a {list(loaded.input_shape)} input, and "
                                         f"{'datasets hold images' if dataset else 'pixel options describe images'}",
                                         hint="leave out --dataset, --input-range, --mean and --std")
            reporter.info(f"{source} has a {list(loaded.input_shape)} input (not an image): its sidecar has "
                          "no resolution, channels or preprocessing")
            info = ModelInfo(arch=None, alpha=None, resolution=None, channels=None,
                             class_names=tuple(f"class_{i}" for i in range(loaded.num_classes)),
                             preprocessing=None, dataset={})
        if info is None:
            names = (load_dataset(dataset, loaded.input_shape[0], loaded.input_shape[2]).class_names
                     if dataset else tuple(f"class_{i}" for i in range(loaded.num_classes)))
            info = ModelInfo(arch=None, alpha=None, resolution=loaded.input_shape[0],
                             channels=loaded.input_shape[2], class_names=names, preprocessing=None,
                             dataset={"name": dataset} if dataset else {})
        if loaded.is_image_classifier:
            from mncompile.graph.edges import io_quant

            q = io_quant(graph)[0]
            prep, where = resolve(pixels, info.preprocessing, (q.scale, q.zero_point) if q else None,
                                  loaded.input_shape[0], loaded.input_shape[2], reporter)
            reporter.info(f"preprocessing from {where}: {prep.describe()}")
            info = replace(info, preprocessing=prep)
    else:
        from mncompile.quantize.convert import to_int8_tflite

        data_set = model_dataset(loaded, dataset)
        info = loaded.info
        preprocessing, where = resolve(pixels, info.preprocessing if info else None, None, loaded.input_shape[0],
                                       loaded.input_shape[2], reporter)
        reporter.info(f"preprocessing from {where}: {preprocessing.describe()}")
        if len(data_set.class_names) != loaded.num_classes:
            raise InvalidOptionError(f"dataset {data_set.name} has {len(data_set.class_names)} classes, "
                                     f"the model {loaded.num_classes}",
                                     hint="pass the --dataset the model was trained on")
        if labels is not None and set(labels) == set(data_set.class_names) and labels != data_set.class_names:
            reporter.info(f"warning: --labels names the classes of {data_set.name} in another order "
                          f"({', '.join(labels)} against {', '.join(data_set.class_names)}): output k is labelled "
                          "by line k of the file")
        if qat is not None:
            from mncompile.quantize.qat import train_qat

            trained_qat = train_qat(loaded, data_set, preprocessing, qat, reporter)
            data = trained_qat.data
        else:
            x, calibration = calibration_set(data_set, calib_samples, preprocessing)
            if calibration.samples < calib_samples:
                reporter.info(f"warning: --calib-samples {calib_samples} asks for more images than the "
                              f"{len(data_set.y_train)} of the {data_set.name} training split: calibrating on "
                              f"{calibration.samples}")
            reporter.stage("quantize", f"{source} -> int8, calibrating on {calibration.samples} "
                                       f"{data_set.name} training images")
            data = to_int8_tflite(loaded, x, reporter)
        verified = verify_model(data, out.name, source=f"the int8 model of {source}")
        graph = verified.graph
        check_int8(graph, f"quantized {source}")
        base = info or ModelInfo(arch=None, alpha=None, resolution=loaded.input_shape[0],
                                 channels=loaded.input_shape[2], class_names=data_set.class_names,
                                 preprocessing=preprocessing, dataset=data_set.to_json())
        info = replace(base, preprocessing=preprocessing)
    if labels is not None:
        info = replace(info, class_names=labels)
    info = replace(info, quantization={**_io_quant(graph),
                                       "calibration": calibration.to_json() if calibration else None,
                                       "qat": {**qat.to_json(), **trained_qat.to_json()} if trained_qat else None,
                                       "source": str(source)})
    sidecar = write_info(out, info)  # the model's atomic replace comes last: it commits the pair
    write_bytes_atomic(out, verified.data)
    written = VerifiedModel(out.name, verified.data, verified.graph, out)
    return QuantizeResult(out, sidecar, source, loaded.format == "tflite-int8", calibration, info,
                          _op_counts(graph), verified.size, written, trained_qat)
