"""Rendering a patch stage (`mncompile.aot.patch`): the tile loop of ``model_invoke``.

Each tile row and tile column has one row of a constant table (``mn_patch_rows``,
``mn_patch_cols``) holding, along that axis, every interval the tile needs: each tensor's region
(its start and length), each node's input interval (its offset into the buffer it reads), output
length and shifted padding. The loop copies each node's ``static const`` parameters into a local
struct, sets the map sizes and padding of the tile, and calls the same kernel as the layer-wise
code; an ADD runs row by row (its inputs may be parts of larger patches). The stage's input is read
in place, or copied into its patch, and the output tile is written in place, or copied out of its
patch (`mn_patch_copy`).
"""

from __future__ import annotations

from mncompile.ctext import c_comment_text

COPY_HELPER = """/* Patch stage: copy `rows` rows of `bytes` bytes between buffers of different row strides. */
static void mn_patch_copy(int8_t *dst, size_t dst_stride, const int8_t *src, size_t src_stride, int32_t rows,
                          size_t bytes)
{
    for (int32_t y = 0; y < rows; ++y) {
        memcpy(dst + (size_t)y * dst_stride, src + (size_t)y * src_stride, bytes);
    }
}
"""


class _Slots:
    """Named per-tile values along both axes: slot k is column k of both tables."""

    def __init__(self):
        self.names: list[str] = []
        self.values: list[tuple[list[int], list[int]]] = []

    def add(self, name: str, rows: list[int], cols: list[int]) -> int:
        self.names.append(name)
        self.values.append((rows, cols))
        return len(self.names) - 1


def _table(name: str, slots: _Slots, axis: int, tiles: int) -> str:
    lines = [f"static const int16_t {name}[{tiles}][{len(slots.names)}] MN_CONST = {{"]
    for i in range(tiles):
        lines.append("    {" + ", ".join(str(v[axis][i]) for v in slots.values) + "},")
    lines.append("};")
    return "\n".join(lines)


def render_stage(k: int, schedule, calls: dict, graph, memory, profile: bool) -> tuple[str, str]:
    """(declarations, body) of the stage `k`: its interval tables, and its tile loop."""
    s = schedule
    ty, tx = s.grid
    slots = _Slots()
    region = s.region

    def full(t: int) -> bool:
        return (t == s.input and s.direct_input) or (t == s.output and s.direct_output)

    def extent(t: int, axis: int) -> list[int]:  # the buffer's length along the axis, per tile
        size = s.shapes[t][axis]
        return [size] * len(region[axis][t]) if full(t) else [b - a for a, b in region[axis][t]]

    def start(t: int, axis: int) -> list[int]:  # where the buffer's first element sits in the map
        return [0] * len(region[axis][t]) if full(t) else [a for a, _ in region[axis][t]]

    def base(t: int) -> str:
        if full(t) and t == s.input:
            return "in" if s.external_input else f"MN_T({memory.offset(t)})"
        if full(t):
            return f"MN_T({memory.offset(t)})"
        return f"MN_T({memory.patch_offset(k, t)})"

    length = {t: slots.add(f"t{t} length", extent(t, 0), extent(t, 1))
              for t in dict.fromkeys([s.input, *(n.writes for n in s.nodes)])}
    body = [f"    /* Patch stage {k}: nodes {s.nodes[0].node}..{s.last_node} run over {ty} x {tx} tiles of t{s.output} "
            f"{list(s.shapes[s.output])}; each tile computes its receptive field",
            "     * through the stage (overlaps again) in patch buffers. */",
            f"    for (int32_t ty = 0; ty < {ty}; ++ty) {{",
            f"        for (int32_t tx = 0; tx < {tx}; ++tx) {{",
            f"            const int16_t *r = mn_patch_rows_{k}[ty];",
            f"            const int16_t *c = mn_patch_cols_{k}[tx];"]
    ind = "            "
    cin = s.shapes[s.input][2]
    if not s.direct_input:
        at = slots.add(f"t{s.input} start", [a for a, _ in region[0][s.input]], [a for a, _ in region[1][s.input]])
        w = s.shapes[s.input][1] * cin
        src = "in" if s.external_input else f"MN_T({memory.offset(s.input)})"
        body.append(f"{ind}/* the input region of the tile into its patch */")
        body.append(f"{ind}mn_patch_copy({base(s.input)}, (size_t)c[{length[s.input]}] * {cin}, {src} + "
                    f"((size_t)r[{at}] * {s.shapes[s.input][1]} + (size_t)c[{at}]) * {cin}, {w}, r[{length[s.input]}], "
                    f"(size_t)c[{length[s.input]}] * {cin});")
    for n in s.nodes:
        call = calls[n.node]
        name = c_comment_text(graph.layer_name(n.writes))
        # what the node computes of its output (the tile's region); `length` is its buffer's row
        # stride, the whole map when the stage writes its output in place
        out_len = length[n.writes] if not full(n.writes) else \
            slots.add(f"t{n.writes} rows/columns of the tile", [b - a for a, b in region[0][n.writes]],
                      [b - a for a, b in region[1][n.writes]])
        offs = []
        for j, t in enumerate(n.reads):
            need = s.reads[0][n.node][j], s.reads[1][n.node][j]
            offs.append(slots.add(f"node {n.node} input {j} offset",
                                  [a - b for (a, _), b in zip(need[0], start(t, 0), strict=True)],
                                  [a - b for (a, _), b in zip(need[1], start(t, 1), strict=True)]))
        dst = base(n.writes)
        if full(n.writes):  # whole rows of the output map: from the tile's first row
            first = slots.add(f"t{n.writes} start", [a for a, _ in region[0][n.writes]], [0] * tx)
            dst = f"{dst} + (size_t)r[{first}] * {s.shapes[n.writes][1] * s.shapes[n.writes][2]}"
        body.append(f"{ind}{{ /* node {n.node}: {n.kind} {name} */")
        if n.kind == "ADD":
            ch = s.shapes[n.writes][2]
            a, b = n.reads
            body += [f"{ind}    mn_add_params p = L{n.node};",
                     f"{ind}    p.size = c[{out_len}] * {ch};",
                     f"{ind}    for (int32_t y = 0; y < r[{out_len}]; ++y) {{"]
            srcs = [f"{base(t)} + ((size_t)(r[{o}] + y) * (size_t)c[{length[t]}] + (size_t)c[{o}]) * {ch}"
                    for t, o in zip((a, b), offs, strict=True)]
            out_row = f"{dst} + (size_t)y * (size_t)c[{length[n.writes]}] * {ch}"
            body += [f"{ind}        if (mn_add_s8(&p, {srcs[0]}, {srcs[1]}, {out_row}) != MN_OK) return {n.node + 1};",
                     f"{ind}    }}"]
        else:
            t = n.reads[0]
            need = s.reads[0][n.node][0], s.reads[1][n.node][0]
            outr = region[0][n.writes], region[1][n.writes]
            inl = slots.add(f"node {n.node} input length", [b - a for a, b in need[0]], [b - a for a, b in need[1]])
            pad = slots.add(f"node {n.node} padding",
                            [n.rows.pad + a - o * n.rows.s for (a, _), (o, _) in zip(need[0], outr[0], strict=True)],
                            [n.cols.pad + a - o * n.cols.s for (a, _), (o, _) in zip(need[1], outr[1], strict=True)])
            ptype = call.params_type
            src = f"{base(t)} + (size_t)r[{offs[0]}] * (size_t)c[{length[t]}] * {s.shapes[t][2]}"
            extra = ", NULL" if call.kernel == "mn_depthwise_conv_s8" else ""
            body += [f"{ind}    {ptype} p = L{n.node};",
                     f"{ind}    p.in_h = r[{inl}]; p.in_w = c[{length[t]}]; p.out_h = r[{out_len}]; "
                     f"p.out_w = c[{out_len}];",
                     f"{ind}    p.pad_top = r[{pad}]; p.pad_left = c[{pad}];",
                     f"{ind}    if ({call.kernel}(&p, {src}, {dst}{extra}) != MN_OK) return {n.node + 1};"]
        body.append(f"{ind}}}")
        if profile:
            body.append(f"{ind}MN_PROFILE_MARK({n.node});")
    if not s.direct_output:
        t, ch = s.output, s.shapes[s.output][2]
        at = slots.add(f"t{t} start", [a for a, _ in region[0][t]], [a for a, _ in region[1][t]])
        body.append(f"{ind}/* the output tile into the whole output */")
        whole = f"MN_T({memory.offset(t)}) + ((size_t)r[{at}] * {s.shapes[t][1]} + (size_t)c[{at}]) * {ch}"
        body.append(f"{ind}mn_patch_copy({whole}, {s.shapes[t][1] * ch}, {base(t)}, (size_t)c[{length[t]}] * {ch}, "
                    f"r[{length[t]}], (size_t)c[{length[t]}] * {ch});")
    body += ["        }", "    }"]
    legend = "\n".join(f" *   {k:>3}: {c_comment_text(n)}" for k, n in enumerate(slots.names))
    decls = (f"/* Patch stage {k}: intervals, one row per tile row (mn_patch_rows_{k}) and tile column "
             f"(mn_patch_cols_{k}):\n{legend} */\n" + _table(f"mn_patch_rows_{k}", slots, 0, ty) + "\n"
             + _table(f"mn_patch_cols_{k}", slots, 1, tx) + "\n")
    return decls, "\n".join(body)
