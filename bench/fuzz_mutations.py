"""The mutation catalogue of bench/fuzz.py (byte-level and schema-level edits of a .tflite), and the
schema-level dataflow check of its oracle.

`mutate(source, rng)` returns ``(mutant bytes, kind, description)``; everything it draws comes from
``rng`` (a `random.Random`), so a case is fully determined by its seed. Byte-level kinds edit the
file as bytes; three quarters of their positions fall outside the buffers' data (the flatbuffer's
tables, vectors and offsets), where an edit changes the graph rather than a weight. Schema-level
kinds parse the model with TFLM's generated object API (`ModelT`), edit one field and repack it
with `flatbuffers.Builder` (file identifier TFL3); one schema case in five stacks a second edit.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

MAGIC_BYTES = (0x00, 0xFF, 0x7F, 0x80)
BAD_DIMS = (0, -1, 1, 2**31 - 1)
BAD_SCALES = (0.0, -1.0, math.nan, math.inf, -math.inf, 1e-30, 1e30)
BAD_ZERO_POINTS = (128, -129, 255, 1000, -(2**31), 2**40)
BAD_TYPES = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 17, 42, 127, -1)
OPTION_VALUES = {  # builtin options fields and the values tried for them
    "strideW": (0, -1, 100), "strideH": (0, -1, 100), "padding": (9, 2, -1),
    "fusedActivationFunction": (9, 4, 5, -1), "depthMultiplier": (0, -1, 2, 3),
    "dilationWFactor": (0, -1, 4), "dilationHFactor": (0, -1, 4), "filterWidth": (0, -1, 100),
    "filterHeight": (0, -1, 100), "beta": (0.0, -1.0, math.nan, math.inf), "keepDims": (True, False),
    "keepNumDims": (True,), "weightsFormat": (1, 9), "quantizedBiasType": (2, 9),
    "asymmetricQuantizeInputs": (True,), "newShape": ([], [-1, -1], [0], [2**31 - 1]),
}


class Source:
    """One model to mutate: its bytes and where its buffers' data lie (byte-level edits avoid them)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.data = self.path.read_bytes()
        model = s.Model.GetRootAs(self.data, 0)
        spans, start = [], 0
        for i in range(model.BuffersLength()):
            tab = model.Buffers(i)._tab
            where = tab.Offset(4)
            if where and model.Buffers(i).DataLength() > 0:
                begin = tab.Vector(where)
                spans.append((begin, begin + model.Buffers(i).DataLength()))
        self.structure = []  # [start, end) ranges of the file outside every buffer's data
        for begin, end in sorted(spans):
            if begin > start:
                self.structure.append((start, begin))
            start = max(start, end)
        if start < len(self.data):
            self.structure.append((start, len(self.data)))

    def position(self, rng) -> int:
        if self.structure and rng.random() < 0.75:
            begin, end = rng.choices(self.structure, weights=[e - b for b, e in self.structure])[0]
            return rng.randrange(begin, end)
        return rng.randrange(len(self.data))


# ---- byte level ---------------------------------------------------------------------------------

def bit_flips(src: Source, rng):
    data = bytearray(src.data)
    flips = [(src.position(rng), rng.randrange(8)) for _ in range(rng.randint(1, 8))]
    for pos, bit in flips:
        data[pos] ^= 1 << bit
    return bytes(data), "bits " + ", ".join(f"{p}.{b}" for p, b in flips)


def magic_bytes(src: Source, rng):
    data = bytearray(src.data)
    edits = [(src.position(rng), rng.choice(MAGIC_BYTES)) for _ in range(rng.randint(1, 4))]
    for pos, value in edits:
        data[pos] = value
    return bytes(data), "bytes " + ", ".join(f"[{p}]=0x{v:02x}" for p, v in edits)


def truncate(src: Source, rng):
    n = rng.randrange(len(src.data))
    return src.data[:n], f"truncated to {n} of {len(src.data)} bytes"


def duplicate_range(src: Source, rng):
    a = src.position(rng)
    b = min(len(src.data), a + rng.randint(1, 64))
    return src.data[:b] + src.data[a:b] + src.data[b:], f"bytes [{a}, {b}) duplicated"


def delete_range(src: Source, rng):
    a = src.position(rng)
    b = min(len(src.data), a + rng.randint(1, 64))
    return src.data[:a] + src.data[b:], f"bytes [{a}, {b}) deleted"


# ---- schema level: each edits a ModelT in place and describes the edit ---------------------------

def _tensor(m, rng, quantized=False):
    tensors = m.subgraphs[0].tensors
    pool = [i for i, t in enumerate(tensors) if t.quantization is not None and t.quantization.scale is not None
            and len(t.quantization.scale)] if quantized else range(len(tensors))
    i = rng.choice(list(pool) or range(len(tensors)))
    return i, tensors[i]


def _other_tensor(m, rng, current):
    n = len(m.subgraphs[0].tensors)
    return rng.choice([i for i in range(n) if i != current] or [0])


def _bad_index(m, rng, current, allow_negative=True):
    n = len(m.subgraphs[0].tensors)
    choices = [n, n + 7, 2**31 - 1] + ([-1] if allow_negative else []) + [_other_tensor(m, rng, current)]
    return rng.choice(choices)


def tensor_shape(m, rng):
    i, t = _tensor(m, rng)
    shape = [int(d) for d in (t.shape if t.shape is not None else [])]
    if shape and rng.random() < 0.7:
        d = rng.randrange(len(shape))
        value = rng.choice([v for v in BAD_DIMS if v != shape[d]])
        shape[d] = value
        what = f"dim {d} = {value}"
    else:
        rank = rng.choice([r for r in range(7) if r != len(shape)])
        shape = (shape + [1] * rank)[:rank]
        what = f"rank {rank} {shape}"
    t.shape = shape
    return f"tensor {i} shape: {what}"


def tensor_type(m, rng):
    i, t = _tensor(m, rng)
    t.type = rng.choice([v for v in BAD_TYPES if v != t.type])
    return f"tensor {i} type = {t.type}"


def tensor_buffer(m, rng):
    i, t = _tensor(m, rng)
    others = [u.buffer for u in m.subgraphs[0].tensors if u.buffer != t.buffer]
    t.buffer = rng.choice([len(m.buffers), 2**32 - 1, 0] + others[:1] + [rng.choice(others or [0])])
    return f"tensor {i} buffer = {t.buffer}"


def op_opcode_index(m, rng):
    k = rng.randrange(len(m.subgraphs[0].operators))
    op, n = m.subgraphs[0].operators[k], len(m.operatorCodes)
    op.opcodeIndex = rng.choice([n, 2**32 - 1] + [j for j in range(n) if j != op.opcodeIndex])
    return f"op {k} opcode_index = {op.opcodeIndex}"


def op_io_index(m, rng):
    k = rng.randrange(len(m.subgraphs[0].operators))
    op, side = m.subgraphs[0].operators[k], rng.choice(("inputs", "outputs"))
    values = [int(v) for v in getattr(op, side)]
    roll = rng.random()
    if roll < 0.15 or not values:
        values.append(rng.choice([-1, 0, len(m.subgraphs[0].tensors)]))
        what = f"appended {values[-1]}"
    elif roll < 0.3:
        values.pop(rng.randrange(len(values)))
        what = "one removed"
    else:
        j = rng.randrange(len(values))
        values[j] = _bad_index(m, rng, values[j])
        what = f"[{j}] = {values[j]}"
    setattr(op, side, values)
    return f"op {k} {side} {what}"


def op_order(m, rng):
    ops = m.subgraphs[0].operators
    roll, k = rng.random(), rng.randrange(len(ops))
    if roll < 0.3 and len(ops) > 1:
        j = rng.choice([j for j in range(len(ops)) if j != k])
        ops[k], ops[j] = ops[j], ops[k]
        return f"ops {k} and {j} swapped"
    if roll < 0.6:
        del ops[k]
        return f"op {k} dropped"
    if roll < 0.75:
        m.subgraphs[0].operators = []
        return "zero operators"
    j = rng.randrange(len(ops) + 1)
    ops.insert(j, copy.deepcopy(ops[k]))
    return f"op {k} duplicated at {j}"


def graph_io(m, rng):
    sg, side = m.subgraphs[0], rng.choice(("inputs", "outputs"))
    values = [int(v) for v in getattr(sg, side)]
    roll = rng.random()
    if roll < 0.2 or not values:
        values = [] if values else [rng.choice((0, -1))]
    elif roll < 0.35:
        values.append(rng.choice(values + [0]))
    else:
        j = rng.randrange(len(values))
        values[j] = _bad_index(m, rng, values[j])
    setattr(sg, side, values)
    return f"graph {side} = {values}"


def scale(m, rng):
    i, t = _tensor(m, rng, quantized=True)
    q = t.quantization
    if q is None or q.scale is None or not len(q.scale):
        return f"tensor {i} has no scale: unchanged"
    values = [float(v) for v in q.scale]
    j, value = rng.randrange(len(values)), rng.choice(BAD_SCALES)
    values[j] = value
    q.scale = values
    return f"tensor {i} scale[{j}] = {value}"


def zero_point(m, rng):
    i, t = _tensor(m, rng, quantized=True)
    q = t.quantization
    if q is None or q.zeroPoint is None or not len(q.zeroPoint):
        return f"tensor {i} has no zero point: unchanged"
    values = [int(v) for v in q.zeroPoint]
    j, value = rng.randrange(len(values)), rng.choice(BAD_ZERO_POINTS)
    values[j] = value
    q.zeroPoint = values
    return f"tensor {i} zero_point[{j}] = {value}"


def quantized_dimension(m, rng):
    i, t = _tensor(m, rng, quantized=True)
    if t.quantization is None:
        return f"tensor {i} has no quantization: unchanged"
    t.quantization.quantizedDimension = rng.choice([v for v in (7, -1, 1, 2, 3, 100)
                                                    if v != t.quantization.quantizedDimension])
    return f"tensor {i} quantized_dimension = {t.quantization.quantizedDimension}"


def scale_count(m, rng):
    i, t = _tensor(m, rng, quantized=True)
    q = t.quantization
    if q is None or q.scale is None or not len(q.scale):
        return f"tensor {i} has no scale: unchanged"
    scales, zps = [float(v) for v in q.scale], [int(v) for v in (q.zeroPoint if q.zeroPoint is not None else [])]
    roll = rng.random()
    if roll < 0.3 and len(scales) > 1:
        scales, zps, what = scales[:-1], zps[:-1], "one channel fewer"
    elif roll < 0.55:
        scales, zps, what = scales + scales[:1], zps + zps[:1], "one channel more"
    elif roll < 0.75:
        zps, what = zps + [0], "one zero point more than scales"
    elif roll < 0.9:
        scales, zps, what = [], [], "no scales"
    else:
        scales, zps, what = scales * 2, zps * 2, "twice the channels"
    q.scale, q.zeroPoint = scales, zps
    return f"tensor {i} scales: {what} ({len(scales)} scales, {len(zps)} zero points)"


def version(m, rng):
    m.version = rng.choice((4, 0, 2, 1000))
    return f"schema version = {m.version}"


def tensor_name(m, rng):
    i, t = _tensor(m, rng)
    name = bytes(t.name or b"")
    cut = rng.randrange(len(name) + 1)
    t.name = name[:cut] + rng.choice((b"\xff\xfe", b"\xc3\x28", b"\x80", b"\xed\xa0\x80")) + name[cut:]
    return f"tensor {i} name with invalid UTF-8 {t.name!r}"


def builtin_options(m, rng):
    ops = [(k, op) for k, op in enumerate(m.subgraphs[0].operators) if op.builtinOptions is not None]
    if not ops:
        return "no operator has options: unchanged"
    k, op = rng.choice(ops)
    roll = rng.random()
    if roll < 0.1:
        op.builtinOptionsType, op.builtinOptions = 0, None
        return f"op {k} options dropped"
    if roll < 0.2:
        op.builtinOptionsType = rng.choice([v for v in (1, 2, 5, 8, 9, 17, 27, 200) if v != op.builtinOptionsType])
        return f"op {k} options type = {op.builtinOptionsType} (table of another type)"
    fields = [f for f in OPTION_VALUES if hasattr(op.builtinOptions, f)]
    if not fields:
        return f"op {k} options have no field to edit: unchanged"
    field = rng.choice(fields)
    value = rng.choice(OPTION_VALUES[field])
    setattr(op.builtinOptions, field, value)
    return f"op {k} {type(op.builtinOptions).__name__[:-1]}.{field} = {value}"


def buffer_length(m, rng):
    full = [j for j, b in enumerate(m.buffers) if b.data is not None and len(b.data)]
    if not full:
        return "no buffer has data: unchanged"
    j = rng.choice(full)
    data = np.asarray(m.buffers[j].data, dtype=np.uint8)
    roll = rng.random()
    if roll < 0.25:
        data = data[:-1]
    elif roll < 0.5:
        data = data[: len(data) // 2]
    elif roll < 0.6:
        data = data[:0]
    elif roll < 0.8:
        data = np.concatenate([data, np.full(rng.randint(1, 64), 0x5A, np.uint8)])
    else:
        data = np.concatenate([data, data])
    before = len(m.buffers[j].data)
    m.buffers[j].data = data
    return f"buffer {j} data {before} -> {len(data)} bytes"


def opcode_builtin(m, rng):
    j = rng.randrange(len(m.operatorCodes))
    code = m.operatorCodes[j]
    value = rng.choice([rng.randrange(210), 0, 32, 127, 1000, 9, 25, 3, 4])
    code.builtinCode = value
    code.deprecatedBuiltinCode = min(value, 127) if rng.random() < 0.8 else rng.randrange(128)
    if value == 32:
        code.customCode = b"FUZZ_OP"
    return f"operator code {j} builtin = {code.builtinCode} (deprecated {code.deprecatedBuiltinCode})"


def subgraphs(m, rng):
    if rng.random() < 0.5:
        m.subgraphs = []
        return "zero subgraphs"
    m.subgraphs.append(copy.deepcopy(m.subgraphs[0]))
    return "subgraph 0 duplicated as subgraph 1"


BYTE_KINDS = {"bit_flips": bit_flips, "magic_bytes": magic_bytes, "truncate": truncate,
              "duplicate_range": duplicate_range, "delete_range": delete_range}
SCHEMA_KINDS = {"tensor_shape": tensor_shape, "tensor_type": tensor_type, "tensor_buffer": tensor_buffer,
                "op_opcode_index": op_opcode_index, "op_io_index": op_io_index, "op_order": op_order,
                "graph_io": graph_io, "scale": scale, "zero_point": zero_point,
                "quantized_dimension": quantized_dimension, "scale_count": scale_count, "version": version,
                "tensor_name": tensor_name, "builtin_options": builtin_options, "buffer_length": buffer_length,
                "opcode_builtin": opcode_builtin, "subgraphs": subgraphs}
KINDS = (*BYTE_KINDS, *SCHEMA_KINDS)
BYTE_SHARE = 0.3


def pack(m) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def mutate(src: Source, rng) -> tuple[bytes, str, str]:
    """One mutant of `src`: (bytes, kind, description); deterministic in `rng`."""
    if rng.random() < BYTE_SHARE:
        kind = rng.choice(list(BYTE_KINDS))
        data, what = BYTE_KINDS[kind](src, rng)
        return data, kind, what
    m = s.ModelT.InitFromPackedBuf(src.data, 0)
    kinds = [rng.choice(list(SCHEMA_KINDS))]
    if rng.random() < 0.2:
        kinds.append(rng.choice(list(SCHEMA_KINDS)))
    edits = []
    for kind in kinds:
        if not m.subgraphs or (not m.subgraphs[0].operators and kind.startswith("op_")):
            edits.append(f"{kind}: nothing to edit")
            continue
        edits.append(SCHEMA_KINDS[kind](m, rng))
    return pack(m), "+".join(kinds), "; ".join(edits)


# ---- the oracle's dataflow check (bench/fuzz.py runs it with LiteRT and the version check) ----------

def dataflow_problems(m) -> list[str]:
    """An independent dataflow check of a ModelT: at least one operator; every operator input -1, a constant
    (non-empty buffer), a graph input or an earlier operator's output; every graph output written by an
    operator; each tensor written once."""
    if not m.subgraphs:
        return ["no subgraph"]
    sg, problems = m.subgraphs[0], []
    tensors, ops, buffers = sg.tensors or [], sg.operators or [], m.buffers or []
    n = len(tensors)
    if not ops:
        problems.append("no operator")
    const = {i for i, t in enumerate(tensors) if 0 <= t.buffer < len(buffers)
             and buffers[t.buffer].data is not None and len(buffers[t.buffer].data) > 0}
    inputs = [int(i) for i in (sg.inputs if sg.inputs is not None else [])]
    problems += [f"graph input {i} out of range" for i in inputs if not 0 <= i < n]
    available, written = set(inputs) | const, {}
    for k, op in enumerate(ops):
        if not 0 <= op.opcodeIndex < len(m.operatorCodes or []):
            problems.append(f"op {k} opcode index {op.opcodeIndex} out of range")
        for i in (int(i) for i in (op.inputs if op.inputs is not None else [])):
            if i != -1 and i not in available:
                problems.append(f"op {k} input {i} is not -1, a constant, a graph input or an earlier op's output")
        for i in (int(i) for i in (op.outputs if op.outputs is not None else [])):
            if not 0 <= i < n:
                problems.append(f"op {k} output {i} out of range")
            elif i in written or i in const or i in inputs:
                problems.append(f"op {k} writes tensor {i}, already written (by op {written.get(i, 'outside')})")
            written.setdefault(i, k)
            available.add(i)
    problems += [f"graph output {int(i)} is not written by an operator"
                 for i in (sg.outputs if sg.outputs is not None else []) if int(i) not in written]
    return problems
