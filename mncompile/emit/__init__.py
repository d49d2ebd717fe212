"""The emit stage: an int8 .tflite becomes a firmware project.

`emit(model, target, out, backend=...)` dispatches on the backend:

- ``"tflm"`` (the default): a TensorFlow Lite Micro project, below;
- ``"aot"``: an interpreter-free project whose C code calls mncompile's own int8 kernels
  (`mncompile.aot.project.emit_aot`, `mncompile.aot.codegen`).

Both check the options, the destination and the model the same way first. The TFLM path:

1. plans the arena (the plan stage) and checks the memory budget;
2. computes golden vectors on the TFLM host interpreter (`golden`);
3. renders `templates/tflm/` with Jinja and copies the board support of the
   target's board from `firmware/` (`project`);
4. writes the tree atomically, with the manifest `mncompile.json` (`manifest`).

The same inputs give a byte-identical tree: every list is sorted, nothing
depends on the time or on temporary paths.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mncompile import __version__
from mncompile.budget import BudgetReport, check_budget, enforce
from mncompile.emit.carrays import byte_rows, c_comment_text, c_float, c_string_literal, int_rows
from mncompile.emit.golden import DEFAULT_GOLDEN, MAX_GOLDEN, Golden, golden_vectors
from mncompile.emit.manifest import MANIFEST_FORMAT, MANIFEST_NAME, TFLM_COMMIT, manifest_text, sha256, tool_versions
from mncompile.emit.project import board_support_files, check_destination, render_tree, write_tree
from mncompile.errors import InvalidOptionError, ModelError
from mncompile.graph.support import tflm_resolver_methods
from mncompile.model.datasets import Preprocessing
from mncompile.model.loader import load_model
from mncompile.plan import PlanResult, device_arena, plan_model
from mncompile.plan.offline import embed_plan
from mncompile.progress import NullReporter, Reporter
from mncompile.resources import firmware_dir, templates_dir
from mncompile.run.qemu import qemu_command
from mncompile.targets import Target, get_target
from mncompile.units import parse_size

# Added to the predicted arena: room for a TFLM other than the commit the prediction models
# (its persistent structs can grow by a few words per op). On that commit, arena_used_bytes()
# equals the prediction exactly, which the firmware prints.
ARENA_MARGIN_BYTES = 1024
BACKENDS = ("tflm", "aot")


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    console: str
    timer: str
    qemu_machine: str | None
    regions: tuple[dict, ...]
    data: dict

    @property
    def real(self) -> bool:
        return self.qemu_machine is None


def load_board(name: str) -> Board:
    folder = firmware_dir() / "boards" / name
    path = folder / "board.toml"
    if not path.is_file():
        known = sorted(p.name for p in (firmware_dir() / "boards").iterdir() if (p / "board.toml").is_file())
        raise ModelError(f"no board support for {name!r} in {folder}",
                         hint=f"boards with support: {', '.join(known)}")
    with path.open("rb") as f:
        data = tomllib.load(f)
    return Board(name, data.get("description", name), data.get("console", "semihosting"),
                 data.get("timer", "systick"), data.get("qemu_machine"), tuple(data.get("regions", ())), data)


@dataclass(frozen=True)
class EmitResult:
    out: Path
    target: Target
    board: Board
    model: Path
    model_sha256: str
    firmware_model_bytes: int  # the flatbuffer the firmware carries (plan embedded)
    arena_bytes: dict  # kernels -> reserved arena (prediction + margin, 16-aligned)
    arena_predicted: dict  # kernels -> predicted arena_used_bytes()
    golden: Golden
    plan: PlanResult
    memory: BudgetReport
    files: tuple[tuple[str, str], ...]  # (relative path, sha256), sorted
    manifest: dict
    backend: str = "tflm"
    aot: dict | None = None  # the AOT backend's figures (arena, constants, in-place layers)

    def to_json(self) -> dict:
        doc = {"out": str(self.out), "target": self.target.name, "board": self.board.name,
               "backend": self.backend, "model": str(self.model), "model_sha256": self.model_sha256,
               "firmware_model_bytes": self.firmware_model_bytes, "arena_bytes": self.arena_bytes,
               "arena_predicted_bytes": self.arena_predicted, "golden": self.golden.to_json(),
               "memory": self.memory.to_json(), "files": [p for p, _ in self.files]}
        if self.aot is not None:
            doc["aot"] = self.aot
        return doc

    def summary_lines(self) -> list[str]:
        """What the CLI prints about an AOT project (the TFLM one: `mncompile.cli.render.emit_lines`)."""
        from mncompile.aot.project import summary_lines

        return summary_lines(self)


def _align16(n: int) -> int:
    return (n + 15) // 16 * 16


def emit(model: str | Path, target: str | Target, out: str | Path, *, golden: int = DEFAULT_GOLDEN,
         dataset: str | None = None, force: bool = False, budget: int | str | None = None,
         ram: int | str | None = None, flash: int | str | None = None, plan: PlanResult | None = None,
         backend: str = "tflm", inplace: str = "auto", reporter: Reporter = NullReporter()) -> EmitResult:
    """Write the firmware project of `backend` ("tflm" or "aot") for the int8 `model` on `target` to
    the folder `out`. `inplace` (AOT only): which depthwise layers run in place where their input dies: "auto" (those
    that lower the arena), "all" or "off"."""
    if backend not in BACKENDS:
        raise InvalidOptionError(f"unknown backend {backend!r}", hint=f"use one of: {', '.join(BACKENDS)}")
    tgt = target if isinstance(target, Target) else get_target(target)
    budget, ram, flash = (parse_size(v) if isinstance(v, str) else v for v in (budget, ram, flash))
    if not 1 <= golden <= MAX_GOLDEN:
        raise InvalidOptionError(f"--golden must be between 1 and {MAX_GOLDEN}, not {golden}")
    out = check_destination(Path(out), force, MANIFEST_NAME)
    board = load_board(tgt.board)
    loaded = load_model(model)
    if loaded.format != "tflite-int8":
        raise ModelError(f"{loaded.path} is a {loaded.format} model; emit takes an int8 .tflite",
                         hint=f"make one first: mncompile quantize {loaded.path} -o model_int8.tflite")
    if backend == "aot":
        from mncompile.aot.project import emit_aot

        return emit_aot(loaded, tgt, board, out, golden=golden, dataset=dataset, budget=budget, ram=ram,
                        flash=flash, plan=plan, inplace=inplace, reporter=reporter)

    reporter.stage("emit", f"TFLM project for {tgt.name} (board {board.name}) in {out}")
    planned = plan if plan is not None else plan_model(loaded.path)
    model_bytes = loaded.path.read_bytes()
    firmware_model = embed_plan(model_bytes, planned.buffers, planned.ours)
    predicted = {k: device_arena(planned, k).total for k in ("reference", "cmsis-nn")}
    reserved = {k: _align16(v + ARENA_MARGIN_BYTES) for k, v in predicted.items()}
    memory = check_budget(len(firmware_model), max(reserved.values()), planned.io_bytes, tgt, budget, ram, flash)
    enforce(memory)

    import tempfile

    with tempfile.TemporaryDirectory(prefix="mncompile-emit-") as tmp:
        run_model = Path(tmp) / "model_planned.tflite"
        run_model.write_bytes(firmware_model)
        vectors = golden_vectors(loaded, run_model, planned.graph, golden, dataset, reporter)

    context = _context(loaded, planned, tgt, board, firmware_model, model_bytes, predicted, reserved, vectors)
    files = render_tree(templates_dir() / "tflm", context)
    files.update(board_support_files(board.name))
    files[f"model/{context['model_file']}"] = firmware_model
    digests = tuple((rel, sha256(files[rel])) for rel in sorted(files))
    document = {
        "format": MANIFEST_FORMAT,
        "model": {"file": loaded.path.name, "sha256": sha256(model_bytes), "bytes": len(model_bytes),
                  "firmware_sha256": sha256(firmware_model), "firmware_bytes": len(firmware_model),
                  "classes": list(context["label_names"])},
        "options": {"target": tgt.name, "board": board.name, "golden": golden, "dataset": dataset,
                    "budget": budget, "ram": ram, "flash": flash, "arena_margin_bytes": ARENA_MARGIN_BYTES,
                    "backend": "tflm"},
        "target": tgt.to_json(),
        "versions": context["versions"],
        "plan": {k: v for k, v in planned.to_json().items() if k != "model"},
        "arena": {"predicted_bytes": predicted, "reserved_bytes": reserved,
                  "prediction": {k: device_arena(planned, k).to_json() for k in ("reference", "cmsis-nn")}},
        "memory": memory.to_json(),
        "golden": vectors.to_json(),
        "files": dict(digests),
    }
    files[MANIFEST_NAME] = manifest_text(document).encode("utf-8")
    reporter.info(f"writing {len(files)} files to {out}")
    write_tree(files, out)
    return EmitResult(out, tgt, board, loaded.path, sha256(model_bytes), len(firmware_model), reserved, predicted,
                      vectors, planned, memory, digests, document)


def _flashing(board: Board) -> dict:
    """A real board's [flashing] table of board.toml, for the project README."""
    if not board.real:
        return {"console_text": "", "flash_origin": "", "pyocd_target": "", "openocd_config": ""}
    try:
        table = board.data["flashing"]
        return {"console_text": table["console"], "flash_origin": f"0x{table['origin']:08x}",
                "pyocd_target": table["pyocd_target"], "openocd_config": table["openocd_config"]}
    except KeyError as exc:
        raise ValueError(f"firmware/boards/{board.name}/board.toml: [flashing] lacks {exc}") from None


def _context(loaded, planned: PlanResult, tgt: Target, board: Board, firmware_model: bytes, model_bytes: bytes,
             predicted: dict, reserved: dict, vectors: Golden) -> dict:
    graph = planned.graph
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    _, h, w, c = tin.shape
    classes = int(tout.shape[-1])
    info = loaded.info
    names = tuple(info.class_names) if info and len(info.class_names) == classes else tuple(
        f"class_{k}" for k in range(classes))
    if info and info.preprocessing:
        prep, prep_source = info.preprocessing, "from the model's sidecar"
    else:
        prep, prep_source = Preprocessing.for_input(h, c), "mncompile's default, the model has no sidecar"
    methods = tflm_resolver_methods()
    kinds = sorted({op.kind for op in graph.ops})
    ops = [{"kind": k, "method": methods[k]} for k in kinds]
    model_comment = c_comment_text(loaded.path.name)
    return {
        "version": __version__,
        "project_title": f"{model_comment} on {tgt.name}",
        "model_comment": model_comment,
        "model_name_literal": c_string_literal(loaded.path.name),
        "model_file": f"{loaded.path.stem}_planned.tflite",
        "model": {"bytes": len(firmware_model), "sha256": sha256(firmware_model), "rows": byte_rows(firmware_model),
                  "source_sha256": sha256(model_bytes)},
        "target": {"name": tgt.name, "cpu": tgt.cpu, "cpu_flags": " ".join(tgt.cpu_flags), "fpu": tgt.fpu,
                   "description": c_comment_text(tgt.description), "qemu_machine": tgt.qemu_machine},
        "board": {"name": board.name, "real": board.real, **_flashing(board)},
        "qemu_args": qemu_command(tgt.qemu_machine, "ELF")[1:-2] if tgt.qemu_machine else [],
        "tflm_commit": TFLM_COMMIT,
        "versions": tool_versions(),
        "ops": ops,
        "input": {"height": h, "width": w, "channels": c, "bytes": tin.nbytes, "scale": c_float(tin.quant.scale),
                  "scale_text": f"{tin.quant.scale:.9g}", "zero_point": int(tin.quant.zero_point)},
        "output": {"classes": classes, "bytes": tout.nbytes, "scale": c_float(tout.quant.scale),
                   "zero_point": int(tout.quant.zero_point)},
        "preprocessing": {"source": prep_source, "color_mode": "grayscale" if prep.color_mode == "L" else "RGB",
                          "resample": prep.resample, "scale": c_float(prep.scale), "offset": c_float(prep.offset)},
        "arena": {"reference": predicted["reference"], "cmsis_nn": predicted["cmsis-nn"],
                  "margin": ARENA_MARGIN_BYTES, "reference_size": reserved["reference"],
                  "cmsis_nn_size": reserved["cmsis-nn"]},
        "label_names": names,
        "labels": [c_string_literal(n) for n in names],
        "golden": {"count": vectors.count, "source": c_comment_text(vectors.source),
                   "input_rows": [int_rows(x, "    ") for x in vectors.inputs],
                   "output_rows": [int_rows(y, "    ") for y in vectors.outputs],
                   "labels": [str(v) for v in vectors.labels]},
    }
