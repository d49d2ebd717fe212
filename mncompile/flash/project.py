"""`mncompile flash`: build an emitted project, program a real board with pyOCD, read its console and
check the golden vectors, as `mncompile run` does on QEMU.

    flash_project(OUT, FlashRequest(probe=..., port=..., baud=..., timeout=...)) -> FlashResult

1. Reads OUT/mncompile.json (`load_project`, as run does) and the board's [flashing] table; a QEMU
   board is a FlashError pointing to `mncompile run`.
2. Checks pyOCD knows the target: built in, or its CMSIS-Pack installed (or given with --pack);
   nothing is downloaded: a missing pack is a FlashError naming `pyocd pack install <part>`.
3. Finds the probe (NoProbeError when none is attached: what was looked for, how to fix it) and the
   console's serial port. All of this comes before the build, so a missing probe costs a second.
4. Builds OUT with CMake (`build_project`, OUT/build unless told otherwise; TFLM as run finds it).
5. Opens the console, programs build/firmware.elf, drops what the old image printed, resets, reads
   until the firmware's exit line (or the halted core, or --timeout): `read_console`.
6. Checks the text with run's `assess` (same parser, same vector/arena/profile rules); the exit
   status comes from the console line, else from r0 of the halted core.

Every step's equivalent without mncompile (pyOCD's CLI, OpenOCD, probe-rs, board.toml's own) is in
the result and in the JSON of every FlashError raised after step 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import FirmwareValidationError, FlashError, InvalidOptionError
from mncompile.files import write_text_atomic
from mncompile.flash import console as con
from mncompile.flash import probe as pr
from mncompile.flash.target import FlashTarget, alternative_commands, check_pyocd_target, flash_target
from mncompile.progress import NullReporter, Reporter
from mncompile.run.build import FirmwareBuild, build_project
from mncompile.run.qemu import QemuResult
from mncompile.run.validate import RunResult, assess, check_target, load_project, resolve_tflm

DEFAULT_BAUD = 115200  # the firmware's UART (firmware/common/board_real.h)
DEFAULT_TIMEOUT = 120.0  # seconds from reset to the exit line; a MobileNet at 480 MHz needs well under one
OUTPUT_NAME = "board-output.txt"  # what the board printed, in the build folder (QEMU's is qemu-output.txt)


@dataclass(frozen=True)
class FlashRequest:
    """How to reach the board: the probe (a part of its unique id), the console's serial port (default: the
    probe's own virtual COM port) and baud rate, how long to wait, an offline CMSIS-Pack file."""

    probe: str | None = None
    port: str | None = None
    baud: int = DEFAULT_BAUD
    timeout: float = DEFAULT_TIMEOUT
    pack: Path | None = None

    def check(self) -> None:
        """InvalidOptionError for a value no board can take; cheap, so callers run it before any work."""
        if not isinstance(self.baud, int) or self.baud <= 0:
            raise InvalidOptionError(f"--baud must be a positive integer, not {self.baud!r}",
                                     hint=f"the firmware prints at {DEFAULT_BAUD} baud")
        if not self.timeout > 0:
            raise InvalidOptionError(f"--timeout must be a positive number of seconds, not {self.timeout:g}")
        if self.probe is not None and not self.probe.strip():
            raise InvalidOptionError("--probe is empty", hint="pass a probe's unique id (or a part of it) as "
                                                              "`pyocd list` shows it, or leave --probe out")
        if self.pack is not None and not Path(self.pack).is_file():
            raise InvalidOptionError(f"--pack {self.pack} is not a file", hint="pass a downloaded .pack file")


def check_flashable(board: str, request: FlashRequest) -> tuple[FlashTarget, str]:
    """The board's [flashing] table and how pyOCD knows its target; raises before any slow work."""
    request.check()
    ft = flash_target(board)
    return ft, check_pyocd_target(ft, request.pack)


@dataclass(frozen=True)
class FlashResult:
    run: RunResult  # run's verdict on the board's console text (run.qemu holds that text and the status)
    flashing: FlashTarget
    pyocd_source: str  # "builtin" or "pack <file>"
    probe: dict  # unique_id, description, vendor, product
    port: str
    baud: int
    console: con.ConsoleCapture
    alternatives: dict[str, str]

    @property
    def passed(self) -> bool:
        return self.run.passed

    def to_json(self) -> dict:
        """`mncompile run --json`'s document, with the board's flashing and console instead of QEMU's."""
        doc = {k: v for k, v in self.run.to_json().items() if k not in ("qemu_machine", "qemu")}
        doc["flash"] = {**self.flashing.to_json(), "pyocd": self.pyocd_source, "probe": self.probe,
                        "console": {"port": self.port, "baud": self.baud, **self.console.to_json()},
                        "alternatives": self.alternatives}
        return doc

    def summary_lines(self) -> list[str]:
        """What `mncompile flash` prints (plain text): where it went, each vector, the time, the verdict."""
        r, fw = self.run, self.run.firmware
        unit = r.report.ticks_unit or "ticks"
        lines = [f"project {r.project}: {r.target.name} (board {self.flashing.board}), kernels {r.kernels}",
                 f"firmware {fw.elf}: text {fw.text:,} B, data {fw.data:,} B, bss {fw.bss:,} B",
                 f"flashed with pyOCD ({self.flashing.pyocd_target}, {self.pyocd_source}) through probe "
                 f"{self.probe['unique_id']} ({self.probe['description']}); console {self.port} at {self.baud} baud: "
                 f"exit status {self.console.exit_status} ({self.console.status_source})"]
        for v in r.vectors:
            cls = "" if v.predicted is None else f", class {v.predicted}" + (f" ({v.label!r})" if v.label else "")
            ticks = "" if v.ticks is None else f", {v.ticks:,} {unit}"
            lines.append(f"vector {v.index}: {v.status}{cls}{ticks}" + (f": {v.detail}" if v.detail else ""))
        lines.append(f"vectors: {r.vectors_passed}/{r.golden_count} PASS ({len(r.report.vectors)} reported)")
        if r.ticks_per_inference is not None:
            per_mac = f"; {r.macs:,} MACs: {r.ticks_per_inference / r.macs:.2f} {unit}/MAC" if r.macs else ""
            lines.append(f"per inference: {r.ticks_per_inference:,.0f} {unit}{per_mac}")
        lines += [f"note: {n}" for n in r.notes]
        lines.append("same without mncompile: " + "; ".join(f"{k}: {v}" for k, v in self.alternatives.items()))
        lines.append(f"validation {'PASSED' if self.passed else 'FAILED: ' + '; '.join(r.problems)} on "
                     f"{self.flashing.board}")
        return lines

    def raise_if_failed(self, document: dict | None = None) -> None:
        """FirmwareValidationError (exit 10) unless every check passed; its JSON is `document` (default:
        this result's) with the error's fields added."""
        if self.passed:
            return
        problems = self.run.problems
        more = len(problems) - 1
        first = problems[0] + (f" ({more} more problem{'s' if more > 1 else ''} in the report)" if more else "")
        raise FirmwareValidationError(
            f"firmware validation failed on board {self.flashing.board}: {first}",
            hint=f"what the board printed is in {self.run.firmware.build_dir / OUTPUT_NAME}; check --port and "
                 f"--baud ({self.baud}) if it is empty or garbled; emit the project again if it was edited",
            document=self.to_json() if document is None else document)


def flash_project(project: str | Path, request: FlashRequest = FlashRequest(), *, target: str | None = None,
                  tflm_root: str | Path | None = None, cmsis_nn_root: str | Path | None = None,
                  build_dir: str | Path | None = None, reporter: Reporter = NullReporter()) -> FlashResult:
    """Build `project`, program its board through the attached probe, and check what the board prints.

    Raises InvalidOptionError (not a project, bad options), FlashError (a QEMU board, pyOCD lacks the target,
    NoProbeError, no console port, programming failed), FirmwareBuildError. A board that runs but fails
    validation is a FlashResult with problems: call `raise_if_failed()`."""
    request.check()
    proj = load_project(project)
    tgt = check_target(proj, target)
    ft = flash_target(proj.board)
    build = Path(build_dir).resolve() if build_dir is not None else proj.path / "build"
    elf = build / "firmware.elf"
    doc = {"project": str(proj.path), "target": tgt.name, "board": ft.board,
           "flash": {**ft.to_json(), "alternatives": alternative_commands(ft, elf)}}
    nn_root = Path(cmsis_nn_root).expanduser().resolve() if cmsis_nn_root is not None else None
    if nn_root is not None and not nn_root.is_dir():
        raise InvalidOptionError(f"--cmsis-nn-root {nn_root} is not a folder",
                                 hint="git clone https://github.com/ARM-software/CMSIS-NN")
    try:
        source = check_pyocd_target(ft, request.pack)
    except FlashError as exc:
        raise FlashError(exc.message, exc.hint, document=doc) from None
    reporter.stage("probe", f"looking for a debug probe for {ft.pyocd_target} ({source})")
    probe = pr.choose_probe(request.probe, ft, document=doc)
    probe_info = pr.probe_json(probe)
    reporter.info(f"probe {probe_info['unique_id']} ({probe_info['description']})")
    port = con.find_port(probe_info["unique_id"], request.port, ft.console, document=doc)

    root = resolve_tflm(tflm_root, build, proj.path, proj.needs_tflm)
    firmware = build_project(proj.path, build, tflm_root=root, cmsis_nn_root=nn_root, reporter=reporter)
    reporter.info(f"{firmware.elf}: text {firmware.text:,} B, data {firmware.data:,} B, bss {firmware.bss:,} B")

    reporter.stage("flash", f"{firmware.elf.name} to {ft.board} through {probe_info['unique_id']}; console {port} "
                            f"at {request.baud} baud")
    capture = _flash_and_read(probe, ft, firmware, port, request, doc, reporter)
    write_text_atomic(firmware.build_dir / OUTPUT_NAME, capture.text)
    result = assess_board(proj, tgt, ft, firmware, capture, _command(ft, probe_info, port, request))
    flashed = FlashResult(result, ft, source, probe_info, port, request.baud, capture,
                          alternative_commands(ft, firmware.elf))
    reporter.info(f"{result.vectors_passed}/{result.golden_count} golden vectors PASS on {ft.board}; "
                  + ("validation passed" if result.passed else f"validation FAILED: {'; '.join(result.problems)}"))
    return flashed


def _flash_and_read(probe, ft: FlashTarget, firmware: FirmwareBuild, port: str, request: FlashRequest, doc: dict,
                    reporter: Reporter) -> con.ConsoleCapture:
    """Open the console first (nothing printed after the reset is lost), program, reset, read."""
    stream = con.open_port(port, request.baud, document=doc)
    try:
        with pr.open_session(probe, ft, request.pack, document=doc) as session:
            pr.program(session, firmware.elf, document=doc)
            con.discard_input(stream)
            reporter.info(f"programmed; reset, reading the console (up to {request.timeout:g} s)")
            pr.reset_run(session)
            return con.read_console(stream, request.timeout, halted=lambda: pr.halted_status(session))
    finally:
        stream.close()


def _command(ft: FlashTarget, probe: dict, port: str, request: FlashRequest) -> tuple[str, ...]:
    """The equivalent command line, recorded where run records QEMU's."""
    return ("pyocd", "load", "--target", ft.pyocd_target, "--uid", probe["unique_id"], "firmware.elf", "&&",
            "pyserial-miniterm", port, str(request.baud))


def assess_board(proj, tgt, ft: FlashTarget, firmware: FirmwareBuild, capture: con.ConsoleCapture,
                 command: tuple[str, ...]) -> RunResult:
    """run's verdict (`assess`) on what the board printed. The exit status is the console's (or r0's); without
    either, the firmware never finished: that is a problem of its own, and assess judges the text as if it had."""
    status = capture.exit_status if capture.exit_status is not None else 0
    result = assess(proj, tgt, f"{ft.board} (pyOCD {ft.pyocd_target})", firmware,
                    QemuResult(status, capture.text, command))
    problems = list(result.problems)
    notes = list(result.notes)
    if capture.exit_status is None:
        problems.insert(0, f"the board printed no \"mncompile: exit status\" line and did not halt within "
                           f"{capture.seconds:.0f} s" + ("" if capture.text.strip() else
                                                         " (the console stayed silent: check --port and --baud)"))
    elif capture.status_source != "console":
        notes.append(f"the console showed no exit line; the core halted with status {capture.exit_status} in r0 "
                     "(some of its output may be missing: check --baud)")
    elif capture.halted_status is not None and capture.halted_status != capture.exit_status:
        problems.append(f"the console says exit status {capture.exit_status}, r0 of the halted core "
                        f"{capture.halted_status}")
    return dataclasses.replace(result, problems=tuple(problems), notes=tuple(notes))
