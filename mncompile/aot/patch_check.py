"""The invariant check of a patch stage: replay every tile and no live bytes are overwritten.

`mncompile.plan.verify.check_plan` checks the planner's buffers against the lifetimes they were
given. This check does not trust those lifetimes: it replays the stage as the firmware runs it
(`events`: per tile, the copy of the stage input into its patch, each node reading its inputs and
writing its output, the copy of the output tile) over the byte ranges the plan gave each buffer,
and fails when a buffer is read after another buffer sharing any of its bytes was written since
its own last write (the tile loop's reuse of patch buffers included; for the stage's whole output,
which each tile writes in part, since its first write), or is read before anything wrote it. The
stage's whole input and output and every other arena tensor alive across the stage must survive it.
"""

from __future__ import annotations

import bisect

from mncompile.graph.ir import Graph
from mncompile.plan.verify import PlanInvariantError


def events(schedule) -> list[tuple[tuple[str, ...], str | None, str]]:
    """The stage's steps as (buffers read, buffer written, what): buffers are named "in" (the whole
    input), "out" (the whole output) and "pN" (the patch of tensor N)."""
    def name(t: int) -> str:
        if t == schedule.input:
            return "in" if schedule.direct_input else f"p{t}"
        if t == schedule.output:
            return "out" if schedule.direct_output else f"p{t}"
        return f"p{t}"

    steps = []
    ty, tx = schedule.grid
    for i in range(ty):
        for j in range(tx):
            tile = f"tile ({i}, {j})"
            if not schedule.direct_input:
                steps.append((("in",), name(schedule.input), f"{tile}: copy of the input"))
            for s in schedule.nodes:
                steps.append((tuple(name(t) for t in s.reads), name(s.writes), f"{tile}: node {s.node}"))
            if not schedule.direct_output:
                steps.append(((name(schedule.output),), "out", f"{tile}: copy of the output tile"))
    return steps


def check_schedule(graph: Graph, memory, stage: int) -> None:
    """Raise PlanInvariantError when the plan of `memory` (`mncompile.aot.memory.AotMemory`) lets
    its patch stage number `stage` overwrite bytes that are still to be read."""
    schedule = memory.schedules[stage]
    ranges: dict[str, tuple[int, int]] = {}
    for k, t, offset, nbytes in memory.patches:
        if k == stage:
            ranges[f"p{t}"] = (offset, offset + nbytes)
    if not schedule.external_input:
        ranges["in"] = (memory.offset(schedule.input), memory.offset(schedule.input)
                        + graph.tensors[schedule.input].nbytes)
    ranges["out"] = (memory.offset(schedule.output), memory.offset(schedule.output)
                     + graph.tensors[schedule.output].nbytes)
    start, end = schedule.nodes[0].node + 1, schedule.last_node + 1
    kept = []  # other arena tensors alive across the stage
    for b, offset in zip(memory.buffers, memory.plan.offsets, strict=True):
        if b.id >= len(memory.groups) or b.last < start or b.first > end:
            continue
        members = memory.groups[b.id]
        if schedule.input in members or schedule.output in members:
            continue
        ranges[f"t{members[0]}"] = (offset, offset + b.size)
        kept.append(f"t{members[0]}")
    steps = events(schedule)
    final = len(steps)
    # every buffer written before the stage (initially valid) and read after it
    writes: dict[str, list[int]] = {k: [-1] for k in ["in", *kept]}
    reads: dict[str, list[tuple[int, str]]] = {}
    for k, (rd, wr, what) in enumerate(steps):
        for r in rd:
            reads.setdefault(r, []).append((k, what))
        if wr is not None:
            writes.setdefault(wr, []).append(k)
    for k in ["out", *kept]:
        reads.setdefault(k, []).append((final, "the nodes after the stage"))
    for y, ys in reads.items():
        wy = writes.get(y, [])
        for j, what in ys:
            w = wy[bisect.bisect_left(wy, j) - 1] if wy and wy[0] < j else None
            if y == "out" and w is not None:
                w = wy[0]  # each tile writes its own rows: the first tile's must last to the end too
            if w is None:
                raise PlanInvariantError(f"patch stage: {what} reads {y} before anything wrote it")
            if y not in ranges:
                continue  # the caller's input: not in the arena
            ya, yb = ranges[y]
            for x, (xa, xb) in ranges.items():
                if x == y or not (xa < yb and ya < xb):
                    continue
                wx = writes.get(x, [])
                i = bisect.bisect_right(wx, w)
                if i < len(wx) and wx[i] <= j:
                    raise PlanInvariantError(
                        f"patch stage: {steps[wx[i]][2]} writes {x} [{xa}, {xb}) over {y} [{ya}, {yb}), which "
                        f"{what} still reads")
