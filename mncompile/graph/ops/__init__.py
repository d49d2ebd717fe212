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
