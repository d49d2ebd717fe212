"""The op registry: one entry per operator, the one place that says what mncompile knows of it.

An `OpSpec`, registered by the module of its operator family (`conv`, `pool`, ...), holds:

- `options`: the BuiltinOptions union member its options are stored as, and whether TFLite needs
  them (a CONV_2D without Conv2DOptions would run with stride 0);
- `check`: validity as TFLite's kernels assume it (shapes, types, quantization axes), raising
  `OpCheckError`; the front door (`mncompile.graph.verify`) runs it on every model;
- `tflm`: what TFLM allocates for it (`TflmOp`: the parsed builtin-options struct, the OpData of
  the reference and the CMSIS-NN kernel, persistent buffers in Prepare, scratch buffer requests,
  the layouts of the structs it introduces); the arena predictor (`mncompile.plan.arena`) replays
  it. None: TFLM runs the operator, the predictor does not model it;
- `lower`: the AOT backend's lowering (`mncompile.aot`): the quantization math and the kernel
  call, as a frozen `KernelCall`. None: the AOT backend does not compile it;
- `view`: the AOT planner aliases its output to its input (RESHAPE, SQUEEZE, EXPAND_DIMS);
  `inplace`: the scratch bytes it needs to write over its dying input, or None when it cannot.

Adding an operator is one entry (and its test): the front door, the arena predictor, the AOT
backend and the README's operator table all read this registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from mncompile.graph.ir import Graph, Op


class OpCheckError(Exception):
    """What is wrong with one operator (the front door adds which operator)."""


# ---------------------------------------------------------------------------------------------
# TFLM's allocations


@dataclass(frozen=True)
class Allocations:
    """What one operator's kernel allocates in Prepare: persistent buffers, as (category, what,
    bytes), each 16-byte aligned; and RequestScratchBufferInArena sizes, in request order."""

    prepare: tuple[tuple[str, str, int], ...] = ()
    scratch: tuple[int, ...] = ()


@dataclass(frozen=True)
class TflmOp:
    builtin: str | None  # the builtin-options struct TFLM's parser allocates (None: it parses none)
    op_data: str | None  # the reference kernel's OpData, allocated in Init (None: none)
    cmsis_op_data: str | None = None  # the CMSIS-NN kernel's OpData (None: the reference kernel runs)
    allocations: Callable[[Graph, Op, bool], Allocations] | None = None  # (graph, op, cmsis-nn kernel?)
    structs: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)  # layouts it introduces
    # the CMSIS-NN kernel's allocations on a Helium (MVE) core (None: as on a DSP core)
    cmsis_mve: Callable[[Graph, Op], Allocations] | None = None

    def allocate(self, graph: Graph, op: Op, cmsis: bool, mve: bool = False) -> Allocations:
        if cmsis and mve and self.cmsis_mve is not None:
            return self.cmsis_mve(graph, op)
        return self.allocations(graph, op, cmsis) if self.allocations else Allocations()


# ---------------------------------------------------------------------------------------------
# The AOT backend's lowering


@dataclass(frozen=True, eq=False)
class ConstTable:
    """A constant array the generated C holds in flash (weights, biases, multipliers, shifts)."""

    name: str  # the C identifier's suffix, e.g. "filter" (the renderer prefixes the node)
    ctype: str  # "int8_t" or "int32_t"
    values: np.ndarray
    comment: str

    @property
    def nbytes(self) -> int:
        return {"int8_t": 1, "int32_t": 4}[self.ctype] * max(int(self.values.size), 1)


@dataclass(frozen=True)
class Table:
    """A field value: the address of one of the call's `ConstTable`s (by name)."""

    name: str


@dataclass(frozen=True)
class Arg:
    """A pointer argument of a kernel call: a tensor (`tensor`), a constant table (`table`), the
    in-place scratch buffer (`scratch`), the caller's float I/O buffer (`io`: "in" or "out"), or
    NULL (nothing set)."""

    tensor: int | None = None
    table: str | None = None
    scratch: bool = False
    io: str | None = None


@dataclass(frozen=True, eq=False)
class KernelCall:
    """One node of the model, lowered: `kernel(&params, args...)` with `params` a `static const`
    struct of type `params_type` holding `fields`, or, with `kernel` None, a view (nothing runs)."""

    node: int
    kind: str
    kernel: str | None
    params_type: str | None = None
    fields: tuple[tuple[str, object], ...] = ()  # int, float (float32), tuple of ints, Table, or None (NULL)
    tables: tuple[ConstTable, ...] = ()
    args: tuple[Arg, ...] = ()
    comment: str = ""  # what the params struct's comment says after "node N: <title> <layer name>"
    title: str = ""  # how the comments name the operation (default: the operator type)
    parts: tuple[KernelCall, ...] = ()  # a node that runs several calls (CONCATENATION: one per input)


# ---------------------------------------------------------------------------------------------
# The entry


@dataclass(frozen=True)
class OpSpec:
    kind: str  # the builtin operator's name, e.g. CONV_2D, or CUSTOM:<name>
    options: str | None = None  # the BuiltinOptions member its options are stored as
    options_required: bool = False
    check: Callable[[Graph, Op], None] | None = None
    tflm: TflmOp | None = None
    lower: Callable[[Graph, Op], KernelCall] | None = None
    view: bool = False
    inplace: Callable[[Graph, Op], int | None] | None = None
    summary: str = ""  # one line for the README's operator table


REGISTRY: dict[str, OpSpec] = {}


def register(*specs: OpSpec) -> None:
    for spec in specs:
        if spec.kind in REGISTRY:
            raise ValueError(f"operator {spec.kind} is registered twice")
        REGISTRY[spec.kind] = spec


def spec_of(kind: str) -> OpSpec | None:
    return REGISTRY.get(kind)
