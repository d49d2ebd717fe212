"""Golden vectors: int8 inputs and the outputs the TFLM host interpreter gives for them.

The firmware runs the same inputs and must reproduce the outputs bit for bit
(`array_equal`, no tolerance): the host interpreter and the device run the same
TFLM kernels on the same int8 data.

Inputs are validation images of the model's dataset (named by its sidecar, or
`dataset`), evenly spread over the split, preprocessed as in training and
quantized with the model's input scale and zero point. A model that names no
dataset (an int8 .tflite from elsewhere) gets seeded random int8 inputs instead,
and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mncompile.errors import InvalidOptionError
from mncompile.graph.ir import Graph
from mncompile.model.loader import LoadedModel
from mncompile.progress import NullReporter, Reporter

DEFAULT_GOLDEN = 4
MAX_GOLDEN = 256
RANDOM_SEED = 0


@dataclass(frozen=True, eq=False)
class Golden:
    source: str  # "<dataset> validation split" or "random int8 inputs, seed 0"
    indices: tuple[int, ...]  # positions in the validation split (empty for random inputs)
    labels: tuple[int, ...]  # true classes (-1 when unknown)
    inputs: np.ndarray  # (N, H, W, C) int8
    outputs: np.ndarray  # (N, classes) int8, from the TFLM host interpreter

    @property
    def count(self) -> int:
        return int(len(self.inputs))

    def predictions(self) -> tuple[int, ...]:
        return tuple(int(p) for p in np.argmax(self.outputs.astype(np.int32), axis=1))

    def to_json(self) -> dict:
        return {"source": self.source, "count": self.count, "indices": list(self.indices),
                "labels": list(self.labels), "predictions": list(self.predictions()),
                "emulator": "tflm (tflite-micro host interpreter)",
                "expected_outputs": self.outputs.astype(int).tolist()}


def golden_vectors(model: LoadedModel, run_model: Path, graph: Graph, count: int = DEFAULT_GOLDEN,
                   dataset: str | None = None, reporter: Reporter = NullReporter()) -> Golden:
    """`count` golden vectors for `model`; outputs come from running `run_model` (the model
    the firmware carries, e.g. with the memory plan embedded) on the TFLM host interpreter."""
    from mncompile.validate.emulate import Job, run_tflm

    if not 1 <= count <= MAX_GOLDEN:
        raise InvalidOptionError(f"--golden must be between 1 and {MAX_GOLDEN}, not {count}")
    tin = graph.tensors[graph.inputs[0]]
    has_dataset = dataset is not None or (model.info is not None and model.info.dataset.get("name"))
    if has_dataset:
        inputs, indices, labels, source = _from_dataset(model, graph, count, dataset)
    else:
        reporter.info(f"{model.path.name} names no dataset (in a sidecar): golden vectors are seeded random "
                      "int8 inputs; pass --dataset for real images")
        rng = np.random.default_rng(RANDOM_SEED)
        inputs = rng.integers(-128, 128, size=(count, *tin.shape[1:]), dtype=np.int64).astype(np.int8)
        indices, labels, source = (), (-1,) * count, f"random int8 inputs, seed {RANDOM_SEED}"
    outputs = run_tflm([Job(Path(run_model), (inputs,))], reporter, "golden vectors (TFLM)")[0]["output_0"]
    return Golden(source, indices, labels, inputs, outputs.astype(np.int8))


def _from_dataset(model: LoadedModel, graph: Graph, count: int, dataset: str | None):
    from mncompile.model.datasets import Preprocessing
    from mncompile.quantize import model_dataset
    from mncompile.validate.accuracy import evenly_spaced
    from mncompile.validate.layers import quantize_array

    data = model_dataset(model, dataset)
    if count > len(data.y_val):
        raise InvalidOptionError(f"--golden {count} asks for more vectors than the {len(data.y_val)} "
                                 f"validation images of {data.name}", hint=f"use --golden {len(data.y_val)} or less")
    h, _, c = model.input_shape
    prep = (model.info.preprocessing if model.info and model.info.preprocessing
            else Preprocessing.for_input(h, c))
    pick = evenly_spaced(len(data.y_val), count)
    tin = graph.tensors[graph.inputs[0]]
    x = quantize_array(prep.apply(data.x_val[pick]), tin.quant, "int8")
    return (x, tuple(int(i) for i in pick), tuple(int(data.y_val[i]) for i in pick),
            f"{data.name} validation split")
