"""Board support: firmware/boards/<board>/board.toml, read into a frozen `Board`.

A board is data (board.toml: CPU, console, timer, clock, memory regions, and for
a real board the [flashing] table) plus C (firmware/boards/<board>/*.c). The
project README's "On the board" part comes from `flashing()`; `mncompile flash`
reads the same table (pyocd_target, pack)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from mncompile.errors import ModelError
from mncompile.resources import firmware_dir


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

    @property
    def cpu_hz(self) -> int:
        """The core clock board_init() sets up (board.toml cpu_hz), 0 when unknown."""
        return int(self.data.get("cpu_hz", 0))

    @property
    def timer_text(self) -> str:
        """What board_ticks() counts, for READMEs."""
        return "the DWT cycle counter" if self.timer == "dwt" else "SysTick at the processor clock"


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
                 data.get("timer", "systick"), data.get("qemu_machine"), tuple(data.get("memory", ())), data)


NO_FLASHING = {"console_text": "", "flash_origin": "", "pyocd_target": "", "pyocd_pack": "", "openocd_config": "",
               "flash_alternatives": [], "timer_text": "", "cpu_mhz": "", "board_readme": ""}


def flashing(board: Board) -> dict:
    """A real board's [flashing] table of board.toml, for the project README: the console, where the
    image goes, the pyOCD target (and the CMSIS-Pack it needs, "" for a built-in one), the OpenOCD
    configuration ("" when OpenOCD cannot program the board) and other tools' command lines."""
    if not board.real:
        return dict(NO_FLASHING)
    try:
        table = board.data["flashing"]
        return {"console_text": table["console"], "flash_origin": f"0x{table['origin']:08x}",
                "pyocd_target": table["pyocd_target"], "pyocd_pack": table.get("pack", ""),
                "openocd_config": table["openocd_config"],
                "flash_alternatives": list(table.get("alternatives", ())), "timer_text": board.timer_text,
                "cpu_mhz": f"{board.cpu_hz / 1e6:g} MHz" if board.cpu_hz else "",
                "board_readme": f"firmware/boards/{board.name}/README.md"}
    except KeyError as exc:
        raise ValueError(f"firmware/boards/{board.name}/board.toml: [flashing] lacks {exc}") from None
