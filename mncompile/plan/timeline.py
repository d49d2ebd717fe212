"""The memory-timeline picture: time on x, arena address on y, one box per tensor."""

from __future__ import annotations

from pathlib import Path

from mncompile.plan.lifetimes import Buffer
from mncompile.plan.planners import MemoryPlan


def draw_timeline(buffers: tuple[Buffer, ...], plans: list[MemoryPlan], lower_bound: int, path: Path,
                  title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, len(plans), figsize=(6 * len(plans), 5), sharey=True, squeeze=False)
    top = max(p.arena_bytes for p in plans) or 1
    cmap = plt.get_cmap("tab20")
    for ax, plan in zip(axes[0], plans, strict=True):
        for b, o in zip(buffers, plan.offsets, strict=True):
            ax.add_patch(Rectangle((b.first - 0.45, o / 1024), b.last - b.first + 0.9, b.size / 1024,
                                   facecolor=cmap(b.id % 20), edgecolor="black", linewidth=0.4))
        ax.axhline(lower_bound / 1024, color="red", linestyle="--", linewidth=1,
                   label=f"lower bound {lower_bound:,} B")
        ax.set_xlim(-1, max((b.last for b in buffers), default=0) + 1)
        ax.set_ylim(0, top / 1024 * 1.05)
        ax.set_xlabel("time (operator)")
        ax.set_title(f"{plan.strategy}: {plan.arena_bytes:,} B")
        ax.legend(loc="upper right", fontsize=8)
    axes[0][0].set_ylabel("arena offset (KiB)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
