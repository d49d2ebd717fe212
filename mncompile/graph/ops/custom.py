"""Custom operators mncompile knows: Vela's ``ethos-u`` (the Ethos-U NPU's command stream)."""

from __future__ import annotations

from mncompile.graph.ir import Graph, Op
from mncompile.graph.ops.registry import Allocations, OpSpec, TflmOp, register

STRUCTS = {
    # micro/kernels/ethos_u/ethosu.cc
    "EthosuOpData": (("cms_data_size", "int"), ("base_addr_idx", "int"), ("base_addr_size_idx", "int")),
}


def ethosu_allocations(g: Graph, op: Op, cmsis: bool) -> Allocations:
    """Prepare requests the NPU base address table (uint64_t) and its sizes (size_t) for every
    input and output. The kernel is only built for Arm, where size_t is 4 bytes."""
    n = len(op.inputs) + len(op.outputs)
    return Allocations(scratch=(8 * n, 4 * n))


register(OpSpec("CUSTOM:ethos-u", tflm=TflmOp(None, "EthosuOpData", None, ethosu_allocations, STRUCTS),
                summary="Vela's Ethos-U command stream (TFLM's ethos-u kernel and Arm's NPU driver)"))
