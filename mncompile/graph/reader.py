"""Reading a .tflite flatbuffer into the frozen `Graph` IR, with TFLM's own schema module.

`graph_from_model` builds the IR from the flatbuffer's object tree and refuses, with a
`ModelError` naming the tensor or operator, anything it cannot even represent: an index out of
range (buffers, opcodes, tensors), a name that is not UTF-8, a tensor type or operator code the
schema does not define. Everything else about validity (dataflow, shapes, quantization) is
`mncompile.graph.verify`'s business; `mncompile.graph.verified.read_model` runs both, once.
"""

from __future__ import annotations

import functools

import numpy as np

from mncompile.errors import ModelError
from mncompile.graph.ir import Graph, Op, Quant, Tensor

SCHEMA_VERSION = 3  # TFLITE_SCHEMA_VERSION: the only version TFLM (and TFLite) read
HINT = "check the file is complete and was written by a TFLite converter"


def schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


@functools.cache
def enum_names(enum: str) -> dict[int, str]:
    """Value -> name of one of the schema's enums (TensorType, BuiltinOperator, BuiltinOptions...)."""
    return {v: k for k, v in vars(getattr(schema(), enum)).items() if not k.startswith("_")}


def parse_model(data: bytes, source: str = "model"):
    """The flatbuffer object tree (`ModelT`); raises ModelError on anything it cannot read."""
    s = schema()
    try:
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("missing the TFL3 file identifier")
        model = s.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # flatbuffers raises IndexError/struct.error/... on corrupt input
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot read {source} as a .tflite flatbuffer: {detail}", hint=HINT) from None
    return model


def _fail(source: str, what: str) -> ModelError:
    return ModelError(f"{source} is not a valid .tflite model: {what}", hint=HINT)


def _text(value, source: str, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(source, f"{what} is not UTF-8 text (byte {exc.start} is 0x{bytes(value)[exc.start]:02x})") \
            from None


def op_kind(model, op, source: str = "model", index: int = 0) -> str:
    s = schema()
    codes = model.operatorCodes or []
    if not 0 <= op.opcodeIndex < len(codes):
        raise _fail(source, f"operator {index} has opcode index {op.opcodeIndex}, and the model has "
                            f"{len(codes)} operator codes")
    code = codes[op.opcodeIndex]
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    if builtin == s.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + _text(code.customCode, source, f"the custom code of operator {index}")
    name = enum_names("BuiltinOperator").get(builtin)
    if name is None:
        raise _fail(source, f"operator {index} has builtin operator code {builtin}, which the TFLite schema "
                            "does not define")
    return name


def _options(op) -> tuple[tuple[str, object], ...]:
    opts = op.builtinOptions
    if opts is None:
        return ()
    items = []
    for key, value in sorted(vars(opts).items()):
        if isinstance(value, (bool, int, float, str)):
            items.append((key, value))
        elif isinstance(value, (list, np.ndarray)) and len(value) < 64:  # e.g. ReshapeOptions.newShape
            items.append((key, tuple(int(v) for v in value)))
    return tuple(items)


def _quant(q) -> Quant | None:
    """The affine quantization: scales and one zero point per scale (verify refuses anything else)."""
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scales = tuple(float(x) for x in q.scale)
    zps = tuple(int(z) for z in q.zeroPoint) if q.zeroPoint is not None else ()
    return Quant(scales, zps, int(q.quantizedDimension))


def _constant_data(model, buf, data: bytes | None) -> bytes | None:
    if buf is None:
        return None
    if buf.data is not None and len(buf.data) > 0:
        return np.asarray(buf.data, dtype=np.uint8).tobytes()
    offset, size = int(getattr(buf, "offset", 0) or 0), int(getattr(buf, "size", 0) or 0)
    if offset > 1 and size > 0 and data is not None:  # stored after the flatbuffer (models over 2 GB)
        return bytes(data[offset:offset + size])
    return None


def _indices(values) -> tuple[int, ...]:
    return tuple(int(i) for i in values) if values is not None else ()


def graph_from_model(model, source: str = "model", data: bytes | None = None) -> Graph:
    """The IR of subgraph 0, constants included (`data`, the file's bytes, resolves buffers stored
    after the flatbuffer). Raises ModelError for what the IR cannot represent (see the module)."""
    types = enum_names("TensorType")
    if not model.subgraphs:
        raise _fail(source, "it has no subgraph")
    sub = model.subgraphs[0]
    buffers = model.buffers or []
    raw = sub.tensors or []
    tensors = []
    for i, t in enumerate(raw):
        where = f"tensor {i}"
        name = _text(t.name, source, f"the name of {where}") or f"tensor_{i}"
        where = f"tensor {i} ({name!r})"
        if t.type not in types:
            raise _fail(source, f"{where} has type {t.type}, which the TFLite schema does not define")
        if not 0 <= t.buffer < len(buffers):
            raise _fail(source, f"{where} refers to buffer {t.buffer}, and the model has {len(buffers)} buffers")
        const = _constant_data(model, buffers[t.buffer], data)
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else None
        tensors.append(Tensor(i, name, shape, sig, types[t.type], _quant(t.quantization), int(t.buffer),
                              const is not None, const))
    ops = []
    for k, op in enumerate(sub.operators or ()):
        options_type = enum_names("BuiltinOptions").get(int(op.builtinOptionsType or 0))
        if options_type is None:
            raise _fail(source, f"operator {k} has builtin options of type {op.builtinOptionsType}, which the "
                                "TFLite schema does not define")
        ops.append(Op(k, op_kind(model, op, source, k), _indices(op.inputs), _indices(op.outputs), _options(op),
                      options_type))
    inputs, outputs = _indices(sub.inputs), _indices(sub.outputs)
    for role, indices in (("input", inputs), ("output", outputs)):
        for i in indices:
            if not 0 <= i < len(tensors):
                raise _fail(source, f"graph {role} {i} is not a tensor (the subgraph has {len(tensors)})")
    return Graph(tuple(tensors), tuple(ops), inputs, outputs)
