"""Board support (firmware/): the real Arm toolchain builds a self-test program
(tests/firmware/hello.c + hello_cpp.cc) against every board, QEMU runs it on the
five emulated boards (mps2-an385 with Armv6-M code built for the Cortex-M0+), and
the real boards' links (Nucleo-H743ZI, Nucleo-L4R5ZI, STM32F746G-DISCO, Nano 33
BLE Sense, Raspberry Pi Pico, i.MX RT1060 EVK, EK-RA8D1, the two Corstone-300
boards with an Ethos-U NPU) are checked against their memory maps.

The self-test prints one line per check from inside the firmware; these tests
read those lines, QEMU's exit code, and the ELF's symbols and sections. Skipped
when arm-none-eabi-gcc (or, for the runs, qemu-system-arm) is not installed.
tests/test_board_builds.py builds whole generated projects for the real boards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mncompile.errors import EmulatorError
from mncompile.resources import firmware_dir
from mncompile.run import qemu
from mncompile.run.qemu import qemu_command, run_qemu

FIRMWARE = firmware_dir()
TESTS_FIRMWARE = Path(__file__).parent / "firmware"
QEMU_BOARDS = ("mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547")
# Real boards with a UART console and board_init() clock set-up (common/board_real.h).
UART_BOARDS = ("nucleo-h743zi", "nucleo-l4r5zi", "stm32f746g-disco", "nano33ble", "rpi-pico", "imxrt1060-evk",
               "ek-ra8d1")
CORSTONE_BOARDS = ("corstone-300-ethos-u55", "corstone-300-ethos-u65")  # with an Ethos-U NPU
REAL_BOARDS = UART_BOARDS + CORSTONE_BOARDS  # no QEMU machine: UART console
BOARDS = QEMU_BOARDS + REAL_BOARDS
SYSTICK_REAL_BOARDS = ("rpi-pico",)  # the Cortex-M0+ has no DWT cycle counter
M4F = "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
M7_DP = "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16"
M55 = "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard"
M0P = "-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft"
# The code-generation flags each board must use (board.toml must say the same).
CPU_FLAGS = {
    "mps2-an385": M0P,
    "mps2-an386": M4F,
    "mps2-an500": M7_DP,
    "mps2-an505": "-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16",
    "mps3-an547": M55,
    "nucleo-h743zi": M7_DP,
    "nucleo-l4r5zi": M4F,
    "stm32f746g-disco": "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16",
    "nano33ble": M4F,
    "rpi-pico": M0P,
    "imxrt1060-evk": M7_DP,
    "ek-ra8d1": M55,  # a Cortex-M85: GCC 12 has no -mcpu=cortex-m85, Cortex-M55 code runs on it
    "corstone-300-ethos-u55": M55,
    "corstone-300-ethos-u65": M55,
}
CORE = {"ek-ra8d1": "cortex-m85"}  # board.toml's cpu where it is not the -mcpu name
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wpedantic"]
C_FLAGS = ["-std=c11", *WARNINGS, "-ffunction-sections", "-fdata-sections", "-O2"]
CXX_FLAGS = ["-std=c++17", "-fno-rtti", "-fno-exceptions", *WARNINGS, "-ffunction-sections",
             "-fdata-sections", "-O2"]
FAULT_STATUS = 70  # MN_FAULT_EXIT_STATUS in firmware/common/board_support.h
# Device interrupt vectors in each board's table (DEVICE_IRQS in boards/<board>/startup.c).
DEVICE_IRQS = {"mps2-an385": 32, "mps2-an386": 32, "mps2-an500": 32, "mps2-an505": 124, "mps3-an547": 128,
               "nucleo-h743zi": 150, "nucleo-l4r5zi": 95, "stm32f746g-disco": 98, "nano33ble": 48, "rpi-pico": 26,
               "imxrt1060-evk": 160, "ek-ra8d1": 96, "corstone-300-ethos-u55": 128, "corstone-300-ethos-u65": 128}
ARMV8M_BOARDS = ("mps2-an505", "mps3-an547")  # SecureFault vector, MSPLIM (the QEMU ones, which run)
ARMV8M_REAL_BOARDS = CORSTONE_BOARDS + ("ek-ra8d1",)
# Regions before FLASH that hold what a boot ROM reads (and the linker scripts' names for them).
BOOT_REGIONS = {"rpi-pico": "BOOT2", "imxrt1060-evk": "BOOT"}
NPU_IRQ = 56  # the Ethos-U's device interrupt on Corstone-300

needs_toolchain = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                     reason="arm-none-eabi-gcc is not installed")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None,
                                reason="qemu-system-arm is not installed")


def board_toml(board: str) -> dict:
    with (FIRMWARE / "boards" / board / "board.toml").open("rb") as f:
        return tomllib.load(f)


def region(board: str, name: str) -> tuple[int, int]:
    """(origin, end) of a memory region of board.toml."""
    for entry in board_toml(board)["memory"]:
        if entry["name"] == name:
            return entry["origin"], entry["origin"] + entry["length"]
    raise AssertionError(f"{board}: board.toml has no {name} region")


def _length(text: str) -> int:
    """A linker script LENGTH: `2M`, `640K`, `256`, or a difference such as `2M - 256`."""
    def size(term: str) -> int:
        match = re.fullmatch(r"\s*(\d+)\s*([KM]?)\s*", term)
        return int(match.group(1)) * {"": 1, "K": 1024, "M": 1024 * 1024}[match.group(2)]
    first, *rest = text.split("-")
    return size(first) - sum(size(term) for term in rest)


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _checked(command: list[str]) -> subprocess.CompletedProcess:
    proc = _run(command)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(command)}\nexited {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


class Builder:
    """Compiles common/*.c + boards/<board>/*.c once per board (what a generated
    project's CMake compiles), then links test programs against them."""

    def __init__(self, root: Path):
        self.root = root
        self._objects: dict[str, list[Path]] = {}

    def cpu_flags(self, board: str) -> list[str]:
        return CPU_FLAGS[board].split()

    def _compile_jobs(self, board: str) -> list[tuple[list[str], Path]]:
        out = self.root / board / "obj"
        out.mkdir(parents=True, exist_ok=True)
        sources = sorted((FIRMWARE / "common").glob("*.c")) + sorted((FIRMWARE / "boards" / board).glob("*.c"))
        jobs = []
        for source in sources:
            obj = out / f"{source.parent.name}_{source.stem}.o"
            jobs.append((["arm-none-eabi-gcc", *self.cpu_flags(board), *C_FLAGS, f"-I{FIRMWARE / 'common'}",
                          "-c", str(source), "-o", str(obj)], obj))
        return jobs

    def prepare(self, boards: tuple[str, ...]) -> None:
        """Compile the board sources of `boards` in parallel."""
        jobs = {board: self._compile_jobs(board) for board in boards if board not in self._objects}
        flat = [command for board_jobs in jobs.values() for command, _ in board_jobs]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(_checked, flat))
        for board, board_jobs in jobs.items():
            self._objects[board] = [obj for _, obj in board_jobs]

    def link(self, board: str, name: str, defines: tuple[str, ...] = (),
             extra_c_flags: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, Path]:
        """Build hello.c + hello_cpp.cc with `defines` and link; returns the link's result and the ELF."""
        self.prepare((board,))
        out = self.root / board / name
        out.mkdir(parents=True, exist_ok=True)
        cpu = self.cpu_flags(board)
        include = f"-I{FIRMWARE / 'common'}"
        hello_c, hello_cc = out / "hello.o", out / "hello_cpp.o"
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(_checked, [
                ["arm-none-eabi-gcc", *cpu, *C_FLAGS, *extra_c_flags, include, f'-DHELLO_BOARD="{board}"',
                 *defines, "-c", str(TESTS_FIRMWARE / "hello.c"), "-o", str(hello_c)],
                ["arm-none-eabi-g++", *cpu, *CXX_FLAGS, include, "-c", str(TESTS_FIRMWARE / "hello_cpp.cc"),
                 "-o", str(hello_cc)],
            ]))
        elf = out / "hello.elf"
        proc = _run(["arm-none-eabi-g++", *cpu, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
                     "-T", str(FIRMWARE / "boards" / board / "linker.ld"), *map(str, self._objects[board]),
                     str(hello_c), str(hello_cc), "-o", str(elf)])
        return proc, elf

    def build(self, board: str, name: str, defines: tuple[str, ...] = (), **kwargs) -> Path:
        proc, elf = self.link(board, name, defines, **kwargs)
        assert proc.returncode == 0, f"{board} {name}: link failed\n{proc.stdout}{proc.stderr}"
        assert "warning" not in proc.stderr.lower(), f"{board} {name}: the link warns\n{proc.stderr}"
        return elf


@pytest.fixture(scope="module")
def builder(tmp_path_factory) -> Builder:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    b = Builder(tmp_path_factory.mktemp("boards"))
    b.prepare(BOARDS)
    return b


def symbols(elf: Path) -> dict[str, int]:
    out = _checked(["arm-none-eabi-nm", str(elf)]).stdout
    return {parts[2]: int(parts[0], 16) for parts in (line.split() for line in out.splitlines()) if len(parts) == 3}


def sections(elf: Path) -> dict[str, tuple[int, int]]:
    """name -> (address, size) of the allocated sections."""
    out = _checked(["arm-none-eabi-readelf", "-SW", str(elf)]).stdout
    result = {}
    for match in re.finditer(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]{8})\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*A\S*)", out):
        result[match.group(1)] = (int(match.group(2), 16), int(match.group(3), 16))
    return result


def vector_words(elf: Path, tmp: Path) -> list[int]:
    """The words of .isr_vector: initial SP, then one per exception."""
    raw = tmp / "isr_vector.bin"
    _checked(["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.isr_vector", str(elf), str(raw)])
    data = raw.read_bytes()
    return [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]


def vectors(elf: Path, tmp: Path) -> tuple[int, int]:
    """The first two words of .isr_vector: initial SP and reset PC."""
    sp, pc = vector_words(elf, tmp)[:2]
    return sp, pc


# --- the board folders ------------------------------------------------------------------


@pytest.mark.parametrize("board", BOARDS)
def test_board_folder_describes_itself(board):
    folder = FIRMWARE / "boards" / board
    for name in ("startup.c", "board.c", "linker.ld", "board.toml"):
        assert (folder / name).is_file(), f"{board} lacks {name}"
    data = board_toml(board)
    assert data["name"] == board
    assert data["cpu_flags"] == CPU_FLAGS[board]
    assert data["cpu"] == CORE.get(board, CPU_FLAGS[board].split()[0].removeprefix("-mcpu="))
    assert data["console"] == ("uart" if board in REAL_BOARDS else "semihosting")
    assert data["timer"] == ("dwt" if board in REAL_BOARDS and board not in SYSTICK_REAL_BOARDS else "systick")
    assert data.get("qemu_machine") == (None if board in REAL_BOARDS else board)
    assert data["description"] and data["cpu_hz"] > 0
    # The regions agree with the linker script's MEMORY block and REGION_ALIAS lines.
    script = (folder / "linker.ld").read_text()
    memory = re.search(r"MEMORY\s*\{(.*?)\}", script, re.S).group(1)
    declared = {m.group(1): (int(m.group(2), 16), _length(m.group(3)))
                for m in re.finditer(r"(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+),\s*"
                                     r"LENGTH\s*=\s*([^\n]+)", memory)}
    aliases = dict(re.findall(r'REGION_ALIAS\("(\w+)",\s*(\w+)\)', script))
    names = [entry["name"] for entry in data["memory"]]
    extra = [BOOT_REGIONS[board]] if board in BOOT_REGIONS else []
    assert sorted(names) == sorted(["ARENA", "FLASH", "MODEL", "RAM", *extra])
    required = {"FLASH", "RAM", *extra, *(n for n in ("ARENA", "MODEL") if n not in aliases)}
    assert required <= set(declared) and set(declared) - required <= {"NPU_SRAM"}  # the U65's NPU cache
    for entry in data["memory"]:
        name = entry["name"]
        assert entry["holds"] and entry["description"]
        if "alias_of" in entry:
            assert aliases.get(name) == entry["alias_of"], f"{board}: {name} is no alias in linker.ld"
            target = declared[entry["alias_of"]]
        else:
            assert name not in aliases
            target = declared[name]
        assert (entry["origin"], entry["length"]) == target, f"{board}: region {name} differs from linker.ld"


@needs_toolchain
@pytest.mark.parametrize("board", BOARDS)
def test_vector_table_is_the_boards_and_points_into_the_common_startup(builder, board, tmp_path):
    # The board's startup.c gives the table (16 system vectors + its device interrupts);
    # common/reset.c gives Reset_Handler and the weak handlers, all Default_Handler here.
    elf = builder.build(board, "exit0")
    words, syms = vector_words(elf, tmp_path), symbols(elf)
    assert len(words) == 16 + DEVICE_IRQS[board]
    assert syms["mn_vector_table"] == syms["__vector_table"] == region(board, "FLASH")[0]
    default = syms["Default_Handler"] | 1
    assert words[0] == syms["__stack_top"] and words[1] == syms["Reset_Handler"] | 1
    secure_fault = default if board in ARMV8M_BOARDS + ARMV8M_REAL_BOARDS else 0  # reserved on Armv6/7-M
    assert words[2:16] == [default] * 5 + [secure_fault, 0, 0, 0, default, default, 0, default, words[15]]
    # SysTick: the board's own handler where it is the timer (common/board_qemu.h, common/board_corstone300.h,
    # common/board_real.h on the Pico); free on the DWT boards.
    dwt = board in UART_BOARDS and board not in SYSTICK_REAL_BOARDS
    assert (words[15] == syms["SysTick_Handler"] | 1) and ((words[15] == default) == dwt)
    device = [default] * DEVICE_IRQS[board]
    if board in CORSTONE_BOARDS:
        # the NPU's vector: a weak stand-in branching to Default_Handler, until a project defines it
        device[NPU_IRQ] = syms["NPU_IRQHandler"] | 1
        assert device[NPU_IRQ] != default
    assert words[16:] == device


def test_qemu_command_line():
    command = qemu_command("mps2-an505", Path("/x/fw.elf"))
    assert command[0] == "qemu-system-arm"
    joined = " ".join(command)
    assert "-machine mps2-an505" in joined and "-nographic" in joined
    assert "-semihosting-config enable=on,target=native" in joined
    assert "-icount shift=0" in joined and command[-2:] == ["-kernel", "/x/fw.elf"]
    assert "-icount" not in qemu_command("mps2-an505", "fw.elf", icount=False)
    assert "shift=6" in qemu_command("mps2-an505", "fw.elf", icount_shift=6)


def test_run_qemu_without_qemu_says_what_to_install(tmp_path, monkeypatch):
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF")
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    with pytest.raises(EmulatorError) as err:
        run_qemu(elf, "mps2-an386")
    assert "qemu-system-arm" in err.value.message and "install" in (err.value.hint or "")
    with pytest.raises(EmulatorError, match="does not exist"):
        run_qemu(tmp_path / "missing.elf", "mps2-an386")


# --- the QEMU boards --------------------------------------------------------------------


def _lines(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_runs_on_qemu(builder, board):
    elf = builder.build(board, "exit0")
    first = run_qemu(elf, board, timeout=30)
    out = first.output
    assert first.exit_code == 0, out
    assert "BAD" not in out, out
    # Startup: .data copied, .bss zeroed and the C++ constructor run, on a fresh start and
    # again after the program dirtied .data/.bss and jumped back to Reset_Handler.
    assert f"hello from {board} (first run)" in out and f"hello from {board} (restarted)" in out, out
    for check in ("data", "bss", "constructor"):
        assert _lines(out, f"{check}: ") == [f"{check}: ok"] * 2, out
    # .model is read in place in the MODEL region, .tensor_arena is usable RAM in ARENA.
    model_at = int(re.search(r"model: at 0x([0-9a-f]+), sum 2557", out).group(1), 16)
    arena_at = int(re.search(r"arena: at 0x([0-9a-f]+), ok", out).group(1), 16)
    low, high = region(board, "MODEL")
    assert low <= model_at < high and model_at % 16 == 0
    low, high = region(board, "ARENA")
    assert low <= arena_at < high and arena_at % 16 == 0
    syms = symbols(elf)
    assert syms["g_model"] == model_at and syms["tensor_arena"] == arena_at
    # Time: SysTick at the processor clock; the loop of 100000 iterations runs some
    # 600000 instructions, one per virtual ns under -icount shift=0.
    hz = board_toml(board)["cpu_hz"]
    assert _lines(out, "cpu_hz: ") == [f"cpu_hz: {hz} (from C++: {hz})"], out
    ticks = int(re.search(r"ticks: (\d+) SysTick ticks", out).group(1))
    assert 200_000 < ticks * 1e9 / hz < 2_000_000, ticks
    # Deterministic under -icount: a second run prints the same count.
    second = run_qemu(elf, board, timeout=30)
    assert second.exit_code == 0
    assert _lines(second.output, "ticks: ") == _lines(out, "ticks: ")
    # The last line has no newline: exit() flushed stdout before the semihosting exit.
    assert out.rstrip("\n").endswith("exiting with 0"), out


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_exit_status_and_crash_reach_qemu(builder, board):
    result = run_qemu(builder.build(board, "exit3", ("-DHELLO_EXIT=3",)), board, timeout=30)
    assert result.exit_code == 3, result.output
    assert result.output.rstrip("\n").endswith("exiting with 3")

    crash = run_qemu(builder.build(board, "crash", ("-DHELLO_CRASH",)), board, timeout=30)
    assert crash.exit_code == FAULT_STATUS, crash.output
    assert "crashing" in crash.output and "*** HardFault (exception 3): pc=0x" in crash.output
    assert "exiting with" not in crash.output


@needs_qemu
@pytest.mark.parametrize("board", ARMV8M_BOARDS)
def test_msplim_turns_a_stack_overflow_into_a_reported_fault(builder, board):
    # Reset_Handler sets MSPLIM to the bottom of the stack on Armv8-M: the overflow is a
    # UsageFault STKOF (escalated to HardFault, CFSR bit 20), reported like any crash.
    result = run_qemu(builder.build(board, "overflow", ("-DHELLO_STACK_OVERFLOW",)), board, timeout=30)
    assert result.exit_code == FAULT_STATUS, result.output
    cfsr = int(re.search(r"\*\*\* HardFault \(exception 3\): .*cfsr=0x([0-9a-f]{8})", result.output).group(1), 16)
    assert cfsr & (1 << 20), result.output
    assert "overflow returned" not in result.output


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_ticks_stay_monotonic_across_systick_wraps(builder, board):
    # shift=6: 64 virtual ns per instruction, so 2^24 ticks take some 10^7 instructions.
    result = run_qemu(builder.build(board, "wrap", ("-DHELLO_WRAP",)), board, timeout=60, icount_shift=6)
    assert result.exit_code == 0, result.output
    match = re.search(r"wrap: (\w+) after (\d+) reads .*, at (\d+)", result.output)
    assert match and match.group(1) == "ok", result.output
    assert int(match.group(3)) >= (2 << 24) + (1 << 20)


@needs_qemu
def test_run_qemu_times_out_on_a_hung_firmware(builder):
    elf = builder.build("mps2-an386", "hang", ("-DHELLO_HANG",))
    with pytest.raises(EmulatorError) as err:
        run_qemu(elf, "mps2-an386", timeout=1.5)
    assert "did not finish" in err.value.message and "hanging" in err.value.message


# --- the real boards: link only -------------------------------------------------------------


def region_of(board: str, name: str) -> tuple[int, int]:
    """(origin, end) of a region, following alias_of."""
    for entry in board_toml(board)["memory"]:
        if entry["name"] == name:
            return entry["origin"], entry["origin"] + entry["length"]
    raise AssertionError(name)


@needs_toolchain
@pytest.mark.parametrize("board", UART_BOARDS)
def test_real_board_links_to_its_memory_map(builder, board, tmp_path):
    elf = builder.build(board, "layout", ("-DHELLO_ARENA_BYTES=100000",))
    secs, syms = sections(elf), symbols(elf)
    flash, ram, arena, model = (region_of(board, n) for n in ("FLASH", "RAM", "ARENA", "MODEL"))
    assert secs[".isr_vector"][0] == flash[0] == syms["__vector_table"]
    model_at, model_size = secs[".model"]
    assert model[0] <= model_at and model_at + model_size <= model[1] and model_at % 16 == 0
    arena_at, arena_size = secs[".tensor_arena"]
    assert arena[0] <= arena_at and arena_size >= 100000 and arena_at + arena_size <= arena[1]
    stack = board_toml(board)["stack_bytes"]
    assert syms["__stack_top"] == ram[1] and syms["__stack_top"] - syms["__stack_limit"] == stack
    for name in (".data", ".bss"):
        assert ram[0] <= secs[name][0] < ram[1], name
    assert ram[0] <= syms["__heap_start"] < syms["__heap_end"] == syms["__stack_limit"]
    assert flash[0] <= syms["__data_load"] < flash[1]
    for name in (".text", ".rodata"):
        assert flash[0] <= secs[name][0] < flash[1], name
    sp, pc = vectors(elf, tmp_path)
    assert sp == syms["__stack_top"] and pc == syms["Reset_Handler"] | 1
    if board in BOOT_REGIONS:  # what the boot ROM reads comes first, FLASH right after it
        boot = region_of(board, BOOT_REGIONS[board])
        assert boot[1] == flash[0]
        first = min(address for address, size in secs.values() if size and address >= boot[0] and address < flash[1])
        assert first == boot[0]


@needs_toolchain
def test_nucleo_links_to_the_real_memory_map(builder, tmp_path):
    elf = builder.build("nucleo-h743zi", "layout", ("-DHELLO_ARENA_BYTES=400000",))
    secs, syms = sections(elf), symbols(elf)
    flash, dtcm, axi = (0x08000000, 0x08200000), (0x20000000, 0x20020000), (0x24000000, 0x24080000)
    assert secs[".isr_vector"][0] == flash[0] == syms["__vector_table"]
    arena_at, arena_size = secs[".tensor_arena"]
    assert arena_at == axi[0] and arena_size >= 400000 and arena_at + arena_size <= axi[1]
    assert syms["__stack_top"] == dtcm[1] and syms["__stack_top"] - syms["__stack_limit"] == 32 * 1024


@needs_toolchain
@pytest.mark.parametrize("board", UART_BOARDS)
def test_board_c_writes_the_uart_and_sets_the_clock(builder, board, tmp_path):
    """The console is a real UART driver (not an empty hook) and board_init() sets the clock: the
    linked board_init calls a clock set-up, board_console_write reaches a store loop, and the
    -DMNCOMPILE_NO_CLOCK_SETUP build drops the clock code."""
    elf = builder.build(board, "exit0")
    disassembly = _checked(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)]).stdout
    body = re.search(r"<board_console_write>:\n(.*?)\n\n", disassembly, re.S).group(1)
    assert re.search(r"\bstr[bh]?\b", body) or "bl\t" in body, body  # it stores (to the UART) or calls the put
    source = (FIRMWARE / "boards" / board / "board.c").read_text()
    assert '#include "board_real.h"' in source and "weak" not in source
    hz = board_toml(board)["cpu_hz"]
    assert f"#define MN_BOARD_CPU_HZ {hz}u" in source
    assert f"return {hz}u;" in source or "return sys_hz;" in source or "return MN_BOARD_CPU_HZ;" in source


@needs_toolchain
@pytest.mark.parametrize("board", UART_BOARDS)
@pytest.mark.parametrize("options", [("-DMNCOMPILE_CONSOLE_SEMIHOSTING",), ("-DMNCOMPILE_NO_CACHES",),
                                     ("-DMNCOMPILE_NO_CLOCK_SETUP",)])
def test_real_board_options_compile_cleanly(board, options, tmp_path):
    cpu = CPU_FLAGS[board].split()
    _checked(["arm-none-eabi-gcc", *cpu, *C_FLAGS, "-Wconversion", f"-I{FIRMWARE / 'common'}", *options, "-c",
              str(FIRMWARE / "boards" / board / "board.c"), "-o", str(tmp_path / "board.o")])


@pytest.mark.parametrize("board", CORSTONE_BOARDS)
def test_corstone_boards_describe_their_npu_and_fvp(board):
    data = board_toml(board)
    npu = data["npu"]
    assert npu["name"] == {"corstone-300-ethos-u55": "Ethos-U55", "corstone-300-ethos-u65": "Ethos-U65"}[board]
    assert (npu["base"], npu["irq"], npu["secure"], npu["privileged"]) == (0x48102000, NPU_IRQ, True, True)
    assert f"#define NPU_IRQ {NPU_IRQ}" in (FIRMWARE / "boards" / board / "startup.c").read_text()
    assert data["fvp"]["executable"] == f"FVP_Corstone_SSE-300_{npu['name']}"
    script = (FIRMWARE / "boards" / board / "linker.ld").read_text()
    if "fast_memory_section" in npu:  # the U65's cache: its own region of linker.ld, the SRAM
        declared = re.search(rf"{npu['fast_memory_region']}\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+),"
                           r"\s*LENGTH\s*=\s*(\d+)M", script)
        assert (int(declared.group(1), 16), int(declared.group(2)) * 1024 * 1024) == (
            npu["fast_memory_origin"], npu["fast_memory_length"])
        assert f"*({npu['fast_memory_section']} " in script
    # the NPU reaches the model and the arena over AXI: neither may be in a TCM
    for name in ("MODEL", "ARENA"):
        origin, _ = region(board, name)
        assert origin >= 0x31000000, name


@needs_toolchain
@pytest.mark.parametrize("board", CORSTONE_BOARDS)
def test_corstone_links_to_the_memory_map(builder, board, tmp_path):
    elf = builder.build(board, "layout", ("-DHELLO_ARENA_BYTES=400000",))
    secs, syms = sections(elf), symbols(elf)
    itcm, dtcm, sram, ddr = (0x10000000, 0x10080000), (0x30000000, 0x30080000), (0x31000000, 0x31200000), (
        0x70000000, 0x72000000)
    assert secs[".isr_vector"][0] == itcm[0] == syms["__vector_table"]
    for name in (".text", ".rodata"):
        assert itcm[0] <= secs[name][0] < itcm[1], name
    model_at, model_size = secs[".model"]
    assert model_at == ddr[0] and model_at + model_size <= ddr[1]
    arena_at, arena_size = secs[".tensor_arena"]
    where = sram if board == "corstone-300-ethos-u55" else ddr  # U65, Dedicated_Sram: arena in DDR after the model
    assert where[0] <= arena_at and arena_at + arena_size <= where[1] and arena_size >= 400000
    assert syms["__stack_top"] == dtcm[1] and syms["__stack_top"] - syms["__stack_limit"] == 64 * 1024
    for name in (".data", ".bss"):
        assert dtcm[0] <= secs[name][0] < dtcm[1], name
    if board == "corstone-300-ethos-u65":
        assert syms["__npu_fast_memory_start"] == sram[0]
    sp, pc = vectors(elf, tmp_path)
    assert sp == syms["__stack_top"] and pc == syms["Reset_Handler"] | 1


@needs_toolchain
@pytest.mark.parametrize("board", CORSTONE_BOARDS)
def test_corstone_semihosting_console_compiles_cleanly(board, tmp_path):
    _checked(["arm-none-eabi-gcc", *CPU_FLAGS[board].split(), *C_FLAGS, f"-I{FIRMWARE / 'common'}",
              "-DMNCOMPILE_CONSOLE_SEMIHOSTING", "-c", str(FIRMWARE / "boards" / board / "board.c"),
              "-o", str(tmp_path / "board.o")])


@needs_toolchain
@pytest.mark.parametrize(("board", "arena", "message"), [
    ("mps2-an386", 5 * 1024 * 1024, "mncompile: .data + .bss + .tensor_arena + the 64 KB stack do not fit RAM"),
    ("nucleo-h743zi", 600 * 1024, "mncompile: the tensor arena (.tensor_arena) does not fit the 512 KB ARENA"),
    ("nucleo-l4r5zi", 640 * 1024, "mncompile: .data + .bss + .tensor_arena + the 16 KB stack do not fit RAM "
                                  "(the 640 KB SRAM of nucleo-l4r5zi)"),
    ("stm32f746g-disco", 300 * 1024, "mncompile: the tensor arena (.tensor_arena) does not fit the 256 KB ARENA "
                                     "region (SRAM1 + SRAM2) of stm32f746g-disco"),
    ("nano33ble", 250 * 1024, "mncompile: .data + .bss + .tensor_arena + the 16 KB stack do not fit RAM "
                              "(the 256 KB RAM of nano33ble)"),
    ("rpi-pico", 260 * 1024, "mncompile: .data + .bss + .tensor_arena + the 16 KB stack do not fit RAM "
                             "(the 264 KB SRAM of rpi-pico)"),
    ("imxrt1060-evk", 800 * 1024, "mncompile: the tensor arena (.tensor_arena) does not fit the 768 KB ARENA "
                                  "region (OCRAM) of imxrt1060-evk"),
    ("ek-ra8d1", 900 * 1024, "mncompile: the tensor arena (.tensor_arena) does not fit the 896 KB ARENA "
                             "region (SRAM) of ek-ra8d1"),
    ("mps3-an547", 5 * 1024 * 1024, "mncompile: the tensor arena (.tensor_arena) does not fit the 4 MB ARENA"),
    ("corstone-300-ethos-u55", 3 * 1024 * 1024,
     "mncompile: the tensor arena (.tensor_arena) does not fit the 2 MB ARENA region (SRAM)"),
    ("corstone-300-ethos-u65", 33 * 1024 * 1024,
     "mncompile: the model (.model) and the tensor arena (.tensor_arena) do not fit the 32 MB DDR"),
])
def test_an_oversized_arena_fails_the_link_with_a_clear_message(builder, board, arena, message):
    proc, _ = builder.link(board, "oversized", (f"-DHELLO_ARENA_BYTES={arena}",))
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
