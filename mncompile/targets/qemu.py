"""How a target's QEMU machine runs firmware: the qemu-system-arm command line.

It lives with the targets because both the run stage (which starts QEMU) and the emitted
projects (whose CMake ``run`` target and README start it) need the same command.
"""

from __future__ import annotations

from pathlib import Path

QEMU = "qemu-system-arm"


def qemu_command(machine: str, elf: Path | str, icount: bool = True, icount_shift: int = 0) -> list[str]:
    """The qemu-system-arm command line that runs `elf` on `machine` (e.g. "mps2-an386").

    No display, no monitor, no UART (the boards print over semihosting, which
    goes to QEMU's stdout); semihosting on, for the console and the exit status;
    with `icount`, deterministic virtual time (one instruction per 2^icount_shift ns).
    """
    command = [QEMU, "-machine", machine, "-nographic", "-monitor", "none", "-serial", "null",
               "-semihosting-config", "enable=on,target=native"]
    if icount:
        command += ["-icount", f"shift={icount_shift}"]
    command += ["-kernel", str(elf)]
    return command
