"""Rendering: the lowered kernel calls and the arena plan become ``model.c`` and ``model.h``.

The sources come from Jinja templates (``templates/aot/model/``), like every other generated
file; this module only prepares their context: C literals for the constant tables
(`mncompile.ctext`), each call's parameter struct, the body lines with arena offsets from the
memory plan, and the input/output text of a float I/O edge; with profiling, the timing hooks
(`profile_code`).
"""

from __future__ import annotations

import numpy as np

from mncompile.ctext import c_comment_text, c_float
from mncompile.graph.ir import Graph
from mncompile.graph.ops.registry import Arg, KernelCall, Table

C_TYPES = {"INT8": "int8_t", "FLOAT32": "float"}
INTS_PER_LINE = 16


def _c_int(v: int) -> str:
    v = int(v)
    return "(-2147483647 - 1)" if v == -(1 << 31) else str(v)


def rows(values: np.ndarray, indent: str = "    ") -> str:
    flat = [_c_int(v) for v in np.asarray(values).reshape(-1)]
    return "\n".join(indent + ", ".join(flat[i:i + INTS_PER_LINE]) + "," for i in range(0, len(flat), INTS_PER_LINE))


def constant_bytes(calls: tuple[KernelCall, ...]) -> int:
    """Flash the generated constants take: every table (at least one element) and every field of a
    parameter struct (4 bytes each: int32, float or pointer; an array field 4 bytes an element)."""
    total = 0
    for call in calls:
        total += constant_bytes(call.parts) if call.parts else 0
        total += sum(t.nbytes for t in call.tables)
        for _, value in call.fields:
            total += 4 * len(value) if isinstance(value, tuple) else 4
    return total


def _field(prefix: str, value: object) -> str:
    if isinstance(value, tuple):
        return "{" + ", ".join(_c_int(v) for v in value) + "}"
    if isinstance(value, Table):
        return f"{prefix}_{value.name}"
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return c_float(value)  # reads back to the same float32
    return _c_int(value)


def _arg(prefix: str, node: int, arg: Arg, memory, inplace: bool) -> str:
    if arg.tensor is not None:
        return f"MN_T({memory.offset(arg.tensor)})"
    if arg.table is not None:
        return f"{prefix}_{arg.table}"
    if arg.scratch:
        return f"MN_T({memory.scratch_offset(node)})" if inplace else "NULL"
    if arg.io is not None:
        return arg.io
    return "NULL"


STAGE_MARK = "@patch-stage@"


def _decls_and_body(calls, graph: Graph, memory, profile: bool = False) -> tuple[list[dict], list[str]]:
    decls, body = [], []
    stage_of: dict[int, int] = {}  # node -> its patch stage: the stage's nodes (and PADs folded into them)
    for k, schedule in enumerate(memory.schedules):  # run in the tile loop, rendered by render_patch
        first, last = schedule.nodes[0].node, schedule.last_node
        for node in [n.node for n in schedule.nodes] + [p for p in memory.folded_pads if first <= p <= last]:
            stage_of[node] = k
    staged = set(stage_of)
    marked: set[int] = set()
    for call in calls:
        name = c_comment_text(graph.layer_name(graph.ops[call.node].outputs[0]))
        if call.node in staged and stage_of[call.node] not in marked:
            marked.add(stage_of[call.node])
            body.append(f"{STAGE_MARK}{stage_of[call.node]}")  # render_sources puts the tile loop here
        if call.kernel is None and call.node in staged:
            continue
        if call.kernel is None:  # a view, or a PAD folded into the convolution that reads it
            what = ", nothing to run" if call.node in memory.folded_pads else ": a view, nothing to run"
            body.append(f"    /* node {call.node}: {call.kind} {name}{call.comment}{what} */")
            continue
        inplace = call.node in memory.inplace
        if call.node not in staged:
            body.append(f"    /* node {call.node}: {call.kind} {name}" + (" (in place)" if inplace else "") + " */")
        parts = call.parts or (call,)
        for j, part in enumerate(parts):
            struct = f"L{call.node}" if not call.parts else f"L{call.node}_{j}"
            prefix = f"L{call.node}" if not call.parts else f"L{call.node}_{j}"
            for t in part.tables:
                values = np.asarray(t.values).reshape(-1)
                decls.append({"comment": f"node {call.node}: {t.comment}", "ctype": t.ctype,
                              "name": f"{prefix}_{t.name}", "count": max(values.size, 1),
                              "rows": rows(values) if values.size else "    0,"})
            decls.append({"comment": f"node {call.node}: {part.title or part.kind} {name}{part.comment}",
                          "ctype": part.params_type, "name": struct, "rows": None,
                          "fields": [(key, _field(prefix, value)) for key, value in part.fields]})
            if call.node in staged:
                continue
            args = ", ".join([f"&{struct}", *(_arg(prefix, call.node, a, memory, inplace) for a in part.args)])
            body.append(f"    if ({part.kernel}({args}) != MN_OK) return {call.node + 1};")
        if profile and call.node not in staged:
            body.append(f"    MN_PROFILE_MARK({call.node});")
    return decls, body


# Profiling (emit --profile). One timer read after each node that runs a kernel: the ticks since the
# previous read go to that node. Consecutive reads telescope, so the nodes' sums add up exactly to
# the time from the first read (after the input copy) to the last (before the output copy); each
# node's figure carries one timer read (board_ticks(): a few dozen instructions) and the timer's
# resolution (one tick either way).
_PROFILE_MARK = """/* emit --profile: add the ticks since the previous mark to node k's sum, and move the mark. */
#define MN_PROFILE_MARK(k) \\
    do { \\
        const uint64_t mn_now = board_ticks(); \\
        model_profile_ticks[k] += mn_now - mn_profile_last; \\
        mn_profile_last = mn_now; \\
    } while (0)"""
_PROFILE_HEADER = """/* emit --profile: model_invoke() times every node that runs a kernel with board_ticks() (board.h)
 * and adds its ticks to model_profile_ticks[node], over every call since start-up (or
 * model_profile_reset()). Views and folded PADs run nothing and stay 0. model_node_kinds[node] is
 * the node's operator. */
#define MODEL_PROFILE 1
extern uint64_t model_profile_ticks[MODEL_NODES];
extern const char *const model_node_kinds[MODEL_NODES];
void model_profile_reset(void);
"""


def profile_code(p) -> tuple[str, str, str]:
    """The profiling hooks of the program `p`: (the MN_PROFILE_MARK define, the definitions of the
    tables and of model_profile_reset(), the header's declarations)."""
    kinds = ",\n".join(f'    "{c_comment_text(layer.kind)}"' for layer in p.layers)
    tables = (f"uint64_t model_profile_ticks[MODEL_NODES];\n\n"
              f"const char *const model_node_kinds[MODEL_NODES] = {{\n{kinds},\n}};\n\n"
              "void model_profile_reset(void)\n{\n    for (int k = 0; k < MODEL_NODES; ++k) {\n"
              "        model_profile_ticks[k] = 0;\n    }\n}\n")
    return _PROFILE_MARK, tables, _PROFILE_HEADER


def _int8_side(graph: Graph, tensor: int) -> tuple[float, int]:
    """(scale, zero point) of the int8 tensor a float edge's QUANTIZE writes (DEQUANTIZE reads)."""
    q = graph.tensors[tensor].quant
    return float(np.float32(q.scale)), int(q.zero_point)


def _io_text(graph: Graph, edges) -> tuple[str, str]:
    """The header's comments on the input and the output."""
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    shape_in = ", ".join(str(d) for d in tin.shape)
    shape_out = ", ".join(str(d) for d in tout.shape)
    if edges.quantize is not None:
        k = edges.quantize
        scale, zp = _int8_side(graph, graph.ops[k].outputs[0])
        text_in = (f"/* Input: float32 [{shape_in}], the caller's buffer. Node {k} (QUANTIZE) turns it into the\n"
                   f" * model's int8 input: q = round(x / scale) + zero_point, saturated to int8 (scale {scale:.9g},\n"
                   f" * zero point {zp}). */")
    else:
        text_in = f"/* Input: int8 [{shape_in}], real = scale * (q - zero_point). */"
    if edges.dequantize is not None:
        k = edges.dequantize
        scale, zp = _int8_side(graph, graph.ops[k].inputs[0])
        text_out = (f"/* Output: float32 [{shape_out}], written to the caller's buffer by node {k} (DEQUANTIZE):\n"
                    f" * x = scale * (q - zero_point) of the model's int8 output q (scale {scale:.9g}, zero point "
                    f"{zp}). */")
    else:
        text_out = f"/* Output: int8 [{shape_out}]. */"
    return text_in, text_out


_MODEL_INPUT = """int8_t *model_input(void)
{
    return MN_T(MODEL_INPUT_OFFSET);
}
"""
_MODEL_INPUT_BUFFER = """/* The input, outside the arena: the patch stage reads it in place. */
static int8_t model_input_buffer[MODEL_INPUT_BYTES] __attribute__((aligned(16)));

int8_t *model_input(void)
{
    return model_input_buffer;
}
"""
_MODEL_OUTPUT = """const int8_t *model_output(void)
{
    return MN_T(MODEL_OUTPUT_OFFSET);
}
"""


def render_sources(p, calls: tuple[KernelCall, ...], graph: Graph, edges, name: str, version: str) -> tuple[str, str]:
    """(model.c, model.h) of the program `p` (`AotProgram`, whose memory plan places the tensors)."""
    from mncompile.resources import jinja_environment, templates_dir

    env = jinja_environment(templates_dir() / "aot" / "model")
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    float_in, float_out = p.input_dtype == "FLOAT32", p.output_dtype == "FLOAT32"
    ctype_in, ctype_out = C_TYPES[p.input_dtype], C_TYPES[p.output_dtype]
    text_in, text_out = _io_text(graph, edges)
    external_in = p.memory.external_input
    header_accessors = []
    if external_in:
        header_accessors.append("/* The input buffer, outside the arena (the patch stage reads `in` in place): "
                                "write the input here,\n * or pass any buffer of yours to model_invoke(). */\n"
                                "int8_t *model_input(void);\n")
    elif not float_in:
        header_accessors.append("/* The arena's input tensor: write the input here and pass it to model_invoke() to "
                                "save the copy\n * (model_invoke() may overwrite it). */\nint8_t *model_input(void);\n")
    if not float_out:
        header_accessors.append("/* The arena's output tensor, valid after model_invoke() until the next call. */\n"
                                "const int8_t *model_output(void);\n")
    if p.profile:
        mark, tables, declarations = profile_code(p)
        header_accessors.append(declarations)
    common = {"version": version, "name": c_comment_text(name), "p": p, "ctype_in": ctype_in, "ctype_out": ctype_out}
    header = env.get_template("model.h.j2").render(
        **common, text_in=text_in, text_out=text_out, float_in=int(float_in), float_out=int(float_out),
        n_in=tin.nbytes // (4 if float_in else 1), n_out=tout.nbytes // (4 if float_out else 1),
        what_in="MODEL_INPUT_ELEMENTS float" if float_in else "MODEL_INPUT_BYTES int8",
        what_out="MODEL_OUTPUT_ELEMENTS float" if float_out else "MODEL_OUTPUT_BYTES int8",
        copy_in=("`in` is read by the QUANTIZE node (never copied\n * or written)" if float_in
                 else "`in` is read in place by the patch stage (never copied\n * or written)" if external_in
                 else "`in` is copied into the arena unless it is model_input()"),
        copy_out=("`out` is written by the DEQUANTIZE node and must not\n * overlap `in`" if float_out
                  else "`out` may be any\n * buffer, or model_output() itself"),
        accessors=("\n" + "\n".join(header_accessors)) if header_accessors else "")

    mem = p.memory
    layout = []
    for b, off in sorted(zip(mem.buffers, mem.plan.offsets, strict=True), key=lambda x: (x[0].first, x[1])):
        if b.id < len(mem.groups):  # tensors sharing these bytes: views and in-place outputs
            what = " = ".join(f"t{t} {graph.layer_name(t)}" for t in mem.groups[b.id])
        else:
            what = b.name
        layout.append(f" *   [{off:>8}, {off + b.size:>8})  t={b.first:>3}..{b.last:<3} {c_comment_text(what)}")
    outside = []
    if float_in:
        outside.append(f"input t{graph.inputs[0]} (float32, `in`)")
    if external_in:
        outside.append(f"input t{graph.inputs[0]} (int8, `in`, read in place by the patch stage)")
    if float_out:
        outside.append(f"output t{graph.outputs[0]} (float32, `out`)")
    if outside:
        layout.append(f" * Not in the arena (the caller's buffers): {c_comment_text(', '.join(outside))}.")
    defines, accessors, prologue, epilogue = [], [], "", ""
    if external_in:
        accessors.append(_MODEL_INPUT_BUFFER)
    elif not float_in:
        defines.append(f"#define MODEL_INPUT_OFFSET {p.input_offset}")
        accessors.append(_MODEL_INPUT)
        prologue = ("    if (in != MN_T(MODEL_INPUT_OFFSET)) {\n        memcpy(MN_T(MODEL_INPUT_OFFSET), in, "
                    "MODEL_INPUT_BYTES);\n    }\n")
    if not float_out:
        defines.append(f"#define MODEL_OUTPUT_OFFSET {p.output_offset}")
        accessors.append(_MODEL_OUTPUT)
        epilogue = ("    if (out != MN_T(MODEL_OUTPUT_OFFSET)) {\n        memcpy(out, MN_T(MODEL_OUTPUT_OFFSET), "
                    "MODEL_OUTPUT_BYTES);\n    }\n")
    stages = []
    copying = any(not (s.direct_input and s.direct_output) for s in p.memory.schedules)  # mn_patch_copy
    if p.memory.schedules:
        from mncompile.aot.render_patch import COPY_HELPER, render_stage

        by_node = {c.node: c for c in calls}
        stages = [render_stage(k, s, by_node, graph, p.memory, p.profile) for k, s in enumerate(p.memory.schedules)]
        accessors[:0] = [d for d, _ in stages] + ([COPY_HELPER] if copying else [])
    memcpy = prologue or epilogue or copying
    includes = "#include <stddef.h>\n#include <stdint.h>\n" + ("#include <string.h>\n" if memcpy else "")
    if p.profile:  # the first mark after the input copy: the copies stay outside the nodes' figures
        includes += "\n#include \"board.h\""
        defines.append(mark)
        accessors.append(tables)
        prologue += "    uint64_t mn_profile_last = board_ticks();\n"
    decls, body = _decls_and_body(calls, graph, mem, p.profile)
    body = [stages[int(line[len(STAGE_MARK):])][1] if line.startswith(STAGE_MARK) else line for line in body]
    source = env.get_template("model.c.j2").render(
        **common, inplace=", ".join(str(k) for k in mem.inplace) or "none", layout=layout, includes=includes,
        defines=defines, decls=decls, accessors=accessors, prologue=prologue, body="\n".join(body),
        epilogue=epilogue)
    return source, header


# the largest depth the DSP convolution widens on the stack (8 B a step for four pixels, plus 2 B a step
# of patches: 5 KB at this cap); deeper convolutions take the kernels' widen-in-the-loop path
CONV_GEMM_CAP = 512


def conv_gemm_max(calls: tuple[KernelCall, ...]) -> int:
    """MN_CONV_GEMM_MAX for these calls: the largest CONV_2D depth (k_h * k_w * in_c) up to
    CONV_GEMM_CAP, rounded up to a multiple of 4 (at least 4)."""
    depths = [f["k_h"] * f["k_w"] * f["in_c"] for f in (dict(c.fields) for c in calls if c.kernel == "mn_conv2d_s8")]
    fitting = [d for d in depths if d <= CONV_GEMM_CAP]
    return max(4, -(-max(fitting, default=4) // 4) * 4)


def requant_any(calls: tuple[KernelCall, ...]) -> int:
    """MN_KERNELS_REQUANT_ANY: 1 when a convolution needs the general requantization."""
    from mncompile.graph.ops.lowering import fast_requant

    convs = (c for c in calls if c.kernel in ("mn_conv2d_s8", "mn_depthwise_conv_s8"))
    return int(not all(fast_requant(dict(c.fields), {t.name: t.values for t in c.tables}) for c in convs))


SMALL_TABLE_CAP = 768  # words of a shallow layer's per-channel table on the stack (3 KB)


def shallow_paths(calls: tuple[KernelCall, ...]) -> tuple[int, int, int]:
    """(MN_CONV_SHALLOW_1X1, MN_CONV_SHALLOW_GENERIC, MN_SMALL_TABLE_WORDS): whether a CONV_2D takes the
    shallow 1x1 path (depth 8 or 16, stride 1, no padding) or the shallow generic one (another of depth
    at most 32), and the largest per-channel table they need, out_c * (4 + depth / 2) words with the
    depth rounded up to 4 (a layer needing more than SMALL_TABLE_CAP takes the general paths)."""
    one, generic, words = 0, 0, 4
    for f in (dict(c.fields) for c in calls if c.kernel == "mn_conv2d_s8"):
        pointwise = (f["k_h"], f["k_w"], f["stride_h"], f["stride_w"], f["pad_top"], f["pad_left"]) == (1, 1, 1, 1,
                                                                                                          0, 0)
        depth = f["k_h"] * f["k_w"] * f["in_c"]
        need = f["out_c"] * (4 + (-(-depth // 4) * 4) // 2)
        if need > SMALL_TABLE_CAP or not (depth in (8, 16) if pointwise else depth <= 32):
            continue
        one, generic = (1, generic) if pointwise else (one, 1)
        words = max(words, need)
    return one, generic, words


def kernels_config_h(calls: tuple[KernelCall, ...], name: str) -> str:
    """The project's firmware/kernels/mn_kernels_config.h: the kernels' build-time sizes for this model."""
    one, generic, words = shallow_paths(calls)
    return "\n".join([
        f"/* Generated by mncompile for {c_comment_text(name)}: the kernels' build-time sizes for this model",
        " * (firmware/kernels/mn_kernels_config.h holds the library's defaults). */",
        "#ifndef MN_KERNELS_CONFIG_H", "#define MN_KERNELS_CONFIG_H", "",
        "/* the largest CONV_2D depth (k_h * k_w * in_c) up to " + f"{CONV_GEMM_CAP}: the DSP path's stack buffers */",
        "#ifndef MN_CONV_GEMM_MAX", f"#define MN_CONV_GEMM_MAX {conv_gemm_max(calls)}", "#endif", "",
        "/* 0: every convolution requantizes the fast way (the DSP paths are compiled for it alone) */",
        "#ifndef MN_KERNELS_REQUANT_ANY", f"#define MN_KERNELS_REQUANT_ANY {requant_any(calls)}", "#endif", "",
        "/* the shallow convolutions' DSP paths this model uses (1x1 of depth 8 or 16; others of depth <= 32)",
        " * and the words of their largest per-channel table */",
        "#ifndef MN_CONV_SHALLOW_1X1", f"#define MN_CONV_SHALLOW_1X1 {one}", "#endif",
        "#ifndef MN_CONV_SHALLOW_GENERIC", f"#define MN_CONV_SHALLOW_GENERIC {generic}", "#endif",
        "#ifndef MN_SMALL_TABLE_WORDS", f"#define MN_SMALL_TABLE_WORDS {words}", "#endif", "",
        "#endif /* MN_KERNELS_CONFIG_H */", ""])
