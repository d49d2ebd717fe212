"""The board's console: its UART, read on the host through a serial port with pyserial.

The real boards print on a UART at 115200 8N1 (firmware/common/board_real.h); on the Nucleos, the
DISCO and the i.MX RT EVK that UART is wired to the on-board debugger, which shows it as a USB
virtual COM port of the same USB device as the probe, with the probe's serial number. So
`find_port` picks the port whose USB serial number is the probe's unique id; boards whose console
is a bare pin (Nano 33 BLE, a Pico without the Debug Probe) need --port for the USB-serial adapter.
Why the UART and not semihosting or RTT: it is what the firmware prints on by default and what a
user's terminal shows; semihosting needs a rebuild (-DMNCOMPILE_CONSOLE_SEMIHOSTING) and halts the
core on every line, RTT needs a control block the firmware does not have.

`read_console` collects what arrives until the firmware's last line, "mncompile: exit status N"
(board_exit()), the core halts (`halted()`, the debugger's view), or the timeout passes. The text is
then read by `mncompile run`'s own parser (mncompile.run.build.parse_firmware_output) through
`mncompile.run.validate.assess`, so a board is held to the same PASS/FAIL rules as QEMU.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from mncompile.errors import FlashError

EXIT_LINE = re.compile(r"^mncompile: exit status (-?\d+)\r?\n", re.M)  # whole: board_exit() ends it with a newline
DRAIN_SECONDS = 0.5  # after the core halts: what is still in the probe's UART buffer arrives by then


@dataclass(frozen=True)
class ConsoleCapture:
    text: str  # everything the board printed, carriage returns removed
    exit_status: int | None  # from the "mncompile: exit status N" line, else from r0 of a halted core
    status_source: str  # "console", "r0 (core halted)" or "none"
    halted_status: int | None  # r0 when the core halted at board_exit(), None when it did not (or no debugger)
    timed_out: bool
    seconds: float

    def to_json(self) -> dict:
        return {"exit_status": self.exit_status, "exit_status_source": self.status_source,
                "halted_r0": self.halted_status, "timed_out": self.timed_out, "seconds": round(self.seconds, 3)}


def exit_status_of(text: str) -> int | None:
    """The status of the firmware's "mncompile: exit status N" line (the last one), None without one."""
    found = EXIT_LINE.findall(text)
    return int(found[-1]) if found else None


def _pyserial():
    try:
        import serial
        import serial.tools.list_ports
    except ImportError as exc:
        raise FlashError(f"pyserial is not installed ({exc}): `mncompile flash` reads the board's UART with it",
                         hint="pip install pyserial (mncompile depends on it)") from None
    return serial


def find_port(probe_uid: str, port: str | None, console: str, document: dict | None = None) -> str:
    """The serial port to read: --port when given, else the USB serial port of the probe itself."""
    if port:
        return port
    serial = _pyserial()
    ports = list(serial.tools.list_ports.comports())
    uid = probe_uid.lower()
    mine = [p.device for p in ports if p.serial_number and p.serial_number.lower() == uid]
    if mine:
        return sorted(mine)[0]  # an ST-LINK/V3 with two ports lists the console first
    seen = ", ".join(f"{p.device} ({p.description}, serial {p.serial_number})" for p in ports) or "none"
    raise FlashError(f"no serial port belongs to probe {probe_uid}: the board prints on {console} "
                     f"Serial ports seen: {seen}",
                     hint="pass --port with the port the board's UART is on (e.g. --port /dev/ttyACM0 or --port "
                          "/dev/ttyUSB0 for a USB-serial adapter); `python -m serial.tools.list_ports -v` lists them",
                     document=document)


def open_port(port: str, baud: int, document: dict | None = None):
    """The port, opened at `baud` 8N1 with a short read timeout (pyserial's Serial)."""
    serial = _pyserial()
    try:
        return serial.Serial(port, baudrate=baud, timeout=0.1)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise FlashError(f"cannot open the board's console {port} at {baud} baud: {exc}",
                         hint="check --port; on Linux the user needs the dialout group (or uucp on Arch) to open "
                              "/dev/ttyACM*; close any terminal that holds the port", document=document) from None


def discard_input(stream) -> None:
    """Drop what the port received so far (the old image's output while it was being reprogrammed)."""
    reset = getattr(stream, "reset_input_buffer", None)
    if reset is not None:
        reset()


def read_console(stream, timeout: float, halted: Callable[[], int | None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic, poll_every: float = 0.25) -> ConsoleCapture:
    """Read `stream` (anything with pyserial's read(n) and in_waiting) until the exit line, a halted core
    plus DRAIN_SECONDS, or `timeout` seconds. `halted()` returns r0 once the core halted, else None."""
    start = clock()
    chunks: list[bytes] = []
    status = halted_r0 = None
    halted_at = None
    next_poll = start
    while True:
        now = clock()
        data = stream.read(max(1, getattr(stream, "in_waiting", 0) or 0))
        if data:
            chunks.append(bytes(data))
            status = exit_status_of(_text(chunks))
            if status is not None:  # board_exit() flushed the UART before printing nothing more
                break
        if halted_at is None and now >= next_poll:
            next_poll = now + poll_every
            halted_r0 = halted()
            if halted_r0 is not None:
                halted_at = now
        if halted_at is not None and now - halted_at >= DRAIN_SECONDS and not data:
            break
        if now - start >= timeout:
            break
    text = _text(chunks)
    if status is None and halted_r0 is None:
        halted_r0 = halted()  # the last chance: halted while the port was busy
    source = "console" if status is not None else ("r0 (core halted)" if halted_r0 is not None else "none")
    final = status if status is not None else halted_r0
    return ConsoleCapture(text, final, source, halted_r0, final is None, clock() - start)


def _text(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")
