"""Run firmware under QEMU's Arm system emulator.

The firmware's board support (firmware/boards/<board>/) prints over Arm
semihosting and ends with a semihosting exit, so QEMU's own process exit code
is the firmware's exit status (0..255: the host truncates it), and what the
firmware printed is QEMU's standard output. A crash in the firmware prints a
fault line and exits with status 70 (firmware/common/board_support.h); a
fault QEMU cannot deliver (lockup) aborts QEMU, which shows here as a negative
exit code (-6, SIGABRT).

``-icount shift=N`` makes QEMU run one instruction per 2^N ns of virtual time,
so the SysTick timings the firmware prints are deterministic: the same ELF
prints the same tick counts on every run and every host.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import EmulatorError
from mncompile.targets.qemu import QEMU, qemu_command

__all__ = ["QEMU", "INSTALL_HINT", "QemuResult", "qemu_command", "run_qemu"]
INSTALL_HINT = ("install QEMU's Arm system emulator: `apt-get install qemu-system-arm` (Debian, Ubuntu), "
                "`dnf install qemu-system-arm` (Fedora) or `brew install qemu` (macOS)")


@dataclass(frozen=True)
class QemuResult:
    exit_code: int               # QEMU's exit code: the firmware's status; negative: killed by that signal
    output: str                  # everything QEMU printed (the firmware's console, then QEMU's own messages)
    command: tuple[str, ...]     # the command line that ran


def run_qemu(elf: Path | str, machine: str, timeout: float = 120.0, icount: bool = True,
             icount_shift: int = 0) -> QemuResult:
    """Run `elf` on QEMU's `machine` until the firmware exits; the result holds QEMU's exit
    code and output. Raises EmulatorError when QEMU is missing or the run exceeds `timeout`
    seconds (QEMU is then killed)."""
    elf = Path(elf)
    if not elf.is_file():
        raise EmulatorError(f"firmware image {elf} does not exist", hint="build the firmware first")
    if shutil.which(QEMU) is None:
        raise EmulatorError(f"{QEMU} was not found on PATH: it is needed to run firmware for {machine}",
                            hint=INSTALL_HINT)
    command = qemu_command(machine, elf, icount=icount, icount_shift=icount_shift)
    try:
        proc = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except FileNotFoundError as exc:  # vanished between which() and run()
        raise EmulatorError(f"{QEMU} could not be started: {exc}", hint=INSTALL_HINT) from exc
    except subprocess.TimeoutExpired as exc:
        partial = _text(exc.output)
        tail = "\n".join(partial.splitlines()[-20:])
        raise EmulatorError(
            f"{elf.name} did not finish on QEMU {machine} within {timeout:g} s; QEMU was stopped"
            + (f". Its last output:\n{tail}" if tail else " (it printed nothing)"),
            hint="the firmware may loop forever (or wait for input); or pass a longer timeout. "
                 f"Command: {' '.join(command)}") from exc
    return QemuResult(exit_code=proc.returncode, output=_text(proc.stdout), command=tuple(command))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")
