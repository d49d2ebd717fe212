"""`mncompile flash`: everything up to the probe.

No debug probe exists here (nor in CI), so the tests stop at pyOCD's and pyserial's own API: they
replace pyOCD's probe enumeration (ConnectHelper.get_all_connected_probes), Session and
FileProgrammer, and pyserial's Serial and comports, never mncompile's own code. What the fake
board "prints" is real firmware output: a project run on QEMU by `mncompile run` here, sent the
way a UART sends it (CR LF) and closed with board_exit()'s "mncompile: exit status N" line.
What only silicon can check (pyOCD programming a real flash, the clock tree, the UART's baud
rate) is listed in the README's "Flashing a board".
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from mncompile.errors import FlashError, InvalidOptionError, NoProbeError

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
BOARDS = REPO / "firmware" / "boards"
needs_firmware_tools = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None or shutil.which("cmake")
    is None, reason="arm-none-eabi-gcc, cmake and qemu-system-arm build and run the firmware")


def _boards() -> dict[str, dict]:
    out = {}
    for path in sorted(BOARDS.glob("*/board.toml")):
        with path.open("rb") as f:
            out[path.parent.name] = tomllib.load(f)
    return out


REAL = sorted(name for name, data in _boards().items() if "flashing" in data)


# --- the boards' pyOCD targets and packs --------------------------------------------------------

def _expected_pack(part: str) -> str:
    """The CMSIS-Pack that holds a part, by the vendors' naming rules (independent of board.toml): ST's
    device family packs are Keil.STM32<family>xx_DFP (STM32H743ZITx -> STM32H7xx), Renesas' RA parts
    are all in Renesas.RA_DFP."""
    part = part.lower()
    if part.startswith("stm32"):
        return f"Keil.STM32{part[5:7].upper()}xx_DFP"
    if part.startswith("r7fa"):
        return "Renesas.RA_DFP"
    raise AssertionError(f"no pack naming rule for {part}: add one to this test")


def test_there_are_real_boards_to_flash():
    assert len(REAL) >= 5, REAL
    assert not any(name.startswith(("mps2", "mps3", "corstone")) for name in REAL)


@pytest.mark.parametrize("board", REAL)
def test_every_board_target_resolves_in_pyocd(board):
    """A target built into pyOCD needs no pack (and has none in board.toml); any other names the pack that
    holds it, and pyOCD must indeed lack it built in (else the pack would be a needless download)."""
    from pyocd.target import TARGET

    from mncompile.flash import flash_target

    ft = flash_target(board)
    builtin = ft.pyocd_target.lower() in {name.lower() for name in TARGET}
    if ft.pack:
        assert not builtin, f"{board}: {ft.pyocd_target} is built into pyOCD, drop pack = {ft.pack!r}"
        assert ft.pack == _expected_pack(ft.pyocd_target)
        assert ft.pack_install_command == f"pyocd pack install {ft.pyocd_target}"
    else:
        assert builtin, f"{board}: pyOCD has no built-in target {ft.pyocd_target}: name its pack in board.toml"
    assert ft.to_json()["builtin"] is builtin
    image = [m["origin"] for m in _boards()[board]["memory"] if m["name"] not in ("RAM", "ARENA")
             and "alias_of" not in m]  # the flash regions: the image starts at the lowest
    assert ft.origin == min(image), f"{board}: [flashing] origin is not where the image starts"


@pytest.mark.parametrize("board", REAL)
def test_alternatives_are_openocd_and_probe_rs_command_lines(board, tmp_path):
    from mncompile.flash import alternative_commands, flash_target

    ft = flash_target(board)
    elf = tmp_path / "my build" / "firmware.elf"
    commands = alternative_commands(ft, elf)
    assert commands["pyocd"].startswith(f"pyocd load --target {ft.pyocd_target} '{elf}'")
    if ft.openocd_config:
        assert commands["openocd"] == f'openocd -f {ft.openocd_config} -c "program {elf} verify reset exit"'
        assert all(part.endswith(".cfg") for part in ft.openocd_config.split(" -f "))
    else:
        assert "openocd" not in commands
    if "probe-rs" in commands:
        chip = commands["probe-rs"].split("--chip ")[1].split()[0]
        assert chip.lower().startswith(ft.pyocd_target.lower()[:7]) and str(elf) in commands["probe-rs"]
    assert [v for k, v in commands.items() if k.startswith("board-")] == list(ft.alternatives)


def test_a_qemu_board_is_refused_pointing_to_run():
    from mncompile.flash import flash_target

    for board in ("mps2-an500", "mps2-an385", "corstone-300-ethos-u55"):
        with pytest.raises(FlashError) as info:
            flash_target(board)
        assert "no [flashing] table" in info.value.message and "mncompile run" in info.value.hint
        assert info.value.exit_code == 13


def test_a_missing_pack_names_the_command_and_nothing_downloads(tmp_path, monkeypatch):
    """pyOCD's pack cache lives under XDG_DATA_HOME (cmsis-pack-manager's appdirs): empty, the pack is
    missing; with the pack file where `pyocd pack install` puts it, the target resolves."""
    from mncompile.flash import check_pyocd_target, flash_target

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    needing = [b for b in REAL if flash_target(b).pack]
    assert needing, "no board needs a pack: this test checks nothing"
    ft = flash_target(needing[0])
    with pytest.raises(FlashError) as info:
        check_pyocd_target(ft)
    assert ft.pack in info.value.message and f"`pyocd pack install {ft.pyocd_target}`" in info.value.hint
    assert str(tmp_path / "cmsis-pack-manager") in info.value.message
    assert list(tmp_path.iterdir()) == []  # nothing was fetched or created
    vendor, name = ft.pack.split(".")
    pack = tmp_path / "cmsis-pack-manager" / vendor / name / "1.0.0.pack"
    pack.parent.mkdir(parents=True)
    pack.write_bytes(b"PK")
    assert check_pyocd_target(ft) == f"pack {pack}"
    given = tmp_path / "offline.pack"
    given.write_bytes(b"PK")
    assert check_pyocd_target(ft, given) == f"pack {given}"
    builtin = next(flash_target(b) for b in REAL if not flash_target(b).pack)
    assert check_pyocd_target(builtin) == "builtin"


# --- the probe: none attached, several attached -------------------------------------------------

class FakeProbe:
    def __init__(self, uid: str, description: str = "STM32 STLink"):
        self.unique_id, self.description = uid, description
        self.vendor_name, self.product_name = "STMicroelectronics", "STM32 STLink"


@pytest.fixture
def probes(monkeypatch):
    """pyOCD's enumeration, answering with the list this fixture holds; records how it was called."""
    from pyocd.core.helpers import ConnectHelper

    attached: list = []
    calls: list = []

    def enumerate_probes(blocking=True, unique_id=None, **kwargs):
        calls.append({"blocking": blocking, "unique_id": unique_id})
        return [p for p in attached if unique_id is None or unique_id.lower() in p.unique_id.lower()]

    monkeypatch.setattr(ConnectHelper, "get_all_connected_probes", staticmethod(enumerate_probes))
    return attached, calls


@pytest.fixture(scope="module")
def pico_project(tmp_path_factory) -> Path:
    """A project for a board whose target is built into pyOCD (no pack needed)."""
    out = tmp_path_factory.mktemp("pico") / "fw"
    run_cli("emit", str(TINY), "-t", "rp2040", "--backend", "aot", "-o", str(out), check=True)
    return out


def test_no_probe_is_a_typed_error_saying_what_was_looked_for(pico_project, probes):
    from typer.testing import CliRunner

    from mncompile.cli.app import app

    _, calls = probes
    cli = CliRunner().invoke(app, ["flash", str(pico_project), "--json"])
    assert cli.exit_code == 13, cli.output
    doc = json.loads(cli.stdout)  # one document
    assert doc["error"] == "no-probe" and doc["exit_code"] == 13
    assert "rp2040" in doc["message"] and "0483:374b" in doc["message"] and "cmsisdap" in doc["message"]
    assert "udev" in doc["hint"] and "pyocd list" in doc["hint"]
    assert {"cmsisdap", "stlink"} <= set(doc["searched"]["probe_types"])
    assert "0d28:0204" in doc["searched"]["usb_ids"]["cmsisdap"]  # DAPLink, as pyOCD lists it
    assert doc["flash"]["pyocd_target"] == "rp2040" and "openocd" in doc["flash"]["alternatives"]
    assert calls == [{"blocking": False, "unique_id": None}]  # never waits for a probe
    assert not (pico_project / "build").exists()  # refused before the build

    with pytest.raises(NoProbeError) as info:  # --probe that matches nothing, with another probe attached
        from mncompile.flash import FlashRequest, flash_project

        probes[0].append(FakeProbe("0669FF3534"))
        flash_project(pico_project, FlashRequest(probe="ABC"))
    assert "'ABC'" in info.value.message and "0669FF3534" in info.value.message


def test_several_probes_need_probe(pico_project, probes):
    from mncompile.flash import FlashRequest, flash_project

    probes[0].extend([FakeProbe("0669FF3534"), FakeProbe("E6614103E7", "Debug Probe (CMSIS-DAP)")])
    with pytest.raises(FlashError) as info:
        flash_project(pico_project, FlashRequest())
    assert "2 debug probes" in info.value.message and "--probe" in info.value.hint
    assert not isinstance(info.value, NoProbeError)


def test_options_are_checked_before_any_work(pico_project):
    from mncompile.flash import FlashRequest, flash_project

    for bad in (FlashRequest(baud=0), FlashRequest(timeout=0), FlashRequest(probe=" "),
                FlashRequest(pack=Path("/nonexistent.pack"))):
        with pytest.raises(InvalidOptionError):
            flash_project(pico_project, bad)
    cli = run_cli("flash", str(TINY.parent))
    assert cli.returncode == 2 and "mncompile.json" in cli.stderr


def test_build_flash_board_refuses_before_any_work(tmp_path):
    out = tmp_path / "b"
    proc = run_cli("build", "--model", str(TINY), "--flash-board", "--out", str(out))  # cortex-m7: QEMU
    assert proc.returncode == 13 and "mncompile run" in proc.stderr and not out.exists()
    proc = run_cli("build", "--model", str(TINY), "--target", "rp2040", "--flash-board", "--baud", "0",
                   "--out", str(out))
    assert proc.returncode == 2 and "--baud" in proc.stderr and not out.exists()


# --- the console -------------------------------------------------------------------------------

class FakePort:
    """pyserial's Serial as the board's UART shows it: bytes arrive in `chunks` once the board is reset."""

    def __init__(self, before: bytes = b"", chunks: tuple[bytes, ...] = ()):
        self.pending = [before] if before else []
        self.after_reset = list(chunks)
        self.closed = False

    @property
    def in_waiting(self) -> int:
        return len(self.pending[0]) if self.pending else 0

    def read(self, n: int) -> bytes:
        return self.pending.pop(0) if self.pending else b""

    def reset_input_buffer(self) -> None:
        self.pending.clear()

    def board_reset(self) -> None:
        self.pending.extend(self.after_reset)

    def close(self) -> None:
        self.closed = True


def _uart(text: str, status: int = 0) -> bytes:
    """What the UART sends: LF as CR LF (firmware/common/board_real.h), board_exit()'s line last."""
    return (text + f"\nmncompile: exit status {status}\n").replace("\n", "\r\n").encode()


def test_read_console_stops_at_the_exit_line_across_chunks():
    from mncompile.flash.console import read_console

    data = _uart("vector 0: PASS, class 1 (x), 10 cycles\nsummary: 1/1 PASS", 0)
    port = FakePort(chunks=tuple(data[i:i + 7] for i in range(0, len(data), 7)))
    port.board_reset()
    cap = read_console(port, timeout=5.0)
    assert cap.exit_status == 0 and cap.status_source == "console" and not cap.timed_out
    assert "\r" not in cap.text and cap.text.startswith("vector 0: PASS")


def test_read_console_takes_r0_of_a_halted_core_and_times_out_when_silent():
    from mncompile.flash.console import read_console

    cap = read_console(FakePort(), timeout=5.0, halted=lambda: 2)
    assert cap.exit_status == 2 and cap.status_source == "r0 (core halted)" and not cap.timed_out
    cap = read_console(FakePort(), timeout=0.3)
    assert cap.exit_status is None and cap.timed_out and cap.text == ""


# --- the whole flow on real firmware output, pyOCD and pyserial faked at their API --------------

@pytest.fixture(scope="module")
def qemu_output(tmp_path_factory) -> str:
    """What a project of the tiny model prints, run on QEMU here (AOT backend: no TFLM needed)."""
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("qemu-system-arm and arm-none-eabi-gcc run the firmware")
    from mncompile.pipeline import emit
    from mncompile.run.validate import run_project

    out = tmp_path_factory.mktemp("qemu") / "fw"
    emit(TINY, "cortex-m7", out, backend="aot")
    result = run_project(out)
    assert result.passed, result.problems
    return result.qemu.output


@pytest.fixture
def board(monkeypatch, probes):
    """One attached probe, pyOCD's Session and FileProgrammer and pyserial's port replaced; `printed` is what
    the board sends once reset (set by the test)."""
    import serial
    import serial.tools.list_ports
    from pyocd.core import session as pyocd_session
    from pyocd.flash import file_programmer

    probes[0].append(FakeProbe("0669FF3534"))
    state = {"events": [], "printed": b"", "r0": None, "port": None}

    class Target:
        def reset(self, reset_type=None):
            state["events"].append("reset")
            state["port"].after_reset = [state["printed"]]
            state["port"].board_reset()

        def is_halted(self):
            return state["r0"] is not None and "reset" in state["events"]

        def read_core_register(self, name):
            assert name == "r0"
            return state["r0"] & 0xFFFFFFFF

    class Session:
        def __init__(self, probe, options=None, **kwargs):
            state["session"] = {"probe": probe.unique_id, "options": dict(options or {})}
            self.board = type("Board", (), {"target": Target()})()

        def open(self):
            state["events"].append("open")

        def close(self):
            state["events"].append("close")

    class Programmer:
        def __init__(self, session, **kwargs):
            pass

        def program(self, path, file_format=None, **kwargs):
            state["events"].append(("program", Path(path).name, file_format, Path(path).is_file()))

    def open_serial(port, baudrate=9600, timeout=None, **kwargs):
        state["serial"] = (port, baudrate)
        state["port"] = FakePort(before=b"old image's output\r\n")
        return state["port"]

    class PortInfo:
        device, description, serial_number = "/dev/ttyACM7", "STM32 STLink - ST-Link VCP Data", "0669FF3534"

    monkeypatch.setattr(pyocd_session, "Session", Session)
    monkeypatch.setattr(file_programmer, "FileProgrammer", Programmer)
    monkeypatch.setattr(serial, "Serial", open_serial)
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [PortInfo()])
    return state


@needs_firmware_tools
def test_build_flash_board_then_flash_builds_programs_resets_and_checks(tmp_path, qemu_output, board):
    """build --flash-board chains flash after emit (one firmware build, in OUT/firmware-build); then
    `mncompile flash` on that project: programs, resets, reads, and judges as run does."""
    from typer.testing import CliRunner

    from mncompile import pipeline
    from mncompile.cli.app import app
    from mncompile.flash import FlashRequest

    board["printed"] = _uart(qemu_output, 0)
    out = tmp_path / "b"
    result = pipeline.build(pipeline.BuildOptions(model=TINY, out=out, target="rp2040", backend="aot"),
                            flash=FlashRequest())
    assert result.completed[-2:] == ("emit", "validate") and result.flashed.passed
    assert result.flashed.run.firmware.build_dir == out / "firmware-build"
    doc = result.to_json()
    assert doc["flash"]["status"] == "PASS" and doc["run"] is None
    assert {s["name"]: s["status"] for s in doc["stages"]}["validate"] == "done"

    project, build = out / "firmware", ["--build-dir", str(out / "firmware-build")]
    board["events"], board["r0"] = [], 0
    cli = CliRunner().invoke(app, ["flash", str(project), *build, "--json"])
    assert cli.exit_code == 0, cli.output
    doc = json.loads(cli.stdout)
    assert doc["status"] == "PASS" and doc["problems"] == [] and doc["board"] == "rpi-pico"
    assert [v["status"] for v in doc["vectors"]] == ["PASS"] * 4
    assert doc["golden"] == {"expected": 4, "reported": 4, "passed": 4, "reference_checked": True}
    assert "qemu" not in doc and "qemu_machine" not in doc
    console = doc["flash"]["console"]
    assert {k: console[k] for k in ("port", "baud", "exit_status", "exit_status_source", "timed_out")} == {
        "port": "/dev/ttyACM7", "baud": 115200, "exit_status": 0, "exit_status_source": "console", "timed_out": False}
    assert console["halted_r0"] in (None, 0)  # r0 of the halted core, when it was polled before the exit line
    assert doc["flash"]["probe"]["unique_id"] == "0669FF3534" and doc["flash"]["pyocd"] == "builtin"
    assert set(doc["flash"]["alternatives"]) >= {"pyocd", "openocd", "probe-rs"}
    assert board["serial"] == ("/dev/ttyACM7", 115200)
    assert board["session"]["options"]["target_override"] == "rp2040"
    assert board["events"] == ["open", ("program", "firmware.elf", "elf", True), "reset", "close"]
    assert board["port"].closed
    saved = (out / "firmware-build" / "board-output.txt").read_text()
    assert "old image" not in saved and saved.count("PASS, class") == 4  # the old image's lines were dropped

    # A vector the board got wrong: exit 10, still one JSON document, the FAIL in it.
    wrong = re.sub(r"^vector 2: PASS.*$", "vector 2: FAIL at output index 0: got 5, expected 6 (9 cycles)",
                   qemu_output, flags=re.M).replace("summary: 4/4", "summary: 3/4")
    board["printed"], board["events"] = _uart(wrong, 1), []
    cli = CliRunner().invoke(app, ["flash", str(project), *build, "--json"])
    assert cli.exit_code == 10, cli.output
    doc = json.loads(cli.stdout)
    assert doc["error"] == "firmware-validation" and "board rpi-pico" in doc["message"]
    assert [v["status"] for v in doc["vectors"]] == ["PASS", "PASS", "FAIL", "PASS"]

    # A silent console (wrong port or baud rate) on a core that never halts: exit 10 after --timeout.
    board["printed"], board["r0"] = b"", None
    cli = CliRunner().invoke(app, ["flash", str(project), *build, "--timeout", "0.5"])
    assert cli.exit_code == 10 and "console stayed silent" in cli.output
