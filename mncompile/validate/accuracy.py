"""Float versus int8: accuracy, top-1 agreement, output difference, per-layer error.

`evaluate` runs the float model (converted to a float .tflite by the same
converter, on LiteRT) and the int8 model (on the TFLM host interpreter, the
reference the firmware must match) over a dataset's validation split. It also
runs the int8 model on LiteRT and reports how the two emulators agree. The split is decoded,
preprocessed and run EVAL_BATCH images at a time (only the outputs are kept), so an image folder
larger than memory evaluates; --blame alone holds the whole preprocessed split. With `blame`, it also
ranks the layers by what keeping each alone in float recovers end to end
(`mncompile.validate.blame`), re-quantizing the float model from the int8 model's calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mncompile.errors import InvalidOptionError, ModelError
from mncompile.graph.verified import VerifiedModel, verify_model
from mncompile.model.loader import LoadedModel, load_model, model_dataset
from mncompile.preprocess.contract import PixelOptions, Preprocessing, resolve
from mncompile.progress import NullReporter, Reporter
from mncompile.validate.blame import BlameReport
from mncompile.validate.emulate import Agreement, Job, agreement, run_litert, run_tflm
from mncompile.validate.layers import LayerReport, dequantize, layer_errors, quantize_array

DEFAULT_LAYER_SAMPLES = 32
EVAL_BATCH = 1024  # validation images decoded and run per emulator call


@dataclass(frozen=True)
class ClassRow:
    name: str
    samples: int
    float_correct: int
    int8_correct: int
    top1_agree: int

    def to_json(self) -> dict:
        n = self.samples
        return {"class": self.name, "samples": n, "float_accuracy": self.float_correct / n,
                "int8_accuracy": self.int8_correct / n, "top1_agreement": self.top1_agree / n}


@dataclass(frozen=True)
class EvalReport:
    float_model: Path
    int8_model: Path
    dataset: str
    samples: int
    float_accuracy: float
    int8_accuracy: float
    top1_agreement: float
    mean_abs_output_diff: float  # |float output - dequantized int8 output|, averaged
    per_class: tuple[ClassRow, ...]
    emulators: Agreement  # TFLM vs LiteRT on the int8 model, same inputs
    layers: LayerReport | None
    preprocessing: Preprocessing | None = None
    preprocessing_source: str = ""
    max_drop: float | None = None  # --max-drop: the accuracy gate (None: a drop over 1 point warns)
    blame: BlameReport | None = None  # --blame: each layer kept in float, end to end (None: not asked)
    # per model ("float", "int8"): counts[true class][predicted class] over the split (empty: not measured)
    confusion: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...] = ()

    @property
    def accuracy_drop_pp(self) -> float:
        return 100.0 * (self.float_accuracy - self.int8_accuracy)

    def warning(self) -> str | None:
        """Without a gate, a drop over 1 point in words with the likely culprit (`mncompile.validate.gate`)."""
        from mncompile.validate.gate import check_drop

        return None if self.max_drop is not None else check_drop(self, None)

    def enforce(self) -> None:
        """AccuracyError (exit 12) when int8 loses more than `max_drop` points (None: no gate)."""
        from mncompile.validate.gate import check_drop

        if self.max_drop is not None:
            check_drop(self, self.max_drop)

    def to_json(self) -> dict:
        return {"float_model": str(self.float_model), "int8_model": str(self.int8_model),
                "dataset": self.dataset, "split": "validation", "samples": self.samples,
                "float_accuracy": self.float_accuracy, "int8_accuracy": self.int8_accuracy,
                "int8_emulator": "tflm", "float_emulator": "litert (float .tflite)",
                "accuracy_drop_pp": round(self.accuracy_drop_pp, 4),
                "top1_agreement": self.top1_agreement,
                "mean_abs_output_diff": self.mean_abs_output_diff,
                "per_class": [r.to_json() for r in self.per_class],
                "emulator_agreement": {"a": "tflm", "b": "litert", **self.emulators.to_json()},
                "layers": self.layers.to_json() if self.layers else None,
                "blame": self.blame.to_json() if self.blame else None,
                "confusion": {name: [list(row) for row in matrix] for name, matrix in self.confusion} or None,
                "warning": self.warning(), "max_drop_pp": self.max_drop,
                "preprocessing": ({**self.preprocessing.to_json(), "source": self.preprocessing_source}
                                  if self.preprocessing else None)}


def _preprocessing(float_model: LoadedModel, int8_model: LoadedModel, pixels: PixelOptions,
                   reporter: Reporter) -> tuple[Preprocessing, str]:
    """The contract (`mncompile.preprocess.contract.resolve`): the options, a sidecar (the float
    model's first), the int8 model's input quantization, the default; checked against that
    quantization."""
    from mncompile.graph.edges import io_quant

    sidecar = next((m.info.preprocessing for m in (float_model, int8_model)
                    if m.info is not None and m.info.preprocessing is not None), None)
    q = io_quant(int8_model.verified.graph)[0]
    h, _, c = float_model.input_shape
    return resolve(pixels, sidecar, (q.scale, q.zero_point) if q else None, h, c, reporter)


def _float_tflite(loaded: LoadedModel) -> VerifiedModel:
    if loaded.format == "tflite-float":
        return loaded.verified
    from mncompile.quantize.convert import to_float_tflite

    return verify_model(to_float_tflite(loaded), "float.tflite", source=f"the float .tflite of {loaded.path}")


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n) (all of them when k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def evaluate(float_model: str | Path | LoadedModel, int8_model: str | Path | LoadedModel, dataset: str | None = None,
             layer_samples: int = DEFAULT_LAYER_SAMPLES, reporter: Reporter = NullReporter(),
             pixels: PixelOptions = PixelOptions(), max_drop: float | None = None,
             blame: bool = False) -> EvalReport:
    """Float vs int8 on the validation split. The models are loaded (a .tflite verified) unless
    they come loaded already. `pixels`: the user's --input-range/--mean/--std/--labels;
    `max_drop`: the accuracy gate the report's `enforce` applies (checked here, before any work);
    `blame`: also rank the layers by what keeping each alone in float recovers (one model a layer,
    `mncompile.validate.blame`; needs the Keras/SavedModel float model)."""
    from mncompile.validate.gate import check_max_drop

    check_max_drop(max_drop)
    pixels.check()
    if layer_samples < 0:
        raise InvalidOptionError(f"--layer-samples must be 0 or more, not {layer_samples}")
    fm, qm = (m if isinstance(m, LoadedModel) else load_model(m) for m in (float_model, int8_model))
    if qm.format != "tflite-int8":
        raise ModelError(f"{int8_model} is a {qm.format} model, not an int8 .tflite",
                         hint="make one with `mncompile quantize`")
    if fm.format == "tflite-int8":
        raise ModelError(f"{float_model} is an int8 model; pass the float model first")
    for m, given in ((fm, float_model), (qm, int8_model)):
        if not m.is_image_classifier:
            raise ModelError(f"{given} has a {list(m.input_shape)} input: eval measures image classifiers on an "
                             "image dataset", hint="compare a non-image model's outputs with `mncompile run` "
                                                   "(golden vectors from the TFLM host interpreter)")
    if blame:
        from mncompile.validate.blame import check_float_source

        check_float_source(fm)
    if fm.input_shape != qm.input_shape or fm.num_classes != qm.num_classes:
        raise ModelError(f"the models do not match: float {fm.input_shape} -> {fm.num_classes} classes, "
                         f"int8 {qm.input_shape} -> {qm.num_classes} classes")
    data = model_dataset(fm if fm.info else qm, dataset)
    if len(data.class_names) != fm.num_classes:
        raise InvalidOptionError(f"dataset {data.name} has {len(data.class_names)} classes, the "
                                 f"models {fm.num_classes}", hint="pass the --dataset they were trained on")
    prep, prep_source = _preprocessing(fm, qm, pixels, reporter)
    names = pixels.class_names(fm.num_classes) or data.class_names
    y = data.y_val
    qg = qm.verified.graph
    qin, qout = qg.tensors[qg.inputs[0]], qg.tensors[qg.outputs[0]]
    reporter.stage("eval", f"{len(y)} {data.name} validation images: float on LiteRT, int8 on TFLM")
    ftfl = _float_tflite(fm)
    f_out, q_out, q_lite = _outputs(ftfl, qm.verified, data.x_val, prep, qin, reporter)
    layers = None
    if layer_samples:
        pick = evenly_spaced(len(y), layer_samples)
        reporter.stage("layers", f"per-layer SQNR on {len(pick)} validation images")
        layers = layer_errors(ftfl, qm.verified, prep.apply(data.x_val[pick]), reporter)
    blamed = _blame(fm, qm, data, prep, prep.apply(data.x_val), y, f_out, reporter) if blame else None
    q_real = q_out.astype(np.float64) if qout.dtype == "FLOAT32" else dequantize(q_out, qout.quant)
    f_pred, q_pred = np.argmax(f_out, axis=1), np.argmax(q_real, axis=1)
    rows = []
    for c, name in enumerate(names):
        m = y == c
        rows.append(ClassRow(name, int(m.sum()), int(np.sum(f_pred[m] == c)), int(np.sum(q_pred[m] == c)),
                             int(np.sum(f_pred[m] == q_pred[m]))))
    diff = float(np.mean(np.abs(f_out.astype(np.float64) - q_real)))
    n = len(y)
    return EvalReport(fm.path, qm.path, data.name, n, float(np.mean(f_pred == y)), float(np.mean(q_pred == y)),
                      float(np.mean(f_pred == q_pred)), diff if math.isfinite(diff) else math.nan,
                      tuple(rows), agreement(*(_int8_steps(qg, o) for o in (q_out, q_lite))), layers, prep,
                      prep_source, max_drop, blamed,
                      (("float", confusion_matrix(y, f_pred, len(names))),
                       ("int8", confusion_matrix(y, q_pred, len(names)))))


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> tuple[tuple[int, ...], ...]:
    """counts[t][p]: images of true class t predicted as p (a prediction outside 0..classes-1 is not counted)."""
    counts = np.zeros((classes, classes), np.int64)
    ok = (predicted >= 0) & (predicted < classes)
    np.add.at(counts, (truth[ok], predicted[ok]), 1)
    return tuple(tuple(int(c) for c in row) for row in counts)


def _outputs(ftfl: VerifiedModel, qm: VerifiedModel, images, prep: Preprocessing, qin,
             reporter: Reporter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float on LiteRT, int8 on TFLM, int8 on LiteRT) outputs for a split, EVAL_BATCH images at a time
    (each image runs alone in every emulator, so the batching does not change a result)."""
    from mncompile.model.stream import iter_batches

    outs: tuple[list, list, list] = ([], [], [])
    for start, pixels in iter_batches(images, EVAL_BATCH):
        part = f", images {start + 1}-{start + len(pixels)}" if len(images) > EVAL_BATCH else ""
        x = prep.apply(pixels)
        # an int8 model with a float32 input quantizes it itself (its QUANTIZE op)
        x_q = x.astype(np.float32) if qin.dtype == "FLOAT32" else quantize_array(x, qin.quant, qin.dtype.lower())
        outs[0].append(run_litert([Job(ftfl, (x,))], reporter, f"float model (LiteRT){part}")[0]["output_0"])
        outs[1].append(run_tflm([Job(qm, (x_q,))], reporter, f"int8 model (TFLM){part}")[0]["output_0"])
        outs[2].append(run_litert([Job(qm, (x_q,))], reporter, f"int8 model (LiteRT){part}")[0]["output_0"])
    f_out, q_out, q_lite = (np.concatenate(o) for o in outs)
    return f_out, q_out, q_lite


def _blame(fm: LoadedModel, qm: LoadedModel, data, prep: Preprocessing, x: np.ndarray, y: np.ndarray,
           f_out: np.ndarray, reporter: Reporter) -> BlameReport:
    """Blame on the validation images, calibrated as the int8 model was (its sidecar's calibration
    count, drawn from the same training split; the default count without one)."""
    from mncompile.quantize.calibrate import DEFAULT_CALIB_SAMPLES, calibration_set
    from mncompile.validate.blame import blame_layers

    recorded = (qm.info.quantization.get("calibration") or {}) if qm.info else {}
    count = int(recorded.get("requested") or recorded.get("samples") or DEFAULT_CALIB_SAMPLES)
    calibration, described = calibration_set(data, count, prep)
    reporter.stage("blame", f"each layer alone kept in float, and alone int8, on {len(y)} validation images "
                            f"(calibrated on {described.samples} training images)")
    report = blame_layers(fm, x, y, calibration, float_output=f_out, int8_model=qm.verified, reporter=reporter)
    if not report.baseline_is_int8_model:
        how = (" (it was made by quantization-aware training)" if qm.info and qm.info.quantization.get("qat")
               else "")
        reporter.info(f"warning: re-quantizing {fm.path} with {described.samples} calibration images does not give "
                      f"{qm.path}{how}: blame's gains are against that post-training re-quantization")
    return report


def _int8_steps(graph, out: np.ndarray) -> np.ndarray:
    """An int8 model's output in int8 steps: a float32 output (made by the model's DEQUANTIZE) back
    on the int8 grid it came from, where two emulators' outputs are compared."""
    from mncompile.graph.edges import io_quant

    if out.dtype != np.float32:
        return out
    return quantize_array(out, io_quant(graph)[1], "int8")
