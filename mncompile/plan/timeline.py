"""The memory-timeline picture: time on x, arena address on y, one box per tensor.

With the AOT backend's plan (`aot`), a last panel shows it: its patch stages shaded over the
nodes they run (each tile runs them all again), patch buffers hatched."""

from __future__ import annotations

from pathlib import Path

from mncompile.plan.lifetimes import Buffer
from mncompile.plan.planners import MemoryPlan


def draw_timeline(buffers: tuple[Buffer, ...], plans: list[MemoryPlan], lower_bound: int, path: Path,
                  title: str, aot=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    panels = [(buffers, plan, plan.strategy) for plan in plans]
    if aot is not None:
        panels.append((aot.buffers, aot.plan, "AOT backend" + (", patch stages" if aot.schedules else "")))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5), sharey=True, squeeze=False)
    top = max(p.arena_bytes for _, p, _ in panels) or 1
    cmap = plt.get_cmap("tab20")
    for ax, (boxes, plan, name) in zip(axes[0], panels, strict=True):
        for b, o in zip(boxes, plan.offsets, strict=True):
            patch = b.name.startswith("patch of")
            ax.add_patch(Rectangle((b.first - 0.45, o / 1024), b.last - b.first + 0.9, b.size / 1024,
                                   facecolor=cmap(b.id % 20), edgecolor="black", linewidth=0.4,
                                   hatch="//" if patch else None))
        if boxes is not buffers:
            for k, s in enumerate(aot.schedules):
                ax.axvspan(s.nodes[0].node + 0.5, s.last_node + 1.5, color="grey", alpha=0.15,
                           label=f"patch stage {k}: nodes {s.nodes[0].node}..{s.last_node}, "
                                 f"{s.grid[0]}x{s.grid[1]} tiles")
        ax.axhline(lower_bound / 1024, color="red", linestyle="--", linewidth=1,
                   label=f"lower bound {lower_bound:,} B")
        ax.set_xlim(-1, max((b.last for b in boxes), default=0) + 1)
        ax.set_ylim(0, top / 1024 * 1.05)
        ax.set_xlabel("time (operator)")
        ax.set_title(f"{name}: {plan.arena_bytes:,} B")
        ax.legend(loc="upper right", fontsize=8)
    axes[0][0].set_ylabel("arena offset (KiB)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
