"""Deployment targets, read from `targets.json` (data, not code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mncompile.errors import InvalidOptionError


@dataclass(frozen=True)
class Target:
    name: str
    cpu: str
    board: str
    qemu_machine: str | None
    description: str


@cache
def all_targets() -> tuple[Target, ...]:
    data = json.loads((Path(__file__).parent / "targets.json").read_text(encoding="utf-8"))
    return tuple(sorted((Target(name=name, **fields) for name, fields in data["targets"].items()),
                        key=lambda t: t.name))


def get_target(name: str) -> Target:
    for target in all_targets():
        if target.name == name:
            return target
    known = ", ".join(t.name for t in all_targets())
    raise InvalidOptionError(f"unknown target {name!r}", hint=f"known targets: {known}")
