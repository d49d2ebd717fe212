"""Whole firmware projects for every board: `mncompile emit --backend aot` of the tiny test model,
built by the project's own CMakeLists.txt (arm-none-eabi-gcc, -Wall -Wextra -Werror -Wconversion).

- Every real board's project compiles and links; its link map is checked against the board's real
  memory (board.toml, which tests/test_boards.py checks against linker.ld): the vector table where
  the core boots, the model in MODEL, the arena in ARENA, the stack at the top of RAM.
- The Cortex-M0+ path (target cortex-m0plus: -mcpu=cortex-m0plus code, portable kernels,
  soft-float) runs on QEMU mps2-an385 and every golden vector must PASS; the ELF must be Armv6-M.
- Too big: the same linker script with a smaller ARENA fails the build with the script's readable
  `mncompile:` message, and an arena over the target's RAM is refused before any build (exit 8).
- The boot images the ROMs read, checked against independent references: the Raspberry Pi Pico's
  boot2 (boot2.S re-assembled, CRC-32/MPEG-2 recomputed) and the i.MX RT1060's FCB/IVT/boot data
  (fields decoded from the ELF, LUT words encoded here from the FlexSPI instruction format).

Skipped without arm-none-eabi-gcc and cmake (and QEMU for the run). The builds are shared by the
module (about a minute on two cores).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from mncompile.resources import firmware_dir
from mncompile.targets import get_target

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
FIRMWARE = firmware_dir()
# target -> board: every real board, plus the QEMU board that runs Armv6-M code.
REAL_TARGETS = ("stm32h743", "stm32l4r5", "stm32f746", "nrf52840", "rp2040", "imxrt1060", "ra8d1")
M0_TARGET = "cortex-m0plus"

needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None,
                                   reason="arm-none-eabi-gcc and cmake are needed")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm is not installed")


def _board(target: str) -> dict:
    with (FIRMWARE / "boards" / get_target(target).board / "board.toml").open("rb") as f:
        return tomllib.load(f)


def _region(board: dict, name: str) -> tuple[int, int]:
    entry = next(e for e in board["memory"] if e["name"] == name)
    return entry["origin"], entry["origin"] + entry["length"]


def _sections(elf: Path) -> dict[str, tuple[int, int]]:
    out = subprocess.run(["arm-none-eabi-readelf", "-SW", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return {m.group(1): (int(m.group(2), 16), int(m.group(3), 16)) for m in re.finditer(
        r"\]\s+(\S+)\s+\S+\s+([0-9a-f]{8})\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*A\S*)", out)}


def _symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return {p[2]: int(p[0], 16) for p in (line.split() for line in out.splitlines()) if len(p) == 3}


def _section_bytes(elf: Path, name: str, tmp: Path) -> bytes:
    raw = tmp / f"{name.strip('.')}.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", f"--only-section={name}", str(elf), str(raw)],
                   check=True)
    return raw.read_bytes()


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """target -> (project folder, FirmwareBuild), emitted and built once, two at a time."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None:
        pytest.skip("arm-none-eabi-gcc and cmake are needed")
    from mncompile.pipeline import emit
    from mncompile.run.build import build_project

    root = tmp_path_factory.mktemp("board_builds")

    def make(target: str):
        project = emit(TINY, target, root / target, backend="aot").out
        return target, (project, build_project(project, root / f"{target}-build", timeout=600))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(make, (M0_TARGET, *REAL_TARGETS)))


@needs_arm_gcc
@pytest.mark.parametrize("target", REAL_TARGETS)
def test_real_board_project_builds_with_werror_and_fits_the_real_memory(projects, target, tmp_path):
    project, firmware = projects[target]
    assert "-Werror" in (project / "CMakeLists.txt").read_text()
    board = _board(target)
    assert (project / "firmware" / "boards" / board["name"] / "board.c").is_file()
    secs, syms = _sections(firmware.elf), _symbols(firmware.elf)
    flash, ram, arena, model = (_region(board, n) for n in ("FLASH", "RAM", "ARENA", "MODEL"))
    # The vector table is where the core (or the boot ROM / boot2) reads SP and PC.
    assert secs[".isr_vector"][0] == flash[0] == syms["__vector_table"]
    vectors = _section_bytes(firmware.elf, ".isr_vector", tmp_path)
    sp, pc = struct.unpack_from("<II", vectors)
    assert sp == syms["__stack_top"] == ram[1] and pc == syms["Reset_Handler"] | 1
    # The model in MODEL, the arena in ARENA, code and .data's image in FLASH, data in RAM.
    model_at, model_size = secs[".model"]
    assert model[0] <= model_at and model_at + model_size <= model[1]
    arena_at, arena_size = secs[".tensor_arena"]
    doc = json.loads((project / "mncompile.json").read_text())
    assert arena_size >= doc["arena"]["predicted_bytes"]["aot"]
    assert arena[0] <= arena_at and arena_at + arena_size <= arena[1]
    assert flash[0] <= syms["__data_load"] and syms["__flash_end"] <= flash[1]
    for name in (".data", ".bss"):
        assert ram[0] <= secs[name][0] < ram[1], name
    assert syms["__stack_top"] - syms["__stack_limit"] == board["stack_bytes"]
    assert ram[0] <= syms["__heap_start"] <= syms["__heap_end"] == syms["__stack_limit"]
    # The clock the firmware reports is the target's.
    assert board["cpu_hz"] == get_target(target).cpu_hz


@needs_arm_gcc
@needs_qemu
def test_cortex_m0plus_code_passes_the_golden_vectors_on_qemu(projects):
    from mncompile.run.build import parse_firmware_output
    from mncompile.run.qemu import run_qemu

    project, firmware = projects[M0_TARGET]
    attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(firmware.elf)], capture_output=True,
                                text=True, check=True).stdout
    assert re.search(r"Tag_CPU_arch: v6S?-M", attributes), attributes  # Armv6-M: no DSP, no Thumb-2
    assert "Tag_FP_arch" not in attributes and "Tag_DSP_extension" not in attributes
    result = run_qemu(firmware.elf, get_target(M0_TARGET).qemu_machine, timeout=120)
    report = parse_firmware_output(result.output)
    doc = json.loads((project / "mncompile.json").read_text())
    assert result.exit_code == 0, result.output
    assert report.all_passed and report.total == doc["golden"]["count"] == 4, result.output


@needs_arm_gcc
def test_a_model_too_big_for_the_board_fails_the_link_with_a_clear_message(projects, tmp_path):
    """The project's own linker script with the ARENA region made smaller than the model's arena:
    the build fails on the script's ASSERT, which names the region and the board."""
    from mncompile.errors import FirmwareBuildError
    from mncompile.run.build import build_project

    project, _ = projects["stm32f746"]
    small = tmp_path / "project"
    shutil.copytree(project, small)
    script = small / "firmware" / "boards" / "stm32f746g-disco" / "linker.ld"
    text = script.read_text()
    assert "ARENA (rw)  : ORIGIN = 0x20010000, LENGTH = 256K" in text
    script.write_text(text.replace("LENGTH = 256K", "LENGTH = 64", 1))
    with pytest.raises(FirmwareBuildError) as info:
        build_project(small, tmp_path / "build", timeout=600)
    assert ("mncompile: the tensor arena (.tensor_arena) does not fit the 256 KB ARENA region (SRAM1 + SRAM2) "
            "of stm32f746g-disco") in info.value.message


def test_an_arena_over_the_targets_ram_is_refused_before_any_build(tmp_path):
    proc = run_cli("emit", str(TINY), "--target", "rp2040", "--backend", "aot", "--ram", "256",
                   "-o", str(tmp_path / "p"))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert not (tmp_path / "p" / "CMakeLists.txt").exists()


# --- the boot images the ROMs read ----------------------------------------------------------


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (poly 0x04c11db7, init 0xffffffff, not reflected, no final XOR), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def test_crc32_mpeg2_is_the_catalogued_algorithm():
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7  # the catalogue's check value for CRC-32/MPEG-2


@needs_arm_gcc
def test_pico_boot2_is_boot2_s_with_the_boot_roms_crc(projects, tmp_path):
    _, firmware = projects["rp2040"]
    image = _section_bytes(firmware.elf, ".boot2", tmp_path)
    assert len(image) == 256 and _sections(firmware.elf)[".boot2"][0] == 0x10000000
    obj = tmp_path / "boot2.o"
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m0plus", "-mthumb",
                    str(FIRMWARE / "boards" / "rpi-pico" / "boot2.S"), "-o", str(obj)], check=True)
    code = _section_bytes(obj, ".boot2", tmp_path)
    assert 0 < len(code) <= 252
    assert image[:252] == code + bytes(252 - len(code))
    assert int.from_bytes(image[252:], "little") == crc32_mpeg2(image[:252])
    # boot2 hands over to the vector table right after it
    assert struct.pack("<I", 0x10000100) in code and _sections(firmware.elf)[".isr_vector"][0] == 0x10000100


def _flexspi_lut(op0: int, pads0: int, arg0: int, op1: int, pads1: int, arg1: int) -> int:
    """Two FlexSPI LUT instructions: opcode[15:10], pads[9:8], operand[7:0] (IMXRT1060RM, FlexSPI)."""
    return (op0 << 10 | pads0 << 8 | arg0) | (op1 << 10 | pads1 << 8 | arg1) << 16


@needs_arm_gcc
def test_imxrt1060_boot_header_is_what_the_rom_reads(projects, tmp_path):
    _, firmware = projects["imxrt1060"]
    header = _section_bytes(firmware.elf, ".boot_hdr", tmp_path)
    assert _sections(firmware.elf)[".boot_hdr"][0] == 0x60000000 and len(header) == 0x2000
    fcb = header[:512]
    assert fcb[:4] == b"FCFB" and struct.unpack_from("<I", fcb, 4)[0] == 0x56010400
    assert fcb[0x0C] == 1 and fcb[0x44:0x47] == bytes([1, 4, 6])  # DQS loopback; serial NOR, 4 pads, 100 MHz
    assert struct.unpack_from("<I", fcb, 0x50)[0] == 8 * 1024 * 1024
    cmd_sdr, raddr_sdr, read_sdr, dummy_sdr = 0x01, 0x02, 0x09, 0x0C
    assert struct.unpack_from("<3I", fcb, 0x80) == (_flexspi_lut(cmd_sdr, 0, 0xEB, raddr_sdr, 2, 24),
                                                    _flexspi_lut(dummy_sdr, 2, 6, read_sdr, 2, 4), 0)
    ivt = struct.unpack_from("<8I", header, 0x1000)
    assert header[0x1000:0x1004] == bytes([0xD1, 0x00, 0x20, 0x41])  # tag, length 32 (big-endian), HAB 4.1
    entry, dcd, boot_data, self_ptr, csf = ivt[1], ivt[3], ivt[4], ivt[5], ivt[6]
    assert entry == _symbols(firmware.elf)["mn_vector_table"] == 0x60002000
    assert (dcd, boot_data, self_ptr, csf) == (0, 0x60001020, 0x60001000, 0)
    start, size, plugin = struct.unpack_from("<3I", header, 0x1020)
    assert (start, size, plugin) == (0x60000000, 8 * 1024 * 1024, 0)
