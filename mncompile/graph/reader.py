"""Reading a .tflite flatbuffer into the frozen `Graph` IR, with TFLM's own schema module."""

from __future__ import annotations

from pathlib import Path

from mncompile.errors import ModelError
from mncompile.graph.ir import Graph, Op, Quant, Tensor


def schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def parse_model(data: bytes, source: str = "model"):
    """The flatbuffer object tree (`ModelT`); raises ModelError on anything malformed."""
    s = schema()
    try:
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("missing the TFL3 file identifier")
        model = s.ModelT.InitFromPackedBuf(data, 0)
        if not model.subgraphs:
            raise ValueError("no subgraphs")
    except Exception as exc:  # flatbuffers raises IndexError/struct.error on truncation
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot read {source} as a .tflite flatbuffer: {detail}",
                         hint="check the file is complete and was written by a TFLite converter") from None
    return model


def op_kind(model, op) -> str:
    s = schema()
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == s.BuiltinOperator.CUSTOM:
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        return f"CUSTOM:{custom}"
    return _names(s.BuiltinOperator).get(builtin, f"BUILTIN_{builtin}")


def _options(op) -> tuple[tuple[str, object], ...]:
    opts = op.builtinOptions
    if opts is None:
        return ()
    items = []
    for key, value in sorted(vars(opts).items()):
        if isinstance(value, (bool, int, float, str)):
            items.append((key, value))
    return tuple(items)


def _quant(q) -> Quant | None:
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    zps = tuple(int(z) for z in q.zeroPoint) if q.zeroPoint is not None else (0,) * len(q.scale)
    return Quant(tuple(float(x) for x in q.scale), zps, int(q.quantizedDimension))


def graph_from_model(model) -> Graph:
    s = schema()
    types = _names(s.TensorType)
    sub = model.subgraphs[0]
    tensors = []
    for i, t in enumerate(sub.tensors):
        buf = model.buffers[t.buffer] if 0 <= t.buffer < len(model.buffers) else None
        constant = buf is not None and ((buf.data is not None and len(buf.data) > 0)
                                        or (getattr(buf, "size", 0) or 0) > 0)
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or f"tensor_{i}")
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else None
        tensors.append(Tensor(i, name, shape, sig, types.get(t.type, str(t.type)), _quant(t.quantization),
                              int(t.buffer), constant))
    ops = tuple(Op(k, op_kind(model, op), tuple(int(i) for i in op.inputs),
                   tuple(int(i) for i in op.outputs), _options(op))
                for k, op in enumerate(sub.operators or ()))
    return Graph(tuple(tensors), ops, tuple(int(i) for i in sub.inputs), tuple(int(i) for i in sub.outputs))


def read_graph(path_or_bytes: str | Path | bytes, source: str | None = None) -> Graph:
    if isinstance(path_or_bytes, bytes):
        return graph_from_model(parse_model(path_or_bytes, source or "model"))
    path = Path(path_or_bytes)
    return graph_from_model(parse_model(path.read_bytes(), source or str(path)))
