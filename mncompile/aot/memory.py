"""The AOT backend's arena: tensors that share bytes, in-place depthwise, and the plan.

The AOT firmware has one static arena and no interpreter, so it can alias buffers that TFLM
keeps apart:

- **views** (RESHAPE and the other operators whose registry entry says `view`): the output is the
  input's bytes (no kernel runs);
- **in place** (DEPTHWISE_CONV_2D and any operator whose registry entry has `inplace`): when a
  depthwise op (depth multiplier 1) reads a buffer for the
  last time and that buffer is not the graph's output, the output is written over the input
  (``mn_depthwise_conv_s8`` with ``out == in``). The kernel then needs ``in_h * in_w`` bytes of
  scratch while the op runs; that scratch is planned in the arena like a tensor alive at the
  op's time step only;
- **PAD folded** into the CONV_2D/DEPTHWISE_CONV_2D that reads it (`mncompile.aot.lower.Folds`):
  the padded tensor is never made, and the PAD's input lives until the convolution, which reads
  it with the padding as explicit top/left padding. A folded depthwise op may run in place over
  the PAD's input.

A float32 graph input or output (an int8 model converted with float I/O: QUANTIZE reads the
input, DEQUANTIZE writes the output) is not in the arena: it is the caller's buffer, passed to
``model_invoke``. Only the int8 tensors on the other side of those ops are planned.

Tensors that share bytes form a *group*: one `Buffer` from the first use of any member to the
last use of any member, as large as the largest member. The groups and the scratch buffers are
planned with mncompile's own planner (`PLANNERS["mncompile"]`) on TFLM's time axis (graph inputs
at 0, op i at i + 1, graph outputs alive to the end; `mncompile.plan.lifetimes`) and the plan is
checked with `mncompile.plan.verify.check_plan`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from mncompile.aot.lower import Folds
from mncompile.aot.patch import Schedule
from mncompile.graph.ir import Graph, Op
from mncompile.plan.lifetimes import Buffer, align_up, lifetimes, live_bytes, lower_bound
from mncompile.plan.planners import PLANNERS, MemoryPlan
from mncompile.plan.verify import check_plan


@dataclass(frozen=True)
class AotMemory:
    buffers: tuple[Buffer, ...]  # groups first (tensor = the group's first tensor), then scratch buffers
    plan: MemoryPlan
    tensor_offsets: tuple[tuple[int, int], ...]  # (tensor index, arena offset) for every planned tensor
    groups: tuple[tuple[int, ...], ...]  # tensors sharing bytes, by buffer (groups only)
    inplace: tuple[int, ...]  # indices of the ops that run in place (depthwise, elementwise, reduce)
    scratch: tuple[tuple[int, int, int], ...]  # (op index, offset, bytes) of in-place scratch
    lower_bound: int  # of these buffers (aliasing and scratch included)
    folded_pads: tuple[int, ...] = ()  # indices of the PAD nodes folded into a convolution (no tensor)
    schedules: tuple[Schedule, ...] = ()  # the patch stages (`mncompile.aot.patch`), in node order
    patches: tuple[tuple[int, int, int, int], ...] = ()  # (stage, tensor, offset, bytes) of the patch buffers

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    def offset(self, tensor: int) -> int:
        return dict(self.tensor_offsets)[tensor]

    def scratch_offset(self, op_index: int) -> int:
        return next(o for k, o, _ in self.scratch if k == op_index)

    @property
    def external_input(self) -> bool:
        """A patch stage reads the int8 graph input in place from the caller's buffer."""
        return any(s.external_input for s in self.schedules)

    def patch_offset(self, stage: int, tensor: int) -> int:
        """Where stage `stage` keeps its patch of `tensor` (two stages may each hold one of the same
        tensor: the first's output tile, the second's input region)."""
        return next(o for k, t, o, _ in self.patches if (k, t) == (stage, tensor))

    def to_json(self) -> dict:
        return {"arena_bytes": self.arena_bytes, "lower_bound_bytes": self.lower_bound,
                "strategy": self.plan.strategy, "alignment": 16,
                "inplace_ops": list(self.inplace), "folded_pad_ops": list(self.folded_pads),
                "scratch": [{"op": k, "offset": o, "bytes": n} for k, o, n in self.scratch],
                "patch_stages": [{**s.to_json(), "buffers": [{"tensor": t, "offset": o, "bytes": n}
                                                             for k, t, o, n in self.patches if k == i]}
                                 for i, s in enumerate(self.schedules)],
                "buffers": [{"id": b.id, "tensors": list(self.groups[b.id]) if b.id < len(self.groups) else [],
                             "name": b.name, "bytes": b.size, "first": b.first, "last": b.last, "offset": o}
                            for b, o in zip(self.buffers, self.plan.offsets, strict=True)]}


class _Groups:
    """Union-find over tensor indices, with each set's members."""

    def __init__(self):
        self.parent: dict[int, int] = {}
        self.sets: dict[int, list[int]] = {}

    def find(self, t: int) -> int:
        if t not in self.parent:
            self.parent[t] = t
            self.sets[t] = [t]
        while self.parent[t] != t:
            self.parent[t] = self.parent[self.parent[t]]
            t = self.parent[t]
        return t

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            keep, gone = min(ra, rb), max(ra, rb)
            self.parent[gone] = keep
            self.sets[keep] += self.sets.pop(gone)

    def members(self, t: int) -> list[int]:
        return self.sets[self.find(t)]


PATCHED_STEP_LIMIT = 20_000  # the lower-bound search's placements for a plan with patch stages


def _plan(buffers: tuple[Buffer, ...], schedules) -> MemoryPlan:
    """mncompile's planner; with patch stages (many small buffers, where the search to the lower
    bound rarely succeeds late) it searches `PATCHED_STEP_LIMIT` placements before its heuristics."""
    if not schedules:
        return PLANNERS["mncompile"](buffers)
    from mncompile.plan.planners import mncompile_plan

    return mncompile_plan(buffers, PATCHED_STEP_LIMIT)


@dataclass(frozen=True)
class Assembled:
    """The buffers `plan_aot` would plan (`bound_only`): groups first, as in `AotMemory`, then the
    in-place scratch of `inplace` (in order), then the patch buffers; `live`: bytes alive per step."""

    groups: tuple[tuple[int, ...], ...]
    buffers: tuple[Buffer, ...]
    inplace: tuple[int, ...]
    live: tuple[int, ...]
    tensors: dict = dataclasses.field(default_factory=dict)  # tensor -> its own Buffer (lifetime, size)
    edges: tuple = ()  # (tensor, tensor, in-place op or None for a view): what joined the groups


INPLACE_MODES = ("auto", "all", "off")


def _is_view(op: Op) -> bool:
    """Its registry entry says the output is its input's bytes (RESHAPE, SQUEEZE, EXPAND_DIMS)."""
    from mncompile.graph.ops import spec_of

    spec = spec_of(op.kind)
    return spec is not None and spec.view


def _may_run_in_place(op: Op) -> bool:
    from mncompile.graph.ops import spec_of

    spec = spec_of(op.kind)
    return spec is not None and spec.inplace is not None


def caller_buffers(graph: Graph) -> frozenset[int]:
    """Graph inputs and outputs that live outside the arena: the float32 ones (float I/O edges)."""
    return frozenset(t for t in (*graph.inputs, *graph.outputs) if graph.tensors[t].dtype == "FLOAT32")


def _patch_buffers(schedule: Schedule, start: int) -> list[Buffer]:
    """The patch buffers of `schedule` on the graph's time axis (node k at k + 1): each tile runs the
    stage's nodes in order, so a patch lives from the node that writes it (the first node: the copy
    of the stage input) to the last node of the same tile that reads it."""
    readers: dict[int, list[int]] = {}
    writer = {s.writes: s.node for s in schedule.nodes}
    for s in schedule.nodes:
        for t in s.reads:
            readers.setdefault(t, []).append(s.node)
    first_node = schedule.nodes[0].node
    buffers = []
    for t in schedule.patch_tensors:
        made = writer.get(t, first_node) if t != schedule.input else first_node
        last = max(readers.get(t, [made]))
        buffers.append(Buffer(start + len(buffers), None, f"patch of t{t} (stage of nodes {first_node}.."
                                                          f"{schedule.last_node})",
                              align_up(schedule.patch_bytes(t)), made + 1, last + 1))
    return buffers


def plan_aot(graph: Graph, inplace: str = "auto",
             inplace_ok: Callable[[Op], int | None] | None = None, folds: Folds = Folds(),
             schedules: tuple[Schedule, ...] = (), bound_only: bool = False,
             base: tuple[Buffer, ...] | None = None) -> AotMemory | Assembled:
    """Plan the AOT arena of `graph`. `folds`: the PADs folded into convolutions (`Folds`): their
    output tensors are not planned, and each PAD's input lives until the convolution reads it.

    `inplace_ok(op)` says whether a depthwise op can run in place and returns its scratch bytes
    (None: it cannot; without the callable no op runs in place). `inplace`:

    - ``"all"``: every depthwise op that can run in place and whose input dies there does;
    - ``"auto"`` (default): the arena of ``"all"``, with as few ops in place as keep it (the
      in-place kernel works plane by plane and is slower): each op in turn goes back out of
      place when the lower bound stays within that arena, then the result is planned once more
      (and ``"all"`` is kept should that plan come out larger);
    - ``"off"``: nothing runs in place (RESHAPE is still a view).

    `schedules`: patch stages (`mncompile.aot.patch`). The tensors a stage makes inside are not
    planned (patch buffers are, alive within a tile); its input lives to its last node (or is the
    caller's buffer, `Schedule.external_input`) and its output from its first node, as every tile
    reads and writes them; its nodes never run in place. `bound_only`: return the buffers with
    every eligible op in place and their live bytes at each time step, without planning
    (`Assembled`: the search's estimate; the largest is a lower bound of the arena). `base`:
    `lifetimes(graph)`, when the caller has it.
    """
    if inplace not in INPLACE_MODES:
        raise ValueError(f"inplace must be one of {INPLACE_MODES}, not {inplace!r}")
    external = caller_buffers(graph) | folds.padded
    staged = {s.node for schedule in schedules for s in schedule.nodes}
    for schedule in schedules:
        external |= {s.writes for s in schedule.nodes if s.writes != schedule.output}
        external |= {schedule.input} if schedule.external_input else set()
    tensor_buffers = {b.tensor: b for b in (base or lifetimes(graph)) if b.tensor not in external}
    for fold in folds.pads:  # the convolution (time step conv + 1) reads the PAD's input instead
        if fold.source in tensor_buffers:
            b = tensor_buffers[fold.source]
            tensor_buffers[fold.source] = dataclasses.replace(b, last=max(b.last, fold.conv + 1))
    for schedule in schedules:
        if schedule.input in tensor_buffers:
            b = tensor_buffers[schedule.input]
            tensor_buffers[schedule.input] = dataclasses.replace(b, last=max(b.last, schedule.last_node + 1))
        b = tensor_buffers[schedule.output]
        tensor_buffers[schedule.output] = dataclasses.replace(b, first=min(b.first, schedule.nodes[0].node + 1))
    views = [(op.inputs[0], op.outputs[0]) for op in graph.ops
             if _is_view(op) and op.inputs[0] in tensor_buffers and op.outputs[0] in tensor_buffers]

    def grouped(chosen: list[tuple[int, int]]) -> _Groups:
        groups = _Groups()
        for t in tensor_buffers:
            groups.find(t)
        for src, dst in views:
            groups.union(src, dst)
        for k, _ in chosen:
            groups.union(folds.input_of(graph.ops[k]), graph.ops[k].outputs[0])
        return groups

    # Which depthwise ops may run in place: the input's group (views and earlier in-place ops
    # included) is read for the last time by this op and holds no graph output. Whether an earlier
    # op runs in place does not change this (its tensors die at or before this op), so any subset
    # of `eligible` is safe too.
    eligible: list[tuple[int, int]] = []
    if inplace != "off" and inplace_ok is not None:
        groups = grouped([])
        outputs = set(graph.outputs)
        for k, op in enumerate(graph.ops):
            if not _may_run_in_place(op) or op.index in staged:
                continue
            src, dst = folds.input_of(op), op.outputs[0]
            if src not in tensor_buffers or dst not in tensor_buffers:
                continue
            members = groups.members(src)
            if outputs.intersection(members) or max(tensor_buffers[u].last for u in members) != k + 1:
                continue
            scratch = inplace_ok(op)
            if scratch is None:
                continue
            groups.union(src, dst)
            eligible.append((k, scratch))

    def assemble(chosen: list[tuple[int, int]]) -> tuple[list[list[int]], tuple[Buffer, ...]]:
        groups = grouped(chosen)
        roots: dict[int, list[int]] = {}
        for t in sorted(tensor_buffers):
            roots.setdefault(groups.find(t), []).append(t)
        members_of = [roots[r] for r in sorted(roots, key=lambda r: (min(tensor_buffers[u].first for u in roots[r]),
                                                                      r))]
        buffers: list[Buffer] = []
        for members in members_of:
            bs = [tensor_buffers[t] for t in members]
            name = bs[0].name if len(bs) == 1 else f"{bs[0].name} (+{len(bs) - 1} sharing its bytes)"
            buffers.append(Buffer(len(buffers), members[0], name, max(b.size for b in bs), min(b.first for b in bs),
                                  max(b.last for b in bs)))
        for k, nbytes in chosen:
            buffers.append(Buffer(len(buffers), None, f"scratch of node {k} (in-place depthwise)", align_up(nbytes),
                                  k + 1, k + 1))
        for schedule in schedules:
            buffers.extend(_patch_buffers(schedule, len(buffers)))
        return members_of, tuple(buffers)

    chosen = list(eligible)
    members_of, buffers = assemble(chosen)
    if bound_only:
        edges = tuple((a, b, None) for a, b in views) + tuple(
            (folds.input_of(graph.ops[k]), graph.ops[k].outputs[0], k) for k, _ in chosen)
        return Assembled(tuple(tuple(m) for m in members_of), buffers, tuple(k for k, _ in chosen),
                         live_bytes(buffers), tensor_buffers, edges)
    plan = _plan(buffers, schedules)
    if inplace == "auto" and chosen:
        target = plan.arena_bytes
        keep = list(chosen)
        for item in chosen:
            trial = [c for c in keep if c != item]
            if lower_bound(assemble(trial)[1]) <= target:
                keep = trial
        if keep != chosen:
            fewer_members, fewer = assemble(keep)
            fewer_plan = _plan(fewer, schedules)
            if fewer_plan.arena_bytes <= target:
                chosen, members_of, buffers, plan = keep, fewer_members, fewer, fewer_plan
    check_plan(buffers, plan)
    offsets = {}
    for gid, members in enumerate(members_of):
        for t in members:
            offsets[t] = plan.offsets[gid]
    scratch = tuple((k, plan.offsets[len(members_of) + j], n) for j, (k, n) in enumerate(chosen))
    base = len(members_of) + len(chosen)
    tensors = [(k, t) for k, schedule in enumerate(schedules) for t in schedule.patch_tensors]
    patches = tuple((k, t, plan.offsets[base + j], buffers[base + j].size) for j, (k, t) in enumerate(tensors))
    memory = AotMemory(buffers, plan, tuple(sorted(offsets.items())), tuple(tuple(m) for m in members_of),
                       tuple(k for k, _ in chosen), scratch, lower_bound(buffers), tuple(f.pad for f in folds.pads),
                       tuple(schedules), patches)
    if schedules:
        from mncompile.aot.patch_check import check_schedule

        for k in range(len(schedules)):
            check_schedule(graph, memory, k)
    return memory
