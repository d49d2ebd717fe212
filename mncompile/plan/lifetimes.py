"""Tensor lifetimes in execution order, and the layer-wise lower bound.

Time follows TFLM's allocation scopes (`micro_allocation_info.cc`): graph
inputs are created at time 0, operator ``i`` runs at time ``i + 1``, a tensor
lives from the op that produces it to the last op that reads it (both
inclusive), and graph outputs live to the end. Sizes are rounded up to TFLM's
16-byte arena alignment, as TFLM's planner sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mncompile.graph.ir import Graph

ALIGNMENT = 16  # MicroArenaBufferAlignment()


def align_up(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class Buffer:
    """One planned allocation: a tensor (or a kernel scratch buffer)."""

    id: int  # position in TFLM's AddBuffer order
    tensor: int | None  # tensor index; None for a scratch buffer
    name: str
    size: int  # aligned bytes
    first: int
    last: int

    def overlaps_in_time(self, other: Buffer) -> bool:
        return not (self.first > other.last or other.first > self.last)


def lifetimes(graph: Graph) -> tuple[Buffer, ...]:
    """The buffers TFLM plans, in the order it adds them to its planner (tensor index order)."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in graph.inputs:
        first.setdefault(i, 0)
        last[i] = 0
    for k, op in enumerate(graph.ops, start=1):
        for i in op.outputs:
            first.setdefault(i, k)
        for i in op.inputs:
            if i >= 0:
                last[i] = k
        for i in op.outputs:
            last[i] = k
    end = len(graph.ops)
    for i in graph.outputs:
        first.setdefault(i, end)
        last[i] = end
    buffers = []
    for t in graph.tensors:
        if t.is_constant or t.nbytes == 0 or t.index not in first:
            continue
        buffers.append(Buffer(len(buffers), t.index, t.name, align_up(t.nbytes), first[t.index], last[t.index]))
    return tuple(buffers)


def live_bytes(buffers: tuple[Buffer, ...]) -> tuple[int, ...]:
    """Bytes live at each time step 0..end."""
    end = max((b.last for b in buffers), default=-1)
    live = [0] * (end + 1)
    for b in buffers:
        for t in range(b.first, b.last + 1):
            live[t] += b.size
    return tuple(live)


def lower_bound(buffers: tuple[Buffer, ...]) -> int:
    """The largest sum of simultaneously live buffers: no plan can be smaller."""
    return max(live_bytes(buffers), default=0)
