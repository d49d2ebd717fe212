"""Checks an int8 graph must pass before mncompile writes it or hands it to TFLM.

Three families, each a list of `Problem`s:

- **structure**: only builtin ops TFLM registers, no SHAPE/STRIDED_SLICE (the
  signature of a dynamic batch), static shapes (a -1 batch in a tensor's shape
  signature is accepted when its concrete shape has batch 1, because TFLM runs
  on the concrete shape), batch 1, int8 input and output,
  every activation int8 with a quantization;
- **kernel constraints**: the conditions under which TFLM kernels accept the
  parameters. Some are `TFLITE_CHECK`s that abort the whole process rather
  than return an error (see `SOFTMAX_ABORT` and `ADD_ABORT`);
- **collapse**: an activation whose int8 grid spans less than
  `COLLAPSE_RANGE`. Trained MobileNets have activation ranges from about 0.1 to
  100 after batch norm; in an untrained one the signal shrinks layer by layer
  until the converter's floor (a range of 2e-6, scale 7.8e-9), where int8 holds
  nothing but noise.

`check_int8` raises `QuantizationError` naming the first problem in execution
order (the root cause: later layers inherit it) and how many followed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mncompile.errors import QuantizationError
from mncompile.graph.edges import float_edges
from mncompile.graph.ir import Graph, Op, Tensor
from mncompile.graph.support import tflm_supports

COLLAPSE_RANGE = 1e-4  # float units spanned by the 256 int8 levels (255 * scale)
FORBIDDEN = {"SHAPE": "computes a shape at run time (a dynamic batch dimension)",
             "STRIDED_SLICE": "slices a run-time shape (a dynamic batch dimension)"}
SOFTMAX_INTEGER_BITS = 5  # TFLM softmax's kScaledDiffIntegerBits
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


@dataclass(frozen=True)
class Problem:
    family: str  # structure, kernel, collapse
    op: int | None  # operator index, None for graph-level problems
    layer: str
    message: str


def _where(graph: Graph, op: Op) -> str:
    return f"layer {graph.layer_name(op.outputs[0])} (op {op.index}, {op.kind})"


def structure_problems(graph: Graph) -> list[Problem]:
    problems: list[Problem] = []
    for op in graph.ops:
        if op.kind in FORBIDDEN:
            problems.append(Problem("structure", op.index, graph.layer_name(op.outputs[0]),
                                    f"{_where(graph, op)} {FORBIDDEN[op.kind]}; TFLM firmware "
                                    "needs static shapes"))
        elif not tflm_supports(op.kind):
            problems.append(Problem("structure", op.index, graph.layer_name(op.outputs[0]),
                                    f"{_where(graph, op)} is not an operator TFLM can run"))
    for t in graph.tensors:
        # A -1 batch in the signature over a concrete batch of 1 is harmless: TFLM runs on the
        # concrete shape (the MLPerf Tiny reference models carry one). Any other -1 is not.
        batch_only = (t.shape_signature is not None and t.shape and t.shape[0] == 1
                      and all(d >= 0 for d in t.shape_signature[1:]))
        if t.is_dynamic and not batch_only:
            problems.append(Problem("structure", None, t.name,
                                    f"tensor {t.name} has a dynamic dimension {list(t.shape_signature)}"))
    edges = float_edges(graph).tensors  # float32 I/O through QUANTIZE/DEQUANTIZE: full-integer inside
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for i in indices:
            t = graph.tensors[i]
            if t.dtype != "INT8" and i not in edges:
                problems.append(Problem("structure", None, t.name,
                                        f"model {role} {t.name} is {t.dtype}, not INT8 "
                                        "(full-integer models have int8 input and output)"))
            if t.shape and t.shape[0] != 1:
                problems.append(Problem("structure", None, t.name,
                                        f"model {role} {t.name} has batch {t.shape[0]}, not 1"))
    for op in graph.ops:
        for i in op.outputs:
            t = graph.tensors[i]
            if i in edges:  # the float32 output a DEQUANTIZE edge makes
                continue
            if t.dtype not in ("INT8", "INT32") or t.quant is None:
                problems.append(Problem("structure", op.index, graph.layer_name(i),
                                        f"{_where(graph, op)} produces a {t.dtype}"
                                        f"{'' if t.quant else ' unquantized'} tensor; "
                                        "full-integer models compute in int8"))
    return problems


def _bad_scale(s: float) -> bool:
    return not (math.isfinite(s) and s > 0.0)


def kernel_problems(graph: Graph) -> list[Problem]:
    problems: list[Problem] = []

    def add(op: Op, message: str) -> None:
        problems.append(Problem("kernel", op.index, graph.layer_name(op.outputs[0]),
                                f"{_where(graph, op)}: {message}"))

    for op in graph.ops:
        tensors = [graph.tensors[i] for i in op.inputs + op.outputs if i >= 0]
        if any(t.quant is not None and any(_bad_scale(s) for s in t.quant.scales) for t in tensors):
            add(op, "a quantization scale is zero, negative or not finite")
            continue
        acts = [graph.tensors[i] for i in graph.activation_inputs(op)]
        out = graph.tensors[op.outputs[0]]
        if op.kind in WEIGHTED and len(op.inputs) > 1 and op.inputs[1] >= 0:
            w = graph.tensors[op.inputs[1]]
            if w.dtype != "INT8" or w.quant is None:
                add(op, f"weights are {w.dtype}{'' if w.quant else ' unquantized'}, not int8")
            elif any(z != 0 for z in w.quant.zero_points):
                add(op, "int8 weights must be symmetric (zero point 0) for TFLM kernels")
        if op.kind == "SOFTMAX" and acts and acts[0].dtype == "INT8" and acts[0].quant:
            beta = float(op.option("beta", 1.0))
            s_in = acts[0].quant.scale
            if SOFTMAX_ABORT(beta, s_in):
                add(op, f"its input scale {s_in:.3g} is too small: TFLM requires "
                        f"beta * scale * 2^{31 - SOFTMAX_INTEGER_BITS} > 1 (scale > "
                        f"{2.0 ** -(31 - SOFTMAX_INTEGER_BITS) / beta:.3g}) and aborts the "
                        "process otherwise (TFLITE_CHECK in PreprocessSoftmaxScaling)")
            if out.dtype == "INT8" and out.quant and (out.quant.zero_point != -128
                                                      or out.quant.scale != 1.0 / 256):
                add(op, f"int8 softmax output must have scale 1/256 and zero point -128, has "
                        f"{out.quant.scale:.6g} and {out.quant.zero_point}")
        if op.kind in ("ADD", "SUB") and len(acts) == 2 and all(t.quant for t in acts) and out.quant:
            if ADD_ABORT(acts[0].quant.scale, acts[1].quant.scale, out.quant.scale):
                add(op, f"output scale {out.quant.scale:.3g} is too small for input scales "
                        f"{acts[0].quant.scale:.3g} and {acts[1].quant.scale:.3g}: TFLM requires "
                        "2 * max(input scales) < 2^20 * output scale and aborts otherwise")
        for t in acts + [out]:
            if t.quant and t.dtype == "INT8" and not all(-128 <= z <= 127 for z in t.quant.zero_points):
                add(op, f"tensor {t.name} has a zero point outside int8")
    return problems


def SOFTMAX_ABORT(beta: float, input_scale: float) -> bool:  # noqa: N802 - a named condition
    """True when TFLM's int8 softmax Prepare would abort: the real multiplier
    beta * scale * 2^(31 - 5) must exceed 1 (capped at 2^31 - 1)."""
    multiplier = min(beta * input_scale * float(1 << (31 - SOFTMAX_INTEGER_BITS)), float((1 << 31) - 1))
    return not multiplier > 1.0


def ADD_ABORT(scale1: float, scale2: float, out_scale: float) -> bool:  # noqa: N802
    """True when TFLM's int8 ADD Prepare would abort: the output multiplier
    2 * max(s1, s2) / (2^20 * s_out) must be in (0, 1)."""
    multiplier = 2.0 * max(scale1, scale2) / (float(1 << 20) * out_scale)
    return not 0.0 < multiplier < 1.0


def collapse_problems(graph: Graph) -> list[Problem]:
    problems: list[Problem] = []
    for op in graph.ops:
        for i in op.outputs:
            t: Tensor = graph.tensors[i]
            if t.dtype == "INT8" and t.quant and not t.quant.per_channel:
                span = 255.0 * t.quant.scale
                if span < COLLAPSE_RANGE:
                    problems.append(Problem(
                        "collapse", op.index, graph.layer_name(i),
                        f"{_where(graph, op)} collapsed: its int8 output spans only {span:.3g} "
                        f"(scale {t.quant.scale:.3g}); activations of a working MobileNet span "
                        "0.1 to 100"))
    return problems


def find_problems(graph: Graph) -> list[Problem]:
    return structure_problems(graph) + collapse_problems(graph) + kernel_problems(graph)


def check_int8(graph: Graph, source: str) -> None:
    """Raise `QuantizationError` when `graph` is not a full-int8 graph TFLM can run."""
    structure = structure_problems(graph)
    if structure:
        first = structure[0]
        raise QuantizationError(
            f"{source}: {first.message}" + _more(structure),
            hint="re-quantize with `mncompile quantize` from the float model (it exports batch 1 "
                 "with int8 input and output)")
    collapse = collapse_problems(graph)
    if collapse:
        first = collapse[0]
        raise QuantizationError(
            f"{source}: {first.message}; {len(collapse) - 1} later layer(s) collapsed too"
            if len(collapse) > 1 else f"{source}: {first.message}",
            hint="the model looks untrained or the calibration data does not match it: train it "
                 "(`mncompile train`), and calibrate with the data it was trained on "
                 "(--dataset), preprocessed the same way")
    kernel = kernel_problems(graph)
    if kernel:
        raise QuantizationError(f"{source}: {kernel[0].message}" + _more(kernel),
                                hint="the quantization parameters cannot run on TFLM; check the "
                                     "calibration data and that the model is trained")


def _more(problems: list[Problem]) -> str:
    return f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
