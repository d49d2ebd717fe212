"""Quantization-aware training (QAT) with tensorflow-model-optimization, exported as full-int8.

Why this library: tensorflow-model-optimization (tfmot) is TensorFlow's maintained QAT toolkit,
and its default 8-bit scheme is the one the TFLite converter was written for: it folds batch norm
into the convolution before fake-quantizing the weights (per channel), places the activation
fake-quant nodes where TFLite's fused kernels requantize, and the converter then reads the
learned ranges. ai-edge-quantizer quantizes a finished .tflite (post-training only), so it cannot
fine-tune the weights against their rounding, which is what QAT is for.

tfmot works on `tf_keras` (Keras 2) models only. A Keras 3 model is rebuilt layer by layer as a
`tf_keras` twin with a dynamic batch (`tf_keras_twin`) and its weights copied by layer name; a
Keras 2 ``.h5`` model is cloned the same way. The QAT model then fine-tunes on the training split
(the float model's preprocessing), streamed batch by batch (`mncompile.model.stream`: a folder larger
than memory works), and is exported by `mncompile.quantize.convert.int8_from_function`,
the same converter path post-training quantization takes: static (1, H, W, C) input, int8 input
and output, builtin int8 ops only.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np

from mncompile.errors import InvalidOptionError, QuantizationError
from mncompile.model import stream
from mncompile.model.datasets import Dataset, Images
from mncompile.model.loader import LoadedModel
from mncompile.preprocess.contract import Preprocessing
from mncompile.progress import NullReporter, Reporter

_BASE_KWARGS = {"name", "trainable", "dtype"}
_DROPPED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")  # weights are copied; training adds none


@dataclass(frozen=True)
class QatConfig:
    epochs: int = 3
    learning_rate: float = 1e-4  # a fine-tune of a trained model: small steps keep its accuracy
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InvalidOptionError(f"--qat-epochs must be at least 1, not {self.epochs}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise InvalidOptionError(f"--qat-learning-rate must be a positive number, not {self.learning_rate}")
        if self.batch_size < 1:
            raise InvalidOptionError(f"--batch-size must be at least 1, not {self.batch_size}")

    def to_json(self) -> dict:
        return {"epochs": self.epochs, "learning_rate": self.learning_rate, "batch_size": self.batch_size,
                "seed": self.seed, "library": f"tensorflow-model-optimization {_tfmot_version()}"}


@dataclass(frozen=True)
class QatResult:
    data: bytes  # the int8 .tflite
    float_val_accuracy: float  # the float model before QAT (on the training graph's twin)
    qat_val_accuracy: float  # the fake-quantized model after QAT
    history: tuple[float, ...]  # validation accuracy after each epoch

    def to_json(self) -> dict:
        return {"float_val_accuracy": self.float_val_accuracy, "qat_val_accuracy": self.qat_val_accuracy,
                "val_accuracy_per_epoch": list(self.history)}


def _tfmot():
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise QuantizationError(f"quantization-aware training needs tensorflow-model-optimization: {exc}",
                                hint="pip install tensorflow-model-optimization") from None
    return tfmot


def _tfmot_version() -> str:
    return getattr(_tfmot(), "__version__", "?")


def _clean(cls, config: dict) -> dict:
    """A Keras 3 layer config as `tf_keras` `cls` takes it: Keras-3-only keys and serialized
    initializers/regularizers/constraints dropped, dtype policies to their variable dtype."""
    accepted = set(inspect.signature(cls.__init__).parameters) | _BASE_KWARGS
    out = {}
    for key, value in config.items():
        if key not in accepted or key.endswith(_DROPPED_SUFFIXES):
            continue
        if key == "dtype" and isinstance(value, dict):
            value = value.get("config", {}).get("name", "float32")
        out[key] = value
    return out


def _history(arg) -> list:
    """The (layer, node, tensor) references in one argument of a Keras 3 inbound node."""
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return [tuple(arg["config"]["keras_history"])]
    if isinstance(arg, (list, tuple)):
        return [h for a in arg for h in _history(a)]
    return []


def tf_keras_twin(loaded: LoadedModel):
    """The float model as a `tf_keras` functional model with a dynamic batch and the same weights."""
    import tf_keras

    model = loaded.model
    if loaded.format == "h5-legacy":
        twin = tf_keras.models.clone_model(model, input_tensors=tf_keras.Input(loaded.input_shape))
        twin.set_weights(model.get_weights())
        return twin
    if loaded.format not in ("keras", "h5-keras3"):
        raise QuantizationError(f"{loaded.path} is a {loaded.format} model: quantization-aware training fine-tunes "
                                "a Keras model (.keras or .h5)",
                                hint="pass the Keras model, or leave out --qat for post-training quantization")
    config = model.get_config()
    if "layers" not in config or "input_layers" not in config:
        raise QuantizationError(f"{loaded.path} is not a functional or sequential Keras model",
                                hint="--qat rebuilds the model layer by layer; save it as a functional model")
    tensors: dict[tuple[str, int], object] = {}
    for entry in config["layers"]:
        name, kind, cfg = entry["config"]["name"], entry["class_name"], entry["config"]
        if kind == "InputLayer":
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            tensors[(name, 0)] = tf_keras.Input(tuple(shape[1:]), name=name)
            continue
        cls = getattr(tf_keras.layers, kind, None)
        if cls is None:
            raise QuantizationError(f"layer {name!r} of {loaded.path} is a {kind}, which quantization-aware "
                                    "training cannot rebuild", hint="leave out --qat for post-training quantization")
        layer = cls(**_clean(cls, cfg))
        for index, node in enumerate(entry.get("inbound_nodes", [])):
            inputs = [tensors[(h[0], h[1])] for h in _history(node.get("args", []))]
            tensors[(name, index)] = layer(inputs if len(inputs) > 1 else inputs[0])
        if entry.get("inbound_nodes"):
            source = model.get_layer(name).get_weights()
            if source:
                layer.set_weights(source)
    def first(refs):  # [name, node, tensor], or a list of them
        ref = refs[0] if isinstance(refs[0], (list, tuple)) else refs
        return tensors[(ref[0], ref[1])]

    return tf_keras.Model(first(config["input_layers"]), first(config["output_layers"]), name=model.name)


def qat_model(twin):
    """The twin with tfmot's default 8-bit fake quantization (batch norm folded into convolutions)."""
    tfmot = _tfmot()
    try:
        return tfmot.quantization.keras.quantize_model(twin)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise QuantizationError(f"tensorflow-model-optimization cannot quantize this model: {exc}",
                                hint="leave out --qat for post-training quantization") from None


def train_qat(loaded: LoadedModel, dataset: Dataset, preprocessing: Preprocessing, config: QatConfig = QatConfig(),
              reporter: Reporter = NullReporter()) -> QatResult:
    """Fine-tune `loaded` with fake quantization on `dataset`'s training split, then export int8."""
    import tf_keras

    from mncompile.quantize.convert import int8_from_function

    tf_keras.utils.set_random_seed(config.seed)
    n_train = len(dataset.y_train)
    twin = tf_keras_twin(loaded)
    float_acc = _accuracy(twin, dataset.x_val, dataset.y_val, preprocessing)
    for layer in twin.layers:  # inference mode: the trained statistics stay (the fine-tune's batches would move them)
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.trainable = False
    model = qat_model(twin)
    model.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    steps = stream.steps(n_train, config.batch_size)
    reporter.stage("qat", f"quantization-aware training: {config.epochs} epochs on {n_train} {dataset.name} "
                          f"training images, learning rate {config.learning_rate:g}")
    history: list[float] = []
    with reporter.task("QAT", steps * config.epochs) as task:

        class _Progress(tf_keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                task.advance(1)

            def on_epoch_end(self, epoch, logs=None):
                acc = float((logs or {}).get("val_accuracy", math.nan))
                history.append(acc)
                reporter.info(f"QAT epoch {epoch + 1}/{config.epochs}: loss {(logs or {}).get('loss', math.nan):.3f}"
                              f", fake-quantized val accuracy {acc:.1%}")

        batches = stream.train_stream(dataset.x_train, dataset.y_train, preprocessing, config.batch_size,
                                   seed=config.seed, epochs=config.epochs)
        val = stream.eval_stream(dataset.x_val, dataset.y_val, preprocessing, config.batch_size)
        try:
            with stream.decode_errors(dataset.x_train, dataset.x_val):
                model.fit(batches, epochs=config.epochs, steps_per_epoch=steps, validation_data=val, verbose=0,
                          callbacks=[_Progress()])
        except (ValueError, RuntimeError, MemoryError, stream.pipeline_errors()) as exc:
            raise QuantizationError(f"quantization-aware training failed: {exc}") from None
    if not history or not all(math.isfinite(a) for a in history):
        raise QuantizationError("quantization-aware training diverged", hint="lower --qat-learning-rate")
    data = int8_from_function(lambda x: model(x, training=False), loaded.input_shape, f"the QAT model of {loaded.path}",
                              None, reporter)
    return QatResult(data, float_acc, _accuracy(model, dataset.x_val, dataset.y_val, preprocessing), tuple(history))


def _accuracy(model, images: Images, y: np.ndarray, prep: Preprocessing, batch: int = 128) -> float:
    """Top-1 accuracy on a split, decoded and preprocessed one batch at a time."""
    correct = 0
    for i, pixels in stream.iter_batches(images, batch):
        out = np.asarray(model(prep.apply(pixels), training=False))
        correct += int(np.sum(np.argmax(out, axis=-1) == y[i:i + len(pixels)]))
    return correct / max(1, len(images))
