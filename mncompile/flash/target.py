"""What a board needs to be flashed: its [flashing] table, read into a `FlashTarget`.

board.toml keeps the data (firmware/boards/<board>/board.toml, [flashing]): where the image goes,
the pyOCD target name, the CMSIS-Pack pyOCD needs for it ("" when the target is built into pyOCD),
OpenOCD's configuration and other tools' command lines. Here that table becomes:

- `flash_target(board)`: the table, or a FlashError for a QEMU board (no table: `mncompile run`);
- `check_pyocd_target(ft)`: the target resolves in pyOCD, built in (pyocd.target.TARGET) or from
  its pack installed in pyOCD's pack cache; else a FlashError naming `pyocd pack install <part>`.
  Nothing is downloaded here: the pack cache is read from disk only;
- `alternative_commands(ft, elf)`: the OpenOCD and probe-rs command lines doing what `flash` does.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from mncompile.emit.boards import Board, load_board
from mncompile.errors import FlashError

INSTALL_PYOCD = "pip install pyocd (mncompile depends on it; `make setup` installs it)"

# probe-rs names chips by their CMSIS-Pack part names, spelled as the pack does. Only the chips whose
# name we know are listed: the others get no probe-rs line (OpenOCD or the board's own tool instead).
PROBE_RS_CHIPS = {
    "stm32h743xx": "STM32H743ZITx",
    "stm32l4r5zitx": "STM32L4R5ZITx",
    "stm32f746nghx": "STM32F746NGHx",
    "nrf52840": "nRF52840_xxAA",
    "rp2040": "RP2040",
}


@dataclass(frozen=True)
class FlashTarget:
    """A real board's [flashing] table: what pyOCD (and the alternatives) need to program it."""

    board: str
    pyocd_target: str
    pack: str  # the CMSIS-Pack (Vendor.Name) pyOCD needs for pyocd_target; "" when built into pyOCD
    origin: int  # where the image starts (the boot address of the flash)
    openocd_config: str  # OpenOCD's -f arguments; "" when OpenOCD cannot program the board
    console: str  # where the board prints (README text)
    alternatives: tuple[str, ...]  # other tools' command lines, from board.toml

    @property
    def needs_pack(self) -> bool:
        return bool(self.pack)

    @property
    def pack_install_command(self) -> str:
        """The command that installs the pack: pyOCD finds a pack by a part number it contains."""
        return f"pyocd pack install {self.pyocd_target}"

    def to_json(self) -> dict:
        return {"board": self.board, "pyocd_target": self.pyocd_target, "pack": self.pack or None,
                "builtin": not self.needs_pack, "origin": f"0x{self.origin:08x}", "console": self.console}


def flash_target(board: str | Board) -> FlashTarget:
    """The [flashing] table of `board`; FlashError when it is a QEMU board (nothing to flash)."""
    board = load_board(board) if isinstance(board, str) else board
    table = board.data.get("flashing")
    if not board.real or table is None:
        where = f"QEMU's {board.qemu_machine}" if board.qemu_machine else "an emulator"
        raise FlashError(
            f"board {board.name} is {where}, not a board to flash: its board.toml has no [flashing] table",
            hint="run the project on QEMU with `mncompile run PROJECT`; to flash silicon, emit the model for a real "
                 "board's target (`mncompile targets` lists them)")
    try:
        return FlashTarget(board.name, str(table["pyocd_target"]), str(table.get("pack", "")), int(table["origin"]),
                           str(table.get("openocd_config", "")), str(table.get("console", "")),
                           tuple(str(a) for a in table.get("alternatives", ())))
    except (KeyError, TypeError, ValueError) as exc:
        raise FlashError(f"firmware/boards/{board.name}/board.toml: [flashing] lacks or mistypes {exc}",
                         hint="the board's [flashing] table needs origin and pyocd_target") from None


def pyocd_builtin_targets() -> frozenset[str]:
    """The target names built into pyOCD (pyocd.target.TARGET), lower case as pyOCD matches them."""
    try:
        from pyocd.target import TARGET
    except ImportError as exc:
        raise FlashError(f"pyOCD is not installed ({exc}): `mncompile flash` programs boards with it",
                         hint=INSTALL_PYOCD) from None
    return frozenset(name.lower() for name in TARGET)


def pack_cache_dir() -> Path:
    """Where pyOCD's pack manager (cmsis-pack-manager) keeps installed packs: <dir>/<Vendor>/<Name>/<ver>.pack.
    Read from the package's own default, without touching the network."""
    try:
        import cmsis_pack_manager
    except ImportError as exc:
        raise FlashError(f"cmsis-pack-manager (pyOCD's pack manager) is not installed ({exc})",
                         hint=INSTALL_PYOCD) from None
    return Path(cmsis_pack_manager.Cache(True, True).data_path)


def installed_pack_files(pack: str, cache: Path | None = None) -> tuple[Path, ...]:
    """The .pack files of `pack` ("Vendor.Name") in pyOCD's pack cache, newest name last."""
    vendor, _, name = pack.partition(".")
    folder = (cache if cache is not None else pack_cache_dir()) / vendor / name
    return tuple(sorted(folder.glob("*.pack"))) if folder.is_dir() else ()


def check_pyocd_target(ft: FlashTarget, pack_file: Path | None = None) -> str:
    """How pyOCD will know `ft.pyocd_target`: "builtin", "pack <file>" (installed, or `pack_file` given).
    FlashError when pyOCD lacks it, with the command that installs its pack."""
    if not ft.needs_pack:
        if ft.pyocd_target.lower() not in pyocd_builtin_targets():
            raise FlashError(f"pyOCD has no built-in target {ft.pyocd_target!r} (board {ft.board}), and the "
                             "board's [flashing] table names no CMSIS-Pack for it",
                             hint="`pyocd list --targets` lists the built-in targets; a part from a pack needs "
                                  "`pack = \"Vendor.Name_DFP\"` in the board's [flashing] table")
        return "builtin"
    if pack_file is not None:
        if not Path(pack_file).is_file():
            raise FlashError(f"--pack {pack_file} is not a file", hint="pass a downloaded .pack file")
        return f"pack {Path(pack_file).resolve()}"
    files = installed_pack_files(ft.pack)
    if not files:
        raise FlashError(
            f"pyOCD needs the CMSIS-Pack {ft.pack} for target {ft.pyocd_target} (board {ft.board}), and it is not "
            f"installed in pyOCD's pack cache ({pack_cache_dir()}); mncompile never downloads it while flashing",
            hint=f"install it once, online: `{ft.pack_install_command}` (pyOCD fetches {ft.pack}); offline, pass "
                 f"a downloaded {ft.pack}.<version>.pack with --pack")
    return f"pack {files[-1]}"


def alternative_commands(ft: FlashTarget, elf: Path | str) -> dict[str, str]:
    """Command lines that program `elf` and reset the board without mncompile: pyOCD's own CLI, OpenOCD
    (when it can program the board) and probe-rs (for chips it is known to name); then board.toml's others."""
    raw, elf = str(elf), shlex.quote(str(elf))
    commands = {"pyocd": f"pyocd load --target {ft.pyocd_target} {elf} && pyocd reset --target {ft.pyocd_target}"}
    if ft.openocd_config:
        commands["openocd"] = f'openocd -f {ft.openocd_config} -c "program {raw} verify reset exit"'
    chip = PROBE_RS_CHIPS.get(ft.pyocd_target.lower())
    if chip is not None:
        commands["probe-rs"] = f"probe-rs download --chip {chip} {elf} && probe-rs reset --chip {chip}"
    for i, line in enumerate(ft.alternatives):
        commands[f"board-{i + 1}"] = line
    return commands
