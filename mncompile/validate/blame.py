"""Per-layer blame measured end to end, the way TF's QuantizationDebugger does selective quantization.

The SQNR table of `mncompile.validate.layers` says how much error each int8 op adds, but not how
much *accuracy* it costs: a layer can be 36 dB alone and still be where a model loses its points
(its error is amplified downstream), or look bad and not matter. Blame answers the user's question
directly: for each layer (op) of the model,

- **kept in float**: that layer alone runs in float (its inputs dequantized, its output quantized
  again for the next op), every other op int8, exactly as the user's int8 model;
- **only int8** (optional): that layer alone is int8, every other op float;

and each of these models runs end to end on the evaluation images. Layers are ranked by what
keeping them in float recovers against the fully int8 model: top-1 accuracy gain in points first,
then output SQNR gain in dB (ties in accuracy are common: one image is a few tenths of a point).

How the models are made: with the public ``tf.lite.experimental.QuantizationDebugger``. Given the
converter (built by `mncompile.quantize.convert._converter` and set up by its `int8_settings`, as `to_int8_tflite`:
int8 builtins, int8 input and output), it calibrates **once** (the converter in calibrate-only
mode), and then each ``QuantizationDebugOptions(denylisted_nodes=[...], fully_quantize=True)``
followed by ``get_nondebug_quantized_model()`` is a single ``mlir_quantize`` of that calibrated
model with the listed ops left in float (a few hundredths of a second each). With
``fully_quantize=True`` the input and output stay int8, and with nothing denylisted the model is
the one `to_int8_tflite` makes from the same calibration images, tensor for tensor
(`same_quantization` checks it against the user's int8 model, so the baseline is the user's).

The variants run on LiteRT (XNNPACK, one thread): host-only analyses, compared with each other,
so the emulator's small differences from TFLM cancel out. The float reference is the float model
converted by the same converter (what `mncompile eval` already computed), or the caller's.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from mncompile.errors import InvalidOptionError, ModelError, QuantizationError
from mncompile.graph.ir import Graph, call_suffix, short_name
from mncompile.graph.verified import VerifiedModel, verify_model
from mncompile.model.loader import LoadedModel
from mncompile.progress import NullReporter, Reporter
from mncompile.validate.emulate import Job, run_litert
from mncompile.validate.layers import BOUNDARY_OPS, dequantize, quantize_array, sqnr_db

FLOAT_SOURCES = ("keras", "h5-keras3", "h5-legacy", "savedmodel")


def _db(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


@dataclass(frozen=True)
class Outcome:
    """One model's end-to-end result on the evaluation images."""

    accuracy: float  # top-1 against the labels
    top1_agreement: float  # top-1 equal to the float model's
    sqnr_db: float  # output against the float output; inf when equal

    def to_json(self) -> dict:
        return {"accuracy": self.accuracy, "top1_agreement": self.top1_agreement,
                "sqnr_db": _db(self.sqnr_db), "exact": self.sqnr_db == math.inf}


@dataclass(frozen=True)
class BlameRow:
    op: int  # index in the calibrated float graph (the int8 graph's op order without QUANTIZE/DEQUANTIZE)
    name: str  # the Keras layer (conv_pw_3, activation_5), from the converter's tensor name
    kind: str  # the TFLite operator, e.g. CONV_2D
    node: str  # the output tensor name that was denylisted
    keras_layers: tuple[str, ...]  # every Keras layer the op fuses (activation_2, conv2d_1), from `node`
    kept_float: Outcome  # this layer float, the others int8
    only_int8: Outcome | None  # this layer int8, the others float (None: not measured)
    accuracy_gain_pp: float  # kept_float accuracy - fully int8 accuracy, in points
    sqnr_gain_db: float  # kept_float SQNR - fully int8 SQNR

    def to_json(self) -> dict:
        return {"op": self.op, "layer": self.name, "kind": self.kind, "node": self.node,
                "keras_layers": list(self.keras_layers),
                "accuracy_gain_pp": round(self.accuracy_gain_pp, 4), "sqnr_gain_db": _db(self.sqnr_gain_db),
                "kept_float": self.kept_float.to_json(),
                "only_int8": self.only_int8.to_json() if self.only_int8 else None}


@dataclass(frozen=True)
class BlameReport:
    samples: int  # evaluation images
    calibration_samples: int
    float_accuracy: float
    fully_int8: Outcome  # every op int8: the baseline the gains are measured from
    baseline_is_int8_model: bool | None  # the baseline equals the user's int8 model (None: none given)
    rows: tuple[BlameRow, ...]  # ranked: largest accuracy gain first, then largest SQNR gain
    baseline_model: bytes = field(default=b"", repr=False, compare=False)  # the fully int8 .tflite

    @property
    def top(self) -> BlameRow | None:
        """The first row when keeping it in float recovers anything, else None."""
        if self.rows and (self.rows[0].accuracy_gain_pp > 0 or self.rows[0].sqnr_gain_db > 0):
            return self.rows[0]
        return None

    def to_json(self) -> dict:
        return {"method": "each layer alone kept in float (and alone int8), end to end on LiteRT; "
                          "QuantizationDebugger selective quantization, one calibration",
                "ranking": "accuracy gain of keeping the layer in float, then SQNR gain",
                "samples": self.samples, "calibration_samples": self.calibration_samples,
                "float_accuracy": self.float_accuracy, "fully_int8": self.fully_int8.to_json(),
                "baseline_is_int8_model": self.baseline_is_int8_model,
                "layers": [r.to_json() for r in self.rows]}


def check_float_source(loaded: LoadedModel) -> None:
    """Blame re-quantizes the float model: it needs the Keras/SavedModel model, not a .tflite."""
    if loaded.format not in FLOAT_SOURCES:
        raise ModelError(f"{loaded.path} is a {loaded.format} model; blame re-quantizes the float model with "
                         "each layer kept in float, so it needs the Keras or SavedModel model (.keras, .h5, "
                         "SavedModel folder)", hint="pass the float model the int8 .tflite was made from")


def _check_images(x: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1 + len(shape) or tuple(x.shape[1:]) != tuple(shape) or len(x) == 0:
        raise InvalidOptionError(f"{what} must be (N, {', '.join(map(str, shape))}) float images with N >= 1, "
                                 f"not {x.shape}")
    if not np.issubdtype(x.dtype, np.floating) or not np.all(np.isfinite(x)):
        raise InvalidOptionError(f"{what} must hold finite float pixels (preprocessed), not {x.dtype}")
    return x.astype(np.float32)


def same_quantization(a: Graph, b: Graph) -> bool:
    """The two graphs are the same model: same ops and options, and every tensor an op reads or
    writes has the same dtype, shape, quantization and constant data (names and buffer order,
    which the converter's buffer de-duplication changes, do not count)."""
    if [(o.kind, o.options) for o in a.ops] != [(o.kind, o.options) for o in b.ops]:
        return False
    for oa, ob in zip(a.ops, b.ops, strict=True):
        ta, tb = oa.inputs + oa.outputs, ob.inputs + ob.outputs
        if len(ta) != len(tb) or any((i < 0) != (j < 0) for i, j in zip(ta, tb, strict=True)):
            return False
        for i, j in zip(ta, tb, strict=True):
            if i < 0:
                continue
            x, y = a.tensors[i], b.tensors[j]
            if (x.dtype, x.shape, x.quant, x.data) != (y.dtype, y.shape, y.quant, y.data):
                return False
    return True


def _debugger(loaded: LoadedModel, calibration: np.ndarray, reporter: Reporter):
    """A QuantizationDebugger on the converter `to_int8_tflite` uses, calibrated once."""
    from mncompile.quantize.convert import _converter, int8_settings
    from mncompile.tfenv import captured_stderr

    tf, converter = _converter(loaded)
    with reporter.task("calibrating", len(calibration)) as task:
        int8_settings(tf, converter, calibration, task)
        with captured_stderr() as log, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # input statistics notice; tf.lite.Interpreter deprecation
            try:
                return tf, tf.lite.experimental.QuantizationDebugger(
                    converter=converter, debug_dataset=lambda: iter(()),
                    debug_options=tf.lite.experimental.QuantizationDebugOptions(fully_quantize=True))
            except Exception as exc:
                detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                raise QuantizationError(f"calibrating {loaded.path} for blame failed: {detail}",
                                        hint=f"converter log tail:\n{log.text[-1500:]}") from None


def _selective(tf, debugger, denylisted: list[str], what: str) -> VerifiedModel:
    """The int8 model with the `denylisted` nodes (output tensor names) left in float."""
    from mncompile.tfenv import captured_stderr

    with captured_stderr() as log, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=denylisted or None, fully_quantize=True)
            data = bytes(debugger.get_nondebug_quantized_model())
        except Exception as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise QuantizationError(f"quantizing the model with {what} failed: {detail}",
                                    hint=f"converter log tail:\n{log.text[-1500:]}") from None
    return verify_model(data, "blame.tflite", source=f"the int8 model with {what}")


def _outcome(model: VerifiedModel, x: np.ndarray, y: np.ndarray, float_output: np.ndarray,
             f_pred: np.ndarray) -> Outcome:
    g = model.graph
    tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    xin = x if tin.dtype == "FLOAT32" else quantize_array(x, tin.quant, tin.dtype.lower())
    out = run_litert([Job(model, (xin,))], NullReporter())[0]["output_0"]
    real = out.astype(np.float64) if tout.dtype == "FLOAT32" else dequantize(out, tout.quant)
    real = real.reshape(len(x), -1)
    pred = np.argmax(real, axis=1)
    return Outcome(float(np.mean(pred == y)), float(np.mean(pred == f_pred)), sqnr_db(float_output, real))


def _gain(a: float, b: float) -> float:
    if a == b:  # both exact (inf) included
        return 0.0
    return a - b


def _layer_names(graph: Graph, op, suffix: str) -> tuple[str, tuple[str, ...]]:
    """The op's layer name (`Graph.layer_name`) and every Keras layer its fused tensor name lists."""
    t = graph.tensors[op.outputs[0]]
    fused = tuple(dict.fromkeys(short_name(part, suffix) for part in t.name.split(";") if "/" in part))
    # a graph output gets a name like "Identity": say what the op is (as the SQNR table does)
    return (graph.layer_name(t.index) if "/" in t.name else op.kind.lower()), fused


def blame_layers(loaded: LoadedModel, x: np.ndarray, y: np.ndarray, calibration: np.ndarray,
                 float_output: np.ndarray | None = None, only_int8: bool = True,
                 int8_model: VerifiedModel | None = None, reporter: Reporter = NullReporter()) -> BlameReport:
    """Rank the layers of the float model `loaded` by what keeping each alone in float recovers.

    `x`: preprocessed float evaluation images (N, H, W, C) with labels `y`; `calibration`: the
    float images to calibrate on (the ones the int8 model was calibrated on, for the baseline to be
    that model); `float_output`: the float model's outputs on `x` (default: the float .tflite on
    LiteRT); `only_int8`: also measure each layer alone int8; `int8_model`: the user's int8 model,
    checked against the fully int8 baseline (`BlameReport.baseline_is_int8_model`)."""
    check_float_source(loaded)
    x = _check_images(x, loaded.input_shape, "the evaluation images")
    calibration = _check_images(calibration, loaded.input_shape, "the calibration images")
    y = np.asarray(y)
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise InvalidOptionError(f"the labels must be {len(x)} integers, one an image, not {y.shape} {y.dtype}")
    if float_output is None:
        from mncompile.quantize.convert import to_float_tflite

        ftfl = verify_model(to_float_tflite(loaded), "float.tflite", source=f"the float .tflite of {loaded.path}")
        float_output = run_litert([Job(ftfl, (x,))], reporter, "float model (LiteRT)")[0]["output_0"]
    float_output = np.asarray(float_output, dtype=np.float64).reshape(len(x), -1)
    if float_output.shape[1] != loaded.num_classes:
        raise InvalidOptionError(f"the float outputs have {float_output.shape[1]} values an image, the model "
                                 f"{loaded.num_classes} classes")
    f_pred = np.argmax(float_output, axis=1)
    tf, debugger = _debugger(loaded, calibration, reporter)
    graph = verify_model(bytes(debugger.calibrated_model), "calibrated.tflite",
                         source=f"the calibrated float model of {loaded.path}").graph
    ops = [op for op in graph.ops if op.kind not in BOUNDARY_OPS]
    nodes = [graph.tensors[op.outputs[0]].name for op in ops]
    suffix = call_suffix(t.name for t in graph.tensors)
    with reporter.task("blame: each layer kept in float" + (" and alone int8" if only_int8 else ""),
                       1 + len(ops) * (2 if only_int8 else 1)) as task:
        baseline = _selective(tf, debugger, [], "every layer int8")
        base = _outcome(baseline, x, y, float_output, f_pred)
        task.advance(1)
        rows = []
        for op, node in zip(ops, nodes, strict=True):
            name, fused = _layer_names(graph, op, suffix)
            kept = _outcome(_selective(tf, debugger, [node], f"{name} in float"), x, y, float_output, f_pred)
            task.advance(1)
            alone = None
            if only_int8:
                others = [n for n in nodes if n != node]
                alone = _outcome(_selective(tf, debugger, others, f"only {name} int8"), x, y, float_output, f_pred)
                task.advance(1)
            rows.append(BlameRow(op.index, name, op.kind, node, fused, kept, alone,
                                 100.0 * (kept.accuracy - base.accuracy), _gain(kept.sqnr_db, base.sqnr_db)))
    rows.sort(key=lambda r: (-r.accuracy_gain_pp, -r.sqnr_gain_db, r.op))
    same = None if int8_model is None else same_quantization(baseline.graph, int8_model.graph)
    return BlameReport(len(x), len(calibration), float(np.mean(f_pred == y)), base, same, tuple(rows),
                       baseline.data)
