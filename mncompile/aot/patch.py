"""Patch-based execution: a run of layers runs tile by tile (MCUNetV2's patch-based inference).

The memory-heavy start of a MobileNet (large maps, few channels) sets the layer-wise bound: one
layer's whole input and output alive together. A *patch stage* runs a run of nodes once per
spatial tile of the stage's output instead: for each tile, the receptive field of that tile is
computed through the stage into small *patch buffers*; where neighbouring tiles' fields overlap
the overlap is computed again (the extra MACs), and only the stage's input and output are whole
tensors. The rest of the network runs layer by layer; a model may have several stages.

This module holds the arithmetic, on the graph alone (`patch_search` chooses, `render_patch`
writes the C, `patch_check` replays it):

- `stage_runs`: the runs of nodes a stage can hold (CONV_2D, DEPTHWISE_CONV_2D, an ADD of two
  tensors of one shape; PADs folded into a convolution), and `spans`: the parts of a run that read
  one tensor from outside and leave one tensor to the rest of the graph;
- `make_schedule`: for a span and a tile grid, every tensor's region per tile. Regions are separable
  (a row interval per tile row, a column interval per tile column): a convolution's output rows
  [o0, o1) read input rows [o0 * s - pad, (o1 - 1) * s - pad + (k - 1) * d + 1), clamped to the map
  (what falls outside is the layer's padding), and a tensor's region is the hull of what its
  readers need. A convolution then runs on its region with its padding shifted to the region
  (``pad' = pad + a - o0 * s``, never negative) and the map height set to the rows it reads and
  its width to its buffer's, so taps outside the region are exactly the taps outside the map: the
  kernels compute the same sums. The columns a convolution reads must start where its buffer's do
  (a kernel's map width is its input's row stride);
- `candidates`: every span with every tile grid (`grids`), the regions of the spans that end at
  one tensor from one backward pass (`_restrict`).

The stage's input stays a whole tensor; each tile reads its region in place when the region spans
whole rows, else copies it into a patch buffer. An int8 graph input read only by the stage is then
the caller's buffer, not the arena's (`Schedule.external_input`). The stage's output is written in
place when tiles span whole rows, else through a patch buffer of one tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mncompile.aot.lower import Folds
from mncompile.graph.ir import Graph

STAGE_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD")
MAX_TILES_PER_AXIS = 12


@dataclass(frozen=True)
class Window:
    """One axis of a convolution's window: kernel size, stride, dilation, leading padding (folded
    PAD included)."""

    k: int
    s: int
    d: int
    pad: int

    def need(self, o0: int, o1: int, size: int) -> tuple[int, int]:
        """The input interval output [o0, o1) reads, clamped to [0, size)."""
        return max(0, o0 * self.s - self.pad), min(size, (o1 - 1) * self.s - self.pad + (self.k - 1) * self.d + 1)


@dataclass(frozen=True)
class StageNode:
    node: int  # graph node index
    kind: str
    reads: tuple[int, ...]  # activation tensors read (a folded PAD's input for its convolution)
    writes: int
    rows: Window | None  # None: elementwise (ADD)
    cols: Window | None
    macs_per_pixel: int  # multiply-accumulates per output pixel


def _shape(graph: Graph, t: int) -> tuple[int, int, int]:
    shape = graph.tensors[t].shape
    return (shape[1], shape[2], shape[3]) if len(shape) == 4 and shape[0] == 1 else (0, 0, 0)


def _stage_node(graph: Graph, folds: Folds, calls, op) -> StageNode | None:
    """The node as a stage holds it, or None when a stage cannot hold it."""
    if op.kind not in STAGE_KINDS or len(op.outputs) != 1 or \
            not all(_shape(graph, t)[0] for t in (*graph.activation_inputs(op), op.outputs[0])):
        return None
    out = op.outputs[0]
    h, w, c = _shape(graph, out)
    if op.kind == "ADD":
        ins = graph.activation_inputs(op)
        if len(ins) != 2 or _shape(graph, ins[0]) != (h, w, c) or _shape(graph, ins[1]) != (h, w, c):
            return None
        return StageNode(op.index, op.kind, tuple(ins), out, None, None, 0)
    f = dict(calls[op.index].fields)
    rows = Window(f["k_h"], f["stride_h"], f["dilation_h"], f["pad_top"])
    cols = Window(f["k_w"], f["stride_w"], f["dilation_w"], f["pad_left"])
    depth = f["k_h"] * f["k_w"] * (f["in_c"] if calls[op.index].kernel == "mn_conv2d_s8" else 1)
    return StageNode(op.index, op.kind, (folds.input_of(op),), out, rows, cols, depth * c)


def stage_runs(graph: Graph, folds: Folds, calls) -> list[tuple[StageNode, ...]]:
    """The runs of consecutive nodes a stage can hold (CONV_2D, DEPTHWISE_CONV_2D, ADD of one shape;
    folded PADs are skipped, their convolution reads through them). A convolution's window comes
    from its lowered call (`calls`, by node): the padding the kernel applies, a folded PAD's included."""
    runs: list[list[StageNode]] = [[]]
    for op in graph.ops:
        if folds.of_pad(op.index) is not None:
            continue
        node = _stage_node(graph, folds, calls, op)
        if node is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(node)
    return [tuple(r) for r in runs if r]


def spans(graph: Graph, run: tuple[StageNode, ...], max_nodes: int = 64) -> list[tuple[int, int, int]]:
    """(i, n, tensor): run[i:n] is a stage: it reads exactly one tensor it does not make and exactly
    one tensor it makes (`tensor`, not read inside it) is read after it."""
    readers: dict[int, list[int]] = {}
    for op in graph.ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op.index)
    outputs = set(graph.outputs)
    result = []
    for i in range(len(run)):
        made: set[int] = set()
        inputs: set[int] = set()
        for n in range(i + 1, min(len(run), i + max_nodes) + 1):
            s = run[n - 1]
            inputs |= {t for t in s.reads if t not in made}
            made.add(s.writes)
            if len(inputs) != 1:
                break  # reading two outside tensors: longer spans read them too
            last = s.node
            crossing = [t for t in made if t in outputs or any(k > last for k in readers.get(t, ()))]
            if len(crossing) == 1 and not any(crossing[0] in x.reads for x in run[i:n]):
                result.append((i, n, crossing[0]))
    return result


def splits(size: int, parts: int) -> tuple[tuple[int, int], ...]:
    """`size` in `parts` intervals, the larger ones first (sizes differ by at most one)."""
    q, r = divmod(size, parts)
    bounds, start = [], 0
    for i in range(parts):
        end = start + q + (1 if i < r else 0)
        bounds.append((start, end))
        start = end
    return tuple(bounds)


@dataclass(frozen=True)
class Schedule:
    """A patch stage: nodes[:n] of `stage_nodes` over a ty x tx grid of tiles of `output`.

    Per axis (0: rows, 1: columns) and tile index: `region[axis][tensor][i]` is the interval of
    the tensor the tile computes (or, for the stage input, reads); `reads[axis][node][j][i]` the
    interval node reads of its j-th input. `direct_input`/`direct_output`: the stage input is read
    (the output written) in place, no patch buffer, because every tile's interval spans whole rows."""

    nodes: tuple[StageNode, ...]
    input: int  # the whole tensor the stage reads
    output: int  # the whole tensor the stage writes
    grid: tuple[int, int]
    region: tuple[dict, dict]
    reads: tuple[dict, dict]
    shapes: dict  # tensor -> (h, w, c)
    external_input: bool  # the int8 graph input, read from the caller's buffer (not in the arena)

    @cached_property
    def direct_input(self) -> bool:
        h, w, _ = self.shapes[self.input]
        return all(iv == (0, w) for iv in self.region[1][self.input])

    @property
    def direct_output(self) -> bool:
        return self.grid[1] == 1

    @cached_property
    def patch_tensors(self) -> tuple[int, ...]:
        """Tensors held in patch buffers, in the order they are made (the stage input first when it
        is copied in; the output last when it goes through a tile buffer)."""
        inner = [s.writes for s in self.nodes if s.writes != self.output]
        head = [] if self.direct_input else [self.input]
        tail = [] if self.direct_output else [self.output]
        return tuple(head + inner + tail)

    def extent(self, t: int) -> tuple[int, int]:
        """The largest interval length of tensor t over tiles, (rows, cols)."""
        return tuple(max(b - a for a, b in self.region[axis][t]) for axis in (0, 1))

    def patch_bytes(self, t: int) -> int:
        return self._patch_sizes[t]

    @cached_property
    def _patch_sizes(self) -> dict[int, int]:
        sizes = {}
        for t in self.patch_tensors:
            r, c = self.extent(t)
            sizes[t] = r * c * self.shapes[t][2]
        return sizes

    @cached_property
    def macs(self) -> tuple[int, int]:
        """(MACs the stage computes over all tiles, MACs of the same nodes run once)."""
        done = once = 0
        for s in self.nodes:
            h, w, _ = self.shapes[s.writes]
            rows = sum(b - a for a, b in self.region[0][s.writes])
            cols = sum(b - a for a, b in self.region[1][s.writes])
            done += rows * cols * s.macs_per_pixel
            once += h * w * s.macs_per_pixel
        return done, once

    @property
    def last_node(self) -> int:
        return self.nodes[-1].node

    def to_json(self) -> dict:
        done, once = self.macs
        return {"nodes": [s.node for s in self.nodes], "first_node": self.nodes[0].node, "last_node": self.last_node,
                "input_tensor": self.input, "output_tensor": self.output, "tiles": list(self.grid),
                "output_shape": list(self.shapes[self.output]), "external_input": self.external_input,
                "input_in_place": self.direct_input, "output_in_place": self.direct_output,
                "stage_macs_once": once, "stage_macs_patched": done, "extra_macs": done - once,
                "patch_buffers": [{"tensor": t, "bytes": self.patch_bytes(t), "rows": self.extent(t)[0],
                                   "cols": self.extent(t)[1], "channels": self.shapes[t][2]}
                                  for t in self.patch_tensors]}


def _axis(nodes: tuple[StageNode, ...], shapes: dict, output: int, axis: int, parts: int):
    """(region, reads) along one axis with `parts` tiles (see `Schedule`), or None when a node's
    output is read by nothing in the stage."""
    reg: dict[int, list] = {output: list(splits(shapes[output][axis], parts))}
    reads: dict[int, list] = {}
    for s in reversed(nodes):
        out = reg.get(s.writes)
        if out is None:
            return None
        window = s.rows if axis == 0 else s.cols
        wanted = []
        for t in s.reads:
            size = shapes[t][axis]
            need = [window.need(a, b, size) for a, b in out] if window else list(out)
            wanted.append(need)
            have = reg.get(t)
            reg[t] = need if have is None else [(min(x[0], y[0]), max(x[1], y[1]))
                                                for x, y in zip(have, need, strict=True)]
        reads[s.node] = wanted
    return reg, reads


def _stage_io(graph: Graph, nodes: tuple[StageNode, ...]) -> tuple[dict, int]:
    shapes = {t: _shape(graph, t) for s in nodes for t in (*s.reads, s.writes)}
    made = {s.writes for s in nodes}
    (inp,) = {t for s in nodes for t in s.reads if t not in made}
    return shapes, inp


def make_schedule(graph: Graph, nodes: tuple[StageNode, ...], output: int,
                  grid: tuple[int, int], axes=None, io=None) -> Schedule | None:
    """The schedule of `nodes` ending in `output` on `grid`, or None when a convolution would read
    columns of a buffer that do not start at its first (a kernel's map width is its input's row
    stride). `axes`: the two `_axis` results and `io`: `_stage_io`'s, when the caller has them."""
    shapes, inp = io or _stage_io(graph, nodes)
    rows, cols = axes or (_axis(nodes, shapes, output, 0, grid[0]), _axis(nodes, shapes, output, 1, grid[1]))
    if rows is None or cols is None:
        return None
    full_cols = all(iv == (0, shapes[inp][1]) for iv in cols[0][inp])
    for s in nodes:
        if s.rows is None:
            continue
        for t, need in zip(s.reads, cols[1][s.node], strict=True):
            # the kernel takes the buffer's width as its map width (its row stride): the columns it
            # reads must start where the buffer does (what lies past them the window never reaches)
            starts = [0] * len(need) if t == inp and full_cols else [a for a, _ in cols[0][t]]
            if [a for a, _ in need] != starts:
                return None
    external = inp in graph.inputs and graph.tensors[inp].dtype == "INT8" and inp not in graph.outputs and \
        all(inp not in op.inputs for op in graph.ops if op.index > nodes[-1].node)
    return Schedule(nodes, inp, output, grid, (rows[0], cols[0]), (rows[1], cols[1]), shapes, external)


def grids(h: int, w: int):
    """The tile grids the search tries: rows 1..12 (at most h), by columns 1 (strips: no column
    overlap, the output written in place) or as many as rows (square tiles)."""
    for ty in range(1, min(h, MAX_TILES_PER_AXIS) + 1):
        for tx in sorted({1, ty}):
            if tx <= min(w, MAX_TILES_PER_AXIS) and (ty, tx) != (1, 1):
                yield ty, tx


def _restrict(axis, nodes: tuple[StageNode, ...], inp: int):
    """An `_axis` result of a longer stage with the same output, cut to `nodes`: the regions of the
    tensors they make are the same (their readers are the same), the input's is the hull of what
    these nodes read of it."""
    if axis is None:
        return None
    reg, reads = axis
    mine = {s.node for s in nodes}
    region = {s.writes: reg[s.writes] for s in nodes}
    needs = [need for s in nodes for t, need in zip(s.reads, reads[s.node], strict=True) if t == inp]
    region[inp] = [(min(iv[0] for iv in tile), max(iv[1] for iv in tile)) for tile in zip(*needs, strict=True)]
    return region, {k: v for k, v in reads.items() if k in mine}


def candidates(graph: Graph, folds: Folds, calls, covering: int | None = None, max_nodes: int = 64):
    """Every valid schedule, each span of at most `max_nodes` nodes with each of its `grids`; with
    `covering`, only spans that hold that graph node. The regions of the spans that end at one
    tensor come from one backward pass over the longest of them (`_restrict`)."""
    for run in stage_runs(graph, folds, calls):
        ends: dict[tuple[int, int], list[int]] = {}
        for i, n, out in spans(graph, run, max_nodes):
            if covering is None or run[i].node <= covering <= run[n - 1].node:
                ends.setdefault((n, out), []).append(i)
        for (n, out), starts in ends.items():
            longest = run[min(starts):n]
            shapes, _ = _stage_io(graph, longest)
            h, w, _ = _shape(graph, out)
            cache: dict = {}
            for i in sorted(starts):
                nodes = run[i:n]
                _, inp = _stage_io(graph, nodes)
                for ty, tx in grids(h, w):
                    for axis, parts in ((0, ty), (1, tx)):
                        if (axis, parts) not in cache:
                            cache[axis, parts] = _axis(longest, shapes, out, axis, parts)
                    axes = (_restrict(cache[0, ty], nodes, inp), _restrict(cache[1, tx], nodes, inp))
                    schedule = make_schedule(graph, nodes, out, (ty, tx), axes, (shapes, inp))
                    if schedule is not None:
                        yield schedule

