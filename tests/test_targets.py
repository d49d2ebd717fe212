"""The target table (targets.toml) and `mncompile targets`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, run_cli

from mncompile.errors import InvalidOptionError
from mncompile.targets import TARGETS_FILE, all_targets, get_target, load_targets

KB, MB = 1024, 1024 * 1024


def test_every_named_target_is_there_with_its_qemu_machine():
    machines = {t.name: t.qemu_machine for t in all_targets()}
    assert machines == {"cortex-m4": "mps2-an386", "cortex-m7": "mps2-an500", "cortex-m33": "mps2-an505",
                        "cortex-m55": "mps3-an547", "cortex-m0plus": "mps2-an385", "stm32h743": None,
                        "stm32l4r5": None, "stm32f746": None, "nrf52840": None, "rp2040": None, "imxrt1060": None,
                        "ra8d1": None, "ethos-u55-64": None, "ethos-u55-128": None, "ethos-u55-256": None,
                        "ethos-u65-256": None, "ethos-u65-512": None}


# The real boards: memory (bytes) and rated clock, from the vendors' datasheets / reference manuals.
REAL_BOARDS = {
    "stm32h743": ("nucleo-h743zi", "cortex-m7", 512 * KB, 2 * MB, 480_000_000),
    "stm32l4r5": ("nucleo-l4r5zi", "cortex-m4", 640 * KB, 2 * MB, 120_000_000),
    "stm32f746": ("stm32f746g-disco", "cortex-m7", 256 * KB, 1 * MB, 216_000_000),
    "nrf52840": ("nano33ble", "cortex-m4", 256 * KB, 1 * MB, 64_000_000),
    "rp2040": ("rpi-pico", "cortex-m0plus", 264 * KB, 2 * MB - 256, 125_000_000),
    "imxrt1060": ("imxrt1060-evk", "cortex-m7", 768 * KB, 8 * MB - 8 * KB, 600_000_000),
    "ra8d1": ("ek-ra8d1", "cortex-m85", 896 * KB, 2016 * KB, 480_000_000),
}


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_real_boards_have_their_memory_and_rated_clock(name):
    target = get_target(name)
    assert (target.board, target.cpu, target.ram_bytes, target.flash_bytes, target.cpu_hz) == REAL_BOARDS[name]
    assert target.qemu_machine is None


def test_every_targets_clock_and_memory_agree_with_its_board():
    """targets.toml and firmware/boards/<board>/board.toml say the same clock; a real board's RAM is
    the region the arena goes to, its flash the region the model goes to."""
    import tomllib

    from mncompile.resources import firmware_dir

    for target in all_targets():
        with (firmware_dir() / "boards" / target.board / "board.toml").open("rb") as f:
            board = tomllib.load(f)
        assert board["cpu_hz"] == target.cpu_hz, target.name
        assert board["cpu_flags"] == " ".join(target.cpu_flags), target.name
        if target.qemu_machine is None and not target.npu:
            regions = {r["name"]: r["length"] for r in board["memory"]}
            assert (regions["ARENA"], regions["MODEL"]) == (target.ram_bytes, target.flash_bytes), target.name


def test_qemu_machines_are_real_qemu_machines():
    """The names must be the ones qemu-system-arm knows (when it is installed)."""
    try:
        proc = subprocess.run(["qemu-system-arm", "-machine", "help"], capture_output=True, text=True,
                              timeout=30)
    except FileNotFoundError:
        pytest.skip("qemu-system-arm is not installed")
    known = {line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()}
    for target in all_targets():
        assert target.qemu_machine is None or target.qemu_machine in known, target.name


def test_memory_figures():
    m4, m7, h7 = get_target("cortex-m4"), get_target("cortex-m7"), get_target("stm32h743")
    assert (m4.flash_bytes, m4.ram_bytes) == (512 * KB, 128 * KB)  # STM32F446
    assert "STM32F446" in m4.notes
    # STM32H743: 2 MB flash, 1 MB RAM of which the 512 KB AXI SRAM is the largest contiguous block
    assert (m7.flash_bytes, m7.ram_bytes) == (2 * MB, 512 * KB)
    assert (h7.flash_bytes, h7.ram_bytes) == (m7.flash_bytes, m7.ram_bytes)
    assert "contiguous" in m7.notes and "AXI SRAM" in m7.notes
    assert h7.board == "nucleo-h743zi" and h7.cpu == "cortex-m7"
    for target in all_targets():
        assert target.ram_bytes > 0 and target.flash_bytes > 0 and target.notes and target.description


def test_cpu_flags_name_the_cpu_and_thumb():
    for target in all_targets():
        # GCC 12 has no -mcpu=cortex-m85: its code is built for the Cortex-M55 (same Armv8.1-M + Helium)
        cpu = "cortex-m55" if target.cpu == "cortex-m85" else target.cpu
        assert f"-mcpu={cpu}" in target.cpu_flags and "-mthumb" in target.cpu_flags
        # soft-float exactly where the core has no FPU (the Cortex-M0+)
        no_fpu = target.fpu == "none"
        assert ("-mfloat-abi=soft" if no_fpu else "-mfloat-abi=hard") in target.cpu_flags, target.name
        assert no_fpu == (target.cpu == "cortex-m0plus")


def test_ethos_targets_carry_the_npu_as_vela_names_it():
    u55, u65 = get_target("ethos-u55-128"), get_target("ethos-u65-256")
    assert u55.cpu == u65.cpu == "cortex-m55"
    assert (u55.npu.macs_per_cycle, u55.npu.vela_accelerator_config) == (128, "ethos-u55-128")
    assert (u55.npu.vela_system_config, u55.npu.vela_memory_mode) == ("Ethos_U55_High_End_Embedded",
                                                                      "Shared_Sram")
    assert (u65.npu.macs_per_cycle, u65.npu.vela_accelerator_config) == (256, "ethos-u65-256")
    assert (u65.npu.vela_system_config, u65.npu.vela_memory_mode) == ("Ethos_U65_High_End", "Dedicated_Sram")
    assert u65.shared_memory and not u55.shared_memory
    assert all(t.npu is None for t in all_targets() if not t.name.startswith("ethos"))


def test_unknown_target_is_an_option_error_listing_the_known_ones():
    with pytest.raises(InvalidOptionError) as info:
        get_target("cortex-a53")
    assert info.value.exit_code == 2 and "cortex-m7" in info.value.hint


def test_malformed_entry_is_refused(tmp_path):
    text = TARGETS_FILE.read_text(encoding="utf-8").replace("ram_bytes = 131072", "ram_bytes = -1", 1)
    bad = tmp_path / "targets.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="cortex-m4.*ram_bytes"):
        load_targets(bad)
    bad.write_text(TARGETS_FILE.read_text(encoding="utf-8").replace("fpu = ", "fpux = ", 1), encoding="utf-8")
    with pytest.raises(ValueError, match="missing \\['fpu'\\]"):
        load_targets(bad)


def test_targets_json_is_one_document_with_exact_bytes():
    proc = run_cli("targets", "--json", check=True)
    doc = json.loads(proc.stdout)
    by_name = {t["name"]: t for t in doc["targets"]}
    assert by_name["cortex-m7"]["ram_bytes"] == 524288 and by_name["cortex-m7"]["flash_bytes"] == 2097152
    assert by_name["ethos-u55-128"]["npu"]["vela_memory_mode"] == "Shared_Sram"
    assert by_name["stm32h743"]["qemu_machine"] is None
    assert by_name["stm32h743"]["cpu_hz"] == 480_000_000 and by_name["rp2040"]["cpu_hz"] == 125_000_000
    assert proc.stderr == ""


def test_targets_table_prints_bytes_exactly():
    proc = run_cli("targets", "--notes", check=True)
    for text in ("cortex-m4", "131,072", "524,288", "2,097,152", "mps3-an547", "Ethos_U65_High_End",
                 "-mfpu=fpv5-d16", "STM32H743", "480 MHz", "125 MHz", "rpi-pico", "nucleo-l4r5zi", "ek-ra8d1"):
        assert text in proc.stdout, text


def test_targets_command_does_not_import_tensorflow():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom mncompile.cli.app import app\n"
            "assert CliRunner().invoke(app, ['targets']).exit_code == 0\n"
            "print(','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
