"""The AOT firmware project: `mncompile emit --backend aot`.

`render_aot` writes a CMake project that needs no TensorFlow Lite Micro:

- ``src/model.{c,h}`` from `mncompile.aot.codegen` (the model as C calls into the kernels);
- ``src/main.c``, ``src/model_settings.h``, ``src/golden_data.{c,h}``, ``CMakeLists.txt``,
  ``README.md`` from ``templates/aot/``; ``cmake/arm-none-eabi.cmake`` rendered from the TFLM
  backend's toolchain template (one toolchain file for both backends);
- ``firmware/kernels/`` (the int8 kernel library), ``firmware/common/`` and the board's folder,
  copied from the repository;
- ``model/<model>.tflite``, the input model (for tools: `mncompile run` counts its MACs);
- ``mncompile.json``, the manifest, with ``options.backend = "aot"``.

Golden vectors are the TFLM host interpreter's outputs, exactly as for the TFLM backend: the AOT
firmware must reproduce them bit for bit. The firmware prints the TFLM project's lines, so
`mncompile run` builds and checks either kind of project.

An int8 model with float I/O edges (QUANTIZE on the input, DEQUANTIZE making the output) gets
float32 golden inputs (C float literals that read back to the same float32) and float32 expected
outputs held as their bit patterns (``uint32_t``, as in the manifest): the firmware compares the
bits, so a PASS is still "identical to TFLM", and a FAIL line prints the two bit patterns.
"""

from __future__ import annotations

from pathlib import Path

from mncompile.aot.render import kernels_config_h
from mncompile.emit import EmitResult, ProjectInputs
from mncompile.emit.context import template_context
from mncompile.emit.manifest import MANIFEST_NAME, manifest_text, project_manifest
from mncompile.emit.project import board_support_files, camera_files, copy_tree, render_tree
from mncompile.files import write_tree
from mncompile.plan import HELIUM_CPUS, device_arena
from mncompile.progress import Reporter
from mncompile.resources import firmware_dir, templates_dir

TOOLCHAIN_TEMPLATE = ("tflm", "cmake")  # templates/tflm/cmake/arm-none-eabi.cmake.j2, shared by both backends
TOOLCHAIN_FILE = "cmake/arm-none-eabi.cmake"


def render_aot(inputs: ProjectInputs, out: Path, reporter: Reporter) -> EmitResult:
    """Write the AOT project of `inputs` (its `aot` is the generated program)."""
    tgt, board, program, planned, model = inputs.target, inputs.board, inputs.aot, inputs.plan, inputs.model
    reporter.stage("emit", f"AOT project for {tgt.name} (board {board.name}) in {out}")
    mve = tgt.cpu in HELIUM_CPUS  # CMSIS-NN as built for a Helium core
    tflm_arena = {k: device_arena(planned, k, mve=mve).total for k in ("reference", "cmsis-nn")}
    arena = program.arena_bytes
    reporter.info(f"AOT arena {arena:,} B ({_layers(len(program.memory.inplace))} in place); layer-wise "
                  f"lower bound {planned.lower_bound:,} B; TFLM arena {tflm_arena['reference']:,} B")
    vectors = inputs.golden
    same = {"reference": arena, "cmsis-nn": arena}
    context = template_context(inputs, model.data, same, same, model_file=model.name)
    summary = {"nodes": len(program.layers), "constant_bytes": program.constant_bytes, "arena_bytes": arena,
               "lower_bound": planned.lower_bound, "tflm_arena": tflm_arena["reference"],
               "inplace": list(program.memory.inplace), "kernels": list(program.kernels),
               "memory": program.choice.to_json() if program.choice else None,
               "patch_stages": [s.to_json() for s in program.memory.schedules],
               "outside_arena_bytes": program.outside_arena_bytes,
               "external_input_bytes": program.input_bytes if program.memory.external_input else 0}
    context["aot"] = summary

    files = render_tree(templates_dir() / "aot", context, exclude=("model/",))  # model/: the AOT renderer's
    toolchain = render_tree(templates_dir().joinpath(*TOOLCHAIN_TEMPLATE), context, prefix="cmake/")
    files[TOOLCHAIN_FILE] = toolchain[TOOLCHAIN_FILE]
    files["src/model.c"] = program.model_c.encode("utf-8")
    files["src/model.h"] = program.model_h.encode("utf-8")
    files.update(copy_tree(firmware_dir() / "kernels", "firmware/kernels/"))
    files["firmware/kernels/mn_kernels_config.h"] = kernels_config_h(program.calls, model.name).encode("utf-8")
    files.update(board_support_files(board.name))
    files.update(camera_files(context))
    files[f"model/{model.name}"] = model.data
    sections = {
        "plan": {**program.memory.to_json(), "layerwise_lower_bound_bytes": planned.lower_bound,
                 "tflm": {"lower_bound_bytes": planned.lower_bound, "tflm_greedy_bytes": planned.greedy.arena_bytes,
                          "mncompile_bytes": planned.ours.arena_bytes, "device_arena_bytes": tflm_arena}},
        # `mncompile run` compares the firmware's arena line with predicted_bytes[<kernels>]; the AOT
        # build's kernel set is "aot" and its arena is static, so reserved = used = predicted.
        "arena": {"predicted_bytes": {"aot": arena}, "reserved_bytes": {"aot": arena}},
        "aot": {k: v for k, v in program.to_json().items() if k != "memory"},
    }
    digests, document = project_manifest(inputs, model.data, files, classes=context["label_names"],
                                         options={"backend": "aot"}, sections=sections)
    files[MANIFEST_NAME] = manifest_text(document).encode("utf-8")
    reporter.info(f"writing {len(files)} files to {out}")
    write_tree(files, out)
    return EmitResult(out, tgt, board, model.path or Path(model.name), model.sha256, program.constant_bytes,
                      {"aot": arena}, {"aot": arena}, vectors, planned, inputs.memory, digests, document,
                      backend="aot", aot=summary)


def _layers(n: int) -> str:
    return f"{n} layer{'' if n == 1 else 's'}"


def patch_lines(a: dict) -> list[str]:
    """The schedule --memory chose, for the summary (nothing when it is layer by layer)."""
    memory, stages = a.get("memory"), a.get("patch_stages") or []
    if not stages:
        return []
    what = "; ".join(f"nodes {s['first_node']}..{s['last_node']} in {s['tiles'][0]}x{s['tiles'][1]} tiles"
                     for s in stages)
    lines = [f"--memory {memory['mode']}: patch stages ({what}): {memory['extra_macs']:,} extra MACs "
             f"(+{memory['extra_macs_fraction']:.1%}); RAM {memory['chosen_ram_bytes']:,} B against "
             f"{memory['layerwise_ram_bytes']:,} B layer by layer"]
    if a.get("external_input_bytes"):
        lines.append(f"the input ({a['external_input_bytes']:,} B) is read in place from the caller's buffer, "
                     "outside the arena")
    return lines


def summary_lines(result) -> list[str]:
    """What `emit --backend aot` (and the end of `build --backend aot`) prints about the project."""
    a, t = result.aot, result.target
    lines = [f"wrote {result.out}/ ({len(result.files) + 1} files): AOT project (no TFLM) for {t.name}, "
             f"board {result.board.name}",
             f"flash: constants {a['constant_bytes']:,} B; RAM: static arena {a['arena_bytes']:,} B "
             f"({_layers(len(a['inplace']))} in place; layer-wise lower bound {a['lower_bound']:,} B, "
             f"TFLM arena {a['tflm_arena']:,} B)",
             *patch_lines(a),
             f"golden vectors: {result.golden.count} ({result.golden.source}), expected outputs from "
             "the TFLM host interpreter" + (" (float32, compared bit for bit)" if result.golden.float_output else ""),
             f"build: cmake -S {result.out} -B {result.out}/build -G Ninja && cmake --build {result.out}/build"]
    if t.qemu_machine:
        lines.append(f"run on QEMU {t.qemu_machine}: cmake --build {result.out}/build --target run "
                     f"(or mncompile run {result.out})")
    return lines
