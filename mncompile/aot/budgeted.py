"""The AOT program within the budget: the RAM the limits leave picks the schedule (`--memory`).

`compile_within` generates the program with the room `mncompile.budget.ram_room` leaves once its
constants are counted, checks the budget with the program's own figures (the arena, and the
buffers outside it: float I/O, an input a patch stage reads in place) and raises `BudgetError`
(exit 8) when even the chosen schedule does not fit, naming the smallest RAM a patch stage reaches
and what it costs in MACs.
"""

from __future__ import annotations

from mncompile.aot.codegen import AotProgram, generate
from mncompile.aot.patch_search import Choice
from mncompile.budget import BudgetReport, check_budget, enforce, ram_room
from mncompile.graph.verified import VerifiedModel


def patch_note(choice: Choice) -> str:
    """What patching reaches, for the budget's error: 'the smallest schedule, ...'."""
    if choice.smallest_ram >= choice.layerwise_ram:
        return (f"no patch stage lowers this model's RAM below the layer-wise {choice.layerwise_ram:,} B "
                "(arena + I/O buffers)")
    share = choice.smallest_extra_macs / choice.total_macs if choice.total_macs else 0.0
    arena = f"an arena of {choice.memory.arena_bytes:,} B + " if choice.ram == choice.smallest_ram else ""
    return (f"the smallest schedule (patch stages, --memory min) needs {choice.smallest_ram:,} B of RAM "
            f"({arena}I/O buffers; layer by layer {choice.layerwise_ram:,} B) for {choice.smallest_extra_macs:,} "
            f"extra MACs (+{share:.1%})")


def compile_within(model: VerifiedModel, resolved, *, profile: bool = False) -> tuple[AotProgram, BudgetReport]:
    """The program of `model` under `resolved` (target, limits, --memory, --inplace), and its budget
    report; BudgetError when it does not fit."""
    target, limits = resolved.target, resolved.limits

    def room(constants: int) -> int:
        return ram_room(constants, target, limits.budget, limits.ram, limits.flash)

    program = generate(model, inplace=resolved.inplace, profile=profile, memory=resolved.memory, room=room,
                       max_extra=resolved.max_extra)
    report = check_budget(program.constant_bytes, program.arena_bytes, program.outside_arena_bytes, target,
                          limits.budget, limits.ram, limits.flash)
    if not report.fits:
        choice = program.choice
        if choice.mode == "speed":  # how far patching would go
            choice = generate(model, inplace=resolved.inplace, memory="min").choice
        enforce(report, patch_note(choice) if choice is not None else None)
    return program, report

