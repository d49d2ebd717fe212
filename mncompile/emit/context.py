"""The Jinja context every project template is rendered with, built from the stages' results."""

from __future__ import annotations

from mncompile import __version__
from mncompile.ctext import byte_rows, c_comment_text, c_float, c_string_literal, float_rows, int_rows
from mncompile.emit.boards import NO_FLASHING, flashing
from mncompile.emit.manifest import TFLM_COMMIT, sha256, tool_versions
from mncompile.graph.support import tflm_resolver_methods
from mncompile.model.datasets import Preprocessing
from mncompile.plan import ARENA_MARGIN_BYTES
from mncompile.targets.qemu import qemu_command
from mncompile.validate.golden import io_quant


def class_names(inputs, classes: int) -> tuple[str, ...]:
    """The sidecar's labels when it has one per output, else class_0, class_1, ..."""
    info = inputs.info
    if info and len(info.class_names) == classes:
        return tuple(info.class_names)
    return tuple(f"class_{k}" for k in range(classes))


def template_context(inputs, firmware_model: bytes, predicted: dict, reserved: dict, *, model_file: str,
                     ops: list[dict] | None = None, npu: dict | None = None) -> dict:
    """The templates' context. `ops` (default: the model's operators with TFLM's resolver methods)
    and `npu` (the NPU variant's own values, None for a CPU target) come from the NPU renderer."""
    model, tgt, board, vectors = inputs.model, inputs.target, inputs.board, inputs.golden
    graph = model.graph
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    qin, qout = io_quant(graph)  # a float input's QUANTIZE (a float output's DEQUANTIZE) gives the int8 side
    image = len(tin.shape) == 4
    _, h, w, c = tin.shape if image else (1, 0, 0, 0)
    classes = int(tout.shape[-1])
    names = class_names(inputs, classes)
    info = inputs.info
    if info and info.preprocessing:
        prep, prep_source = info.preprocessing, "from the model's sidecar"
    elif image:
        prep, prep_source = Preprocessing.for_input(h, c), "mncompile's default, the model has no sidecar"
    else:
        prep, prep_source = None, "none: the input is not an image"
    if ops is None:
        methods = tflm_resolver_methods()
        ops = [{"kind": k, "method": methods[k]} for k in sorted({op.kind for op in graph.ops})]
    model_comment = c_comment_text(model.name)
    return {
        "version": __version__,
        "project_title": f"{model_comment} on {tgt.name}",
        "model_comment": model_comment,
        "model_name_literal": c_string_literal(model.name),
        "model_file": model_file,
        "model": {"bytes": len(firmware_model), "sha256": sha256(firmware_model), "rows": byte_rows(firmware_model),
                  "source_sha256": model.sha256},
        "target": {"name": tgt.name, "cpu": tgt.cpu, "cpu_flags": " ".join(tgt.cpu_flags), "fpu": tgt.fpu,
                   "description": c_comment_text(tgt.description), "qemu_machine": tgt.qemu_machine},
        "board": {"name": board.name, "real": board.real, **(NO_FLASHING if npu else flashing(board))},
        "qemu_args": qemu_command(tgt.qemu_machine, "ELF")[1:-2] if tgt.qemu_machine else [],
        "tflm_commit": TFLM_COMMIT,
        "versions": tool_versions(),
        "ops": ops,
        "input": {"image": image, "height": h, "width": w, "channels": c, **_io(tin, qin, "input")},
        "output": {"classes": classes, **_io(tout, qout, "output")},
        "preprocessing": None if prep is None else {
            "source": prep_source, "color_mode": "grayscale" if prep.color_mode == "L" else "RGB",
            "resample": prep.resample, "scale": c_float(prep.scale), "offset": c_float(prep.offset)},
        "arena": {"reference": predicted["reference"], "cmsis_nn": predicted["cmsis-nn"],
                  "margin": ARENA_MARGIN_BYTES, "reference_size": reserved["reference"],
                  "cmsis_nn_size": reserved["cmsis-nn"]},
        "label_names": names,
        "labels": [c_string_literal(n) for n in names],
        "golden": {"count": vectors.count, "source": c_comment_text(vectors.source),
                   "input_rows": [float_rows(x) if vectors.float_input else int_rows(x) for x in vectors.inputs],
                   "output_rows": [int_rows(y) for y in (vectors.output_bits() if vectors.float_output
                                                          else vectors.outputs)],
                   "labels": [str(v) for v in vectors.labels]},
        "npu": npu,
    }


def _io(t, q, role: str) -> dict:
    """A graph input or output for the templates: its shape, and its C types. A float32 edge (the
    model's own QUANTIZE reads the input, DEQUANTIZE writes the output) is passed as float; its
    golden outputs are held as their bit patterns (uint32_t), compared bit for bit."""
    is_float = t.dtype == "FLOAT32"
    return {"float": is_float, "shape": list(t.shape), "shape_text": ", ".join(str(d) for d in t.shape),
            "elements": t.nbytes // (4 if is_float else 1), "bytes": t.nbytes,
            "ctype": "float" if is_float else "int8_t",
            "golden_ctype": ("float" if role == "input" else "uint32_t") if is_float else "int8_t",
            "scale": c_float(q.scale if q else 0.0), "scale_text": f"{q.scale:.9g}" if q else "none",
            "zero_point": int(q.zero_point) if q else 0}
