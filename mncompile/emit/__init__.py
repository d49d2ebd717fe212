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

For an Arm Ethos-U target (`target.npu`, TFLM backend only) the TFLM project has its NPU
variant (`_emit_npu`): the firmware carries Vela's optimized model (`mncompile.npu`, run here
unless the caller passes the `NpuResult` it already has), whose ethos-u operator TFLM's
ethos-u kernel runs through Arm's Ethos-U core driver; the arena is the one predicted for
Vela's model (`mncompile.npu.tflm_arena`); `templates/tflm/npu/` adds the driver glue
(src/ethosu_npu.c) and cmake/ethosu.cmake; `vela/` holds Vela's outputs. The golden vectors
stay the CPU reference numerics: the TFLM host interpreter's outputs for the int8 model
before Vela.

The same inputs give a byte-identical tree: every list is sorted, nothing
depends on the time or on temporary paths.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mncompile import __version__
from mncompile.budget import BudgetReport, check_budget, check_npu_budget, enforce
from mncompile.emit.carrays import byte_rows, c_comment_text, c_float, c_string_literal, int_rows
from mncompile.emit.golden import DEFAULT_GOLDEN, MAX_GOLDEN, Golden, golden_vectors, io_quant
from mncompile.emit.manifest import MANIFEST_FORMAT, MANIFEST_NAME, TFLM_COMMIT, manifest_text, sha256, tool_versions
from mncompile.emit.project import board_support_files, check_destination, render_tree, write_tree
from mncompile.errors import InvalidOptionError, ModelError
from mncompile.graph.support import tflm_resolver_methods
from mncompile.model.datasets import Preprocessing
from mncompile.model.loader import LoadedModel, load_model
from mncompile.npu import ETHOSU_OP, NpuResult, VelaOptions
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
NPU_TEMPLATES = "npu/"  # templates/tflm/npu/: the files only the NPU variant has
VELA_DIR = "vela"  # where an NPU project keeps Vela's outputs


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
    plan: PlanResult | None  # the input model's plan (None: an NPU project made without one)
    memory: BudgetReport
    files: tuple[tuple[str, str], ...]  # (relative path, sha256), sorted
    manifest: dict
    backend: str = "tflm"
    aot: dict | None = None  # the AOT backend's figures (arena, constants, in-place layers)
    npu: NpuResult | None = None  # Ethos-U targets: what Vela made of the model (its files: the caller's)

    def to_json(self) -> dict:
        doc = {"out": str(self.out), "target": self.target.name, "board": self.board.name,
               "backend": self.backend, "model": str(self.model), "model_sha256": self.model_sha256,
               "firmware_model_bytes": self.firmware_model_bytes, "arena_bytes": self.arena_bytes,
               "arena_predicted_bytes": self.arena_predicted, "golden": self.golden.to_json(),
               "memory": self.memory.to_json(), "files": [p for p, _ in self.files]}
        if self.aot is not None:
            doc["aot"] = self.aot
        if self.npu is not None:
            doc["npu"] = self.manifest["npu"]  # NpuResult.to_json() with the project's vela/ paths
        return doc

    def summary_lines(self) -> list[str]:
        """What the CLI prints about an AOT project (the TFLM one: `mncompile.cli.render.emit_lines`,
        plus `npu_lines()` for an Ethos-U target)."""
        if self.backend == "tflm":
            return self.npu_lines()
        from mncompile.aot.project import summary_lines

        return summary_lines(self)

    def npu_lines(self) -> list[str]:
        """Two lines about an NPU project (none for another): Vela's model and estimate, and where
        it runs (no QEMU: the Corstone-300 FVP or silicon)."""
        if self.npu is None:
            return []
        n, doc = self.npu, self.manifest["npu"]
        return [f"NPU {n.npu} ({n.accelerator_config}): Vela {n.vela_version} model {n.model_bytes:,} B in "
                f"{doc['model']}, {n.npu_input_ops} of {n.input_ops} operators on the NPU; Vela's estimate "
                f"{n.cycles_total:,} cycles ({n.inference_time_s * 1e3:.3f} ms at {n.clock_hz / 1e6:g} MHz)",
                f"no QEMU model of the {n.npu}: build with -DTFLM_ROOT=... -DETHOSU_DRIVER_ROOT=... and run on "
                f"{doc['fvp']} or silicon (README.md); golden vectors are the CPU reference numerics"]


def _align16(n: int) -> int:
    return (n + 15) // 16 * 16


def emit(model: str | Path, target: str | Target, out: str | Path, *, golden: int = DEFAULT_GOLDEN,
         dataset: str | None = None, force: bool = False, budget: int | str | None = None,
         ram: int | str | None = None, flash: int | str | None = None, plan: PlanResult | None = None,
         backend: str = "tflm", inplace: str = "auto", vela: VelaOptions | None = None,
         npu: NpuResult | None = None, reporter: Reporter = NullReporter()) -> EmitResult:
    """Write the firmware project of `backend` ("tflm" or "aot") for the int8 `model` on `target` to
    the folder `out`. `inplace` (AOT only): which depthwise layers run in place where their input dies: "auto" (those
    that lower the arena), "all" or "off". Ethos-U targets (TFLM only): `vela` says how Vela compiles
    the model (None: the target's defaults); `npu`, a `compile_for_npu` result for this model and
    target, saves running Vela again."""
    if backend not in BACKENDS:
        raise InvalidOptionError(f"unknown backend {backend!r}", hint=f"use one of: {', '.join(BACKENDS)}")
    tgt = target if isinstance(target, Target) else get_target(target)
    if tgt.npu is None:
        if npu is not None or (vela is not None and vela != VelaOptions()):
            raise InvalidOptionError(f"Vela options apply to Ethos-U targets, and {tgt.name} has no NPU",
                                     hint="see `mncompile targets` for the ethos-u* targets")
    elif backend != "tflm":
        raise InvalidOptionError(f"--backend {backend} cannot drive the {tgt.npu.name} of {tgt.name}",
                                 hint="NPU targets use the TFLM project (--backend tflm): TFLM's ethos-u "
                                      "operator runs Vela's command stream on the NPU")
    elif vela is not None:
        vela.resolved(tgt)  # a bad Vela option fails before any work
    budget, ram, flash = (parse_size(v) if isinstance(v, str) else v for v in (budget, ram, flash))
    if not 1 <= golden <= MAX_GOLDEN:
        raise InvalidOptionError(f"--golden must be between 1 and {MAX_GOLDEN}, not {golden}")
    out = check_destination(Path(out), force, MANIFEST_NAME)
    board = load_board(tgt.board)
    loaded = load_model(model)
    float_io = False  # an int8 model with a float32 input (QUANTIZE) and/or output (DEQUANTIZE)
    if loaded.format in ("tflite-int8", "tflite-float"):
        from mncompile.aot.codegen import has_float_io_edges

        float_io = has_float_io_edges(loaded.path)
    if float_io and backend != "aot":
        raise ModelError(f"{loaded.path} is an int8 model with float32 input/output (QUANTIZE/DEQUANTIZE "
                         "at the edges); the TFLM project feeds and checks int8 tensors",
                         hint="use --backend aot, which compiles the float edges")
    if loaded.format != "tflite-int8" and not float_io:
        raise ModelError(f"{loaded.path} is a {loaded.format} model; emit takes an int8 .tflite",
                         hint=f"make one first: mncompile quantize {loaded.path} -o model_int8.tflite")
    if backend == "aot":
        from mncompile.aot.project import emit_aot

        return emit_aot(loaded, tgt, board, out, golden=golden, dataset=dataset, budget=budget, ram=ram,
                        flash=flash, plan=plan, inplace=inplace, reporter=reporter)
    if tgt.npu is not None:
        return _emit_npu(loaded, tgt, board, out, golden=golden, dataset=dataset, budget=budget, ram=ram,
                         flash=flash, plan=plan, vela=vela, npu=npu, reporter=reporter)

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

    context = _context(loaded, planned.graph, tgt, board, firmware_model, model_bytes, predicted, reserved, vectors)
    files = render_tree(templates_dir() / "tflm", context, exclude=(NPU_TEMPLATES,))
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


_NO_FLASHING = {"console_text": "", "flash_origin": "", "pyocd_target": "", "openocd_config": ""}


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


def _context(loaded, graph, tgt: Target, board: Board, firmware_model: bytes, model_bytes: bytes,
             predicted: dict, reserved: dict, vectors: Golden, ops: list[dict] | None = None,
             npu: dict | None = None) -> dict:
    """The templates' context. `ops` (default: the input model's operators) and `npu` (the NPU
    variant's own values, None for a CPU target) come from `_emit_npu`."""
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    qin, qout = io_quant(graph)  # a float input's QUANTIZE (a float output's DEQUANTIZE) gives the int8 side
    _, h, w, c = tin.shape
    classes = int(tout.shape[-1])
    info = loaded.info
    names = tuple(info.class_names) if info and len(info.class_names) == classes else tuple(
        f"class_{k}" for k in range(classes))
    if info and info.preprocessing:
        prep, prep_source = info.preprocessing, "from the model's sidecar"
    else:
        prep, prep_source = Preprocessing.for_input(h, c), "mncompile's default, the model has no sidecar"
    if ops is None:
        methods = tflm_resolver_methods()
        ops = [{"kind": k, "method": methods[k]} for k in sorted({op.kind for op in graph.ops})]
    model_comment = c_comment_text(loaded.path.name)
    return {
        "version": __version__,
        "project_title": f"{model_comment} on {tgt.name}",
        "model_comment": model_comment,
        "model_name_literal": c_string_literal(loaded.path.name),
        "model_file": npu["model_file"] if npu else f"{loaded.path.stem}_planned.tflite",
        "model": {"bytes": len(firmware_model), "sha256": sha256(firmware_model), "rows": byte_rows(firmware_model),
                  "source_sha256": sha256(model_bytes)},
        "target": {"name": tgt.name, "cpu": tgt.cpu, "cpu_flags": " ".join(tgt.cpu_flags), "fpu": tgt.fpu,
                   "description": c_comment_text(tgt.description), "qemu_machine": tgt.qemu_machine},
        "board": {"name": board.name, "real": board.real, **(_NO_FLASHING if npu else _flashing(board))},
        "qemu_args": qemu_command(tgt.qemu_machine, "ELF")[1:-2] if tgt.qemu_machine else [],
        "tflm_commit": TFLM_COMMIT,
        "versions": tool_versions(),
        "ops": ops,
        "input": {"height": h, "width": w, "channels": c, "bytes": tin.nbytes, "scale": c_float(qin.scale),
                  "scale_text": f"{qin.scale:.9g}", "zero_point": int(qin.zero_point)},
        "output": {"classes": classes, "bytes": tout.nbytes, "scale": c_float(qout.scale),
                   "zero_point": int(qout.zero_point)},
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
        "npu": npu,
    }


# ---------------------------------------------------------------------------------------------
# The NPU variant (Arm Ethos-U targets)


def _emit_npu(loaded: LoadedModel, tgt: Target, board: Board, out: Path, *, golden: int, dataset: str | None,
              budget: int | None, ram: int | None, flash: int | None, plan: PlanResult | None,
              vela: VelaOptions | None, npu: NpuResult | None, reporter: Reporter) -> EmitResult:
    """The TFLM project for an Ethos-U target: Vela's model in the firmware, the driver glue, vela/."""
    import tempfile

    from mncompile.graph.reader import read_graph
    from mncompile.npu import compile_for_npu, tflm_arena

    board_npu, fvp = _board_npu(board, tgt)
    reporter.stage("emit", f"TFLM project for {tgt.name} ({tgt.npu.name}, board {board.name}) in {out}")
    graph = plan.graph if plan is not None else read_graph(loaded.path)
    io_bytes = plan.io_bytes if plan is not None else sum(graph.tensors[i].nbytes
                                                         for i in graph.inputs + graph.outputs)
    model_bytes = loaded.path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="mncompile-emit-") as tmp:
        if npu is None:
            npu = compile_for_npu(loaded.path, tgt, Path(tmp) / VELA_DIR, vela or VelaOptions(), reporter)
        else:
            _check_npu_result(npu, tgt, vela, loaded.path)
        firmware_model = npu.model.read_bytes()
        vela_files = {f"{VELA_DIR}/{npu.model.name}": firmware_model,
                      f"{VELA_DIR}/{npu.summary_csv.name}": npu.summary_csv.read_bytes()}
        log = npu.model.parent / "vela.log"
        if log.is_file():
            vela_files[f"{VELA_DIR}/vela.log"] = log.read_bytes()
        arena = tflm_arena(npu)
    vela_graph = read_graph(firmware_model, npu.model.name)
    ops = _npu_ops(vela_graph)
    fast_memory = _fast_memory_bytes(vela_graph, npu)
    if fast_memory and "fast_memory_section" not in board_npu:
        raise InvalidOptionError(f"Vela's {npu.options.memory_mode} memory mode needs {fast_memory:,} B of NPU fast "
                                 f"memory, and board {board.name} has none",
                                 hint="use the target's memory mode (--vela-memory-mode), e.g. Shared_Sram")
    predicted = {k: arena.total for k in ("reference", "cmsis-nn")}
    reserved = {k: _align16(v + ARENA_MARGIN_BYTES) for k, v in predicted.items()}
    memory = check_npu_budget(len(firmware_model), reserved["reference"], npu.sram_bytes, io_bytes, tgt,
                              npu.options.memory_mode, budget, ram, flash)
    enforce(memory, npu=True)

    # CPU reference numerics: the int8 model before Vela, on the TFLM host interpreter.
    vectors = golden_vectors(loaded, loaded.path, graph, golden, dataset, reporter)

    npu_context = _npu_context(npu, tgt, board_npu, fvp, fast_memory)
    context = _context(loaded, graph, tgt, board, firmware_model, model_bytes, predicted, reserved, vectors,
                       ops=ops, npu=npu_context)
    files = render_tree(templates_dir() / "tflm", context, exclude=(NPU_TEMPLATES,))
    files.update(render_tree(templates_dir() / "tflm" / NPU_TEMPLATES, context))
    files.update(board_support_files(board.name))
    files.update(vela_files)
    digests = tuple((rel, sha256(files[rel])) for rel in sorted(files))
    npu_doc = {**npu.to_json(), "model": npu_context["model_file"], "summary_csv": npu_context["summary_file"],
               "log": f"{VELA_DIR}/vela.log" if f"{VELA_DIR}/vela.log" in vela_files else None,
               "fast_memory_bytes": fast_memory, "fvp": fvp["executable"],
               "board": {"base": npu_context["base"], "irq": board_npu["irq"], "secure": bool(board_npu["secure"]),
                         "privileged": bool(board_npu["privileged"])}}
    document = {
        "format": MANIFEST_FORMAT,
        "model": {"file": loaded.path.name, "sha256": sha256(model_bytes), "bytes": len(model_bytes),
                  "firmware_file": npu_context["model_file"], "firmware_sha256": sha256(firmware_model),
                  "firmware_bytes": len(firmware_model), "classes": list(context["label_names"])},
        "options": {"target": tgt.name, "board": board.name, "golden": golden, "dataset": dataset,
                    "budget": budget, "ram": ram, "flash": flash, "arena_margin_bytes": ARENA_MARGIN_BYTES,
                    "backend": "tflm", "vela": {"system_config": npu.options.system_config,
                                                "memory_mode": npu.options.memory_mode,
                                                "optimise": npu.options.optimise}},
        "target": tgt.to_json(),
        "versions": {**context["versions"], "ethos-u-vela": npu.vela_version},
        "npu": npu_doc,
        "arena": {"predicted_bytes": predicted, "reserved_bytes": reserved,
                  "prediction": {"vela": arena.to_json()}},
        "memory": memory.to_json(),
        "golden": {**vectors.to_json(),
                   "reference": f"{loaded.path.name} (the int8 model before Vela) on the TFLM host interpreter's "
                                "reference kernels: the CPU reference numerics the NPU is designed to match"},
        "files": dict(digests),
    }
    files[MANIFEST_NAME] = manifest_text(document).encode("utf-8")
    reporter.info(f"writing {len(files)} files to {out}")
    write_tree(files, out)
    return EmitResult(out, tgt, board, loaded.path, sha256(model_bytes), len(firmware_model), reserved, predicted,
                      vectors, plan, memory, digests, document, npu=npu)


def _board_npu(board: Board, tgt: Target) -> tuple[dict, dict]:
    """The board's [npu] and [fvp] tables (board.toml), checked against the target's NPU."""
    where = f"firmware/boards/{board.name}/board.toml"
    table, fvp = board.data.get("npu"), board.data.get("fvp")
    if not isinstance(table, dict) or not isinstance(fvp, dict):
        raise ModelError(f"board {board.name} cannot drive the {tgt.npu.name} of {tgt.name}: {where} has no "
                         "[npu] and [fvp] tables", hint="the corstone-300-ethos-u* boards have them")
    if table.get("name") != tgt.npu.name:
        raise ModelError(f"board {board.name} has an {table.get('name')}, target {tgt.name} an {tgt.npu.name}",
                         hint=f"fix the board of {tgt.name} in targets.toml")
    missing = [k for k in ("base", "irq", "secure", "privileged") if k not in table]
    missing += [f"fvp.{k}" for k in ("executable", "num_macs", "uart_options", "semihosting_options", "hardware")
                if k not in fvp]
    if missing:
        raise ValueError(f"{where}: [npu]/[fvp] lack {', '.join(missing)}")
    return table, fvp


def _check_npu_result(npu: NpuResult, tgt: Target, vela: VelaOptions | None, model: Path) -> None:
    """An `NpuResult` the caller passes must be Vela's output for this model, target and options."""
    if npu.target != tgt.name:
        raise InvalidOptionError(f"the Vela result passed to emit is for target {npu.target}, not {tgt.name}")
    if vela is not None and vela.resolved(tgt) != npu.options:
        raise InvalidOptionError("the Vela result passed to emit was made with other Vela options "
                                 f"({npu.options}) than the ones given ({vela.resolved(tgt)})")
    if npu.model.name != f"{model.stem}_vela.tflite":
        raise InvalidOptionError(f"the Vela result passed to emit ({npu.model.name}) is not Vela's output for "
                                 f"{model.name}")
    for path in (npu.model, npu.summary_csv):
        if not path.is_file():
            raise InvalidOptionError(f"the Vela result passed to emit lacks its file {path}",
                                     hint="run Vela again (compile_for_npu), or let emit run it")


def _npu_ops(vela_graph) -> list[dict]:
    """The resolver of Vela's model: AddEthosU() for the ethos-u operator, and the CPU operators."""
    methods = tflm_resolver_methods()
    ops = []
    for kind in sorted({op.kind for op in vela_graph.ops}):
        if kind == ETHOSU_OP:
            ops.append({"kind": kind, "method": "AddEthosU"})
        elif kind in methods:
            ops.append({"kind": kind, "method": methods[kind]})
        else:
            raise ModelError(f"Vela's model has the operator {kind}, which TFLM's op resolver cannot register",
                             hint="report the model and the Vela version")
    return ops


def _fast_memory_bytes(vela_graph, npu: NpuResult) -> int:
    """The NPU fast memory the driver needs: in Vela's Dedicated_Sram modes every ethos-u operator's
    fourth input is the scratch_fast tensor (the SRAM cache; Ethos-U core driver:
    FAST_MEMORY_BASE_ADDR_INDEX 2 of the base addresses, after the read-only data and the scratch
    area), whose arena address the driver replaces with its fast memory, refusing one smaller than
    the tensor. In the other modes scratch and scratch_fast are one tensor: no fast memory."""
    if not npu.options.memory_mode.startswith("Dedicated_Sram"):
        return 0
    sizes = [vela_graph.tensors[op.inputs[3]].nbytes for op in vela_graph.ops
             if op.kind == ETHOSU_OP and len(op.inputs) > 3 and op.inputs[3] >= 0 and op.inputs[3] != op.inputs[2]]
    return _align16(max(sizes, default=0))


def _npu_context(npu: NpuResult, tgt: Target, board_npu: dict, fvp: dict, fast_memory: int) -> dict:
    """The templates' `npu`: the NPU, Vela's options and figures, the board's NPU, the FVP."""
    macs_per_cycle = tgt.npu.macs_per_cycle
    fvp_args = ["-C", f"{fvp['num_macs']}={macs_per_cycle}"]
    for option in fvp["uart_options"]:
        fvp_args += ["-C", option]
    return {
        "name": npu.npu, "accelerator_config": npu.accelerator_config,
        "arch": tgt.npu.name.removeprefix("Ethos-").lower(), "macs_per_cycle": macs_per_cycle,
        "vela_version": npu.vela_version, "system_config": npu.options.system_config,
        "memory_mode": npu.options.memory_mode, "optimise": npu.options.optimise,
        "base": f"0x{int(board_npu['base']):08X}", "irq": int(board_npu["irq"]),
        "secure": int(bool(board_npu["secure"])), "privileged": int(bool(board_npu["privileged"])),
        "fast_memory_bytes": fast_memory, "fast_memory_section": board_npu.get("fast_memory_section", ""),
        "sram_bytes": npu.sram_bytes, "off_chip_flash_bytes": npu.off_chip_flash_bytes,
        "dram_bytes": npu.dram_bytes, "cycles_total": npu.cycles_total, "cycles_npu": npu.cycles_npu,
        "clock_mhz": f"{npu.clock_hz / 1e6:g}", "inference_ms": f"{npu.inference_time_s * 1e3:.3f}",
        "nn_macs": npu.macs, "input_ops": npu.input_ops, "npu_input_ops": npu.npu_input_ops,
        "cpu_ops": [c.describe() for c in npu.cpu_ops],
        "model_file": f"{VELA_DIR}/{npu.model.name}", "summary_file": f"{VELA_DIR}/{npu.summary_csv.name}",
        "log_file": f"{VELA_DIR}/vela.log",
        "fvp": fvp["executable"], "num_macs_option": fvp["num_macs"], "fvp_args": fvp_args,
        "fvp_semihosting_args": [a for o in fvp["semihosting_options"] for a in ("-C", o)],
        "hardware": fvp["hardware"],
    }
