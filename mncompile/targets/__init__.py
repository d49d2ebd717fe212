"""Deployment targets, read from `targets.toml` (data, not code).

Each target names its CPU and the compiler flags for it, its clock (`cpu_hz`: the
rated frequency the board's firmware sets up, or the clock QEMU's model feeds
the core), the memory a model may
use (`ram_bytes`: the largest contiguous SRAM block, where the tensor arena and
the input/output buffers go; `flash_bytes`: where the .tflite flatbuffer goes),
the QEMU machine that emulates it (None when QEMU has none), the board, and
for Arm Ethos-U targets the NPU as Vela names it. `notes` says where the
figures come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mncompile.errors import InvalidOptionError

TARGETS_FILE = Path(__file__).parent / "targets.toml"


@dataclass(frozen=True)
class Npu:
    name: str
    macs_per_cycle: int
    vela_accelerator_config: str
    vela_system_config: str
    vela_memory_mode: str
    sram_bytes: int = 0  # SRAM for the NPU's cache when the arena is elsewhere (Dedicated_Sram); 0: ram_bytes

    def to_json(self) -> dict:
        return {"name": self.name, "macs_per_cycle": self.macs_per_cycle,
                "vela_accelerator_config": self.vela_accelerator_config,
                "vela_system_config": self.vela_system_config,
                "vela_memory_mode": self.vela_memory_mode, "sram_bytes": self.sram_bytes}


@dataclass(frozen=True)
class Target:
    name: str
    cpu: str
    board: str
    qemu_machine: str | None
    description: str
    cpu_flags: tuple[str, ...] = ()
    fpu: str = ""
    ram_bytes: int = 0
    flash_bytes: int = 0
    cpu_hz: int = 0  # the core clock the board runs at (QEMU boards: the model's clock)
    shared_memory: bool = False  # constants and arena live in one memory of flash_bytes
    npu: Npu | None = None
    notes: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "cpu": self.cpu, "cpu_flags": " ".join(self.cpu_flags),
                "fpu": self.fpu, "cpu_hz": self.cpu_hz, "ram_bytes": self.ram_bytes, "flash_bytes": self.flash_bytes,
                "shared_memory": self.shared_memory, "qemu_machine": self.qemu_machine,
                "board": self.board, "description": self.description,
                "npu": self.npu.to_json() if self.npu else None, "notes": self.notes}


_REQUIRED = ("cpu", "cpu_flags", "fpu", "cpu_hz", "ram_bytes", "flash_bytes", "board", "description", "notes")
_OPTIONAL = ("qemu_machine", "shared_memory", "npu")


def _target(name: str, fields: dict, source: str) -> Target:
    """One table of the TOML file, checked: a malformed entry is a bug in the data file."""
    missing = [k for k in _REQUIRED if k not in fields]
    unknown = sorted(set(fields) - set(_REQUIRED) - set(_OPTIONAL))
    if missing or unknown:
        raise ValueError(f"{source}: target {name!r}: missing {missing}, unknown {unknown}")
    for key in ("ram_bytes", "flash_bytes", "cpu_hz"):
        if not isinstance(fields[key], int) or fields[key] <= 0:
            raise ValueError(f"{source}: target {name!r}: {key} must be a positive integer")
    npu = Npu(**fields["npu"]) if "npu" in fields else None
    return Target(name=name, cpu=fields["cpu"], board=fields["board"],
                  qemu_machine=fields.get("qemu_machine"), description=fields["description"],
                  cpu_flags=tuple(fields["cpu_flags"].split()), fpu=fields["fpu"],
                  ram_bytes=fields["ram_bytes"], flash_bytes=fields["flash_bytes"], cpu_hz=fields["cpu_hz"],
                  shared_memory=bool(fields.get("shared_memory", False)), npu=npu,
                  notes=" ".join(fields["notes"].split()))


def load_targets(path: Path = TARGETS_FILE) -> tuple[Target, ...]:
    import tomllib  # Python 3.11+

    with path.open("rb") as f:
        data = tomllib.load(f)
    return tuple(sorted((_target(name, fields, path.name) for name, fields in data["targets"].items()),
                        key=lambda t: t.name))


@cache
def all_targets() -> tuple[Target, ...]:
    return load_targets()


def get_target(name: str) -> Target:
    for target in all_targets():
        if target.name == name:
            return target
    known = ", ".join(t.name for t in all_targets())
    raise InvalidOptionError(f"unknown target {name!r}", hint=f"known targets: {known}")
