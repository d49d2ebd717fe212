"""Is a .tflite a model every stage can trust? The checks after the flatbuffer is read.

`verify_graph` runs, in order, and raises `ModelError` (exit 4) at the first failure with a
message naming the operator (index and type) or tensor and what is wrong:

1. **the model**: schema version 3; one subgraph (control flow is not compiled); every operator
   code a schema operator of version 1 to `MAX_OP_VERSION`; metadata
   buffer indices in range; an ``OfflineMemoryAllocation`` table well formed;
2. **tensors**: dimensions >= 1 (0 only in an empty constant), rank <= `MAX_RANK`, sizes that
   fit 32-bit device arithmetic (each tensor and all activations together < 2 GiB); constant
   data exactly shape x dtype; quantization, where a tensor has it: finite positive scales,
   one zero point per scale, in the dtype's range,
   ``quantized_dimension`` a dimension of the tensor and, per channel, one scale per element of
   that dimension;
3. **dataflow**: at least one operator, one graph input and one output, no constants among
   them; every operator input is -1 (omitted), a constant, a graph input, a variable or the
   output of an EARLIER operator (so no cycles, no swapped or dropped operators); every tensor
   written once; every graph output written by an operator. (Inputs of Vela's ``ethos-u``
   operator are exempt: its scratch tensors are only read.)
4. **each operator**: it has an entry in the op registry (`mncompile.graph.ops`; an operator
   without one is an `UnsupportedOpError`: nothing could check it), its options are stored as the
   union member of its type, and its entry's checks pass (shapes, types, quantization axes).
"""

from __future__ import annotations

import math

import numpy as np

from mncompile.errors import ModelError, UnsupportedOpError
from mncompile.graph.ir import ITEMSIZE, Graph, Op, Tensor
from mncompile.graph.ops import OpCheckError, spec_of
from mncompile.graph.reader import enum_names

SCHEMA_VERSION = 3
MAX_RANK = 8
MAX_BYTES = 2**31 - 1  # int32 sizes and offsets on the device
OFFLINE_PLAN = b"OfflineMemoryAllocation"
ZERO_POINT_RANGE = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767), "INT4": (-8, 7),
                    "UINT16": (0, 65535), "INT32": (-2**31, 2**31 - 1)}
ETHOSU = "CUSTOM:ethos-u"
MAX_OP_VERSION = 16  # the highest any TFLite builtin kernel registers is below this (FULLY_CONNECTED: 13)
PLACEHOLDER_OPCODE = 127  # PLACEHOLDER_FOR_GREATER_OP_CODES: "see builtin_code", never an operator
HINT = "check the file is complete and was written by a TFLite converter"


def _error(source: str, what: str) -> ModelError:
    return ModelError(f"{source} is not a valid model: {what}", hint=HINT)


def _tensor(t: Tensor) -> str:
    return f"tensor {t.index} ({t.name!r})"


def verify_graph(tree, graph: Graph, source: str) -> None:
    """Raise ModelError when the model (`tree`, its `ModelT`; `graph`, its IR) is not valid."""
    _model(tree, graph, source)
    _tensors(tree, graph, source)
    variables = {i for i, t in enumerate(tree.subgraphs[0].tensors or ()) if t.isVariable}
    _dataflow(graph, source, variables)
    for op in graph.ops:
        _op(graph, op, source)


def _model(tree, graph: Graph, source: str) -> None:
    if tree.version != SCHEMA_VERSION:
        raise ModelError(f"{source} has TFLite schema version {tree.version}; TFLM and mncompile read version "
                         f"{SCHEMA_VERSION}", hint="convert the model again with a current TFLite converter")
    if len(tree.subgraphs) != 1:
        raise ModelError(f"{source} has {len(tree.subgraphs)} subgraphs; mncompile compiles models with one "
                         "(control flow such as IF or WHILE is not supported)",
                         hint="convert a model without control flow")
    names = enum_names("BuiltinOperator")
    for k, code in enumerate(tree.operatorCodes or ()):  # used or not: TFLite resolves them all
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        if builtin not in names or builtin == PLACEHOLDER_OPCODE:
            raise _error(source, f"operator code {k} is builtin operator {builtin}, which is not an operator of "
                                 "the TFLite schema")
        if not 1 <= int(code.version) <= MAX_OP_VERSION:
            raise _error(source, f"operator code {k} ({names[builtin]}) has version {code.version}; TFLite's kernels "
                                 f"have versions 1 to {MAX_OP_VERSION} at most")
    buffers = tree.buffers or []
    for k, meta in enumerate(tree.metadata or ()):
        if not 0 <= meta.buffer < len(buffers):
            raise _error(source, f"metadata {k} refers to buffer {meta.buffer}, and the model has {len(buffers)}")
        if meta.name == OFFLINE_PLAN:
            _offline_plan(buffers[meta.buffer], graph, source)


def _offline_plan(buffer, graph: Graph, source: str) -> None:
    """TFLM's offline plan: int32 [version 0, subgraphs 1, n tensors, n offsets (-1: TFLM plans it)]."""
    raw = np.asarray(buffer.data if buffer.data is not None else [], dtype=np.uint8).tobytes()
    n = len(graph.tensors)
    if len(raw) != 4 * (3 + n):
        raise _error(source, f"its OfflineMemoryAllocation metadata has {len(raw)} bytes, not {4 * (3 + n)} "
                             f"(3 + {n} tensors, int32)")
    table = np.frombuffer(raw, dtype="<i4")
    if tuple(int(v) for v in table[:3]) != (0, 1, n):
        raise _error(source, f"its OfflineMemoryAllocation metadata starts {list(table[:3])}, not [0, 1, {n}]")
    for t, offset in zip(graph.tensors, table[3:], strict=True):
        if offset < -1 or (offset >= 0 and t.is_constant):
            raise _error(source, f"its OfflineMemoryAllocation metadata places {_tensor(t)} at offset {offset}")


def _tensors(tree, graph: Graph, source: str) -> None:
    raw = tree.subgraphs[0].tensors or []
    activations = 0
    for t, flat in zip(graph.tensors, raw, strict=True):
        if len(t.shape) > MAX_RANK:
            raise _error(source, f"{_tensor(t)} has rank {len(t.shape)}; at most {MAX_RANK} is supported")
        if any(d < 0 for d in t.shape) or (0 in t.shape and not _empty_constant(t)):
            raise _error(source, f"{_tensor(t)} has shape {list(t.shape)}; every dimension must be 1 or more")
        elements = math.prod(t.shape)
        if t.dtype in ("STRING", "RESOURCE", "VARIANT"):
            continue
        size = _nbytes(t.dtype, elements)
        if size > MAX_BYTES:
            raise _error(source, f"{_tensor(t)} of shape {list(t.shape)} is {size:,} bytes; a 32-bit device "
                                 "addresses less than 2 GiB")
        if t.is_constant and len(t.data) != size:
            raise _error(source, f"{_tensor(t)} has {len(t.data):,} bytes of data, and its shape {list(t.shape)} "
                                 f"of {t.dtype} needs {size:,}")
        if not t.is_constant:
            activations += size
        _quantization(t, flat.quantization, source)
    if activations > MAX_BYTES:
        raise _error(source, f"its run-time tensors total {activations:,} bytes; a 32-bit device addresses less "
                             "than 2 GiB")


def _nbytes(dtype: str, elements: int) -> int:
    if dtype == "INT4":
        return (elements + 1) // 2
    return elements * ITEMSIZE.get(dtype, 1)


def _empty_constant(t: Tensor) -> bool:
    """A tensor of zero elements and no data (e.g. the shape operand of a RESHAPE to a scalar)."""
    return math.prod(t.shape) == 0 and not t.is_constant


def _quantization(t: Tensor, q, source: str) -> None:
    scales = [] if q is None or q.scale is None else list(q.scale)
    if not scales:
        return  # an operator that needs it says so (its registry entry); raw bytes (Vela's) have none
    zero_points = [] if q.zeroPoint is None else [int(z) for z in q.zeroPoint]
    if len(zero_points) != len(scales):
        raise _error(source, f"{_tensor(t)} has {len(scales)} scales and {len(zero_points)} zero points "
                             "(TFLite needs one zero point per scale)")
    bad = next((s for s in scales if not (math.isfinite(s) and s > 0)), None)
    if bad is not None and not (t.is_constant and t.dtype in ("INT32", "INT64")):
        # A bias's own scale is never read: TFLM's kernels use input scale x filter scale. The
        # MCUNet zoo's mcunet-320kb-1mb_imagenet has a bias with the scale -9.2e-10.
        raise _error(source, f"{_tensor(t)} has the quantization scale {bad}; scales must be finite and positive")
    lo, hi = ZERO_POINT_RANGE.get(t.dtype, (-2**63, 2**63 - 1))
    odd = next((z for z in zero_points if not lo <= z <= hi), None)
    if odd is not None:
        raise _error(source, f"{_tensor(t)} is {t.dtype} with the zero point {odd}, outside [{lo}, {hi}]")
    if t.is_constant and t.dtype in ("INT32", "INT64"):
        # a bias: TFLM's kernels read its values only, never its quantization (TFLM's own
        # person_detect.tflite gives its rank-1 depthwise biases quantized_dimension 3)
        return
    axis = int(q.quantizedDimension)
    if t.shape and not 0 <= axis < len(t.shape):
        raise _error(source, f"{_tensor(t)} has quantized_dimension {axis}, and its rank is {len(t.shape)}")
    if len(scales) > 1 and (not t.shape or len(scales) != t.shape[axis]):
        size = t.shape[axis] if t.shape else 1
        raise _error(source, f"{_tensor(t)} has {len(scales)} per-channel scales along dimension {axis} of "
                             f"size {size}")


def _dataflow(graph: Graph, source: str, variables: set[int]) -> None:
    n = len(graph.tensors)
    if not graph.ops:
        raise ModelError(f"{source} has no operators: nothing computes its output",
                         hint="check the model was converted completely")
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        if not indices:
            raise _error(source, f"its graph has no {role}")
        if len(set(indices)) != len(indices):
            raise _error(source, f"its graph lists the same {role} tensor twice: {list(indices)}")
        for i in indices:
            if graph.tensors[i].is_constant:
                raise _error(source, f"graph {role} {_tensor(graph.tensors[i])} is a constant")
    available = set(graph.inputs)
    available.update(t.index for t in graph.tensors if t.is_constant or _empty_constant(t))
    available |= variables  # state: read before the op that updates it
    written: dict[int, int] = {}
    for op in graph.ops:
        where = f"operator {op.index} ({op.kind})"
        if not op.outputs:
            raise _error(source, f"{where} has no output")
        for i in op.inputs:
            if i == -1:
                continue
            if not 0 <= i < n:
                raise _error(source, f"{where} reads tensor {i}, and the subgraph has {n} tensors")
            if i not in available and op.kind != ETHOSU:
                later = next((o.index for o in graph.ops if o.index > op.index and i in o.outputs), None)
                why = (f"which operator {later} writes only later" if later is not None
                       else "which no operator writes and which is neither a constant nor a graph input")
                raise _error(source, f"{where} reads {_tensor(graph.tensors[i])}, {why}")
        for i in op.outputs:
            if not 0 <= i < n:
                raise _error(source, f"{where} writes tensor {i}, and the subgraph has {n} tensors")
            t = graph.tensors[i]
            if i in written:
                raise _error(source, f"{where} writes {_tensor(t)}, which operator {written[i]} already wrote")
            if t.is_constant:
                raise _error(source, f"{where} writes {_tensor(t)}, a constant")
            if i in graph.inputs:
                raise _error(source, f"{where} writes {_tensor(t)}, a graph input")
            written[i] = op.index
            available.add(i)
    for i in graph.outputs:
        if i not in written:
            raise _error(source, f"graph output {_tensor(graph.tensors[i])} is written by no operator")


def _op(graph: Graph, op: Op, source: str) -> None:
    spec = spec_of(op.kind)
    if spec is None:  # nothing checks it, so nothing downstream may trust it
        from mncompile.graph.ops import REGISTRY

        known = ", ".join(sorted(k for k in REGISTRY if not k.startswith("CUSTOM:")))
        raise UnsupportedOpError(f"{source}: operator {op.index} ({op.kind}) has no entry in mncompile's op registry, "
                                 "so mncompile cannot verify or compile it",
                                 hint=f"the operators mncompile verifies: {known} (README: Supported operators)")
    if spec.options is not None and op.options_type not in ("NONE", spec.options):
        raise _error(source, f"operator {op.index} ({op.kind}) stores its options as {op.options_type}, not "
                             f"{spec.options}")
    if spec.options_required and op.options_type == "NONE":
        raise _error(source, f"operator {op.index} ({op.kind}) has no {spec.options}")
    if spec.check is None:
        return
    try:
        spec.check(graph, op)
    except OpCheckError as exc:
        raise _error(source, f"operator {op.index} ({op.kind}): {exc}") from None
