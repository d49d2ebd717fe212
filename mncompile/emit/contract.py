"""The pixel contract of an int8 model for a project: its preprocessing, where that came from, and
its labels. The firmware project (`mncompile.pipeline.project_inputs`) and the library layout
(`mncompile.emit.library`) both ask it, so the two agree on every option."""

from __future__ import annotations

from mncompile.errors import InvalidOptionError
from mncompile.model.loader import LoadedModel
from mncompile.preprocess.contract import PixelOptions, Preprocessing
from mncompile.progress import Reporter


def pixel_contract(loaded: LoadedModel, pixels: PixelOptions,
                   reporter: Reporter) -> tuple[Preprocessing | None, str, tuple[str, ...]]:
    """The int8 model's preprocessing, where it came from, and its labels
    (`mncompile.preprocess.contract.resolve`: options, sidecar, input quantization, default)."""
    from mncompile.graph.edges import image_input, io_quant
    from mncompile.preprocess.contract import resolve as resolve_pixels

    graph = loaded.verified.graph
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    info = loaded.info
    classes = int(tout.shape[-1])
    labels = pixels.class_names(classes) or (info.class_names if info and len(info.class_names) == classes
                                             else tuple(f"class_{k}" for k in range(classes)))
    if len(tin.shape) != 4 or (not image_input(graph) and not pixels.given):
        if pixels.given:
            raise InvalidOptionError(f"{loaded.path} takes a {list(tin.shape)} tensor, and --input-range, --mean and "
                                     "--std describe image pixels", hint="leave them out")
        return None, "none: the input is not an image", labels
    q = io_quant(graph)[0]
    prep, where = resolve_pixels(pixels, info.preprocessing if info else None,
                                 (q.scale, q.zero_point) if q else None, tin.shape[1], tin.shape[3], reporter)
    reporter.info(f"preprocessing from {where}: {prep.describe()}")
    return prep, where, labels
