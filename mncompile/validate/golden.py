"""Golden vectors: int8 inputs and the outputs the TFLM host interpreter gives for them.

The firmware runs the same inputs and must reproduce the outputs bit for bit
(`array_equal`, no tolerance): the host interpreter and the device run the same
TFLM kernels on the same int8 data.

Inputs are validation images of the model's dataset (named by its sidecar, or
`dataset`), evenly spread over the split, preprocessed as in training and
quantized with the model's input scale and zero point. A model that names no
dataset (an int8 .tflite from elsewhere) gets seeded random int8 inputs instead,
and the result says so.

An int8 model converted with float I/O (a float32 input that a QUANTIZE op
quantizes, a float32 output that a DEQUANTIZE op makes) takes float32 inputs
(the preprocessed images, not quantized; or seeded random values spanning the
QUANTIZE op's int8 range and a little beyond) and gives float32 outputs. Those
are compared bit for bit too: the manifest (`Golden.to_json`) and the AOT
firmware hold them as their IEEE-754 bit patterns (uint32), so every consumer
of ``expected_outputs`` keeps reading integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mncompile.errors import InvalidOptionError
from mncompile.graph.ir import Graph, Quant
from mncompile.graph.verified import VerifiedModel
from mncompile.model.info import ModelInfo
from mncompile.progress import NullReporter, Reporter

DEFAULT_GOLDEN = 4
MAX_GOLDEN = 256
RANDOM_SEED = 0


@dataclass(frozen=True, eq=False)
class Golden:
    source: str  # "<dataset> validation split" or "random int8 inputs, seed 0"
    indices: tuple[int, ...]  # positions in the validation split (empty for random inputs)
    labels: tuple[int, ...]  # true classes (-1 when unknown)
    inputs: np.ndarray  # (N, H, W, C) int8 (float32 for a float input)
    outputs: np.ndarray  # (N, classes) int8 (float32 for a float output), from the TFLM host interpreter

    @property
    def count(self) -> int:
        return int(len(self.inputs))

    @property
    def float_input(self) -> bool:
        return self.inputs.dtype == np.float32

    @property
    def float_output(self) -> bool:
        return self.outputs.dtype == np.float32

    def output_bits(self) -> np.ndarray:
        """The float32 outputs as their bit patterns (uint32); int8 outputs as they are."""
        return self.outputs.view(np.uint32) if self.float_output else self.outputs

    def predictions(self) -> tuple[int, ...]:
        scores = self.outputs if self.float_output else self.outputs.astype(np.int32)
        return tuple(int(p) for p in np.argmax(scores.reshape(len(scores), -1), axis=1))

    def to_json(self) -> dict:
        doc = {"source": self.source, "count": self.count, "indices": list(self.indices),
               "labels": list(self.labels), "predictions": list(self.predictions()),
               "emulator": "tflm (tflite-micro host interpreter)",
               "expected_outputs": self.output_bits().astype(int).tolist()}
        if self.float_input:
            doc["input_dtype"] = "float32"
        if self.float_output:
            doc["output_dtype"] = "float32"
            doc["expected_outputs_encoding"] = "float32 bit patterns as unsigned integers (compared bit for bit)"
            doc["expected_outputs_float"] = [[float(v) for v in row] for row in self.outputs.reshape(self.count, -1)]
        return doc


def io_quant(graph: Graph) -> tuple[Quant | None, Quant | None]:
    """The int8 quantization at the graph's input and output: the tensors' own or, for a float32
    input that a QUANTIZE op quantizes (a float32 output that a DEQUANTIZE op makes), that op's
    int8 side. None where there is none."""
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    qin, qout = tin.quant, tout.quant
    if tin.dtype == "FLOAT32":
        op = next((o for o in graph.ops if o.kind == "QUANTIZE" and o.inputs and o.inputs[0] == tin.index), None)
        qin = graph.tensors[op.outputs[0]].quant if op is not None else None
    if tout.dtype == "FLOAT32":
        op = next((o for o in graph.ops if o.kind == "DEQUANTIZE" and tout.index in o.outputs), None)
        qout = graph.tensors[op.inputs[0]].quant if op is not None else None
    return qin, qout


def golden_vectors(model: VerifiedModel, info: ModelInfo | None, count: int = DEFAULT_GOLDEN,
                   dataset: str | None = None, run_model: VerifiedModel | None = None,
                   reporter: Reporter = NullReporter()) -> Golden:
    """`count` golden vectors for `model` (`info`: its sidecar, for the dataset and the
    preprocessing); outputs come from running `run_model` (the model the firmware carries, e.g.
    with the memory plan embedded; default `model`) on the TFLM host interpreter."""
    from mncompile.validate.emulate import Job, run_tflm

    if not 1 <= count <= MAX_GOLDEN:
        raise InvalidOptionError(f"--golden must be between 1 and {MAX_GOLDEN}, not {count}")
    graph = model.graph
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    kind = "float32" if tin.dtype == "FLOAT32" else "int8"
    has_dataset = dataset is not None or (info is not None and info.dataset.get("name"))
    if has_dataset:
        inputs, indices, labels, source = _from_dataset(model, info, count, dataset)
    else:
        reporter.info(f"{model.name} names no dataset (in a sidecar): golden vectors are seeded random "
                      f"{kind} inputs; pass --dataset for real images")
        rng = np.random.default_rng(RANDOM_SEED)
        if tin.dtype == "FLOAT32":
            inputs = _random_float_inputs(rng, (count, *tin.shape[1:]), io_quant(graph)[0])
        else:
            inputs = rng.integers(-128, 128, size=(count, *tin.shape[1:]), dtype=np.int64).astype(np.int8)
        indices, labels, source = (), (-1,) * count, f"random {kind} inputs, seed {RANDOM_SEED}"
    outputs = run_tflm([Job(run_model or model, (inputs,))], reporter, "golden vectors (TFLM)")[0]["output_0"]
    return Golden(source, indices, labels, inputs,
                  outputs.astype(np.float32 if tout.dtype == "FLOAT32" else np.int8))


def _random_float_inputs(rng: np.random.Generator, shape: tuple[int, ...], q: Quant | None) -> np.ndarray:
    """float32 values spanning the int8 range of `q` (the QUANTIZE op's output) and 2 steps
    beyond on each side, so some saturate; [-1, 1] without a quantization."""
    if q is None:
        return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    levels = rng.uniform(-130.0, 130.0, size=shape)
    return (np.float64(np.float32(q.scale)) * (levels - q.zero_point)).astype(np.float32)


def _from_dataset(model: VerifiedModel, info: ModelInfo | None, count: int, dataset: str | None):
    from mncompile.model.datasets import Preprocessing
    from mncompile.model.loader import dataset_for
    from mncompile.validate.accuracy import evenly_spaced
    from mncompile.validate.layers import quantize_array

    graph = model.graph
    tin = graph.tensors[graph.inputs[0]]
    if len(tin.shape) != 4:
        raise InvalidOptionError(f"{model.name} has a {list(tin.shape)} input, and golden inputs from a dataset are "
                                 "(1, H, W, C) images", hint="leave out --dataset: the golden inputs are then random")
    h, _, c = tin.shape[1:]
    data = dataset_for(info, (h, h, c), dataset, model.source)
    if count > len(data.y_val):
        raise InvalidOptionError(f"--golden {count} asks for more vectors than the {len(data.y_val)} "
                                 f"validation images of {data.name}", hint=f"use --golden {len(data.y_val)} or less")
    prep = info.preprocessing if info and info.preprocessing else Preprocessing.for_input(h, c)
    pick = evenly_spaced(len(data.y_val), count)
    if tin.dtype == "FLOAT32":  # the model quantizes its input itself (QUANTIZE)
        x = np.ascontiguousarray(prep.apply(data.x_val[pick]), dtype=np.float32)
    else:
        x = quantize_array(prep.apply(data.x_val[pick]), tin.quant, "int8")
    return (x, tuple(int(i) for i in pick), tuple(int(data.y_val[i]) for i in pick),
            f"{data.name} validation split")
