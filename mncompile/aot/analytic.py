"""The AOT backend's memory for a MobileNet that is not built: `mncompile fit`'s patch-based figures.

`spec_graph` turns the layer list of `mncompile.model.spec` (one layer per operator of the
converted graph, `mncompile.fit.live_ranges`) into a `Graph` of shapes alone: int8 activation
tensors, filter tensors without data, the operators with the options the converter writes (SAME
padding, strides), and for each convolution the geometry its lowered call would carry. The arena
planner and the patch search (`patch_search.choose`) need nothing else, so `aot_choice` gives the
layer-wise and patch-based RAM of a configuration without TensorFlow, exactly as for the converted
model (tests/test_patch.py compares the two), and `admit` the best configuration `fit` can add
with the AOT backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from mncompile.aot.lower import Folds
from mncompile.aot.patch_search import Choice, choose
from mncompile.graph.ir import Graph, Op, Quant, Tensor
from mncompile.graph.ops.registry import KernelCall
from mncompile.model.spec import MobileNetSpec, layers
from mncompile.progress import NullReporter, Reporter

_KINDS = {"conv": "CONV_2D", "pointwise": "CONV_2D", "depthwise": "DEPTHWISE_CONV_2D", "add": "ADD",
          "avgpool": "MEAN", "fc": "FULLY_CONNECTED", "softmax": "SOFTMAX"}


def _same_padding(size: int, k: int, s: int) -> int:
    out = (size + s - 1) // s
    return max((out - 1) * s + k - size, 0) // 2


def spec_graph(spec: MobileNetSpec) -> tuple[Graph, tuple[KernelCall, ...]]:
    """The converted graph of `spec` as shapes, and its convolutions' lowered geometry (by node)."""
    q = Quant((1.0,), (0,))
    tensors = [Tensor(0, "input", (1, spec.resolution, spec.resolution, spec.channels), None, "INT8", q, 0, False)]

    def tensor(name: str, shape: tuple[int, ...], constant: bool = False, dtype: str = "INT8") -> int:
        tensors.append(Tensor(len(tensors), name, shape, None, dtype, q, 0, constant))
        return len(tensors) - 1

    ops, calls = [], []
    output_of: dict[str, int] = {}
    prev = 0
    for k, layer in enumerate(layers(spec)):
        kind = _KINDS[layer.kind]
        options: tuple = ()
        fields: tuple = ()
        kernel = None
        if layer.kind in ("avgpool", "fc", "softmax"):
            out = tensor(layer.name, (1, layer.out_ch))
            extra = (tensor(f"{layer.name}/axes", (2,), True, "INT32"),) if layer.kind == "avgpool" else ()
            if layer.kind == "fc":
                extra = (tensor(f"{layer.name}/weights", (layer.out_ch, layer.in_ch), True),)
            inputs = (prev, *extra)
        elif layer.kind == "add":
            out = tensor(layer.name, (1, layer.out_hw, layer.out_hw, layer.out_ch))
            inputs = (output_of[layer.residual], prev)
        else:
            out = tensor(layer.name, (1, layer.out_hw, layer.out_hw, layer.out_ch))
            depthwise = layer.kind == "depthwise"
            shape = (1, layer.kernel, layer.kernel, layer.out_ch) if depthwise else \
                (layer.out_ch, layer.kernel, layer.kernel, layer.in_ch)
            inputs = (prev, tensor(f"{layer.name}/filter", shape, True))
            options = (("depthMultiplier", 1),) if depthwise else ()
            options = tuple(sorted((*options, ("dilationHFactor", 1), ("dilationWFactor", 1), ("padding", 0),
                                    ("strideH", layer.stride), ("strideW", layer.stride))))
            pad = _same_padding(layer.in_hw, layer.kernel, layer.stride)
            kernel = "mn_depthwise_conv_s8" if depthwise else "mn_conv2d_s8"
            fields = (("in_c", layer.in_ch), ("k_h", layer.kernel), ("k_w", layer.kernel), ("stride_h", layer.stride),
                      ("stride_w", layer.stride), ("dilation_h", 1), ("dilation_w", 1), ("pad_top", pad),
                      ("pad_left", pad))
        ops.append(Op(k, kind, inputs, (out,), options))
        calls.append(KernelCall(k, kind, kernel, fields=fields))
        output_of[layer.name] = prev = out
    return Graph(tuple(tensors), tuple(ops), (0,), (prev,)), tuple(calls)


def aot_choice(spec: MobileNetSpec, mode: str, room: int | None) -> Choice:
    """The AOT schedule `mode` picks for `spec` within `room` bytes of RAM (`patch_search.choose`)."""
    graph, calls = spec_graph(spec)
    return choose(graph, Folds(), calls, mode=mode, room=room)


@dataclass(frozen=True)
class AotFit:
    """A configuration `mncompile fit` admits with the AOT backend under --memory, though TFLM's
    figures do not fit: its schedule and the RAM the limits leave it."""

    candidate: object  # mncompile.fit.Candidate
    choice: Choice
    room: int

    def to_json(self) -> dict:
        c, s = self.choice, self.candidate.estimate.spec
        return {"alpha": s.alpha, "resolution": s.resolution, "mode": c.mode, "room_bytes": self.room,
                "ram_bytes": c.ram, "arena_bytes": c.memory.arena_bytes, "layerwise_ram_bytes": c.layerwise_ram,
                "tflm_ram_bytes": self.candidate.estimate.arena_bytes + self.candidate.estimate.io_bytes,
                "extra_macs": c.extra_macs, "extra_macs_fraction": round(c.extra_macs / c.total_macs, 4),
                "patch_stages": [st.to_json() for st in c.memory.schedules],
                "published": self.candidate.accuracy.to_json() if self.candidate.accuracy else None}


def admit(result, mode: str, reporter: Reporter = NullReporter()) -> AotFit | None:
    """The best-ranked configuration of `result` (`mncompile.fit.FitResult`) that TFLM's figures
    do not fit but the AOT backend's schedule under `mode` does, tried in rank order ahead of the
    winner; None when none does. Only RAM can be helped: a configuration over its flash is skipped."""
    from mncompile.budget import ram_room

    ahead = [c for c in sorted(result.not_fitting, key=lambda c: c.rank_key)
             if result.winner is None or c.rank_key < result.winner.rank_key]
    for k, c in enumerate(ahead, start=1):
        if any(row.name == "flash" and not row.fits for row in c.report.rows):
            continue
        room = ram_room(c.estimate.constants_bytes, result.target, result.budget, result.ram, result.flash)
        if room <= 0:
            continue
        s = c.estimate.spec
        reporter.info(f"AOT backend, --memory {mode}: alpha {s.alpha:g} at {s.resolution} px ({k}/{len(ahead)})")
        choice = aot_choice(s, mode, room)
        if choice.ram <= room:
            return AotFit(c, choice, room)
    return None
