"""Memory planners: offsets for every buffer so that buffers alive at the same
time never share bytes. Strategies are looked up by name in `PLANNERS`.

- ``tflm-greedy``: a replica of TFLM's `GreedyMemoryPlanner` (sort by size,
  largest first, equal sizes last-added first; place each at the lowest offset
  whose gap between time-overlapping, already placed buffers is big enough).
  It is the baseline, and must give TFLM's own planned size.
- ``mncompile``: ours. Graphs of up to 7 buffers get the exact optimum (every
  order tried). Larger ones: it first searches for a plan of exactly the lower
  bound (depth-first, buffers in order of first use, each tried at the bottom,
  at the top, and against the edges of the buffers it overlaps, with a step
  limit). Failing that, it runs first-fit and best-fit over several orders,
  TFLM's among them, and keeps the smallest. So it is never larger than TFLM
  greedy, and it is the lower bound whenever the search finds one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mncompile.plan.lifetimes import ALIGNMENT, Buffer, align_up, lower_bound


@dataclass(frozen=True)
class MemoryPlan:
    strategy: str
    offsets: tuple[int, ...]  # by buffer id
    arena_bytes: int

    def to_json(self) -> dict:
        return {"strategy": self.strategy, "arena_bytes": self.arena_bytes, "offsets": list(self.offsets)}


def _extent(buffers: Sequence[Buffer], offsets: Sequence[int]) -> int:
    return max((o + b.size for b, o in zip(buffers, offsets, strict=True)), default=0)


def _first_fit(buffers: Sequence[Buffer], order: Sequence[int], best: bool = False,
               fixed: dict[int, int] | None = None) -> list[int]:
    """Place buffers in `order` at the lowest offset whose gap between time-overlapping,
    already placed buffers is big enough (TFLM's walk), or at the smallest such gap (best fit).
    `fixed` buffers (id -> offset) are in place before the walk starts, as TFLM places
    offline-planned buffers."""
    offsets = [-1] * len(buffers)
    for bid, offset in (fixed or {}).items():
        offsets[bid] = offset
    placed: list[int] = sorted(fixed or (), key=lambda i: offsets[i])  # buffer ids sorted by offset
    for bid in order:
        b = buffers[bid]
        active = [i for i in placed if buffers[i].overlaps_in_time(b)]
        candidate, choice, choice_gap = 0, None, None
        for i in active:
            gap = offsets[i] - candidate
            if gap >= b.size:
                if not best:
                    choice = candidate
                    break
                if choice_gap is None or gap < choice_gap:
                    choice, choice_gap = candidate, gap
            candidate = max(candidate, offsets[i] + buffers[i].size)
        if choice is None:
            choice = candidate
        offsets[bid] = choice
        placed.append(bid)
        placed.sort(key=lambda i: offsets[i])
    return offsets


def tflm_order(buffers: Sequence[Buffer]) -> list[int]:
    """TFLM's order: by size descending. TFLM fills its sort array from the tail (the
    last-added buffer first) and its bubble sort is stable, so equal sizes end up in
    *descending* id order."""
    return sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, -i))


def greedy_tflm(buffers: Sequence[Buffer]) -> MemoryPlan:
    offsets = _first_fit(buffers, tflm_order(buffers))
    return MemoryPlan("tflm-greedy", tuple(offsets), _extent(buffers, offsets))


def _search_lower_bound(buffers: Sequence[Buffer], limit: int, step_limit: int = 200_000) -> list[int] | None:
    """Depth-first search for offsets with every buffer inside [0, limit)."""
    order = sorted(range(len(buffers)), key=lambda i: (buffers[i].first, -buffers[i].size, i))
    offsets = [-1] * len(buffers)
    steps = [0]

    def candidates(bid: int) -> list[int]:
        b = buffers[bid]
        cands = {0, limit - b.size}
        for j in range(len(buffers)):
            if offsets[j] >= 0 and buffers[j].overlaps_in_time(b):
                cands.add(offsets[j] + buffers[j].size)
                cands.add(offsets[j] - b.size)
        good = []
        for c in sorted(cands):
            if c < 0 or c + b.size > limit or c % ALIGNMENT:
                continue
            if all(offsets[j] < 0 or not buffers[j].overlaps_in_time(b)
                   or c + b.size <= offsets[j] or offsets[j] + buffers[j].size <= c
                   for j in range(len(buffers))):
                good.append(c)
        # bottom and top first: that is what keeps a chain of tensors ping-ponging
        good.sort(key=lambda c: (c not in (0, limit - b.size), c))
        return good

    def place(k: int) -> bool:
        if k == len(order):
            return True
        steps[0] += 1
        if steps[0] > step_limit:
            return False
        bid = order[k]
        for c in candidates(bid):
            offsets[bid] = c
            if place(k + 1):
                return True
            offsets[bid] = -1
            if steps[0] > step_limit:
                return False
        return False

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 4 * len(buffers) + 100))
    try:
        return offsets if place(0) else None
    finally:
        sys.setrecursionlimit(old)


def _orders(buffers: Sequence[Buffer]) -> dict[str, list[int]]:
    n = range(len(buffers))
    return {
        "size": tflm_order(buffers),
        "first-use": sorted(n, key=lambda i: (buffers[i].first, -buffers[i].size, i)),
        "lifetime": sorted(n, key=lambda i: (-(buffers[i].last - buffers[i].first), -buffers[i].size, i)),
        "area": sorted(n, key=lambda i: (-(buffers[i].last - buffers[i].first + 1) * buffers[i].size, i)),
    }


EXHAUSTIVE_MAX = 7  # graphs this small get the exact optimum by trying every order


def exhaustive_plan(buffers: Sequence[Buffer]) -> MemoryPlan:
    """The optimum: some order placed lowest-offset-first reproduces any optimal packing
    (place buffers by their optimal offsets; none can land higher), so trying every
    order finds it."""
    import itertools

    best: list[int] | None = None
    best_size = None
    for order in itertools.permutations(range(len(buffers))):
        offsets = _first_fit(buffers, order)
        size = _extent(buffers, offsets)
        if best_size is None or size < best_size:
            best, best_size = offsets, size
    return MemoryPlan("mncompile (exhaustive)", tuple(best or ()), best_size or 0)


def mncompile_plan(buffers: Sequence[Buffer], step_limit: int = 200_000) -> MemoryPlan:
    """The exhaustive optimum for a few buffers; else a depth-first search for a plan at the lower
    bound (`step_limit` placements), else the best of the first-fit heuristics."""
    if 0 < len(buffers) <= EXHAUSTIVE_MAX:
        return exhaustive_plan(buffers)
    lb = lower_bound(tuple(buffers))
    found = _search_lower_bound(buffers, align_up(lb), step_limit)
    if found is not None:
        return MemoryPlan("mncompile (lower-bound search)", tuple(found), _extent(buffers, found))
    best = greedy_tflm(buffers)
    best = MemoryPlan("mncompile (tflm order)", best.offsets, best.arena_bytes)
    for name, order in _orders(buffers).items():
        for fit in (False, True):
            offsets = _first_fit(buffers, order, best=fit)
            size = _extent(buffers, offsets)
            if size < best.arena_bytes:
                best = MemoryPlan(f"mncompile ({'best' if fit else 'first'} fit, {name} order)",
                                  tuple(offsets), size)
    return best


def head_with_scratch(buffers: Sequence[Buffer], plan: MemoryPlan, scratch: Sequence[tuple[int, int]]) -> int:
    """The head TFLM plans when `plan` is embedded offline and kernels request scratch buffers
    (``(op index, bytes)`` in request order): the offline buffers stay where `plan` put them,
    and TFLM's greedy walk places each scratch buffer (alive while its op runs, at time
    op + 1) around them, largest first, equal sizes last-requested first."""
    if not scratch:
        return plan.arena_bytes
    extra = [Buffer(len(buffers) + k, None, f"scratch of op {op}", align_up(nbytes), op + 1, op + 1)
             for k, (op, nbytes) in enumerate(scratch)]
    everything = [*buffers, *extra]
    fixed = {b.id: o for b, o in zip(buffers, plan.offsets, strict=True)}
    offsets = _first_fit(everything, [len(buffers) + i for i in tflm_order(extra)], fixed=fixed)
    return _extent(everything, offsets)


PLANNERS: dict[str, Callable[[Sequence[Buffer]], MemoryPlan]] = {
    "tflm-greedy": greedy_tflm,
    "mncompile": mncompile_plan,
}
