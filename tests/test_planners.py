"""Memory planners on synthetic lifetimes: invariants, TFLM-greedy vs ours, and optimality."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mncompile.plan.lifetimes import Buffer, lower_bound
from mncompile.plan.planners import PLANNERS, MemoryPlan, greedy_tflm, mncompile_plan
from mncompile.plan.verify import PlanInvariantError, check_plan


@st.composite
def buffer_sets(draw, max_buffers: int = 14, max_time: int = 12):
    n = draw(st.integers(1, max_buffers))
    buffers = []
    for i in range(n):
        first = draw(st.integers(0, max_time))
        last = draw(st.integers(first, min(max_time, first + draw(st.integers(0, 4)))))
        size = 16 * draw(st.integers(1, 64))
        buffers.append(Buffer(i, i, f"t{i}", size, first, last))
    return tuple(buffers)


@settings(max_examples=300, deadline=None)
@given(buffer_sets())
def test_plans_are_valid_and_ours_never_loses_to_tflm(buffers):
    greedy, ours = greedy_tflm(buffers), mncompile_plan(buffers)
    check_plan(buffers, greedy)
    check_plan(buffers, ours)
    assert lower_bound(buffers) <= ours.arena_bytes <= greedy.arena_bytes


def brute_force_optimum(buffers) -> int:
    """Smallest arena over every assignment of 16-byte-aligned offsets (tiny cases only):
    independent of the planners' placement rules."""
    total = sum(b.size for b in buffers)
    best = total
    grids = [range(0, total - b.size + 1, 16) for b in buffers]
    for offsets in itertools.product(*grids):
        extent = max(o + b.size for o, b in zip(offsets, buffers, strict=True))
        if extent >= best:
            continue
        ok = all(not a.overlaps_in_time(b) or oa + a.size <= ob or ob + b.size <= oa
                 for (a, oa), (b, ob) in itertools.combinations(zip(buffers, offsets, strict=True), 2))
        if ok:
            best = extent
    return best


# derandomized: the size filter rejects many draws, and a random start could trip the filter_too_much
# health check (it did once in a full run)
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much])
@given(buffer_sets(max_buffers=4, max_time=4).filter(lambda bs: sum(b.size for b in bs) <= 16 * 14))
def test_ours_is_optimal_on_tiny_cases(buffers):
    assert mncompile_plan(buffers).arena_bytes == brute_force_optimum(buffers)


def test_a_known_case_where_tflm_greedy_is_not_optimal():
    # Largest first puts c (48) at 0 and a (32, alive 0..2) above it at 48; b then cannot
    # sit below a, and d is pushed to 64..96. Placing a at 0 first gives the lower bound.
    b = (Buffer(0, 0, "a", 32, 0, 2), Buffer(1, 1, "b", 32, 2, 3), Buffer(2, 2, "c", 48, 0, 0),
         Buffer(3, 3, "d", 32, 3, 3))
    greedy, ours = greedy_tflm(b), mncompile_plan(b)
    assert ours.arena_bytes == brute_force_optimum(b) == lower_bound(b) < greedy.arena_bytes


def test_invariant_checker_catches_broken_plans():
    b = (Buffer(0, 0, "a", 32, 0, 1), Buffer(1, 1, "b", 32, 1, 2))
    with pytest.raises(PlanInvariantError, match="overlap"):
        check_plan(b, MemoryPlan("bad", (0, 16), 48))
    with pytest.raises(PlanInvariantError, match="multiple of 16"):
        check_plan(b, MemoryPlan("bad", (0, 40), 72))
    with pytest.raises(PlanInvariantError, match="past the arena"):
        check_plan(b, MemoryPlan("bad", (0, 32), 48))
    check_plan(b, MemoryPlan("good", (0, 32), 64))


def test_planner_table():
    assert set(PLANNERS) == {"tflm-greedy", "mncompile"}
