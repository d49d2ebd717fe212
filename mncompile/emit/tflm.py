"""The TensorFlow Lite Micro project: `templates/tflm/` rendered for a CPU or an Ethos-U target.

A CPU target's firmware carries the planned model (our memory plan embedded as
OfflineMemoryAllocation) and reserves the predicted arena plus a margin. An Ethos-U target's
firmware carries Vela's model, whose ethos-u operator TFLM's ethos-u kernel runs through Arm's
Ethos-U core driver; `templates/tflm/npu/` adds the driver glue (src/ethosu_npu.c) and
cmake/ethosu.cmake, and ``vela/`` holds Vela's outputs. Its golden vectors stay the CPU
reference numerics: the TFLM host interpreter's outputs for the int8 model before Vela.
"""

from __future__ import annotations

from pathlib import Path

from mncompile.emit import EmitResult, ProjectInputs
from mncompile.emit.context import template_context
from mncompile.emit.manifest import MANIFEST_NAME, manifest_text, project_manifest, tool_versions
from mncompile.emit.project import board_support_files, camera_files, render_tree
from mncompile.errors import ModelError
from mncompile.files import write_tree
from mncompile.graph.support import tflm_resolver_methods
from mncompile.plan import ARENA_MARGIN_BYTES, HELIUM_CPUS  # noqa: F401 (HELIUM_CPUS: re-exported)
from mncompile.progress import Reporter
from mncompile.resources import templates_dir

NPU_TEMPLATES = "npu/"  # templates/tflm/npu/: the files only the NPU variant has
VELA_DIR = "vela"  # where an NPU project keeps Vela's outputs
ETHOSU_OP = "CUSTOM:ethos-u"
# CMSIS-NN's kernels for Helium (MVE) cores (`HELIUM_CPUS`) request other buffers than its DSP kernels;
# `firmware_arena` predicts them for the target's CPU, so the "cmsis-nn" figure is exact there too
# (its "runtime" says "cmsis-nn (Helium/MVE) kernels").


def _align16(n: int) -> int:
    return (n + 15) // 16 * 16


def render_tflm(inputs: ProjectInputs, out: Path, reporter: Reporter) -> EmitResult:
    tgt, board, planned, arena = inputs.target, inputs.board, inputs.plan, inputs.arena
    reporter.stage("emit", f"TFLM project for {tgt.name} (board {board.name}) in {out}")
    firmware_model = planned.planned_model
    context = template_context(inputs, firmware_model.data, arena.predicted, arena.reserved,
                               model_file=firmware_model.name)
    files = render_tree(templates_dir() / "tflm", context, exclude=(NPU_TEMPLATES,))
    files.update(board_support_files(board.name))
    files.update(camera_files(context))
    files[f"model/{firmware_model.name}"] = firmware_model.data
    sections = {"plan": {k: v for k, v in planned.to_json().items() if k != "model"},
                "arena": {"predicted_bytes": arena.predicted, "reserved_bytes": arena.reserved,
                          "prediction": {k: p.to_json() for k, p in arena.predictions.items()},
                          **({"bounds": arena.bounds} if arena.bounds else {})}}
    digests, document = project_manifest(inputs, firmware_model.data, files, classes=context["label_names"],
                                         options={"arena_margin_bytes": ARENA_MARGIN_BYTES, "backend": "tflm"},
                                         sections=sections)
    files[MANIFEST_NAME] = manifest_text(document).encode("utf-8")
    reporter.info(f"writing {len(files)} files to {out}")
    write_tree(files, out)
    return EmitResult(out, tgt, board, inputs.model.path or Path(inputs.model.name), inputs.model.sha256,
                      firmware_model.size, arena.reserved, arena.predicted, inputs.golden, planned, inputs.memory,
                      digests, document)


def board_npu(board, tgt) -> tuple[dict, dict]:
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


def npu_ops(vela_graph) -> list[dict]:
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


def npu_reserved_arena(npu_arena) -> tuple[dict, dict]:
    """(predicted, reserved) arena of an NPU project, by kernel set (both sets: the same model)."""
    predicted = {k: npu_arena.total for k in ("reference", "cmsis-nn")}
    return predicted, {k: _align16(v + ARENA_MARGIN_BYTES) for k, v in predicted.items()}


def render_npu(inputs: ProjectInputs, out: Path, reporter: Reporter) -> EmitResult:
    """The TFLM project for an Ethos-U target: Vela's model in the firmware, the driver glue, vela/."""
    tgt, board, npu = inputs.target, inputs.board, inputs.npu
    board_table, fvp = board_npu(board, tgt)
    reporter.stage("emit", f"TFLM project for {tgt.name} ({tgt.npu.name}, board {board.name}) in {out}")
    firmware_model = npu.optimized
    vela_files = {f"{VELA_DIR}/{npu.model.name}": firmware_model.data,
                  f"{VELA_DIR}/{npu.summary_csv.name}": npu.summary_data}
    if npu.log_text:
        vela_files[f"{VELA_DIR}/vela.log"] = npu.log_text.encode("utf-8")
    predicted, reserved = npu_reserved_arena(inputs.npu_arena)
    npu_context = _npu_context(npu, tgt, board_table, fvp, inputs.fast_memory)
    context = template_context(inputs, firmware_model.data, predicted, reserved, model_file=npu_context["model_file"],
                               ops=npu_ops(firmware_model.graph), npu=npu_context)
    files = render_tree(templates_dir() / "tflm", context, exclude=(NPU_TEMPLATES,))
    files.update(render_tree(templates_dir() / "tflm" / NPU_TEMPLATES, context))
    files.update(board_support_files(board.name))
    files.update(camera_files(context))
    files.update(vela_files)
    npu_doc = {**npu.to_json(), "model": npu_context["model_file"], "summary_csv": npu_context["summary_file"],
               "log": f"{VELA_DIR}/vela.log" if f"{VELA_DIR}/vela.log" in vela_files else None,
               "fast_memory_bytes": inputs.fast_memory, "fvp": fvp["executable"],
               "board": {"base": npu_context["base"], "irq": board_table["irq"], "secure": bool(board_table["secure"]),
                         "privileged": bool(board_table["privileged"])}}
    sections = {"npu": npu_doc, "arena": {"predicted_bytes": predicted, "reserved_bytes": reserved,
                                          "prediction": {"vela": inputs.npu_arena.to_json()}}}
    vela = {"system_config": npu.options.system_config, "memory_mode": npu.options.memory_mode,
            "optimise": npu.options.optimise}
    digests, document = project_manifest(
        inputs, firmware_model.data, files, classes=context["label_names"], firmware_file=npu_context["model_file"],
        options={"arena_margin_bytes": ARENA_MARGIN_BYTES, "backend": "tflm", "vela": vela}, sections=sections,
        versions={**tool_versions(), "ethos-u-vela": npu.vela_version},
        golden={"reference": f"{inputs.model.name} (the int8 model before Vela) on the TFLM host interpreter's "
                             "reference kernels: the CPU reference numerics the NPU is designed to match"})
    files[MANIFEST_NAME] = manifest_text(document).encode("utf-8")
    reporter.info(f"writing {len(files)} files to {out}")
    write_tree(files, out)
    return EmitResult(out, tgt, board, inputs.model.path or Path(inputs.model.name), inputs.model.sha256,
                      firmware_model.size, reserved, predicted, inputs.golden, inputs.plan, inputs.memory, digests,
                      document, npu=npu)


def _npu_context(npu, tgt, board_npu: dict, fvp: dict, fast_memory: int) -> dict:
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
