"""The RAM budget picks the schedule: layer by layer, or with patch stages (`mncompile.aot.patch`).

`--memory` modes:

- ``speed``: layer by layer (no recomputation);
- ``balanced`` (default): layer by layer when that fits the room the budget leaves (RAM, or
  ``--budget`` less the constants), else patch stages with the fewest extra MACs that fit;
- ``min``: the least RAM, except that a gain under `MIN_SLACK` (2 %) is not bought with extra
  MACs (a few hundred bytes are not worth several times the MACs).

RAM here is the arena plus the model's buffers outside it (a float input or output, or the int8
input a patch stage reads in place from the caller's buffer), as the budget counts it.

The search is greedy over the RAM peak: it finds the time step where the plan so far holds the
most bytes, tries every stage that covers that node (`patch.candidates`: each span of stage-able
nodes, each tile grid) and keeps the best (`min`: the least RAM; `balanced`: the fewest extra MACs
that brings the peak within the room; a stage it overlaps is dropped), then looks at the new peak,
until no stage lowers it. A
candidate's RAM is first estimated without planning (the lower bound of its buffers,
`plan_aot(bound_only=True)`); the schedule kept is planned and checked (`plan_aot`: the planner's
invariant check and the tile replay of `patch_check`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mncompile.aot.lower import Folds, inplace_candidates
from mncompile.aot.memory import AotMemory, Assembled, _patch_buffers, plan_aot
from mncompile.aot.patch import Schedule, candidates
from mncompile.graph.ir import Graph
from mncompile.plan.lifetimes import lifetimes

MEMORY_MODES = ("speed", "balanced", "min")
MIN_SLACK = 0.02  # min: up to 2 % more RAM for fewer extra MACs
MAX_ROUNDS = 8
PEAKS = 4  # min also ranks schedules by their RAM, then by their next PEAKS - 1 highest steps
MAC_CAPS = (1, 5, 15, 50)  # % of the model's MACs: the budgets of extra MACs the search runs under (then none)


@dataclass(frozen=True)
class Choice:
    """What the search found: the chosen plan and the figures `plan`, the budget and the bench report."""

    memory: AotMemory
    mode: str
    layerwise_ram: int  # RAM layer by layer (`speed`)
    smallest_ram: int  # the least RAM the search reached (the layer-wise RAM when patching gains nothing)
    smallest_extra_macs: int  # ... and its extra MACs
    total_macs: int  # the model's MACs layer by layer
    room: int | None  # what the budget leaves for RAM (None: no limit known)
    float_io: int = 0  # float I/O bytes outside the arena

    @property
    def extra_macs(self) -> int:
        return sum(s.macs[0] - s.macs[1] for s in self.memory.schedules)

    @property
    def ram(self) -> int:
        return ram_bytes(self.memory, self.float_io)

    def to_json(self) -> dict:
        return {"mode": self.mode, "room_bytes": self.room, "layerwise_ram_bytes": self.layerwise_ram,
                "chosen_ram_bytes": self.ram, "arena_bytes": self.memory.arena_bytes,
                "smallest_ram_bytes": self.smallest_ram, "smallest_extra_macs": self.smallest_extra_macs,
                "total_macs": self.total_macs, "extra_macs": self.extra_macs,
                "extra_macs_fraction": round(self.extra_macs / self.total_macs, 4) if self.total_macs else 0.0,
                "patch_stages": len(self.memory.schedules)}


def graph_macs(graph: Graph) -> int:
    """Multiply-accumulates of the convolutions and fully connected layers, run once."""
    total = 0
    for op in graph.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            out = graph.tensors[op.outputs[0]].shape
            filt = graph.tensors[op.inputs[1]].shape
            depth = filt[3] if op.kind == "CONV_2D" else 1
            total += out[1] * out[2] * out[3] * filt[1] * filt[2] * depth
        elif op.kind == "FULLY_CONNECTED":
            w = graph.tensors[op.inputs[1]].shape
            rows = graph.tensors[op.outputs[0]].nbytes // max(w[0], 1)
            total += rows * w[0] * w[1]
    return total


def _outside(schedules: tuple[Schedule, ...]) -> int:
    """Bytes of an int8 input a stage reads in place (the caller's buffer, outside the arena)."""
    for s in schedules:
        if s.external_input:
            h, w, c = s.shapes[s.input]
            return h * w * c
    return 0


def ram_bytes(memory: AotMemory, float_io: int) -> int:
    """Arena + buffers outside it: the float I/O (`float_io`) and an input read in place."""
    return memory.arena_bytes + float_io + _outside(memory.schedules)


def _extra(schedules) -> int:
    return sum(s.macs[0] - s.macs[1] for s in schedules)


def _root(parent: dict[int, int], u: int) -> int:
    while parent[u] != u:
        u = parent[u]
    return u


def with_stage(kept: Assembled, s: Schedule) -> tuple[int, ...]:
    """The live bytes per step with stage `s` added to the buffers `kept` (which hold no stage
    overlapping it), as `plan_aot(bound_only=True)` would give them, without assembling them
    again: a group holding a tensor of the stage is taken apart (the stage's nodes no longer run
    in place, the tensors it makes inside go, its input lives to its last node, or leaves the arena
    when read from the caller's buffer, and its output from its first), the scratch of its
    in-place ops goes, and its patch buffers come."""
    first, last = s.nodes[0].node + 1, s.last_node + 1
    inside = {n.writes for n in s.nodes} - {s.output}
    related = inside | {s.input, s.output}
    staged = {n.node for n in s.nodes}
    steps = list(kept.live)

    def add(size: int, lo: int, hi: int) -> None:
        for t in range(lo, hi + 1):
            steps[t] += size

    for j, b in enumerate(kept.buffers):
        if j < len(kept.groups) and related.intersection(kept.groups[j]):
            add(-b.size, b.first, b.last)
            members = [u for u in kept.groups[j] if u not in inside and not (s.external_input and u == s.input)]
            parent = {u: u for u in members}
            for a, c, op in kept.edges:
                if a in parent and c in parent and op not in staged:
                    parent[_root(parent, a)] = _root(parent, c)
            parts: dict[int, list[int]] = {}
            for u in members:
                parts.setdefault(_root(parent, u), []).append(u)
            for part in parts.values():
                bs = [kept.tensors[u] for u in part]
                lo = min(min(x.first for x in bs), first if s.output in part else 1 << 30)
                hi = max(max(x.last for x in bs), last if s.input in part else -1)
                add(max(x.size for x in bs), lo, hi)
        elif len(kept.groups) <= j < len(kept.groups) + len(kept.inplace) and \
                kept.inplace[j - len(kept.groups)] in staged:
            add(-b.size, b.first, b.last)
    for b in _patch_buffers(s, 0):
        add(b.size, b.first, b.last)
    return tuple(steps)


def choose(graph: Graph, folds: Folds, calls, *, inplace: str = "auto", mode: str = "balanced",
           room: int | None = None, float_io: int = 0, schedules: tuple[Schedule, ...] | None = None,
           max_extra: float | None = None) -> Choice:
    """The arena plan `mode` picks within `room` bytes of RAM (module docstring). Never raises for
    "nothing fits": the caller's budget check reports it, with `Choice.smallest_ram`. `schedules`:
    plan these patch stages instead of searching (tests, tools). `max_extra`: schedules with at most
    this fraction of the model's MACs extra (the bench's "min within 15 %")."""
    if mode not in MEMORY_MODES:
        raise ValueError(f"mode must be one of {MEMORY_MODES}, not {mode!r}")
    scratch = inplace_candidates(graph, folds)
    known: dict[int, int | None] = {}

    def ok(op):  # the same answer for an op every time: ask once
        if op.index not in known:
            known[op.index] = scratch(op)
        return known[op.index]

    layerwise = plan_aot(graph, inplace=inplace, inplace_ok=ok, folds=folds)
    total = graph_macs(graph)
    base_ram = ram_bytes(layerwise, float_io)

    def choice(memory: AotMemory) -> Choice:
        ram = ram_bytes(memory, float_io)
        smallest = (ram, _extra(memory.schedules)) if ram < base_ram else (base_ram, 0)
        return Choice(memory, mode, base_ram, smallest[0], smallest[1], total, room, float_io)

    if schedules is not None:
        return choice(plan_aot(graph, inplace=inplace, inplace_ok=ok, folds=folds, schedules=tuple(schedules)))
    if mode == "speed" or (mode == "balanced" and (room is None or base_ram <= room)):
        return choice(layerwise)
    every = "all" if inplace != "off" else "off"

    base = lifetimes(graph)

    seen: dict[tuple, Assembled] = {}

    def assembled(stages: tuple[Schedule, ...]) -> Assembled:
        key = tuple((x.nodes[0].node, x.last_node, x.grid) for x in stages)
        if key not in seen:  # each round's candidates share a few sets of other stages
            seen[key] = plan_aot(graph, inplace=every, inplace_ok=ok, folds=folds, schedules=stages,
                                 bound_only=True, base=base)
        return seen[key]

    def live(stages: tuple[Schedule, ...]) -> tuple[int, ...]:
        return assembled(stages).live

    found_at: dict[int, list[Schedule]] = {}

    def covering(node: int) -> list[Schedule]:  # the runs under each MAC budget ask for the same nodes
        if node not in found_at:
            found_at[node] = list(candidates(graph, folds, calls, covering=node))
        return found_at[node]

    def rank(stages: tuple[Schedule, ...], steps: tuple[int, ...], peaks: int) -> tuple:
        """RAM first, then the next highest steps: lowering one of two equal peaks is progress."""
        return (max(steps) + float_io + _outside(stages), *sorted(steps, reverse=True)[1:peaks])

    def greedy(cap: int | None, fit: bool, peaks: int = PEAKS) -> tuple[Schedule, ...]:
        """Rounds over the RAM peak (module docstring), trying only schedules with at most `cap`
        extra MACs. Each round keeps the least RAM; with `fit` (balanced), a round where some
        schedule brings the whole estimate within the room keeps the one of fewest extra MACs, and
        ends the search."""
        stages: tuple[Schedule, ...] = ()
        steps = live(stages)
        current = rank(stages, steps, peaks)
        for _ in range(MAX_ROUNDS):
            peak = max(range(len(steps)), key=lambda t: (steps[t], -t))
            options = []
            settled = set()  # (span, strips or squares) whose stage no longer holds the peak: more tiles can't help
            for s in covering(max(peak - 1, 0)):
                family = (s.nodes[0].node, s.last_node, s.grid[1] == 1)
                if family in settled:
                    continue
                kept = [x for x in stages if x.last_node < s.nodes[0].node or x.nodes[0].node > s.last_node]
                trial = tuple(sorted((*kept, s), key=lambda x: x.nodes[0].node))
                extra = _extra(trial)
                if cap is not None and extra > cap:
                    continue
                trial_steps = with_stage(assembled(tuple(kept)), s)
                options.append((rank(trial, trial_steps, peaks), extra, s.grid, trial, trial_steps))
                window = range(s.nodes[0].node + 1, s.last_node + 2)
                if max(trial_steps) == max((v for t, v in enumerate(trial_steps) if t not in window), default=0):
                    settled.add(family)
            better = [o for o in options if o[0] < current]
            if not better:
                break
            fitting = [o for o in better if fit and o[0][0] <= room]
            pick = min(fitting, key=lambda o: (o[1], o[0], o[2])) if fitting else \
                min(better, key=lambda o: (o[0], o[1], o[2]))
            current, _, _, stages, steps = pick
            if fitting:
                break
        return stages

    plans: dict[tuple, AotMemory] = {(): layerwise}

    def planned(stages: tuple[Schedule, ...]) -> AotMemory:
        key = tuple((x.nodes[0].node, x.last_node, x.grid) for x in stages)
        if key not in plans:
            plans[key] = plan_aot(graph, inplace=inplace, inplace_ok=ok, folds=folds, schedules=stages)
        return plans[key]

    caps = [total * share // 100 for share in MAC_CAPS] + [None]
    if max_extra is not None:  # a budget of extra MACs (a fraction of the model's): no search beyond it
        limit = int(total * max_extra)
        caps = [c for c in caps if c is not None and c < limit] + [limit]

    def estimate(stages: tuple[Schedule, ...]) -> int:
        return max(live(stages)) + float_io + _outside(stages)

    if mode == "balanced":  # the smallest MAC budget under which a schedule fits the room
        for cap in caps:
            stages = greedy(cap, fit=True)
            if estimate(stages) <= room:
                memory = planned(stages)
                if ram_bytes(memory, float_io) <= room:
                    return choice(memory)
    # min (or balanced when nothing fits): the least RAM over the MAC budgets, by the estimate; a gain
    # under MIN_SLACK is not bought with extra MACs. Only the one kept is planned.
    found = [greedy(cap, fit=False, peaks=peaks) for cap in caps for peaks in (1, PEAKS)] + [()]
    least = min(estimate(x) for x in found)
    best = min((x for x in found if estimate(x) <= least * (1 + MIN_SLACK)), key=lambda x: (_extra(x), estimate(x)))
    memory = planned(best)
    return choice(memory if ram_bytes(memory, float_io) <= base_ram else layerwise)
