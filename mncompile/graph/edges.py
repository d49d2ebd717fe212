"""Float I/O edges: an int8 model converted with float32 input and/or output.

The TFLite converter's default (``inference_input_type``/``inference_output_type`` left float32)
puts a QUANTIZE float32 -> int8 op on the graph input and a DEQUANTIZE int8 -> float32 op before
the graph output; the model is full-integer inside. The loader calls such a model int8, the AOT
backend compiles the two ops as its edges, and the TFLM project feeds and checks float32.
"""

from __future__ import annotations

from dataclasses import dataclass

from mncompile.graph.ir import Graph, Op, Quant


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
    """True for an int8 model converted with float input and/or output (`float_edges`): float32
    by its input type, full-integer inside; both backends compile it."""
    return float_edges(graph).any


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


def image_input(graph: Graph) -> bool:
    """The model takes one square image (1, S, S, 1 or 3): camera frames, golden images and pixel
    preprocessing apply. Other inputs (a (1, 49, 10, 1) MFCC map, a flat tensor) are tensors."""
    shape = tuple(graph.tensors[graph.inputs[0]].shape)
    return len(shape) == 4 and shape[1] == shape[2] and shape[3] in (1, 3)
