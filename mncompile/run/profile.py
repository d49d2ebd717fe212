"""Per-layer profiles: the firmware's "profile:" lines mapped back to the model's operators.

A project emitted with ``--profile`` times every node of the model on the device and prints,
before its summary line (`mncompile.run.build.parse_firmware_output` reads them)::

    profile: node 3 DEPTHWISE_CONV_2D: 1234 SysTick ticks      one line per node, ticks summed
    profile: 31 nodes, 4 inferences: 98765 SysTick ticks in the nodes      over the inferences

- AOT backend: ``model_invoke`` reads ``board_ticks()`` once before the first node and once after
  every node that runs a kernel (`mncompile.aot.render.profile_code`); each node gets the ticks
  since the previous read. Views (RESHAPE) and PADs folded into a convolution run nothing: 0.
- TFLM backend: a ``tflite::MicroProfilerInterface`` of our own (``NodeProfiler`` in
  ``src/main.cc``) reads ``board_ticks()`` in BeginEvent/EndEvent, which TFLM's interpreter calls
  around each node's Invoke; the k-th event of an Invoke() is node k. The firmware prints TFLM's
  tag (the operator's name), checked here against the model's operator.

`layer_profile` turns them into one `LayerTime` per operator: its index, kind, the Keras layer
(or tensor) name of its output, its MACs (`mncompile.graph.metrics.graph_costs`, the count `run`
divides the whole inference by), the ticks per inference, instructions (ticks times the board's
``instructions_per_tick`` on QEMU; a board with DWT prints cycles) and its share of the nodes'
total. It also compares the nodes' total with the whole-inference figure the vector lines give:

- the nodes can never take longer than the inference they are part of (a problem if they do);
- the rest is what runs outside the nodes: the AOT input and output copies and the call (TFLM:
  the interpreter's loop between nodes, the profiler's own calls), plus the timer reads at the
  edges. Each node's figure is within one tick of its true time plus one timer read (SysTick
  under QEMU: one tick is 40 instructions on the MPS2 boards, the resolution of a node's figure).
"""

from __future__ import annotations

from dataclasses import dataclass

from mncompile.run.build import FirmwareProfile

__all__ = ["LayerProfile", "LayerTime", "layer_profile", "profile_of_run"]


@dataclass(frozen=True)
class LayerTime:
    node: int
    kind: str  # the model's operator
    name: str  # the Keras layer (or tensor) name of its output
    macs: int
    ticks: float  # per inference
    instructions: int | None  # per inference (QEMU: ticks x instructions_per_tick); None without the factor
    share: float  # of the nodes' total
    runs: bool = True  # False: the AOT code runs nothing for it (a view, a PAD folded into a convolution)

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.instructions is not None and self.macs else None

    def to_json(self) -> dict:
        return {"node": self.node, "op": self.kind, "name": self.name, "macs": self.macs, "ticks": self.ticks,
                "instructions": self.instructions, "instructions_per_mac": self.instructions_per_mac,
                "share": self.share, "runs_kernel": self.runs}


@dataclass(frozen=True)
class LayerProfile:
    layers: tuple[LayerTime, ...]
    unit: str  # what a tick is: "SysTick ticks" (QEMU), "DWT cycles" (a board with DWT)
    inferences: int  # the firmware's ticks are summed over this many inferences
    instructions_per_tick: float | int | None
    inference_ticks: float | None  # the whole inference, per inference, from the vector lines
    problems: tuple[str, ...] = ()  # the profile disagrees with the model or with itself
    notes: tuple[str, ...] = ()

    @property
    def node_ticks(self) -> float:
        """The nodes' total per inference."""
        return sum(t.ticks for t in self.layers)

    @property
    def node_instructions(self) -> int | None:
        f = self.instructions_per_tick
        return round(self.node_ticks * f) if f is not None else None

    @property
    def outside_ticks(self) -> float | None:
        """Per inference, what the whole-inference figure has beyond the nodes."""
        return self.inference_ticks - self.node_ticks if self.inference_ticks is not None else None

    @property
    def coverage(self) -> float | None:
        """The nodes' total as a fraction of the whole inference."""
        return self.node_ticks / self.inference_ticks if self.inference_ticks else None

    def to_json(self) -> dict:
        f = self.instructions_per_tick
        return {"unit": self.unit, "inferences": self.inferences, "instructions_per_tick": f,
                "layers": [t.to_json() for t in self.layers],
                "nodes": {"ticks": self.node_ticks, "instructions": self.node_instructions},
                "inference": {"ticks": self.inference_ticks,
                              "instructions": (round(self.inference_ticks * f)
                                               if f is not None and self.inference_ticks is not None else None)},
                "outside_nodes": {"ticks": self.outside_ticks,
                                  "instructions": (round(self.outside_ticks * f)
                                                   if f is not None and self.outside_ticks is not None else None)},
                "coverage": self.coverage, "problems": list(self.problems), "notes": list(self.notes)}

    def table_lines(self) -> list[str]:
        """The per-layer table as Markdown (a terminal shows it as it is; the README carries it)."""
        counted = self.instructions_per_tick is not None
        what = "instructions" if counted else self.unit
        lines = [f"| op | kind | layer | MACs | {what} | {what}/MAC | share |", "|---:|---|---|---:|---:|---:|---:|"]
        for t in self.layers:
            value = t.instructions if counted else t.ticks
            per_mac = value / t.macs if value is not None and t.macs else None
            text = "view" if not t.runs else f"{value:,.0f}"
            lines.append(f"| {t.node} | {t.kind} | {_cell(t.name)} | {t.macs:,} | {text} | "
                         f"{'' if per_mac is None else f'{per_mac:.2f}'} | {t.share:.1%} |")
        macs = sum(t.macs for t in self.layers)
        total = self.node_instructions if counted else self.node_ticks
        lines.append(f"| | **total** | {len(self.layers)} ops | {macs:,} | {total:,.0f} | "
                     f"{total / macs if macs else 0:.2f} | 100% |")
        return lines

    def summary_line(self) -> str:
        """How the nodes' total compares with the whole inference, and why they differ."""
        f, whole = self.instructions_per_tick, self.inference_ticks
        nodes = f"{self.node_ticks:,.1f} {self.unit}" + (f" = {self.node_instructions:,} instructions" if f else "")
        text = f"per-layer profile over {self.inferences} inference{'s' if self.inferences != 1 else ''}: nodes {nodes}"
        if whole is not None and whole > 0:
            outside = self.outside_ticks
            text += (f", {self.coverage:.3%} of the whole inference ({whole:,.1f} {self.unit}); outside the nodes "
                     f"{outside:,.1f} {self.unit}" + (f" ({outside * f:,.0f} instructions)" if f else "")
                     + ": I/O copies, the call or the interpreter's loop, timer reads")
        if f:
            text += f"; resolution 1 tick = {f:g} instructions"
        return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def layer_profile(profile: FirmwareProfile, graph, *, instructions_per_tick: float | int | None,
                  inference_ticks: float | None, no_kernel: frozenset[int] = frozenset(),
                  expected_inferences: int | None = None) -> LayerProfile:
    """The firmware's per-node lines mapped onto `graph` (the model the firmware runs). `no_kernel`:
    the nodes the AOT code runs nothing for. `inference_ticks`: the whole inference, per inference.
    Whatever does not agree (a node missing or twice, another operator, a sum that is not the
    lines', nodes longer than the inference) is a problem."""
    from mncompile.graph.metrics import graph_costs

    problems, notes = [], []
    costs = graph_costs(graph)
    seen: dict[int, int] = {}
    for t in profile.nodes:
        seen[t.node] = seen.get(t.node, 0) + 1
    twice = sorted(k for k, n in seen.items() if n > 1)
    missing = [op.index for op in graph.ops if op.index not in seen]
    extra = sorted(k for k in seen if not 0 <= k < len(graph.ops))
    if profile.node_count is None:
        problems.append("the firmware's profile has no closing \"profile: N nodes, ...\" line (cut short?)")
    elif profile.node_count != len(graph.ops):
        problems.append(f"the firmware profiled {profile.node_count} nodes, the model has {len(graph.ops)}")
    if twice or missing or extra:
        problems.append("the profile lines do not name every node once:"
                        + (f" twice {twice}" if twice else "") + (f" missing {missing}" if missing else "")
                        + (f" not in the model {extra}" if extra else ""))
    if profile.total_ticks is not None and profile.total_ticks != sum(t.ticks for t in profile.nodes):
        problems.append(f"the profile's closing line says {profile.total_ticks} {profile.unit}, its lines add up to "
                        f"{sum(t.ticks for t in profile.nodes)}")
    if profile.other_events:
        notes.append(f"{profile.other_events} profiler events were not a top-level node (their time is in the "
                     "node around them)")
    inferences = profile.inferences or 0
    if expected_inferences is not None and profile.inferences is not None and inferences != expected_inferences:
        problems.append(f"the profile is summed over {inferences} inferences, the vector lines report "
                        f"{expected_inferences}")
    by_node = {t.node: t for t in profile.nodes}
    total = sum(t.ticks for k, t in by_node.items() if 0 <= k < len(graph.ops)) or 0
    layers = []
    for op, cost in zip(graph.ops, costs, strict=True):
        line = by_node.get(op.index)
        if line is not None and line.kind != op.kind:
            problems.append(f"node {op.index} is a {op.kind} in the model, the firmware timed a {line.kind}")
        ticks = line.ticks if line is not None else 0
        per = ticks / inferences if inferences else 0.0
        runs = op.index not in no_kernel
        if runs and line is not None and ticks == 0 and inferences:
            notes.append(f"node {op.index} ({op.kind}) took 0 {profile.unit}: below the timer's resolution")
        layers.append(LayerTime(op.index, op.kind, graph.layer_name(op.outputs[0]), cost.macs, per,
                                round(per * instructions_per_tick) if instructions_per_tick is not None else None,
                                ticks / total if total else 0.0, runs))
    result = LayerProfile(tuple(layers), profile.unit or "ticks", inferences, instructions_per_tick,
                          inference_ticks, tuple(problems), tuple(notes))
    if inference_ticks is not None and result.node_ticks > inference_ticks + 1e-9:
        problems.append(f"the nodes took {result.node_ticks:,.1f} {result.unit} per inference, more than the whole "
                        f"inference ({inference_ticks:,.1f}): the profile cannot be right")
        result = LayerProfile(result.layers, result.unit, inferences, instructions_per_tick, inference_ticks,
                              tuple(problems), tuple(notes))
    return result


def profile_of_run(manifest: dict, report, graph, instructions_per_tick: float | int | None,
                   vector_ticks: list[int | None]) -> tuple[LayerProfile | None, list[str], list[str]]:
    """The per-layer profile of a run, and its (problems, notes) for the run's report.

    `manifest`: the project's mncompile.json (options.profile: emitted with --profile; aot.layers:
    the nodes that run no kernel); `report`: what the firmware printed (`FirmwareReport`); `graph`:
    the model the firmware runs (None: unreadable); `vector_ticks`: each vector's whole-inference
    ticks (None where its line has none). None without "profile:" lines, which is a problem when
    the project was emitted with --profile and the firmware got as far as its summary."""
    asked = bool(manifest.get("options", {}).get("profile"))
    if report.profile is None:
        missing = asked and report.total is not None
        return None, (["the project was emitted with --profile, and the firmware printed no \"profile:\" lines"]
                      if missing else []), []
    if graph is None:
        why = "no per-layer profile: the firmware's model/*.tflite is not readable"
        return None, ([why] if asked else []), ([] if asked else [why])
    no_kernel = frozenset(layer["node"] for layer in manifest.get("aot", {}).get("layers", ())
                          if layer.get("kernel") is None)
    timed = [t for t in vector_ticks if t is not None]
    result = layer_profile(report.profile, graph, instructions_per_tick=instructions_per_tick,
                           inference_ticks=sum(timed) / len(timed) if timed else None, no_kernel=no_kernel,
                           expected_inferences=len(timed))
    return result, [f"profile: {p}" for p in result.problems], [f"profile: {n}" for n in result.notes]
