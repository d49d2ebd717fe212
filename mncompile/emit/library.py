"""`mncompile emit --layout library`: the model as a static library to link into the user's application.

The firmware layouts are programs: a golden-vector ``main``, board support, a linker script. An
application on STM32Cube, Zephyr or Arduino has all of those already and needs the model only, so
`render_library` writes one folder that is at the same time

- a CMake static library, ``mncompile_model`` (alias ``mncompile::model``), whose only public
  include folder holds ``mncompile_model.h`` (``add_subdirectory`` + ``target_link_libraries``);
- a Zephyr module (``zephyr/module.yml``, ``zephyr/CMakeLists.txt`` with ``zephyr_library``,
  ``zephyr/Kconfig``);
- an Arduino library (``library.properties``, every source flat in ``src/`` as Arduino needs,
  ``examples/Classify/``);
- a set of files to drag into an STM32CubeIDE project (``src/``, README).

Built on the AOT backend only (`mncompile.aot.codegen`: plain C, no interpreter, no heap); a TFLM
library is refused in `mncompile.options.resolve`. The generated network is used as the
firmware's, with four textual changes (`library_network`), each checked to apply exactly once so
a change in the code generator fails here and not in the user's build: the static arena becomes a
pointer the API sets (the caller's buffer or the library's static one), the constants' linker
section becomes optional (``.rodata`` by default: a user's linker script has no ``.model``), the
file is ``mncompile_model_net.{c,h}`` and its ``model_*`` symbols are ``mncompile_net_*`` (no clash
with an application's own ``model.h`` or ``model_invoke``).

Golden vectors are optional (``--golden 0``): with some, ``mncompile_model_selftest()`` checks them
bit for bit on the device (their data sits in its own object file, linked only when called).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mncompile.aot.render import kernels_config_h
from mncompile.emit import EmitResult, ProjectInputs
from mncompile.emit.context import template_context
from mncompile.emit.contract import pixel_contract
from mncompile.emit.manifest import MANIFEST_NAME, manifest_text, project_manifest
from mncompile.emit.project import copy_tree, render_tree
from mncompile.errors import InvalidOptionError
from mncompile.files import write_tree
from mncompile.preprocess.camera import CameraOptions
from mncompile.preprocess.contract import PixelOptions
from mncompile.progress import NullReporter, Reporter
from mncompile.resources import firmware_dir, templates_dir
from mncompile.validate.golden import Golden

LIBRARY = "mncompile_model"
ALIAS = "mncompile::model"
HEADER = "include/mncompile_model.h"
NET = "mncompile_model_net"
CAMERA_SOURCE = "src/mncompile_model_camera.c"
API = ("mncompile_model_init", "mncompile_model_init_with_arena", "mncompile_model_arena_bytes",
       "mncompile_model_input", "mncompile_model_output", "mncompile_model_invoke", "mncompile_model_run",
       "mncompile_model_input_tensor", "mncompile_model_output_tensor", "mncompile_model_top1",
       "mncompile_model_label_count", "mncompile_model_label", "mncompile_model_selftest")
CAMERA_API = ("mncompile_model_preprocess", "mncompile_model_set_input_frame")

_ARENA = re.compile(r"(?:/\* The one arena\.[^/]*?\*/\n)?static uint8_t arena\[MODEL_ARENA_BYTES\][^;\n]*;\n")
_CONST = re.compile(r'#define MN_CONST __attribute__\(\(aligned\(4\), section\("\.model"\)\)\)\n')
_ARENA_POINTER = """/* The arena: mncompile_model_init() or mncompile_model_init_with_arena() points it at the library's
 * static buffer or the caller's (emit --layout library; the firmware project's is a static array). */
static uint8_t *arena;

void mncompile_net_set_arena(uint8_t *base)
{
    arena = base;
}
"""
_CONST_OPTIONAL = """/* Weights, biases, multipliers and shifts: .rodata (flash), or the section
 * MNCOMPILE_MODEL_CONST_SECTION names. */
#ifdef MNCOMPILE_MODEL_CONST_SECTION
#define MN_CONST __attribute__((aligned(4), section(MNCOMPILE_MODEL_CONST_SECTION)))
#else
#define MN_CONST __attribute__((aligned(4)))
#endif
"""
_SET_ARENA_DECL = "/* Where the arena is (emit --layout library). */\nvoid mncompile_net_set_arena(uint8_t *base);\n\n"


class _NoGolden(Golden):
    """``--golden 0``: no vectors, but the camera and its lookup table (the library's preprocessing)."""

    def predictions(self) -> tuple[int, ...]:
        return ()

    def to_json(self) -> dict:
        doc = {"source": self.source, "count": 0, "indices": [], "labels": [], "predictions": [],
               "emulator": "none", "expected_outputs": []}
        if self.camera is not None:
            doc["camera"] = {**self.camera.to_json(), "vector_formats": [], "frame_bytes": []}
        return doc


def _once(pattern: re.Pattern, text: str, replacement: str, what: str) -> str:
    new, n = pattern.subn(lambda _: replacement, text)
    if n != 1:
        raise AssertionError(f"the generated {what} is not as emit --layout library expects ({n} matches)")
    return new


def library_network(model_c: str, model_h: str) -> tuple[str, str]:
    """The AOT generator's (model.c, model.h) as the library's (mncompile_model_net.c, .h)."""
    source = _once(_ARENA, model_c, _ARENA_POINTER, "arena declaration")
    source = _once(_CONST, source, _CONST_OPTIONAL, "MN_CONST define")
    source = _once(re.compile(r'#include "model\.h"\n'), source, f'#include "{NET}.h"\n', "include of model.h")
    header = _once(re.compile(r"\n#ifdef __cplusplus\n}\n#endif\n"), model_h,
                   "\n" + _SET_ARENA_DECL + "#ifdef __cplusplus\n}\n#endif\n", "header end")
    rename = re.compile(r"\bmodel_(?=[a-z])")
    return rename.sub("mncompile_net_", source), rename.sub("mncompile_net_", header)


def _no_golden(loaded, prep, camera: CameraOptions) -> Golden:
    """What an image model's camera path needs without vectors: the camera and the contract's table."""
    from mncompile.graph.edges import io_quant
    from mncompile.preprocess.contract import lookup_table

    graph = loaded.verified.graph
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    empty_in = np.zeros((0, *tin.shape[1:]), np.float32 if tin.dtype == "FLOAT32" else np.int8)
    empty_out = np.zeros((0, *tout.shape[1:]), np.float32 if tout.dtype == "FLOAT32" else np.int8)
    cam = lut = None
    if len(tin.shape) == 4 and tin.shape[1] == tin.shape[2] and prep is not None:
        cam = camera.camera(tin.shape[1], tin.shape[3], prep)
        q = io_quant(graph)[0]
        lut = lookup_table(prep, None if tin.dtype == "FLOAT32" else (q.scale, q.zero_point))
    return _NoGolden("none (--golden 0)", (), (), empty_in, empty_out, camera=cam, lut=lut)


def library_inputs(loaded, resolved, planned, *, dataset: str | None, reporter: Reporter,
                   pixels: PixelOptions, camera: CameraOptions, golden_images: Path | None) -> ProjectInputs:
    """The AOT branch of `mncompile.pipeline.project_inputs`, with ``--golden 0`` allowed (no TFLM
    run, no dataset: the camera path's table alone)."""
    from mncompile.aot.budgeted import compile_within
    from mncompile.emit.boards import load_board
    from mncompile.validate.golden import golden_vectors

    model, target, limits = loaded.verified, resolved.target, resolved.limits
    prep, prep_source, labels = pixel_contract(loaded, pixels, reporter)
    program, memory = compile_within(model, resolved)
    if resolved.golden:
        golden = golden_vectors(model, loaded.info, resolved.golden, dataset, model, reporter, preprocessing=prep,
                                camera=camera, images=golden_images, class_names=labels)
    else:
        golden = _no_golden(loaded, prep, camera)
    options = {"golden": resolved.golden, "dataset": dataset, "budget": limits.budget, "ram": limits.ram,
               "flash": limits.flash, "golden_images": str(golden_images) if golden_images else None,
               "inplace_depthwise": resolved.inplace, "memory": resolved.memory}
    return ProjectInputs(model, loaded.info, target, load_board(target.board), "aot", planned, golden, memory,
                         options, aot=program, preprocessing=prep, preprocessing_source=prep_source, labels=labels)


def check_library_options(resolved, dataset: str | None, golden_images) -> None:
    """What only the library layout refuses, before any work: --profile (the per-layer timing needs
    the board's tick counter) and --golden-images/--dataset with --golden 0."""
    if resolved.profile:
        raise InvalidOptionError("--profile times the layers with the board's tick counter, and a library has no "
                                 "board", hint="drop --profile; profile the model with the firmware layout "
                                               "(emit --backend aot --profile, then mncompile run)")
    if resolved.golden == 0 and (golden_images is not None or dataset is not None):
        raise InvalidOptionError("--golden 0 makes no golden vectors, and --golden-images/--dataset choose their "
                                 "images", hint="drop them, or give --golden 1 or more")


def _sources(files: dict[str, bytes]) -> list[str]:
    return sorted(p[len("src/"):] for p in files if p.startswith("src/") and p.endswith(".c"))


def render_library(inputs: ProjectInputs, out: Path, reporter: Reporter = NullReporter()) -> EmitResult:
    """Write the library of `inputs` (AOT: its `aot` is the generated program) to `out`."""
    from mncompile.emit.aot import TOOLCHAIN_FILE, TOOLCHAIN_TEMPLATE

    tgt, board, program, planned, model = inputs.target, inputs.board, inputs.aot, inputs.plan, inputs.model
    if program is None:
        raise InvalidOptionError("--layout library is built on the AOT backend", hint="use --backend aot")
    reporter.stage("emit", f"library {LIBRARY} for {tgt.name} in {out}")
    arena = program.arena_bytes
    same = {"reference": arena, "cmsis-nn": arena}
    context = template_context(inputs, model.data, same, same, model_file=model.name)
    net_c, net_h = library_network(program.model_c, program.model_h)
    files: dict[str, bytes] = {f"src/{NET}.c": net_c.encode("utf-8"), f"src/{NET}.h": net_h.encode("utf-8")}
    kernels = copy_tree(firmware_dir() / "kernels", "src/")
    files.update({k: v for k, v in kernels.items() if k.endswith((".c", ".h"))})
    files["src/mn_kernels_config.h"] = kernels_config_h(program.calls, model.name).encode("utf-8")
    if context["camera"]:
        files.update({k: v for k, v in copy_tree(firmware_dir() / "preprocess", "src/").items()
                      if k.endswith((".c", ".h"))})
    # The sources the CMake and Zephyr files list: the copied ones, and the templates' (known by name).
    names = ["mncompile_model.c", "mncompile_model_arena.c", "mncompile_model_golden.c"]
    if context["camera"]:
        names.append("mncompile_model_camera.c")
    sources = sorted({*_sources(files), *names})
    context["lib"] = {"name": LIBRARY, "alias": ALIAS, "arena_bytes": arena, "constant_bytes": program.constant_bytes,
                      "nodes": len(program.layers), "sources": sources, "camera_api": bool(context["camera"]),
                      "api": list(API) + (list(CAMERA_API) if context["camera"] else [])}
    rendered = render_tree(templates_dir() / "library", context)
    if not context["camera"]:
        rendered.pop(CAMERA_SOURCE)
    files.update(rendered)
    assert _sources(files) == sources, "the library's source list and its files differ"
    toolchain = render_tree(templates_dir().joinpath(*TOOLCHAIN_TEMPLATE), context, prefix="cmake/")
    files[TOOLCHAIN_FILE] = toolchain[TOOLCHAIN_FILE]
    files[f"model/{model.name}"] = model.data
    library = {"target": LIBRARY, "alias": ALIAS, "header": HEADER, "api": context["lib"]["api"],
               "sources": [f"src/{s}" for s in sources], "arena_bytes": arena, "constant_bytes": program.constant_bytes,
               "selftest_vectors": inputs.golden.count}
    sections = {"aot": {k: v for k, v in program.to_json().items() if k != "memory"},
                "plan": {**program.memory.to_json(), "layerwise_lower_bound_bytes": planned.lower_bound},
                "arena": {"predicted_bytes": {"aot": arena}, "reserved_bytes": {"aot": arena}},
                "library": library}
    digests, document = project_manifest(inputs, model.data, files, classes=context["label_names"],
                                         options={"backend": "aot", "layout": "library"}, sections=sections)
    files[MANIFEST_NAME] = manifest_text(document).encode("utf-8")
    reporter.info(f"writing {len(files)} files to {out}")
    write_tree(files, out)
    summary = {"nodes": len(program.layers), "constant_bytes": program.constant_bytes, "arena_bytes": arena,
               "lower_bound": planned.lower_bound, "inplace": list(program.memory.inplace),
               "kernels": list(program.kernels)}
    return EmitResult(out, tgt, board, model.path or Path(model.name), model.sha256, program.constant_bytes,
                      {"aot": arena}, {"aot": arena}, inputs.golden, planned, inputs.memory, digests, document,
                      backend="aot", aot=summary, layout="library")


def summary_lines(result: EmitResult) -> list[str]:
    """What `emit --layout library` prints."""
    a, out, n = result.aot, result.out, result.golden.count
    return [f"wrote {out}/ ({len(result.files) + 1} files): static library {LIBRARY} ({ALIAS}), AOT (no TFLM), "
            f"checked for {result.target.name}",
            f"header: {out}/{HEADER}; flash: constants {a['constant_bytes']:,} B; RAM: arena {a['arena_bytes']:,} B "
            "(the library's static one, or yours: mncompile_model_init_with_arena)",
            (f"self-test: {n} golden vector{'s' if n != 1 else ''}, mncompile_model_selftest() compares them with "
             "the TFLM host interpreter's outputs bit for bit") if n else
            "self-test: none (--golden 0): mncompile_model_selftest() returns MNCOMPILE_MODEL_ERR_NO_GOLDEN",
            f"CMake: add_subdirectory({out} mncompile_model) + target_link_libraries(app PRIVATE {ALIAS}); "
            f"Zephyr module: {out}/zephyr/; Arduino library: {out} itself; STM32CubeIDE: {out}/README.md"]
