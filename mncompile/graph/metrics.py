"""Mult-adds and parameters per operator of a `Graph`, counted from tensor shapes.

Same conventions as `mncompile.model.analytic` (one mult-add per weight use;
pooling, add, mean and softmax count 0), so a converted model can be checked
against the analytic table layer by layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mncompile.graph.ir import Graph, Op


@dataclass(frozen=True)
class OpCost:
    op: int
    kind: str
    macs: int
    params: int  # elements of the op's constant inputs (weights, biases)
    constant_bytes: int


def op_cost(graph: Graph, op: Op) -> OpCost:
    constants = [graph.tensors[i] for i in op.inputs if i >= 0 and graph.tensors[i].is_constant]
    weighted = op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    params = sum(math.prod(t.shape) for t in constants) if weighted else 0
    macs = 0
    out = graph.tensors[op.outputs[0]].shape
    if op.kind == "CONV_2D":
        _, kh, kw, cin = graph.tensors[op.inputs[1]].shape
        macs = math.prod(out) * kh * kw * cin
    elif op.kind == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
        macs = math.prod(out) * kh * kw
    elif op.kind == "FULLY_CONNECTED":
        macs = math.prod(graph.tensors[op.inputs[1]].shape) * (math.prod(out) // out[-1])
    return OpCost(op.index, op.kind, macs, params, sum(t.nbytes for t in constants))


def graph_costs(graph: Graph) -> tuple[OpCost, ...]:
    return tuple(op_cost(graph, op) for op in graph.ops)
