"""Per-layer quantization error: SQNR between float and dequantized int8 activations.

For every operator of the int8 graph, two numbers, both in dB
(SQNR = 10 log10(sum f^2 / sum (f - deq(q))^2) over all samples and elements):

- **end to end**: the int8 model runs on the TFLM host interpreter from the
  quantized image; each op's output is compared with the float model's. Error
  accumulates, so this falls along the network.
- **alone**: the op runs by itself (a one-op model cut from the int8 graph, on
  TFLM) on its *float* inputs quantized with its int8 input parameters. This is
  the error the op itself adds; layers are ranked by it, worst first, because it
  points at the layer that loses accuracy rather than at everything after it.

Float activations come from the float model converted by the same converter
(LiteRT, all tensors preserved). Float and int8 operators are mapped **by
position** when the two graphs have the same operator sequence once QUANTIZE
and DEQUANTIZE are left out (true for models mncompile quantizes: one
converter, one set of fusions), otherwise **by name** (the Keras layer name the
converter records in the output tensor's name); unmapped ops are listed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from mncompile.graph.ir import Graph, Op, Quant
from mncompile.graph.verified import VerifiedModel, verify_model
from mncompile.preprocess.contract import quantize_levels
from mncompile.progress import NullReporter, Reporter
from mncompile.validate.emulate import Job, run_litert, run_tflm

BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


@dataclass(frozen=True)
class LayerError:
    op: int  # index in the int8 graph
    name: str
    kind: str
    float_op: int
    scale: float  # int8 output scale
    sqnr_end_to_end: float  # dB; inf when equal
    sqnr_alone: float | None  # dB; None when the op's inputs have no float counterpart

    def to_json(self) -> dict:
        def db(v):
            return None if v is None or not math.isfinite(v) else round(v, 3)
        return {"op": self.op, "layer": self.name, "kind": self.kind, "float_op": self.float_op,
                "scale": self.scale, "sqnr_end_to_end_db": db(self.sqnr_end_to_end),
                "sqnr_alone_db": db(self.sqnr_alone),
                "exact": self.sqnr_end_to_end == math.inf}


@dataclass(frozen=True)
class LayerReport:
    mapped_by: str  # position or name
    samples: int
    layers: tuple[LayerError, ...]  # ranked worst first (alone, then end to end)
    unmapped: tuple[str, ...]  # int8 ops with no float counterpart

    def to_json(self) -> dict:
        return {"mapped_by": self.mapped_by, "samples": self.samples,
                "ranking": "by SQNR alone, worst first",
                "layers": [e.to_json() for e in self.layers], "unmapped": list(self.unmapped)}


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    f = reference.astype(np.float64).ravel()
    noise = float(np.sum((f - approx.astype(np.float64).ravel()) ** 2))
    signal = float(np.sum(f ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def dequantize(q: np.ndarray, quant: Quant) -> np.ndarray:
    return (q.astype(np.float64) - quant.zero_point) * quant.scale


def quantize_array(x: np.ndarray, quant: Quant, dtype: str = "int8") -> np.ndarray:
    """TFLite QUANTIZE semantics (`mncompile.preprocess.contract.quantize_levels`)."""
    return quantize_levels(x, quant.scale, quant.zero_point, dtype)


def _core_ops(graph: Graph) -> list[Op]:
    return [op for op in graph.ops if op.kind not in BOUNDARY_OPS]


def map_ops(float_graph: Graph, int8_graph: Graph) -> tuple[str, dict[int, int]]:
    """int8 op index -> float op index, and how they were matched."""
    fops, qops = _core_ops(float_graph), _core_ops(int8_graph)
    if [o.kind for o in fops] == [o.kind for o in qops]:
        return "position", {q.index: f.index for f, q in zip(fops, qops, strict=True)}
    by_name: dict[str, Op] = {}
    for op in fops:
        by_name.setdefault(float_graph.layer_name(op.outputs[0]), op)
    mapping = {}
    for op in qops:
        f = by_name.get(int8_graph.layer_name(op.outputs[0]))
        if f is not None and f.kind == op.kind:
            mapping[op.index] = f.index
    return "name", mapping


def single_op_model(model, op_index: int) -> bytes:
    """A one-operator .tflite cut from `model` (a `ModelT`): the op, its tensors and their
    data; its run-time inputs become the model inputs."""
    import flatbuffers

    from mncompile.graph.reader import schema

    s = schema()
    sub = model.subgraphs[0]
    op = sub.operators[op_index]
    used = sorted({i for i in list(op.inputs) + list(op.outputs) if i >= 0})
    remap = {old: new for new, old in enumerate(used)}
    new = s.ModelT()
    new.version = model.version
    new.description = b"mncompile single-op model"
    new.operatorCodes = [model.operatorCodes[op.opcodeIndex]]
    new.buffers = [s.BufferT()]
    tensors = []
    for old in used:
        t = copy.copy(sub.tensors[old])
        data = model.buffers[t.buffer].data if 0 <= t.buffer < len(model.buffers) else None
        if data is not None and len(data) > 0:
            b = s.BufferT()
            b.data = data
            new.buffers.append(b)
            t.buffer = len(new.buffers) - 1
        else:
            t.buffer = 0
        tensors.append(t)
    g = s.SubGraphT()
    g.tensors = tensors
    newop = copy.copy(op)
    newop.opcodeIndex = 0
    newop.inputs = [remap[i] if i >= 0 else -1 for i in op.inputs]
    newop.outputs = [remap[i] for i in op.outputs]
    g.operators = [newop]
    g.inputs = [remap[i] for i in op.inputs
                if i >= 0 and new.buffers[tensors[remap[i]].buffer].data is None]
    g.outputs = list(newop.outputs)
    g.name = b"op"
    new.subgraphs = [g]
    builder = flatbuffers.Builder(1024)
    builder.Finish(new.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def layer_errors(float_tflite: VerifiedModel, int8_tflite: VerifiedModel, x_float: np.ndarray,
                 reporter: Reporter = NullReporter()) -> LayerReport:
    """Per-layer SQNR of `int8_tflite` against `float_tflite` on float inputs `x_float`."""
    fg, qg = float_tflite.graph, int8_tflite.graph
    mapped_by, mapping = map_ops(fg, qg)
    unmapped = tuple(f"{op.index}:{qg.layer_name(op.outputs[0])}" for op in _core_ops(qg)
                     if op.index not in mapping)
    # float activations of every mapped op
    float_out = {q: fg.ops[f].outputs[0] for q, f in mapping.items()}
    ftensors = tuple(sorted(set(float_out.values())))
    f_in = x_float.astype(np.float32)
    fres = run_litert([Job(float_tflite, (f_in,), ftensors)], reporter, "float activations (LiteRT)")[0]
    float_value = {t: fres[f"tensor_{t}"] for t in ftensors}
    # float value of an int8 tensor, when it has one
    q_to_f: dict[int, np.ndarray] = {qg.inputs[0]: f_in}
    for q, f in mapping.items():
        q_to_f[qg.ops[q].outputs[0]] = float_value[fg.ops[f].outputs[0]]
    # end to end on TFLM
    qin = qg.tensors[qg.inputs[0]]
    x_q = quantize_array(f_in, qin.quant, qin.dtype.lower())
    qtensors = tuple(sorted(qg.ops[q].outputs[0] for q in mapping))
    qres = run_tflm([Job(int8_tflite, (x_q,), qtensors)], reporter, "int8 activations (TFLM)")[0]
    # each op alone on TFLM
    model = int8_tflite.tree()
    alone: dict[int, float] = {}
    jobs, ops = [], []
    for q in sorted(mapping):
        op = qg.ops[q]
        acts = qg.activation_inputs(op)
        if not all(t in q_to_f and qg.tensors[t].quant for t in acts):
            continue
        one = verify_model(single_op_model(model, q), f"op{q}.tflite",
                           source=f"operator {q} of {int8_tflite.source} alone")
        inputs = tuple(quantize_array(q_to_f[t], qg.tensors[t].quant, qg.tensors[t].dtype.lower())
                       for t in acts)
        jobs.append(Job(one, inputs))
        ops.append(q)
    results = run_tflm(jobs, reporter, "each layer alone (TFLM)")
    for q, res in zip(ops, results, strict=True):
        out = qg.tensors[qg.ops[q].outputs[0]]
        alone[q] = sqnr_db(q_to_f[out.index], dequantize(res["output_0"], out.quant))
    errors = []
    for q, f in mapping.items():
        op, out = qg.ops[q], qg.tensors[qg.ops[q].outputs[0]]
        e2e = sqnr_db(float_value[fg.ops[f].outputs[0]], dequantize(qres[f"tensor_{out.index}"], out.quant))
        name = qg.layer_name(out.index)
        if "/" not in out.name:  # graph outputs get names like "Identity": say what the op is
            name = op.kind.lower()
        errors.append(LayerError(q, name, op.kind, f, out.quant.scale, e2e, alone.get(q)))

    def key(e: LayerError):
        a = e.sqnr_alone if e.sqnr_alone is not None else math.inf
        return (a, e.sqnr_end_to_end, e.op)
    return LayerReport(mapped_by, len(x_float), tuple(sorted(errors, key=key)), unmapped)
