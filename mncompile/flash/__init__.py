"""`mncompile flash`: program a real board with pyOCD and check its golden vectors on its console.

    mncompile.flash.target   board.toml's [flashing] table: pyOCD target, CMSIS-Pack, alternatives
    mncompile.flash.probe    pyOCD's probe layer: find the probe, program, reset, read r0 at exit
    mncompile.flash.console  the board's UART through pyserial, read until the firmware's exit line
    mncompile.flash.project  flash_project(): build, flash, read, and `mncompile run`'s verdict

pyOCD and pyserial are imported only when a board is flashed, so the rest of mncompile does not
pay for them.
"""

from mncompile.flash.project import (
    DEFAULT_BAUD,
    DEFAULT_TIMEOUT,
    FlashRequest,
    FlashResult,
    check_flashable,
    flash_project,
)
from mncompile.flash.target import FlashTarget, alternative_commands, check_pyocd_target, flash_target

__all__ = ["DEFAULT_BAUD", "DEFAULT_TIMEOUT", "FlashRequest", "FlashResult", "FlashTarget", "alternative_commands",
           "check_flashable", "check_pyocd_target", "flash_project", "flash_target"]
