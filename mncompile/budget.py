"""Memory budgets: does a model fit, and by how much.

A deployed model needs three kinds of memory:

- **constants**: the .tflite flatbuffer with the int8 weights and int32 biases
  (batch normalization folded), kept in flash;
- **arena**: TFLM's tensor arena (activations, plus TFLM's persistent
  allocations), in RAM, one contiguous block;
- **I/O buffers**: the application's own copies of the int8 input image and
  of the output scores (a camera frame buffer, a result buffer), in RAM next to
  the arena.

`check_budget` checks each limit that applies and gives one row per limit:

| row | used | limit |
|---|---|---|
| ``budget`` | constants + arena + I/O | ``--budget`` (e.g. an AI chip's "6 MB for weights plus temporaries") |
| ``flash`` | constants | the target's ``flash_bytes``, or ``--flash`` |
| ``ram`` | arena + I/O | the target's ``ram_bytes``, or ``--ram`` |
| ``shared`` | constants + arena + I/O | ``flash_bytes`` (*) |

(*) only for a target whose constants and arena share one memory (Ethos-U65 in
Vela's Dedicated_Sram mode), and only when neither ``--ram`` nor ``--flash`` is given.

For an Ethos-U target (`check_npu_budget`) the figures are Vela's: constants are the
Vela-optimized .tflite (command stream and compressed weights, what the firmware carries),
and the arena is the TFLM tensor arena of that model: Vela's SRAM figure (the NPU's scratch
area, which also holds the input and output) plus TFLM's own overhead for the ethos-u
operator and any CPU operators (`mncompile.npu.tflm_arena`). In Vela's Dedicated_Sram mode
(Ethos-U65) the arena lives in DRAM next to the constants, and the SRAM holds only the NPU's
cache, Vela's SRAM figure: the ``ram`` row then checks that cache, and the ``shared`` row the
arena plus the constants.

Headroom is limit minus used: negative when over. `enforce` turns a report
that does not fit into a `BudgetError` (exit code 8) naming every exceeded
limit and by how many bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from mncompile.errors import BudgetError
from mncompile.targets import Target
from mncompile.units import parse_size

OVERRIDE_HINT = ("if the part has more memory than the target table says, raise a limit with --ram, "
                 "--flash or --budget (e.g. --ram 1MB; KB and MB are 1024-based); "
                 "`mncompile fit` lists the MobileNets that fit")


@dataclass(frozen=True)
class LimitRow:
    name: str  # budget, flash, ram, shared
    what: str  # what is counted, e.g. "arena + I/O buffers"
    used: int
    limit: int
    source: str  # where the limit comes from: "--budget", "target cortex-m7", "--ram"

    @property
    def headroom(self) -> int:
        return self.limit - self.used

    @property
    def fits(self) -> bool:
        return self.used <= self.limit

    def to_json(self) -> dict:
        return {"name": self.name, "what": self.what, "used_bytes": self.used, "limit_bytes": self.limit,
                "headroom_bytes": self.headroom, "fits": self.fits, "source": self.source}


@dataclass(frozen=True)
class BudgetReport:
    target: str
    constants_bytes: int
    arena_bytes: int
    io_bytes: int
    rows: tuple[LimitRow, ...]

    @property
    def total_bytes(self) -> int:
        return self.constants_bytes + self.arena_bytes + self.io_bytes

    @property
    def fits(self) -> bool:
        return all(row.fits for row in self.rows)

    @property
    def exceeded(self) -> tuple[LimitRow, ...]:
        return tuple(row for row in self.rows if not row.fits)

    @property
    def headroom(self) -> int:
        """The smallest headroom over all limits: the one that binds."""
        return min(row.headroom for row in self.rows)

    def to_json(self) -> dict:
        return {"target": self.target, "constants_bytes": self.constants_bytes,
                "arena_bytes": self.arena_bytes, "io_bytes": self.io_bytes,
                "total_bytes": self.total_bytes, "fits": self.fits,
                "headroom_bytes": self.headroom, "limits": [row.to_json() for row in self.rows]}


def _bytes(value: int | str | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return parse_size(value)


def check_budget(constants_bytes: int, arena_bytes: int, io_bytes: int, target: Target,
                 budget: int | str | None = None, ram: int | str | None = None,
                 flash: int | str | None = None) -> BudgetReport:
    """Check a model's memory against the budget and the target's RAM and flash.

    Sizes are bytes, or strings `mncompile.units.parse_size` reads ("6MB", "512KB").
    """
    budget, ram, flash = _bytes(budget), _bytes(ram), _bytes(flash)
    total = constants_bytes + arena_bytes + io_bytes
    rows: list[LimitRow] = []
    if budget is not None:
        rows.append(LimitRow("budget", "constants + arena + I/O buffers", total, budget, "--budget"))
    rows.append(LimitRow("flash", "constants (.tflite: weights, biases, graph)", constants_bytes,
                         flash if flash is not None else target.flash_bytes,
                         "--flash" if flash is not None else f"target {target.name}"))
    rows.append(LimitRow("ram", "arena + I/O buffers", arena_bytes + io_bytes,
                         ram if ram is not None else target.ram_bytes,
                         "--ram" if ram is not None else f"target {target.name}"))
    if target.shared_memory and ram is None and flash is None:
        rows.append(LimitRow("shared", "constants + arena + I/O buffers in one memory", total,
                             target.flash_bytes, f"target {target.name}"))
    return BudgetReport(target.name, constants_bytes, arena_bytes, io_bytes, tuple(rows))


NPU_HINT = ("Vela's SRAM figure depends on the system config and memory mode: try --vela-optimise Size "
            "(Vela then plans for the least SRAM), a smaller --alpha or --resolution, or raise --ram/--budget")


def check_npu_budget(model_bytes: int, arena_bytes: int, sram_bytes: int, io_bytes: int, target: Target,
                     memory_mode: str, budget: int | str | None = None, ram: int | str | None = None,
                     flash: int | str | None = None) -> BudgetReport:
    """The budget of an Ethos-U target: `model_bytes` is the Vela-optimized .tflite, `arena_bytes`
    its TFLM arena (Vela's SRAM figure plus TFLM's overhead), `sram_bytes` Vela's SRAM figure."""
    budget, ram, flash = _bytes(budget), _bytes(ram), _bytes(flash)
    dedicated = memory_mode.startswith("Dedicated_Sram")
    overhead = arena_bytes - (0 if dedicated else sram_bytes)
    rows: list[LimitRow] = []
    total = model_bytes + arena_bytes + io_bytes + (sram_bytes if dedicated else 0)
    if budget is not None:
        rows.append(LimitRow("budget", "Vela model + TFLM arena + I/O buffers"
                             + (" + NPU cache" if dedicated else ""), total, budget, "--budget"))
    rows.append(LimitRow("flash", "the Vela-optimized .tflite (command stream, encoded weights, graph)",
                         model_bytes, flash if flash is not None else target.flash_bytes,
                         "--flash" if flash is not None else f"target {target.name}"))
    ram_limit = ram if ram is not None else target.ram_bytes
    ram_source = "--ram" if ram is not None else f"target {target.name}"
    if dedicated:
        if ram is None and target.npu is not None and target.npu.sram_bytes:
            ram_limit, ram_source = target.npu.sram_bytes, f"target {target.name} (SRAM)"
        rows.append(LimitRow("ram", f"the NPU cache in SRAM: Vela's SRAM figure ({memory_mode})",
                             sram_bytes, ram_limit, ram_source))
        if ram is None and flash is None:
            rows.append(LimitRow("shared", "Vela model + TFLM arena + I/O buffers in one memory (DRAM)",
                                 model_bytes + arena_bytes + io_bytes, target.flash_bytes, f"target {target.name}"))
    else:
        rows.append(LimitRow("ram", f"TFLM arena: Vela's SRAM figure {sram_bytes:,} B + {overhead:,} B beyond it "
                                    "(TFLM's overhead; in a project also its margin); + I/O buffers",
                             arena_bytes + io_bytes, ram_limit, ram_source))
    return BudgetReport(target.name, model_bytes, arena_bytes, io_bytes, tuple(rows))


def ram_room(constants_bytes: int, target: Target, budget: int | str | None = None, ram: int | str | None = None,
             flash: int | str | None = None) -> int:
    """The bytes of RAM (arena + I/O buffers) the limits of `check_budget` leave for a model whose
    constants take `constants_bytes`: the RAM limit, less what --budget (or a shared memory) leaves."""
    budget, ram, flash = _bytes(budget), _bytes(ram), _bytes(flash)
    room = ram if ram is not None else target.ram_bytes
    if budget is not None:
        room = min(room, budget - constants_bytes)
    if target.shared_memory and ram is None and flash is None:
        room = min(room, target.flash_bytes - constants_bytes)
    return room


def describe_excess(report: BudgetReport) -> str:
    """'ram: needs 612,160 B (arena + I/O buffers), limit 524,288 B, over by 87,872 B; ...'"""
    return "; ".join(f"{row.name}: needs {row.used:,} B ({row.what}), limit {row.limit:,} B "
                     f"({row.source}), over by {-row.headroom:,} B" for row in report.exceeded)


def describe_all(report: BudgetReport) -> str:
    """Every limit, fitting or not: 'budget: 5,600,000 B of 6,291,456 B fits (headroom ...); flash: ...'."""
    parts = []
    for row in report.rows:
        verdict = (f"fits, headroom {row.headroom:,} B" if row.fits else f"over by {-row.headroom:,} B")
        parts.append(f"{row.name}: {row.used:,} B ({row.what}) of {row.limit:,} B ({row.source}), {verdict}")
    return "; ".join(parts)


def enforce(report: BudgetReport, suggestion: str | None = None, npu: bool = False,
            document: dict | None = None) -> None:
    """Raise `BudgetError` when the report does not fit; do nothing when it does. `npu`: the
    report is `check_npu_budget`'s, and the message says the figures are Vela's. `document`: the
    command's JSON report, which the error's JSON form carries."""
    if report.fits:
        return
    what = "compiled for the NPU by Vela" if npu else ""
    message = (f"the model {what + ' ' if what else ''}does not fit {report.target}: {describe_excess(report)}. "
               f"All limits: {describe_all(report)}")
    if suggestion:
        message += f"; {suggestion}"
    raise BudgetError(message, hint=NPU_HINT if npu else OVERRIDE_HINT, document=document)
