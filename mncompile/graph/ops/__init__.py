"""The op registry (`registry.REGISTRY`): one entry per operator, registered by its family's module."""

from mncompile.graph.ops import (  # noqa: F401  (each module registers its operators)
    activation,
    conv,
    custom,
    elementwise,
    fully_connected,
    pool,
    quantize,
    reduce,
    shape,
    softmax,
)
from mncompile.graph.ops.registry import REGISTRY, OpCheckError, OpSpec, spec_of

__all__ = ["REGISTRY", "OpCheckError", "OpSpec", "spec_of", "tflm_structs"]


def tflm_structs() -> dict[str, tuple]:
    """Every struct layout the registered operators introduce (for the arena predictor)."""
    out: dict[str, tuple] = {}
    for spec in REGISTRY.values():
        if spec.tflm is not None:
            for name, layout in spec.tflm.structs.items():
                if out.setdefault(name, layout) != layout:
                    raise ValueError(f"struct {name} is declared twice with different layouts")
    return out


def markdown_table() -> str:
    """The README's operator table, one row per registered operator (sorted by name): whether the
    TFLM arena predictor models it (else the arena is measured on the TFLM host interpreter),
    whether the AOT backend compiles it (as a kernel call, in place, or as a view), and its summary.
    `bench/ops_table.py --write` puts it in README.md; a test keeps the two equal."""
    rows = ["| operator | TFLM arena | AOT backend | what |", "|---|---|---|---|"]
    for kind in sorted(REGISTRY):
        spec = REGISTRY[kind]
        tflm = "predicted" if spec.tflm is not None else "measured"
        if spec.lower is None:
            aot = "no"
        elif spec.view:
            aot = "yes (a view)"
        elif spec.inplace is not None:
            aot = "yes (can run in place)"
        else:
            aot = "yes"
        rows.append(f"| `{kind}` | {tflm} | {aot} | {spec.summary.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"
