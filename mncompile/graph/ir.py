"""The intermediate representation every stage after quantization works on.

A `Graph` is a frozen view of one .tflite subgraph: tensors, operators in
execution order, and the graph's inputs and outputs. Stages never mutate it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ITEMSIZE = {"FLOAT32": 4, "FLOAT16": 2, "INT32": 4, "UINT8": 1, "INT64": 8, "INT16": 2,
            "INT8": 1, "BOOL": 1, "UINT32": 4, "UINT16": 2, "INT4": 1, "FLOAT64": 8}
# numpy dtypes of constant data as the flatbuffer stores it (little-endian)
NUMPY_DTYPES = {"FLOAT32": "<f4", "FLOAT16": "<f2", "FLOAT64": "<f8", "INT32": "<i4", "INT64": "<i8",
                "INT16": "<i2", "INT8": "<i1", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "BOOL": "<u1"}


@dataclass(frozen=True)
class Quant:
    """Affine quantization: real = scale * (q - zero_point), per tensor or along `axis`."""

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None  # -1 marks a dynamic dimension
    dtype: str  # FLOAT32, INT8, INT32, ...
    quant: Quant | None
    buffer: int
    is_constant: bool  # backed by data in the flatbuffer (weights, biases, shape operands)
    data: bytes | None = field(default=None, repr=False, compare=False)  # a constant's bytes, as stored

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * ITEMSIZE.get(self.dtype, 1)

    @property
    def is_dynamic(self) -> bool:
        return self.shape_signature is not None and any(d < 0 for d in self.shape_signature)


@dataclass(frozen=True)
class Op:
    index: int
    kind: str  # builtin operator name, e.g. CONV_2D, or CUSTOM:<name>
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: tuple[tuple[str, object], ...]  # builtin options, sorted by name
    options_type: str = "NONE"  # the BuiltinOptions union member the options are stored as

    def option(self, name: str, default: object = None) -> object:
        return dict(self.options).get(name, default)


@dataclass(frozen=True)
class Graph:
    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def constant(self, tensor: int) -> np.ndarray:
        """The data of a constant tensor, shaped and in native byte order. INT4 data stays packed
        (two values a byte): its array is the raw bytes."""
        t = self.tensors[tensor]
        if t.data is None:
            raise ValueError(f"tensor {tensor} ({t.name}) is not a constant")
        if t.dtype == "INT4" or t.dtype not in NUMPY_DTYPES:
            return np.frombuffer(t.data, dtype=np.uint8)
        a = np.frombuffer(t.data, dtype=NUMPY_DTYPES[t.dtype])
        return a.reshape(t.shape).astype(a.dtype.newbyteorder("="))

    def producers(self) -> dict[int, Op]:
        """Tensor index -> the op that writes it."""
        return {i: op for op in self.ops for i in op.outputs}

    def activation_inputs(self, op: Op) -> tuple[int, ...]:
        """Inputs of `op` computed at run time (not weights, biases or shape constants)."""
        return tuple(i for i in op.inputs if i >= 0 and not self.tensors[i].is_constant)

    def layer_name(self, tensor: int) -> str:
        """A short name for the layer producing `tensor`: the Keras layer when the converter
        recorded one (``model/conv_pw_3_relu/Relu6;...`` gives ``conv_pw_3``), else the name."""
        return short_name(self.tensors[tensor].name, call_suffix(t.name for t in self.tensors))


def call_suffix(tensor_names) -> str:
    """The ``_N`` Keras 3 appends to every layer scope of a traced call (``model_1/conv1_relu_1/...``),
    when every scoped name carries the same one; "" otherwise (Keras 2 names, ``activation_5``,
    are the layers' own and differ)."""
    scopes = [n.split(";")[0].split("/") for n in tensor_names]
    layers = [p[1] for p in scopes if len(p) > 2]
    if not layers:
        return ""
    tail = layers[0].rsplit("_", 1)
    suffix = f"_{tail[1]}" if len(tail) == 2 and tail[1].isdigit() else ""
    return suffix if suffix and all(name.endswith(suffix) for name in layers) else ""


def short_name(tensor_name: str, suffix: str = "") -> str:
    """The Keras layer of a converter tensor name, less the call `suffix` (see `call_suffix`) and
    the ``_relu``/``_bn`` of a fused activation or batch norm."""
    first = tensor_name.split(";")[0]
    parts = first.split("/")
    name = parts[1] if len(parts) > 2 else parts[-1]
    if suffix and len(parts) > 2 and name.endswith(suffix):
        name = name[: -len(suffix)]
    for fused in ("_relu", "_bn"):
        base = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name
        if base.endswith(fused):
            return base[: -len(fused)]
    return name
