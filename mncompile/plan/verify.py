"""The one invariant check every plan passes, at run time and in tests.

- every buffer has an offset, aligned to 16 bytes;
- buffers alive at the same time never share a byte;
- lower bound <= arena <= sum of all buffer sizes, and the arena covers every buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

from mncompile.errors import MncompileError
from mncompile.plan.lifetimes import ALIGNMENT, Buffer, lower_bound
from mncompile.plan.planners import MemoryPlan


class PlanInvariantError(MncompileError):
    """A memory plan broke an invariant: a bug in a planner, never a user error."""

    exit_code = 1
    kind = "internal"


def check_plan(buffers: Sequence[Buffer], plan: MemoryPlan) -> None:
    if len(plan.offsets) != len(buffers):
        raise PlanInvariantError(f"{plan.strategy}: {len(plan.offsets)} offsets for {len(buffers)} buffers")
    for b, o in zip(buffers, plan.offsets, strict=True):
        if o < 0 or o % ALIGNMENT:
            raise PlanInvariantError(f"{plan.strategy}: buffer {b.id} ({b.name}) at offset {o}, "
                                     f"not a non-negative multiple of {ALIGNMENT}")
        if o + b.size > plan.arena_bytes:
            raise PlanInvariantError(f"{plan.strategy}: buffer {b.id} ends at {o + b.size}, "
                                     f"past the arena ({plan.arena_bytes})")
    # sweep in time: compare only pairs alive together
    by_first = sorted(range(len(buffers)), key=lambda i: buffers[i].first)
    for x, i in enumerate(by_first):
        bi, oi = buffers[i], plan.offsets[i]
        for j in by_first[x + 1:]:
            bj, oj = buffers[j], plan.offsets[j]
            if bj.first > bi.last:
                break
            if oi < oj + bj.size and oj < oi + bi.size:
                raise PlanInvariantError(
                    f"{plan.strategy}: buffers {bi.id} ({bi.name}) and {bj.id} ({bj.name}) are alive "
                    f"together (times {max(bi.first, bj.first)}..{min(bi.last, bj.last)}) and overlap "
                    f"in memory ({oi}+{bi.size} and {oj}+{bj.size})")
    lb, total = lower_bound(tuple(buffers)), sum(b.size for b in buffers)
    if not lb <= plan.arena_bytes <= max(total, lb):
        raise PlanInvariantError(f"{plan.strategy}: arena {plan.arena_bytes} outside [lower bound {lb}, "
                                 f"sum of sizes {total}]")
