"""Ahead-of-time compilation: an int8 .tflite becomes `model.c` / `model.h`. Lower, then render.

The generated code has no interpreter, no flatbuffer, no heap and no Prepare step:

- one function, ``int model_invoke(const int8_t *in, int8_t *out)``, calls the kernels of
  ``firmware/kernels`` (``mn_kernels.h``) layer by layer. An int8 model converted with float
  I/O (a QUANTIZE float32 -> int8 op on the graph input, a DEQUANTIZE int8 -> float32 op making
  the graph output) takes and returns float there instead, e.g.
  ``int model_invoke(const float *in, float *out)``: those two ops run as
  ``mn_quantize_f32_s8`` reading ``in`` and ``mn_dequantize_s8_f32`` writing ``out``, and the
  float buffers are the caller's (only int8 tensors live in the arena);
- every constant is folded at generation time: weights, biases, per-channel multipliers and
  shifts are ``static const`` tables (flash: the linker script's ``.model`` section, like the TFLM
  backend's flatbuffer), and each layer's parameter struct is a ``static const`` designated
  initialiser pointing at them. All parameter arithmetic is the op registry's
  (`mncompile.graph.ops.quantmath`), which reproduces TFLM's Prepare bit for bit;
- activations live in ONE static arena, ``static uint8_t arena[N]``, 16-byte aligned, in the
  linker script's ``.tensor_arena`` section, at offsets from the AOT memory plan
  (`mncompile.aot.memory`: views alias, depthwise runs in place where its input dies);
- a PAD (or PADV2) with the zero point on H and W, read only by a CONV_2D or DEPTHWISE_CONV_2D,
  is folded into it (`mncompile.aot.lower.find_folds`): the convolution reads the unpadded input
  with the padding added to its own top/left padding (taps outside the input add nothing, as
  TFLM's padded zero points add ``zero_point + input_offset = 0``), so the padded tensor and the
  copy are gone.

`generate` runs three steps: **lower** (`mncompile.aot.lower`: the PAD folds, then each node's
registry entry turns it into a frozen `KernelCall`), **plan** the arena (`mncompile.aot.memory`, with the entries'
view and in-place rules) and **render** (`mncompile.aot.render`: Jinja templates in
``templates/aot/model/``).

``model_invoke`` copies an int8 ``in`` into the arena's input tensor (skipped when ``in`` is
``model_input()``, the arena's own input buffer), runs every layer, and copies an int8 output
tensor to ``out``. It returns 0, or ``k + 1`` when the kernel of node ``k`` rejected its
parameters (which generated parameters never make it do).

With ``profile=True`` (``emit --profile``) ``model_invoke`` also times every node that runs a kernel
with the board's tick counter and adds the ticks to ``model_profile_ticks[node]`` (`render.profile_code`);
without it the generated code has no trace of profiling (nothing to compile out, nothing to pay).

Operators: those whose registry entry has a lowering (`mncompile.aot.lower.supported_ops`).
Anything else, a float32 tensor off the I/O edges included, is an `UnsupportedOpError` naming the
op and the node; the TFLM backend runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from mncompile.aot.lower import (
    Folds,
    check_supported,
    find_folds,
    float_edges,
    has_float_io_edges,
    lower_graph,
)
from mncompile.aot.memory import AotMemory
from mncompile.aot.patch_search import Choice, choose
from mncompile.aot.render import constant_bytes, render_sources
from mncompile.ctext import c_comment_text
from mncompile.graph.ops.registry import KernelCall
from mncompile.graph.verified import VerifiedModel

__all__ = ["AotLayer", "AotProgram", "check_supported", "float_edges", "generate", "has_float_io_edges"]


@dataclass(frozen=True)
class AotLayer:
    index: int  # node index in the .tflite
    kind: str
    name: str  # the Keras layer (or tensor) name, for comments
    kernel: str | None  # the mn_* function; None for a view (RESHAPE)
    inplace: bool = False


@dataclass(frozen=True)
class AotProgram:
    """The lowered model, its arena plan and the rendered sources."""

    model_c: str
    model_h: str
    memory: AotMemory
    layers: tuple[AotLayer, ...]
    constant_bytes: int  # static const tables and parameter structs (flash)
    input_bytes: int  # model_invoke() reads this many bytes from `in` (and writes output_bytes to `out`)
    output_bytes: int
    # in the arena; None for a float input (the caller's buffer, quantized by node 0) or an int8 input a
    # patch stage reads in place (the caller's buffer)
    input_offset: int | None
    output_offset: int | None  # None for a float output (DEQUANTIZE writes the caller's buffer)
    input_dtype: str = "INT8"  # INT8, or FLOAT32 at a float I/O edge
    output_dtype: str = "INT8"
    calls: tuple[KernelCall, ...] = dataclasses.field(default=(), compare=False, repr=False)
    folds: Folds = Folds()  # the PADs folded into the convolution that reads them
    profile: bool = False  # model_invoke() times every node (emit --profile)
    choice: Choice | None = dataclasses.field(default=None, compare=False, repr=False)  # --memory's search

    @property
    def outside_arena_bytes(self) -> int:
        """The model's buffers outside the arena (the caller's): a float input or output, and an int8
        input a patch stage reads in place."""
        return (self.input_bytes if self.input_offset is None else 0) + \
            (self.output_bytes if self.output_offset is None else 0)

    @property
    def arena_bytes(self) -> int:
        return self.memory.arena_bytes

    @property
    def kernels(self) -> tuple[str, ...]:
        return tuple(sorted({layer.kernel for layer in self.layers if layer.kernel}))

    def to_json(self) -> dict:
        return {"arena_bytes": self.arena_bytes, "constant_bytes": self.constant_bytes,
                "input": {"bytes": self.input_bytes, "offset": self.input_offset,
                          "dtype": self.input_dtype.lower()},
                "output": {"bytes": self.output_bytes, "offset": self.output_offset,
                           "dtype": self.output_dtype.lower()},
                "kernels": list(self.kernels), "folded_pads": self.folds.to_json(),
                "memory_mode": self.choice.to_json() if self.choice else None,
                "layers": [{"node": layer.index, "op": layer.kind, "name": layer.name, "kernel": layer.kernel,
                            "in_place": layer.inplace} for layer in self.layers],
                "memory": self.memory.to_json()}


def generate(model: VerifiedModel, *, inplace: str = "auto", version: str | None = None,
             profile: bool = False, memory: str = "balanced",
             room: int | Callable[[int], int] | None = None, schedules=None,
             max_extra: float | None = None) -> AotProgram:
    """C sources for the verified int8 `model`. `inplace`: which depthwise layers run in place,
    "auto" (those that lower the arena), "all" (every one whose input dies there) or "off"
    (`mncompile.aot.memory.plan_aot`). `profile`: model_invoke() times every node (board.h's
    board_ticks(), summed into model_profile_ticks[]). `memory` ("speed", "balanced", "min") and
    `room` (the bytes of RAM the budget leaves, or a function of the constants' bytes giving them;
    None: no limit): layer by layer or a patch stage (`mncompile.aot.patch_search.choose`).
    `schedules`: these patch stages (`mncompile.aot.patch.make_schedule`) instead of the search's;
    `max_extra`: the search keeps to this fraction of the model's MACs extra."""
    from mncompile import __version__

    graph = model.graph
    check_supported(graph)
    folds = find_folds(graph)
    calls = lower_graph(graph, folds)
    edges = float_edges(graph)
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    float_io = (tin.nbytes if edges.input is not None else 0) + (tout.nbytes if edges.output is not None else 0)
    if callable(room):
        room = room(constant_bytes(calls))
    choice = choose(graph, folds, calls, inplace=inplace, mode=memory, room=room, float_io=float_io,
                    schedules=schedules, max_extra=max_extra)
    memory = choice.memory
    external = memory.external_input
    for call in calls:
        op = graph.ops[call.node]
        if call.kernel is None and call.node not in memory.folded_pads and \
                memory.offset(op.inputs[0]) != memory.offset(op.outputs[0]):
            raise AssertionError(f"view node {call.node} not aliased to its input")  # a planner bug
    layers = tuple(AotLayer(c.node, c.kind, c_comment_text(graph.layer_name(graph.ops[c.node].outputs[0])), c.kernel,
                            c.node in memory.inplace) for c in calls)
    program = AotProgram("", "", memory, layers, constant_bytes(calls), tin.nbytes, tout.nbytes,
                         None if edges.input is not None or external else memory.offset(tin.index),
                         None if edges.output is not None else memory.offset(tout.index), tin.dtype, tout.dtype,
                         calls, folds, profile, choice)
    source, header = render_sources(program, calls, graph, edges, model.name, version or __version__)
    return dataclasses.replace(program, model_c=source, model_h=header)
