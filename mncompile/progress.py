"""Progress reporting without a UI dependency.

Library code reports through a `Reporter`; the CLI passes one that draws Rich
progress bars on stderr, tests pass `NullReporter` or a recorder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Task(Protocol):
    def advance(self, steps: int = 1, **fields: object) -> None: ...


class Reporter(Protocol):
    def stage(self, name: str, detail: str = "") -> None: ...

    def info(self, message: str) -> None: ...

    def task(self, description: str, total: int | None) -> Iterator[Task]: ...


class _NullTask:
    def advance(self, steps: int = 1, **fields: object) -> None:
        pass


class NullReporter:
    def stage(self, name: str, detail: str = "") -> None:
        pass

    def info(self, message: str) -> None:
        pass

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        yield _NullTask()
