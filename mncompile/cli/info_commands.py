"""Information commands: targets, fit, report."""

from __future__ import annotations

from pathlib import Path

import typer

from mncompile.cli.app import _handle_errors, app
from mncompile.cli.options import ARCH, JSON_OPTION, MEMORY_OPTION


@app.command()
@_handle_errors
def targets(
    notes: bool = typer.Option(False, "--notes", help="Also print each target's description, "
                               "compiler flags and where its figures come from."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Deployment targets: CPU, clock, RAM and flash in bytes, QEMU machine, board, NPU.

    RAM is the largest contiguous SRAM block (one TFLM arena must be contiguous);
    flash holds the .tflite. The table is mncompile/targets/targets.toml.
    """
    from rich.table import Table

    from mncompile.cli import render
    from mncompile.targets import all_targets

    known = all_targets()
    if json_output:
        render.print_json({"targets": [t.to_json() for t in known]})
        return
    table = Table(title="targets (RAM: largest contiguous block, for arena + I/O; flash: the .tflite)",
                  title_justify="left")
    for name in ("target", "cpu", "clock", "RAM bytes", "flash bytes", "QEMU machine", "board", "NPU"):
        table.add_column(name, justify="right" if "bytes" in name or name == "clock" else "left")
    for t in known:
        npu = (f"{t.npu.name} {t.npu.macs_per_cycle} MACs/cycle, Vela {t.npu.vela_system_config} / "
               f"{t.npu.vela_memory_mode}") if t.npu else "-"
        table.add_row(t.name, t.cpu, f"{t.cpu_hz / 1e6:g} MHz", f"{t.ram_bytes:,}", f"{t.flash_bytes:,}",
                      t.qemu_machine or "-", t.board, npu)
    render.out.print(table)
    for t in known if notes else ():
        render.out.print(f"\n{t.name}: {t.description}\n  flags: {' '.join(t.cpu_flags)}; fpu: {t.fpu}\n"
                         f"  {t.notes}", highlight=False)


def _fit_table(result):
    from rich.table import Table

    table = Table(title=f"MobileNet{result.arch.upper()} configurations that fit {result.target.name}, "
                        "best first (ImageNet top-1 as published)", title_justify="left")
    for name in ("#", "alpha", "resolution", "MACs", "params", "constants B", "arena B", "I/O B",
                 "total B", "top-1 %", "headroom B"):
        table.add_column(name, justify="left" if name == "#" else "right")
    for k, c in enumerate(result.fitting, start=1):
        e = c.estimate
        table.add_row(str(k), f"{e.spec.alpha:g}", str(e.spec.resolution), f"{e.macs / 1e6:,.1f}M",
                      f"{e.params / 1e6:,.3f}M", f"{e.constants_bytes:,}", f"{e.arena_bytes:,}",
                      f"{e.io_bytes:,}", f"{e.total_bytes:,}",
                      f"{c.accuracy.top1:.1f}" if c.accuracy else "unpublished", f"{c.report.headroom:,}")
    return table


@app.command(name="fit")
@_handle_errors
def fit_command(
    budget: str | None = typer.Option(None, "--budget", help="Total model memory: constants + arena "
                                      "+ I/O buffers, e.g. 6MB (KB/MB are 1024-based)."),
    target: str = typer.Option("cortex-m7", "--target", help="Deployment target (`mncompile targets`): "
                               "its RAM and flash are limits too."),
    arch: str = ARCH,
    ram: str | None = typer.Option(None, "--ram", help="RAM for arena + I/O buffers, instead of the "
                                   "target's."),
    flash: str | None = typer.Option(None, "--flash", help="Flash for the .tflite, instead of the "
                                     "target's."),
    channels: int = typer.Option(3, "--channels", help="Input channels, 1 or 3."),
    classes: int = typer.Option(1000, "--classes", help="Classifier outputs (ImageNet: 1000)."),
    confirm: bool = typer.Option(False, "--confirm", help="Also build the winner and convert it to "
                                 "int8 (TensorFlow, some seconds), and report its exact constants and "
                                 "activation lower bound next to the estimate."),
    memory: str = MEMORY_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """The MobileNets (alpha x resolution) that fit a memory budget, ranked by published accuracy.

    Memory is estimated analytically, without TensorFlow: constants (the .tflite:
    int8 weights, int32 biases, flatbuffer overhead), arena (activation lower
    bound plus TFLM's persistent allocations) and I/O buffers. Nothing fits:
    exit 8. Then the best configuration ranked ahead of the winner that only the
    AOT backend fits, with the schedule --memory picks (patch stages trade extra
    MACs for RAM), is named too (`emit/build --backend aot --memory ...`).
    """
    from mncompile import fit as fitting
    from mncompile.aot.analytic import admit
    from mncompile.cli import render
    from mncompile.options import check_memory_mode
    from mncompile.targets import get_target

    check_memory_mode(memory)
    result = fitting.search(arch, get_target(target), budget=budget, ram=ram, flash=flash,
                            channels=channels, classes=classes)
    aot = admit(result, memory, render.RichReporter())
    if aot is None:
        fitting.check_fits(result, f"nor does any with the AOT backend (--memory {memory})")
    confirmation = (fitting.confirm_fit(result.winner, render.RichReporter())
                    if confirm and result.winner is not None else None)
    if json_output:
        document = {**result.to_json(), "aot": aot.to_json() if aot else None, "memory": memory}
        if confirmation is not None:
            document["confirm"] = confirmation.to_json()
        render.print_json(document)
        return
    limits = "; ".join(f"{row.name} {row.limit:,} B ({row.source}: {row.what})"
                       for row in (result.winner or aot.candidate).report.rows)
    render.out.print(f"limits: {limits}", highlight=False)
    render.out.print(_fit_table(result))
    w = result.winner
    if w is None:
        render.out.print("winner: none with TFLM's figures", highlight=False)
    else:
        source = f" ({w.accuracy.source})" if w.accuracy else " (accuracy unpublished; ranked by MACs)"
        render.out.print(f"winner: --arch {arch} --alpha {w.estimate.spec.alpha:g} --resolution "
                         f"{w.estimate.spec.resolution}{source}", highlight=False)
    if result.not_fitting:
        s = result.not_fitting[0].estimate
        render.out.print(f"{len(result.not_fitting)} of {len(result.fitting) + len(result.not_fitting)} "
                         f"configurations do not fit (the smallest of them, alpha {s.spec.alpha:g} at "
                         f"{s.spec.resolution} px, needs {s.total_bytes:,} B)", highlight=False)
    if aot is not None:
        a = aot.to_json()
        stages = (f", patch stages: {a['extra_macs']:,} extra MACs (+{a['extra_macs_fraction']:.1%})"
                  if a["patch_stages"] else ", layer by layer")
        render.out.print(f"with the AOT backend: --arch {arch} --alpha {a['alpha']:g} --resolution {a['resolution']} "
                         f"--backend aot --memory {memory} fits: RAM {a['ram_bytes']:,} B of {a['room_bytes']:,} B "
                         f"(TFLM would need {a['tflm_ram_bytes']:,} B{stages})", highlight=False)
    else:
        render.out.print(f"the AOT backend (--memory {memory}) fits nothing ranked ahead of the winner",
                         highlight=False)
    if confirmation is not None:
        c = confirmation.to_json()
        render.out.print(f"confirmed by building and converting {c['model']} (batch 1, int8):", highlight=False)
        for key, what in (("constants_bytes", ".tflite size"), ("tensor_bytes", "constant tensors"),
                          ("activation_lower_bound_bytes", "activation lower bound")):
            est, exact = c[key]["estimate"], c[key]["exact"]
            render.out.print(f"  {what}: estimate {est:,} B, exact {exact:,} B ({est - exact:+,} B)",
                             highlight=False)


@app.command(name="report")
@_handle_errors
def report_command(
    out: Path = typer.Argument(..., help="The OUT folder of `mncompile build -o OUT`."),
    screenshot: Path | None = typer.Option(None, "--screenshot", help="Also open the report in headless Chromium "
                                           "(Debian's chromium + chromium-driver, via selenium), check it (console "
                                           "errors, every image decodes) and write a full-page PNG here."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Render OUT/report.html again from OUT/build.json and the project's manifest.

    `build` writes the report itself; this makes it again (the same build gives the same bytes). The page is
    one self-contained file: model card, float vs int8 accuracy per class with confusion matrices, per-layer
    error, the memory timeline with its tensors, budget bars, firmware figures and versions and hashes.
    """
    from mncompile.cli import render
    from mncompile.report import write_report

    result = write_report(out)
    checked = None
    if screenshot is not None:
        from mncompile.report.browser import check_page, require_clean

        checked = require_clean(check_page(result.path, screenshot))
    if json_output:
        render.print_json({**result.to_json(), "browser": checked.to_json() if checked else None})
        return
    render.out.print(f"wrote {result.path} ({result.bytes:,} bytes; {', '.join(result.sections)})", highlight=False)
    if checked is not None:
        render.out.print(f"Chromium: {len(checked.images)} images decoded, no console errors, "
                         f"{len(checked.figures)} key figures; screenshot {checked.screenshot}", highlight=False)
