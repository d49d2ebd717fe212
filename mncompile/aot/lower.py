"""Lowering: a verified int8 graph becomes one `KernelCall` record per node.

The walker asks each operator's registry entry (`mncompile.graph.ops`) to lower it; this module
knows only what is about the whole graph: which graph features the AOT backend compiles (one
int8 input and output, or float32 through QUANTIZE/DEQUANTIZE at the edges: `float_edges`),
and that every activation is int8.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mncompile.errors import UnsupportedOpError
from mncompile.graph.edges import FloatEdges, float_edges, has_float_io_edges, readers, writer  # noqa: F401
from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops import REGISTRY
from mncompile.graph.ops.lowering import FALLBACK_HINT, unsupported
from mncompile.graph.ops.registry import KernelCall
from mncompile.graph.ops.shape import PadFold, pad_fold


def supported_ops() -> tuple[str, ...]:
    """The operators the AOT backend compiles (QUANTIZE/DEQUANTIZE: at the float I/O edges only)."""
    return tuple(sorted(k for k, spec in REGISTRY.items() if spec.lower is not None))


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


# ---------------------------------------------------------------------------------------------
# PAD folded into the convolution that reads it

FOLD_INTO = ("CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass(frozen=True)
class Folds:
    """The PAD/PADV2 nodes folded into the convolution that follows them (`find_folds`): each such
    PAD runs no kernel and its output tensor is never made; the convolution reads the PAD's input
    with the folded padding added to its own (`mncompile.graph.ops.conv`), and the PAD's input
    lives until the convolution (`mncompile.aot.memory`)."""

    pads: tuple[PadFold, ...] = ()

    def of_pad(self, node: int) -> PadFold | None:
        return next((f for f in self.pads if f.pad == node), None)

    def of_conv(self, node: int) -> PadFold | None:
        return next((f for f in self.pads if f.conv == node), None)

    @property
    def padded(self) -> frozenset[int]:
        """The PADs' output tensors, which are never made."""
        return frozenset(f.padded for f in self.pads)

    def input_of(self, op: Op) -> int:
        """The tensor `op` reads as its input 0: a folded PAD's input, else its own."""
        fold = self.of_conv(op.index)
        return fold.source if fold is not None else op.inputs[0]

    def to_json(self) -> list[dict]:
        return [{"pad": f.pad, "into": f.conv, "tensor": f.padded, "reads": f.source,
                 "top": f.top, "left": f.left, "bottom": f.bottom, "right": f.right} for f in self.pads]


def find_folds(graph: Graph) -> Folds:
    """Every PAD/PADV2 that folds into the CONV_2D or DEPTHWISE_CONV_2D reading it: the PAD alone
    must fold (`mncompile.graph.ops.shape.pad_fold`: H/W padding with the zero point, the same
    quantization in and out), its output must not be a graph output and must be read by that one
    convolution only, as its input 0. Folding always pays (one tensor and one copy fewer), so every
    PAD that can fold does."""
    folds = []
    for op in graph.ops:
        fold = pad_fold(graph, op)
        if fold is None or fold.padded in graph.outputs:
            continue
        rs = [r for r in graph.ops if fold.padded in r.inputs]
        if len(rs) != 1 or rs[0].kind not in FOLD_INTO or list(rs[0].inputs).count(fold.padded) != 1 \
                or rs[0].inputs[0] != fold.padded:
            continue
        folds.append(dataclasses.replace(fold, conv=rs[0].index))
    return Folds(tuple(folds))


def lower_graph(graph: Graph, folds: Folds = Folds()) -> tuple[KernelCall, ...]:
    """Every node as a kernel call (check_supported first); a folded PAD as a call with no kernel
    (nothing runs), the convolution it folds into reading its input (`Folds`)."""
    from mncompile.errors import QuantizationError
    from mncompile.graph.ops import quantmath as qm

    calls = []
    for op in graph.ops:
        try:
            fold = folds.of_pad(op.index)
            if fold is not None:
                shapes = f" {list(graph.tensors[fold.source].shape)} -> {list(graph.tensors[fold.padded].shape)}"
                calls.append(KernelCall(op.index, op.kind, None, comment=f"{shapes}: folded into node {fold.conv} "
                                        f"({graph.ops[fold.conv].kind}), which reads its input"))
            elif (fold := folds.of_conv(op.index)) is not None:
                calls.append(REGISTRY[op.kind].lower(graph, op, fold=fold))
            else:
                calls.append(REGISTRY[op.kind].lower(graph, op))
        except qm.QuantMathError as exc:
            raise QuantizationError(f"operator {op.index} ({op.kind}): {exc.message}",
                                    hint="TFLM's Prepare rejects this parameter too: check the model's scales "
                                         "(`mncompile quantize` on the float model makes valid ones)") from None
    return tuple(calls)


def inplace_candidates(graph: Graph, folds: Folds = Folds()):
    """The planner's `inplace_ok`: the scratch bytes an op needs to run over its dying input (a
    folded PAD's input, for the convolution it folds into)."""
    def scratch(op: Op) -> int | None:
        spec = REGISTRY.get(op.kind)
        if spec is None or spec.inplace is None:
            return None
        fold = folds.of_conv(op.index)
        return spec.inplace(graph, op, fold=fold) if fold is not None else spec.inplace(graph, op)
    return scratch
