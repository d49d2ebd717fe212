"""Rendering: Rich tables on stdout, progress and diagnostics on stderr, or one JSON document."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mncompile.model.analytic import NetworkSummary
from mncompile.progress import Task

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def print_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


class _RichTask:
    def __init__(self, progress: Progress, task_id):
        self._progress, self._id = progress, task_id

    def advance(self, steps: int = 1, **fields: object) -> None:
        self._progress.advance(self._id, steps)


class RichReporter:
    """Progress bars and stage announcements on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def stage(self, name: str, detail: str = "") -> None:
        if not self.quiet:
            err.print(f"[bold cyan]==> {name}[/]" + (f": {detail}" if detail else ""),
                      highlight=False)

    def info(self, message: str) -> None:
        if not self.quiet:
            err.print(f"    {message}", highlight=False, markup=False)

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        columns = (TextColumn("    {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=err, disable=self.quiet, transient=True) as progress:
            yield _RichTask(progress, progress.add_task(description, total=total))


def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f}M"


def summary_table(summary: NetworkSummary) -> Table:
    s = summary.spec
    table = Table(title=f"MobileNet{s.arch.upper()} alpha={s.alpha:g} "
                        f"{s.resolution}x{s.resolution}x{s.channels}, {s.classes} classes",
                  title_justify="left")
    for name in ("layer", "type", "output", "mult-adds", "params", "std-conv mult-adds",
                 "saving"):
        table.add_column(name, justify="left" if name in ("layer", "type", "output") else "right")
    for row in summary.rows:
        h, w, c = row.output_shape
        table.add_row(row.name, row.kind, f"{h}x{w}x{c}", f"{row.macs:,}", f"{row.params:,}",
                      f"{row.standard_macs:,}" if row.standard_macs else "",
                      f"{row.saving:.4f}" if row.saving is not None else "")
    ratio = summary.separable_macs / summary.standard_macs if summary.standard_macs else None
    table.add_section()
    table.add_row("total", "", "", f"{summary.macs:,}", f"{summary.params:,}",
                  f"{summary.standard_macs:,}", f"{ratio:.4f}" if ratio else "")
    table.caption = ("saving = (depthwise + pointwise) / standard conv = 1/N + 1/Dk², "
                     "shown on the 1x1 row of each separable pair")
    table.caption_justify = "left"
    return table


def summary_totals(summary: NetworkSummary) -> str:
    return (f"{_millions(summary.macs)} mult-adds, {_millions(summary.params)} parameters "
            f"({summary.keras_params:,} as Keras counts them, with batch-norm statistics)")
