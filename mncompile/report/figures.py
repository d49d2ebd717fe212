"""The report's charts, drawn with matplotlib as SVG text.

Each function takes the JSON a build wrote (eval.json's layers, the manifest's plan buffers, the
run's profile) and returns an SVG document as a string. The SVG is deterministic: a fixed hash
salt for the ids matplotlib makes up, no date, text kept as text (`svg.fonttype` none), so the
same figures give the same bytes.
"""

from __future__ import annotations

import io

_TALL = 0.25  # a box this share of the arena's height or more carries its layer's name, else its number
# The last part of a converter's tensor name when it names the operation, not the layer
_OP_NAMES = {"relu", "relu6", "biasadd", "convolution", "depthwise", "add", "add_1", "mean", "softmax", "matmul",
             "sub1", "mul", "mul_1", "sub", "conv2d", "reshape", "squeeze", "flatten", "identity"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    plt = _pyplot()
    buf = io.StringIO()
    with plt.rc_context({"svg.hashsalt": "mncompile-report", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # the XML prolog and DOCTYPE are not needed inline or in a data URI


def layer_error_svg(layers: list[dict]) -> str:
    """Per layer (graph order): the int8 SQNR of the layer alone (its float input) and end to end
    (the int8 graph up to it). Lower is worse; the gap between the two is error carried in."""
    plt = _pyplot()
    rows = sorted(layers, key=lambda r: r["op"])
    names = [r["layer"] for r in rows]
    alone = [_finite(r["sqnr_alone_db"]) for r in rows]
    chained = [_finite(r["sqnr_end_to_end_db"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(rows) + 2), 3.6))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], alone, width=0.4, label="layer alone (float input)", color="#4c78a8")
    ax.bar([i + 0.2 for i in x], chained, width=0.4, label="end to end (int8 from the input)", color="#f58518")
    ax.set_xticks(list(x), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("SQNR (dB), higher is better")
    ax.set_xlim(-0.7, len(rows) - 0.3)
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, frameon=False)
    ax.grid(axis="y", linewidth=0.3)
    fig.tight_layout()
    return _svg(fig)


def blame_svg(rows: list[dict]) -> str:
    """The accuracy each layer wins back when it alone stays float (largest first, at most 15)."""
    plt = _pyplot()
    top = rows[:15]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(top) + 1.2))
    ax.barh(range(len(top)), [r["accuracy_gain_pp"] for r in top], color="#e45756")
    ax.set_yticks(range(len(top)), [f'{r["layer"]} ({r["kind"]})' for r in top], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy gained when kept in float (points)")
    ax.axvline(0, color="black", linewidth=0.5)
    fig.tight_layout()
    return _svg(fig)


def timeline_svg(buffers: list[dict], arena_bytes: int, lower_bound: int) -> str:
    """The arena over time: one box per tensor (x: the operators it lives through, y: its bytes in
    the arena), each labelled with its number (the table below the chart names it) and, where the
    box is large enough, its name."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    cmap = plt.get_cmap("tab20")
    last = max((b["last"] for b in buffers), default=0)
    top = max(arena_bytes, lower_bound, 1)  # patch stages go below the layer-by-layer bound: show both
    fig, ax = plt.subplots(figsize=(max(7.0, 0.28 * (last + 2) + 2), 4.2))
    for b in buffers:
        x0, width = b["first"] - 0.45, b["last"] - b["first"] + 0.9
        y0, height = b["offset"] / 1024, b["bytes"] / 1024
        ax.add_patch(Rectangle((x0, y0), width, height, facecolor=cmap(b["id"] % 20), edgecolor="black",
                               linewidth=0.4, hatch="//" if str(b["name"]).startswith("patch of") else None))
        share = b["bytes"] / top
        if share >= _TALL:  # room for the layer's name, written up the box
            ax.text(x0 + width / 2, y0 + height / 2, f'#{b["id"]} {tensor_label(b["name"])}', ha="center",
                    va="center", fontsize=6, rotation=90 if width < 3 else 0, clip_on=True)
        elif share >= 0.02:
            ax.text(x0 + width / 2, y0 + height / 2, f'#{b["id"]}', ha="center", va="center", fontsize=6,
                    clip_on=True)
    ax.axhline(lower_bound / 1024, color="red", linestyle="--", linewidth=1,
               label=f"layer-by-layer lower bound {lower_bound:,} B")
    ax.set_xlim(-1, last + 1)
    ax.set_ylim(0, top / 1024 * 1.05)
    ax.set_xlabel("time (operator)")
    ax.set_ylabel("arena offset (KiB)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the boxes, never over them
    fig.tight_layout()
    return _svg(fig)


def profile_svg(layers: list[dict], what: str) -> str:
    """The firmware's per-layer cost (instructions, else ticks), in graph order."""
    plt = _pyplot()
    key = "instructions" if what == "instructions" else "ticks"
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(layers) + 2), 3.4))
    ax.bar(range(len(layers)), [r[key] or 0 for r in layers], color="#54a24b")
    ax.set_xticks(range(len(layers)), [f'{r["node"]} {tensor_label(r.get("name") or r["op"])}' for r in layers],
                  rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"{what} per inference")
    ax.grid(axis="y", linewidth=0.3)
    fig.tight_layout()
    return _svg(fig)


def _finite(value) -> float:
    """SQNR of an exact layer is written as a string ("inf"); draw it at 0 height with the table saying it."""
    return float(value) if isinstance(value, int | float) else 0.0


def tensor_label(name: str, limit: int = 28) -> str:
    """A short name for a tensor: its Keras layer, from a converter name such as
    "model/conv_pw_1_relu_1/Relu6;model/conv_pw_1_bn_1/batchnorm/add_1;..." (-> "conv_pw_1_relu_1")."""
    parts = [p for p in str(name).split(";")[0].split("/") if p]
    if len(parts) > 1:
        parts = parts[1:]  # the model's own name
    while len(parts) > 1 and parts[-1].lower() in _OP_NAMES:
        parts.pop()
    label = parts[-1] if parts else str(name)
    return label if len(label) <= limit else label[:limit - 1] + "…"
