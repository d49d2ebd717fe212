"""The Jinja context every project template is rendered with, built from the stages' results."""

from __future__ import annotations

from mncompile import __version__
from mncompile.ctext import byte_rows, c_comment_text, c_float, c_string_literal, float_rows, int_rows
from mncompile.emit.boards import NO_FLASHING, flashing
from mncompile.emit.manifest import TFLM_COMMIT, sha256, tool_versions
from mncompile.graph.edges import io_quant
from mncompile.graph.support import tflm_resolver_methods
from mncompile.plan import ARENA_MARGIN_BYTES
from mncompile.targets.qemu import qemu_command


def class_names(inputs, classes: int) -> tuple[str, ...]:
    """The contract's labels (--labels, else the sidecar's when it has one per output), else
    class_0, class_1, ..."""
    if len(inputs.labels) == classes:
        return tuple(inputs.labels)
    info = inputs.info
    if info and len(info.class_names) == classes:
        return tuple(info.class_names)
    return tuple(f"class_{k}" for k in range(classes))


C_FORMATS = {"rgb888": "MN_PIXEL_RGB888", "rgb565": "MN_PIXEL_RGB565", "rgb565be": "MN_PIXEL_RGB565BE",
             "gray8": "MN_PIXEL_GRAY8", "yuv422": "MN_PIXEL_YUV422"}
C_RESIZE = {"nearest": "MN_RESIZE_NEAREST", "bilinear": "MN_RESIZE_BILINEAR"}


def _camera(vectors, float_input: bool) -> dict | None:
    """The golden frames and the contract's lookup table, for the templates (None: no camera path)."""
    cam = vectors.camera
    if cam is None:
        return None
    return {"formats": list(cam.formats), "width": cam.width, "height": cam.height, "resize": cam.resize,
            "c_resize": C_RESIZE[cam.resize], "c_format": C_FORMATS[cam.formats[0]], "format": cam.formats[0],
            "frames": [{"rows": byte_rows(f), "bytes": len(f), "format": fmt, "c_format": C_FORMATS[fmt]}
                       for f, fmt in zip(vectors.frames, vectors.formats, strict=True)],
            "lut_ctype": "float" if float_input else "int8_t",
            "lut_rows": float_rows(vectors.lut) if float_input else int_rows(vectors.lut),
            "lut_channels": int(vectors.lut.shape[0])}


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
    prep = inputs.preprocessing
    if ops is None:
        methods = tflm_resolver_methods()
        ops = [{"kind": k, "method": methods[k]} for k in sorted({op.kind for op in graph.ops})]
    model_comment = c_comment_text(model.name)
    context = {
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
        "input": {"image": image, "height": h, "width": w, "channels": c, **_io(tin, qin, "input"),
                  # AOT with a patch stage: the int8 input is a buffer of its own, read in place
                  "external": bool(inputs.aot is not None and inputs.aot.memory.external_input)},
        "output": {"classes": classes, **_io(tout, qout, "output")},
        "preprocessing": None if prep is None else {
            "source": c_comment_text(inputs.preprocessing_source),
            "color_mode": "grayscale" if prep.color_mode == "L" else "RGB",
            "resample": vectors.camera.resize if vectors.camera is not None else prep.resample,
            "describe": c_comment_text(prep.describe()),
            "scale": [c_float(v) for v in prep.scale], "offset": [c_float(v) for v in prep.offset],
            "ranges": [f"[{lo:.6g}, {hi:.6g}]" for lo, hi in prep.ranges()]},
        "camera": _camera(vectors, tin.dtype == "FLOAT32"),
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
        "backend": inputs.backend,
        # emit --profile: the firmware times every node of the model it runs (mncompile.run.profile)
        "profile": {"nodes": len(graph.ops)} if inputs.options.get("profile") else None,
    }
    context["camera_readme"] = _camera_readme(context)
    return context


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


def _camera_readme(context: dict) -> str:
    """The project README's camera section (templates/snippets/camera.md.j2), "" without a camera path."""
    from mncompile.resources import jinja_environment, templates_dir

    if not context["camera"]:
        return ""
    return jinja_environment(templates_dir() / "snippets").get_template("camera.md.j2").render(**context)
