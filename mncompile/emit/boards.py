"""Board support: firmware/boards/<board>/board.toml, read into a frozen `Board`."""

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


NO_FLASHING = {"console_text": "", "flash_origin": "", "pyocd_target": "", "openocd_config": ""}


def flashing(board: Board) -> dict:
    """A real board's [flashing] table of board.toml, for the project README."""
    if not board.real:
        return dict(NO_FLASHING)
    try:
        table = board.data["flashing"]
        return {"console_text": table["console"], "flash_origin": f"0x{table['origin']:08x}",
                "pyocd_target": table["pyocd_target"], "openocd_config": table["openocd_config"]}
    except KeyError as exc:
        raise ValueError(f"firmware/boards/{board.name}/board.toml: [flashing] lacks {exc}") from None
