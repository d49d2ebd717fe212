"""Loading a model from any of the formats users bring.

| file | how it loads |
|---|---|
| ``.keras`` | ``keras.models.load_model`` (Keras 3) |
| ``.h5`` written by Keras 3 | ``keras.models.load_model`` |
| ``.h5`` written by Keras 2 (TF 2.3-2.15) | ``tf_keras.models.load_model`` (*) |
| SavedModel folder (``saved_model.pb``) | ``tf.saved_model.load``, its ``serving_default`` signature |
| ``.tflite`` | read with TFLM's flatbuffer schema; float or int8 by its input tensor |

(*) Keras 3 rejects their DepthwiseConv2D configs (``groups``).

The Keras generation of an ``.h5`` file is read from its ``keras_version``
attribute rather than guessed from a failed load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import ModelError
from mncompile.files import check_input_file
from mncompile.graph.verified import VerifiedModel, read_model
from mncompile.model.info import ModelInfo, read_info

SUPPORTED = ".keras, .h5, a SavedModel folder, or .tflite"


@dataclass(frozen=True, eq=False)
class LoadedModel:
    path: Path
    format: str  # keras, h5-keras3, h5-legacy, savedmodel, tflite-float, tflite-int8
    model: object | None  # Keras / tf_keras model, SavedModel signature, or None for .tflite
    input_shape: tuple[int, ...]  # H, W, C for an image model; a .tflite: its input's shape without the batch
    num_classes: int  # the output's last dimension
    info: ModelInfo | None
    verified: VerifiedModel | None = None  # a .tflite: the verified model (`mncompile.graph.verified`)

    @property
    def is_image_classifier(self) -> bool:
        """An (H, W, C) input and a class-vector output: what training, quantization from float,
        datasets and accuracy need. plan, emit and run take any int8 .tflite."""
        return len(self.input_shape) == 3 and self.output_rank == 2

    output_rank: int = 2

    def to_json(self) -> dict:
        return {"path": str(self.path), "format": self.format,
                "input_shape": list(self.input_shape), "classes": self.num_classes,
                "image_classifier": self.is_image_classifier, "sidecar": self.info is not None}


def _fail(path: Path, what: str, exc: BaseException) -> ModelError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(f"cannot read {path} as {what}: {detail}",
                      hint=f"check the file is complete and was saved as {what}")


def load_model(path: str | Path) -> LoadedModel:
    path = check_input_file(path, "model", folder_ok=True, hint=f"pass {SUPPORTED}")
    info = read_info(path)
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise ModelError(f"folder {path} is not a SavedModel (no saved_model.pb)",
                             hint=f"pass {SUPPORTED}")
        return _load_savedmodel(path, info)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return _keras_result(path, "keras", _load_keras3(path, ".keras model"), info)
    if suffix == ".h5":
        return _load_h5(path, info)
    if suffix == ".tflite":
        return _load_tflite(path, info)
    raise ModelError(f"unsupported model file {path.name!r}", hint=f"pass {SUPPORTED}")


def _load_keras3(path: Path, what: str):
    from mncompile.tfenv import keras_module

    keras = keras_module()
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types (ValueError, OSError, zipfile errors...)
        raise _fail(path, what, exc) from None


def _keras_result(path: Path, fmt: str, model, info: ModelInfo | None) -> LoadedModel:
    shape = tuple(model.inputs[0].shape)
    out = tuple(model.outputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]) or len(out) != 2:
        raise ModelError(f"{path} is not an image classifier: input {shape}, output {out}",
                         hint="mncompile expects an (H, W, C) image input and a class-vector output")
    return LoadedModel(path, fmt, model, tuple(int(d) for d in shape[1:]), int(out[-1]), info)


def h5_keras_version(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version")
    except OSError as exc:
        raise _fail(path, "an HDF5 (.h5) Keras model", exc) from None
    if version is None:
        raise ModelError(f"{path} is an HDF5 file but holds no Keras model (no keras_version)",
                         hint="save the model with model.save('model.h5') or use .keras")
    return version.decode() if isinstance(version, bytes) else str(version)


def _load_h5(path: Path, info: ModelInfo | None) -> LoadedModel:
    version = h5_keras_version(path)
    if version.startswith("3."):
        return _keras_result(path, "h5-keras3", _load_keras3(path, "a Keras 3 .h5 model"), info)
    from mncompile.tfenv import tf_module

    tf_module()
    import tf_keras

    try:
        model = tf_keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise _fail(path, f"a Keras {version} .h5 model (through tf_keras)", exc) from None
    return _keras_result(path, "h5-legacy", model, info)


def _load_savedmodel(path: Path, info: ModelInfo | None) -> LoadedModel:
    from mncompile.tfenv import tf_module

    tf = tf_module()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise _fail(path, "a SavedModel", exc) from None
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise ModelError(f"SavedModel {path} has no serving_default signature",
                         hint="export it with model.export(path) or tf.saved_model.save(..., signatures=...)")
    inputs = list(signature.structured_input_signature[1].values())
    outputs = list(signature.structured_outputs.values())
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"SavedModel {path} must have one input and one output, has "
                         f"{len(inputs)} and {len(outputs)}")
    shape, out = tuple(inputs[0].shape), tuple(outputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]) or len(out) != 2:
        raise ModelError(f"SavedModel {path} is not an image classifier: input {shape}, output {out}")
    # keep `loaded` alive with the signature: the signature does not own the variables
    signature._mncompile_owner = loaded  # noqa: SLF001
    return LoadedModel(path, "savedmodel", signature, tuple(int(d) for d in shape[1:]),
                       int(out[-1]), info)


def _load_tflite(path: Path, info: ModelInfo | None) -> LoadedModel:
    verified = read_model(path)
    graph = verified.graph
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    shape, out = tin.shape, tout.shape
    if not shape or not out:
        raise ModelError(f"{path} has a scalar input or output ({list(shape)} -> {list(out)}); mncompile needs "
                         "tensors with a batch dimension", hint="export the model with a batch dimension of 1")
    fmt = tflite_format(verified)
    if fmt is None:
        raise ModelError(f"{path} has a {tin.dtype} input; mncompile handles float32 and int8 models")
    return LoadedModel(path, fmt, None, tuple(shape[1:]), out[-1], info, verified, output_rank=len(out))


def tflite_format(verified: VerifiedModel) -> str | None:
    """"tflite-int8" for a fully integer model, its int8 I/O or float32 I/O edges (QUANTIZE at the
    input, DEQUANTIZE at the output) alike; "tflite-float" when float32 flows inside; None for
    another input type. `plan` and `emit` call a model the same."""
    from mncompile.graph.edges import has_float_io_edges

    graph = verified.graph
    dtype = graph.tensors[graph.inputs[0]].dtype
    if dtype == "INT8" or (dtype == "FLOAT32" and has_float_io_edges(graph)):
        return "tflite-int8"
    return "tflite-float" if dtype == "FLOAT32" else None


def model_dataset(loaded: LoadedModel, dataset: str | None):
    """The dataset a model was trained on (its sidecar), or `dataset` when given,
    at the model's input size and channels, split as in training."""
    return dataset_for(loaded.info, loaded.input_shape, dataset, str(loaded.path))


def dataset_for(info: ModelInfo | None, input_shape: tuple[int, int, int], dataset: str | None, source: str):
    """`dataset`, else the one `info` (a sidecar) names, at `input_shape` (H, W, C), split as in
    training; InvalidOptionError when neither names one."""
    from mncompile.errors import InvalidOptionError
    from mncompile.model.datasets import load_dataset

    name = dataset or (info.dataset.get("name") if info else None)
    if name is None:
        raise InvalidOptionError(f"{source} has no sidecar naming its dataset",
                                 hint="pass --dataset (digits, shapes or an image folder)")
    seed = int(info.dataset.get("seed", 0)) if info and not dataset else 0
    val_fraction = float(info.dataset.get("val_fraction", 0.2)) if info and not dataset else 0.2
    h, _, c = input_shape
    return load_dataset(name, h, c, seed=seed, val_fraction=val_fraction)
