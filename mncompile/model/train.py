"""Training a MobileNet on a `Dataset`, and saving it with its sidecar.

Defaults (V1, alpha 0.25, 96x96, 15 epochs, batch 32, Adam 2e-3 with cosine
decay, BN momentum 0.9) reach over 90 % validation accuracy on ``digits``
in about two minutes on 2 CPU cores; `bench/train_digits.py` measures it.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mncompile.errors import InvalidOptionError, ModelError
from mncompile.files import check_new_output
from mncompile.model import stream
from mncompile.model.builder import DEFAULT_BN_MOMENTUM, build_keras
from mncompile.model.datasets import Dataset
from mncompile.model.distribute import (
    DistributeOptions,
    check_global_batch,
    start_strategy,
    work_around_keras_build,
)
from mncompile.model.info import ModelInfo, sidecar_path, write_info
from mncompile.model.pretrained import check_weights, freeze_base, load_into
from mncompile.model.spec import MobileNetSpec
from mncompile.preprocess.contract import Preprocessing
from mncompile.progress import NullReporter, Reporter
from mncompile.tfenv import keras_module


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 0
    bn_momentum: float = DEFAULT_BN_MOMENTUM
    dropout: float = 0.1
    augment: float = 0.1  # random shift, as a fraction of the side; 0 turns it off
    weights: str | None = None  # "imagenet" or a weights file: a pretrained, frozen base (`mncompile.model.pretrained`)
    fine_tune_epochs: int = 0  # then unfreeze the top quarter of the base at a tenth of the learning rate
    # tf.distribute: a cluster of workers or mirrored local devices (`mncompile.model.distribute`);
    # batch_size is then the global batch, split evenly over the replicas
    distribute: DistributeOptions = DistributeOptions()

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InvalidOptionError(f"--epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise InvalidOptionError(f"--batch-size must be at least 1, not {self.batch_size}")
        if not self.learning_rate > 0:
            raise InvalidOptionError(f"--learning-rate must be positive, not {self.learning_rate}")
        if not 0.0 <= self.augment < 0.5:
            raise InvalidOptionError(f"--augment must be in [0, 0.5), not {self.augment}")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidOptionError(f"--dropout must be in [0, 1), not {self.dropout}")
        if self.fine_tune_epochs < 0:
            raise InvalidOptionError(f"--fine-tune-epochs must be 0 or more, not {self.fine_tune_epochs}")
        if self.fine_tune_epochs and self.weights is None:
            raise InvalidOptionError("--fine-tune-epochs fine-tunes a pretrained base, and no --weights were given",
                                     hint="pass --weights imagenet or --weights PATH, or train longer with --epochs")
        check_global_batch(self.batch_size, self.distribute.known_replicas)


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    sidecar_path: Path
    spec: MobileNetSpec
    val_accuracy: float
    seconds: float
    history: tuple[EpochStats, ...]
    distribute: dict | None = None  # the strategy it trained under (`Distribution.to_json`)

    def to_json(self) -> dict:
        return {"model": str(self.model_path), "sidecar": str(self.sidecar_path),
                "arch": self.spec.arch, "alpha": self.spec.alpha,
                "resolution": self.spec.resolution, "channels": self.spec.channels,
                "classes": self.spec.classes, "val_accuracy": self.val_accuracy,
                "seconds": round(self.seconds, 1),
                "history": [vars(e) for e in self.history], "distribute": self.distribute}


def check_output(path: Path, force: bool) -> Path:
    return check_new_output(path, ".keras", force, "digits_v1.keras")


def train(spec: MobileNetSpec, dataset: Dataset, out: Path, config: TrainConfig = TrainConfig(),
          reporter: Reporter = NullReporter(), force: bool = False,
          preprocessing: Preprocessing | None = None) -> TrainResult:
    """Train `spec` on `dataset`, then save the batch-1 model to `out` (+ sidecar).
    `preprocessing`: how pixels map to the input (default: the dataset's, 0..255 to [-1, 1]).
    Under a cluster (``config.distribute``) every worker runs this and saves the model it trained, equal
    on all of them, to its own `out`; the sidecar's metrics record the strategy."""
    out = check_output(out, force)
    check_weights(config.weights, spec)
    if spec.input_shape != dataset.x_train.shape[1:]:
        raise InvalidOptionError(f"model input {spec.input_shape} does not match dataset "
                                 f"images {dataset.x_train.shape[1:]}")
    if spec.classes != len(dataset.class_names):
        raise InvalidOptionError(f"model has {spec.classes} classes, dataset "
                                 f"{len(dataset.class_names)}")
    # first: a cluster's collective ops and logical devices must be set up before TensorFlow runs an op
    distribution = start_strategy(config.distribute, reporter)
    check_global_batch(config.batch_size, distribution.replicas)
    keras = keras_module()
    keras.utils.set_random_seed(config.seed)
    prep = preprocessing or dataset.preprocessing()  # applied batch by batch (`mncompile.model.stream`)

    with distribution.scope():  # variables mirrored over the replicas; batch norm averaged over all of them
        base = build_keras(spec, batch_size=None, bn_momentum=config.bn_momentum,
                           dropout=config.dropout, synchronized=distribution.synchronized)
        if config.weights is not None:
            loaded = load_into(base, config.weights, spec)
            freeze_base(base)
            reporter.info(f"pretrained base: {loaded} layers from {config.weights}, frozen while the new "
                          "classifier trains")
        model = base
        if config.augment > 0:  # in the training graph only; the saved model has no such layer
            model = keras.Sequential([
                keras.Input(spec.input_shape),
                keras.layers.RandomTranslation(config.augment, config.augment, fill_mode="constant",
                                               fill_value=float(prep.offset[0]), seed=config.seed),
                base])
        work_around_keras_build(model, distribution)
        steps = stream.steps(len(dataset.y_train), config.batch_size)
        _compile(keras, model, config.learning_rate, steps * config.epochs)

    history: list[EpochStats] = []
    started = time.monotonic()
    reporter.stage("train", f"{spec.name} on {dataset.name}: {len(dataset.y_train)} train / "
                            f"{len(dataset.y_val)} validation images, {config.epochs} epochs")
    with reporter.task("training", steps * (config.epochs + config.fine_tune_epochs)) as task:

        class _Progress(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                task.advance(1)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                stats = EpochStats(len(history) + 1, float(logs.get("loss", math.nan)),
                                   float(logs.get("accuracy", math.nan)),
                                   float(logs.get("val_loss", math.nan)),
                                   float(logs.get("val_accuracy", math.nan)))
                history.append(stats)
                reporter.info(f"epoch {len(history)}/{config.epochs + config.fine_tune_epochs}: loss "
                              f"{stats.loss:.3f}, val accuracy {stats.val_accuracy:.1%}")

        def fit(epochs: int, first_epoch: int = 0) -> None:
            # batches of the global batch size, decoded as needed; one iterator runs all the epochs
            data = stream.train_stream(dataset.x_train, dataset.y_train, prep, config.batch_size,
                                       seed=config.seed, epochs=epochs, first_epoch=first_epoch)
            val = stream.eval_stream(dataset.x_val, dataset.y_val, prep, config.batch_size)
            try:
                with stream.decode_errors(dataset.x_train, dataset.x_val):
                    model.fit(data, epochs=epochs, steps_per_epoch=steps, validation_data=val, shuffle=False,
                              verbose=0, callbacks=[_Progress()])
            except (ValueError, RuntimeError, MemoryError, stream.pipeline_errors()) as exc:
                raise ModelError(f"training failed: {exc}") from None

        fit(config.epochs)
        if config.fine_tune_epochs:
            start = (3 * sum(1 for layer in base.layers if layer.weights)) // 4
            freeze_base(base, start)
            reporter.info(f"fine-tuning the top quarter of the base ({config.fine_tune_epochs} epochs, learning "
                          f"rate {config.learning_rate / 10:g}, batch norms frozen)")
            with distribution.scope():
                _compile(keras, model, config.learning_rate / 10, steps * config.fine_tune_epochs)
            fit(config.fine_tune_epochs, config.epochs)
    if not all(np.isfinite(e.loss) for e in history):
        raise ModelError("training diverged (loss became NaN or infinite)",
                         hint="lower --learning-rate")

    deploy = build_keras(spec, batch_size=1, bn_momentum=config.bn_momentum,
                         dropout=config.dropout)
    deploy.set_weights(base.get_weights())
    val_accuracy = evaluate_accuracy(deploy, stream.eval_stream(dataset.x_val, dataset.y_val, prep, 64))
    seconds = time.monotonic() - started

    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}.keras")
    try:
        deploy.save(tmp)
        info = ModelInfo(arch=spec.arch, alpha=spec.alpha, resolution=spec.resolution,
                         channels=spec.channels, class_names=dataset.class_names,
                         preprocessing=prep, dataset=dataset.to_json(),
                         metrics={"val_accuracy": val_accuracy, "pretrained_weights": config.weights,
                                  "fine_tune_epochs": config.fine_tune_epochs,
                                  "distribute": distribution.to_json()})
        write_info(out, info)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return TrainResult(out, sidecar_path(out), spec, val_accuracy, seconds, tuple(history), distribution.to_json())


def _compile(keras, model, learning_rate: float, steps: int) -> None:
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def evaluate_accuracy(model, x, y: np.ndarray | None = None, batch: int = 64) -> float:
    """Top-1 accuracy of a Keras model (any batch size): on float inputs `x` with labels `y`, or,
    with `y` None, on a stream of (inputs, labels) batches (`mncompile.model.stream.eval_stream`)."""
    predict = predictor(model)
    if y is None:
        correct = total = 0
        for xb, yb in x:
            labels = np.asarray(yb)
            correct += int(np.sum(np.argmax(predict(np.asarray(xb)), axis=-1) == labels))
            total += len(labels)
        return correct / max(1, total)
    correct = sum(int(np.sum(np.argmax(predict(x[i:i + batch]), axis=-1) == y[i:i + batch]))
                  for i in range(0, len(x), batch))
    return correct / len(x)


def predictor(model):
    """A function mapping a float batch to probabilities, for batch-1 models too."""
    fixed = model.inputs[0].shape[0]
    if fixed is None:
        return lambda xb: np.asarray(model(xb, training=False))
    return lambda xb: np.concatenate([np.asarray(model(xb[i:i + fixed], training=False))
                                      for i in range(0, len(xb), fixed)])
