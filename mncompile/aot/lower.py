"""Lowering: a verified int8 graph becomes one `KernelCall` record per node.

The walker asks each operator's registry entry (`mncompile.graph.ops`) to lower it; this module
knows only what is about the whole graph: which graph features the AOT backend compiles (one
int8 input and output, or float32 through QUANTIZE/DEQUANTIZE at the edges: `float_edges`),
and that every activation is int8.
"""

from __future__ import annotations

from dataclasses import dataclass

from mncompile.errors import UnsupportedOpError
from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import REGISTRY
from mncompile.graph.ops.lowering import FALLBACK_HINT, unsupported
from mncompile.graph.ops.registry import KernelCall


def supported_ops() -> tuple[str, ...]:
    """The operators the AOT backend compiles (QUANTIZE/DEQUANTIZE: at the float I/O edges only)."""
    return tuple(sorted(k for k, spec in REGISTRY.items() if spec.lower is not None))


@dataclass(frozen=True)
class FloatEdges:
    """The float I/O edges of an int8 model converted with float input and/or output: the
    TFLite converter's default (``inference_input_type``/``inference_output_type`` left float32)
    puts a QUANTIZE float32 -> int8 op on the graph input and a DEQUANTIZE int8 -> float32 op
    before the graph output. None where the edge is int8 (or not of that form)."""

    input: int | None = None  # the FLOAT32 graph input tensor
    quantize: int | None = None  # the QUANTIZE op that reads it (its only reader)
    output: int | None = None  # the FLOAT32 graph output tensor
    dequantize: int | None = None  # the DEQUANTIZE op that writes it

    @property
    def any(self) -> bool:
        return self.quantize is not None or self.dequantize is not None

    @property
    def tensors(self) -> frozenset[int]:
        """The float tensors the caller owns (not in the arena)."""
        return frozenset(t for t in (self.input, self.output) if t is not None)


def readers(graph: Graph, tensor: int) -> list[Op]:
    return [op for op in graph.ops if tensor in graph.activation_inputs(op)]


def writer(graph: Graph, tensor: int) -> Op | None:
    return next((op for op in graph.ops if tensor in op.outputs), None)


def float_edges(graph: Graph) -> FloatEdges:
    """Which of the graph's (single) input and output are float I/O edges (`FloatEdges`)."""
    found = {}
    if len(graph.inputs) == 1:
        tin = graph.tensors[graph.inputs[0]]
        rs = readers(graph, tin.index)
        if (tin.dtype == "FLOAT32" and tin.index not in graph.outputs and len(rs) == 1
                and rs[0].kind == "QUANTIZE" and len(rs[0].outputs) == 1
                and graph.tensors[rs[0].outputs[0]].dtype == "INT8"):
            found.update(input=tin.index, quantize=rs[0].index)
    if len(graph.outputs) == 1:
        tout = graph.tensors[graph.outputs[0]]
        op = writer(graph, tout.index)
        if (tout.dtype == "FLOAT32" and op is not None and op.kind == "DEQUANTIZE"
                and len(graph.activation_inputs(op)) == 1
                and graph.tensors[graph.activation_inputs(op)[0]].dtype == "INT8"):
            found.update(output=tout.index, dequantize=op.index)
    return FloatEdges(**found)


def has_float_io_edges(graph: Graph) -> bool:
    """True for an int8 model converted with float input and/or output (`float_edges`): a
    "tflite-float" model by its input type that the AOT backend still compiles."""
    return float_edges(graph).any


def check_supported(graph: Graph) -> None:
    """Raise UnsupportedOpError for the first op (or graph feature) the AOT backend cannot compile."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedOpError(f"the AOT backend compiles graphs with one input and one output, not "
                                 f"{len(graph.inputs)} and {len(graph.outputs)}", hint=FALLBACK_HINT)
    edges = float_edges(graph)
    for role, index, edge in (("input", graph.inputs[0], edges.input), ("output", graph.outputs[0], edges.output)):
        t = graph.tensors[index]
        if t.dtype == "INT8" or edge is not None:
            continue
        # A float edge of another form: name the op that reads (writes) it.
        op = (readers(graph, index) or [None])[0] if role == "input" else writer(graph, index)
        if t.dtype == "FLOAT32" and op is not None:
            raise unsupported(op, f"the graph {role} (tensor {index}) is FLOAT32; the AOT backend takes a float32 "
                                  f"input only into one QUANTIZE op and makes a float32 output only with a "
                                  f"DEQUANTIZE op")
        raise UnsupportedOpError(f"the graph {role} is {t.dtype}; the AOT backend needs int8 input and output "
                                 "(or float32 through QUANTIZE/DEQUANTIZE at the edges)", hint=FALLBACK_HINT)
    for op in graph.ops:
        spec = REGISTRY.get(op.kind)
        if spec is None or spec.lower is None:
            raise unsupported(op)
        activations = [graph.tensors[i] for i in (*graph.activation_inputs(op), *op.outputs)
                       if i not in edges.tensors]
        odd = [t for t in activations if t.dtype != "INT8"]
        if odd:
            why = (f"tensor {odd[0].index} is {odd[0].dtype}; the AOT kernels take int8 activations"
                   + ("; float32 only at the graph's edges (an input read by QUANTIZE, an output made by DEQUANTIZE)"
                      if odd[0].dtype == "FLOAT32" else ""))
            raise unsupported(op, why)
        if op.kind == "QUANTIZE" and op.index != edges.quantize:
            raise unsupported(op, "int8 -> int8 QUANTIZE (requantization); the AOT backend compiles QUANTIZE "
                                  "only as float32 -> int8 on the graph input")
        if op.kind == "DEQUANTIZE" and op.index != edges.dequantize:
            raise unsupported(op, "the AOT backend compiles DEQUANTIZE only as int8 -> float32 making the graph "
                                  "output")


def lower_graph(graph: Graph) -> tuple[KernelCall, ...]:
    """Every node as a kernel call (check_supported first)."""
    from mncompile.errors import QuantizationError
    from mncompile.graph.ops import quantmath as qm

    calls = []
    for op in graph.ops:
        try:
            calls.append(REGISTRY[op.kind].lower(graph, op))
        except qm.QuantMathError as exc:
            raise QuantizationError(f"operator {op.index} ({op.kind}): {exc.message}",
                                    hint="TFLM's Prepare rejects this parameter too: check the model's scales "
                                         "(`mncompile quantize` on the float model makes valid ones)") from None
    return tuple(calls)


def inplace_candidates(graph: Graph):
    """The planner's `inplace_ok`: the scratch bytes an op needs to run over its dying input."""
    def scratch(op: Op) -> int | None:
        spec = REGISTRY.get(op.kind)
        return spec.inplace(graph, op) if spec is not None and spec.inplace is not None else None
    return scratch
