"""Conversion with the TF 2.21 TFLite converter, from any float model mncompile loads.

Every format goes through one path: the model is traced as a `tf.function` with
a static (1, H, W, C) input, its variables are frozen into constants, and the
converter reads that frozen function. The batch is therefore 1 and every shape
static whatever the source model declared (a Keras 3 model with a dynamic batch
would otherwise bring SHAPE/STRIDED_SLICE ops that TFLM firmware cannot plan).
"""

from __future__ import annotations

import warnings

import numpy as np

from mncompile.errors import ModelError, QuantizationError
from mncompile.model.loader import LoadedModel
from mncompile.progress import NullReporter, Reporter
from mncompile.tfenv import captured_stderr, tf_module


def _call(loaded: LoadedModel, tf):
    model = loaded.model
    if loaded.format == "savedmodel":
        name = next(iter(model.structured_input_signature[1]))

        def fn(x):
            return next(iter(model(**{name: x}).values()))
        return fn
    if loaded.format in ("keras", "h5-keras3", "h5-legacy"):
        return lambda x: model(x, training=False)
    raise ModelError(f"{loaded.path} is a {loaded.format} model; quantization starts from the float "
                     "model (.keras, .h5 or SavedModel)",
                     hint="pass the Keras/SavedModel model the .tflite was made from")


def frozen_function(loaded: LoadedModel):
    """The model as a frozen concrete function of a (1, H, W, C) float32 input."""
    return _frozen(_call(loaded, tf_module()), loaded.input_shape)


def _frozen(fn, input_shape):
    tf = tf_module()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((1, *input_shape), tf.float32, name="input")
    concrete = tf.function(fn).get_concrete_function(spec)
    return convert_variables_to_constants_v2(concrete)


def _converter(loaded: LoadedModel):
    return _converter_of(frozen_function(loaded))


def _converter_of(frozen):
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)  # "deprecated conversion path" notices
    tf = tf_module()
    return tf, tf.lite.TFLiteConverter.from_concrete_functions([frozen])


def to_float_tflite(loaded: LoadedModel) -> bytes:
    """A float32 .tflite of the same graph: the reference for per-layer error."""
    _, converter = _converter(loaded)
    with captured_stderr() as log:
        try:
            return bytes(converter.convert())
        except Exception as exc:
            raise ModelError(f"the TFLite converter failed on {loaded.path}: {exc}\n{log.text[-2000:]}") from None


def to_int8_tflite(loaded: LoadedModel, calibration: np.ndarray,
                   reporter: Reporter = NullReporter()) -> bytes:
    """Full-integer post-training quantization: int8 weights (per channel for
    convolutions), int8 activations, int8 input and output, builtin int8 ops only."""
    return _to_int8(_converter(loaded), str(loaded.path), calibration, reporter)


def int8_from_function(fn, input_shape, what: str, calibration: np.ndarray | None,
                       reporter: Reporter = NullReporter()) -> bytes:
    """The same int8 conversion of any float function of a (1, H, W, C) input; with no
    `calibration` the ranges come from the graph's fake-quantization nodes (a QAT model)."""
    return _to_int8(_converter_of(_frozen(fn, input_shape)), what, calibration, reporter)


def int8_settings(tf, converter, calibration: np.ndarray | None, task=None) -> None:
    """The full-integer settings every int8 conversion shares: int8 weights, activations, input and
    output; with `calibration`, builtin int8 ops only and those images, one at a time, as the
    representative dataset (`task` advanced per image). Without (a QAT graph) the op set is left to
    the graph: it is all int8 by its fake quantization, and TF 2.21 demands a representative dataset
    whenever the int8 op set is requested, before it looks for fake quantization."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if calibration is None:
        return
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

    def representative():
        for i in range(len(calibration)):
            yield [calibration[i:i + 1]]
            if task is not None:
                task.advance(1)

    converter.representative_dataset = representative


def _to_int8(tf_converter, what: str, calibration: np.ndarray | None, reporter: Reporter) -> bytes:
    tf, converter = tf_converter
    with reporter.task("calibrating" if calibration is not None else "converting",
                       len(calibration) if calibration is not None else 1) as task:
        int8_settings(tf, converter, calibration, task)
        with captured_stderr() as log, warnings.catch_warnings():
            # "Statistics for quantized inputs were expected": int8 input gets its scale from
            # calibration, which is what we want.
            warnings.simplefilter("ignore", UserWarning)
            try:
                data = bytes(converter.convert())
                if calibration is None:
                    task.advance(1)
            except Exception as exc:
                detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                raise QuantizationError(f"int8 conversion of {what} failed: {detail}",
                                        hint="the model must use only ops with int8 TFLite "
                                             f"kernels; converter log tail:\n{log.text[-1500:]}") from None
    return data
