"""`mncompile run` and `build --run`: build an emitted project, run it on QEMU, check it.

- The SysTick -> instruction factor of each QEMU board is measured with real QEMU: a
  Thumb loop of a known instruction count (checked with arm-none-eabi-objdump) linked
  against the board support, timed with board_ticks(). board.toml must hold the result.
- The verdict (PASS/FAIL per vector, missing vectors, an edited reference) is checked on
  firmware output written here, without TFLM.
- The error paths go through the real command line, without TFLM.
- With TFLM_ROOT set, `mncompile run` builds the tiny model's project against real TFLM and
  runs it on QEMU mps2-an500, then again with a corrupted expected output. TFLM compiles
  once (minutes) in a build folder kept in pytest's cache; later sessions reuse it. CI has
  no TFLM: that test skips with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, run_cli, verified

from mncompile.errors import EXIT_CODES, FirmwareValidationError
from mncompile.resources import firmware_dir
from mncompile.run.build import FirmwareBuild
from mncompile.run.qemu import QemuResult, run_qemu

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"
TFLM_ROOT = os.environ.get("TFLM_ROOT")
QEMU_BOARDS = ("mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547")

needs_toolchain = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                     reason="arm-none-eabi-gcc is not installed")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm is not installed")


def board_toml(board: str) -> dict:
    with (firmware_dir() / "boards" / board / "board.toml").open("rb") as f:
        return tomllib.load(f)


# --- instructions per SysTick tick, measured ----------------------------------------------

# mn_spin(n): n iterations of two instructions (subs, bne), then bx lr: 2n + 1 instructions.
SPIN_S = """\
    .syntax unified
    .thumb
    .text
    .global mn_spin
    .type mn_spin, %function
    .thumb_func
mn_spin:
1:  subs r0, r0, #1
    bne 1b
    bx lr
    .size mn_spin, . - mn_spin
"""
SPINS = (1_000_000, 5_000_000)  # the difference: 8,000,000 instructions, with no SysTick wrap (< 2^24 ticks)
SPIN_MAIN = """\
#include <stdint.h>
#include <stdio.h>

#include "board.h"

void mn_spin(uint32_t n);

int main(void)
{
    static const uint32_t counts[] = {@COUNTS@};
    board_init();
    for (unsigned k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        const uint64_t start = board_ticks();
        mn_spin(counts[k]);
        const uint64_t ticks = board_ticks() - start;
        printf("spin %lu: %lu ticks\\n", (unsigned long)counts[k], (unsigned long)ticks);
    }
    return 0;
}
""".replace("@COUNTS@", ", ".join(f"{n}u" for n in SPINS))


def _build_spin(board: str, folder: Path) -> Path:
    """The spin program linked against common/ and boards/<board>/ as a generated project links them."""
    fw = firmware_dir()
    out = folder / board
    out.mkdir(parents=True)
    (out / "spin.S").write_text(SPIN_S)
    (out / "main.c").write_text(SPIN_MAIN)
    elf = out / "spin.elf"
    sources = [*sorted((fw / "common").glob("*.c")), *sorted((fw / "boards" / board).glob("*.c")),
               out / "spin.S", out / "main.c"]
    command = ["arm-none-eabi-gcc", *board_toml(board)["cpu_flags"].split(), "-std=c11", "-O2",
               "-ffunction-sections", "-fdata-sections", f"-I{fw / 'common'}", *map(str, sources),
               "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
               "-T", str(fw / "boards" / board / "linker.ld"), "-o", str(elf)]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stderr}"
    return elf


@pytest.fixture(scope="module")
def spin_elves(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    folder = tmp_path_factory.mktemp("spin")
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(QEMU_BOARDS, pool.map(lambda b: _build_spin(b, folder), QEMU_BOARDS), strict=True))


def _spin_instructions(elf: Path) -> list[str]:
    """The mnemonics of mn_spin, as arm-none-eabi-objdump disassembles the linked image."""
    out = subprocess.run(["arm-none-eabi-objdump", "-d", "--disassemble=mn_spin", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    return [m.group(1) for m in re.finditer(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{4} ?)+\s+(\S+)", out, re.M)]


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_instructions_per_tick_is_measured_on_each_qemu_board(spin_elves, board):
    elf = spin_elves[board]
    # The loop really is two instructions (16-bit subs, bne), then the return.
    assert _spin_instructions(elf) == ["subs", "bne.n", "bx"]
    result = run_qemu(elf, board, timeout=30)  # -icount shift=0, as `mncompile run` runs
    assert result.exit_code == 0, result.output
    ticks = {int(n): int(t) for n, t in re.findall(r"spin (\d+): (\d+) ticks", result.output)}
    assert sorted(ticks) == sorted(SPINS), result.output
    # The difference cancels the call and board_ticks() overhead: 2 instructions per iteration.
    low, high = SPINS
    measured = 2 * (high - low) / (ticks[high] - ticks[low])
    data = board_toml(board)
    print(f"{board}: {2 * (high - low):,} instructions in {ticks[high] - ticks[low]:,} SysTick ticks: "
          f"{measured:.4f} instructions per tick (board.toml: {data['instructions_per_tick']})")
    assert measured == pytest.approx(data["instructions_per_tick"], rel=1e-4)
    # One instruction per virtual ns and SysTick at cpu_hz: 10^9 / cpu_hz instructions per tick.
    assert data["instructions_per_tick"] == pytest.approx(1e9 / data["cpu_hz"], rel=1e-12)


def test_only_qemu_boards_have_instructions_per_tick():
    for board in sorted(p.name for p in (firmware_dir() / "boards").iterdir()):
        data = board_toml(board)
        assert ("instructions_per_tick" in data) == (data.get("qemu_machine") is not None), board


# --- the verdict, on firmware output written here ------------------------------------------


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "fw"
    run_cli("emit", str(TINY), "-t", "cortex-m7", "-o", str(out), check=True)
    return out


def _console(doc: dict, fail: dict[int, tuple[int, int, int]] | None = None, count: int | None = None,
             status: int = 0, kernels: str = "reference", used: int | None = None) -> str:
    """What the firmware prints for the project of manifest `doc` (see templates/tflm/src/main.cc.j2):
    its banner names `kernels` as the firmware does ("reference" or "CMSIS-NN"); `used` is the
    arena_used_bytes() it reports (default: the prediction)."""
    key = kernels.lower()
    predicted = doc["arena"]["predicted_bytes"][key]
    used = predicted if used is None else used
    lines = [f"mncompile firmware: tiny_int8.tflite on cortex-m7 (board mps2-an500), TFLM {kernels} kernels",
             f"arena: {doc['arena']['reserved_bytes'][key]} bytes reserved, arena_used_bytes() = "
             f"{used}, predicted {predicted}"]
    total = doc["golden"]["count"] if count is None else count
    for v in range(total):
        if fail and v in fail:
            at, got, want = fail[v]
            lines.append(f"vector {v}: FAIL at output index {at}: got {got}, expected {want} (1000 SysTick ticks)")
        else:
            top = doc["golden"]["predictions"][v]
            lines.append(f"vector {v}: PASS, class {top} (x), {1000 + v} SysTick ticks")
    if status in (0, 1):
        if doc["golden"].get("camera"):  # an image model's vectors come through the camera path
            lines.append(f"camera path: {total} frames to input tensors, {300 * total} SysTick ticks in total")
        passed = total - len(fail or {})
        lines.append(f"summary: {passed}/{doc['golden']['count']} PASS, arena_used_bytes {used}, 4000 "
                     "SysTick ticks in total")
    return "\n".join(lines) + "\n"


def _assess(project: Path, output: str, status: int):
    from mncompile.run.validate import assess, load_project

    proj = load_project(project)
    firmware = FirmwareBuild(project / "build" / "firmware.elf", project / "build", 1000, 20, 300, "unknown")
    return assess(proj, proj.target, "mps2-an500", firmware, QemuResult(status, output, ("qemu",)))


def test_verdict_pass_times_and_arena(tiny_project):
    from mncompile.graph.metrics import graph_costs

    doc = json.loads((tiny_project / "mncompile.json").read_text())
    result = _assess(tiny_project, _console(doc), 0)
    assert result.passed and result.problems == () and result.vectors_passed == 4
    assert [v.status for v in result.vectors] == ["PASS"] * 4
    assert result.instructions_per_tick == 40 and result.vectors[1].instructions == 1001 * 40
    assert result.ticks_per_inference == 1001.5 and result.instructions_per_inference == 40060
    macs = sum(c.macs for c in graph_costs(verified(next((tiny_project / "model").glob("*.tflite"))).graph))
    assert result.macs == macs > 0 and result.instructions_per_mac == pytest.approx(40060 / macs)
    # The build folder did not say which kernels (no marker): the firmware's first line does.
    assert result.kernels == "reference" and result.arena_predicted == doc["arena"]["predicted_bytes"]["reference"]
    assert result.arena_matches and result.reference_checked and result.modified == ()
    document = result.to_json()
    assert document["status"] == "PASS" and document["sizes"] == {"text": 1000, "data": 20, "bss": 300}
    assert document["vectors"][0]["label"] == json.loads(TINY.with_suffix(".tflite.json").read_text())["classes"][
        doc["golden"]["predictions"][0]]
    result.raise_if_failed()  # nothing to raise


def test_verdict_needs_the_camera_path_for_camera_frames(tiny_project):
    """A PASS of an image model must come through the camera path: a firmware that skipped it
    (no "camera path:" line, e.g. a hand-edited main.c copying g_golden_inputs) fails."""
    doc = json.loads((tiny_project / "mncompile.json").read_text())
    assert doc["golden"]["camera"]["formats"] == ["gray8"]
    result = _assess(tiny_project, _console(doc), 0)
    assert result.passed and result.to_json()["camera_path"] == {"frames": 4, "ticks": 1200, "instructions": 48000}
    skipped = "\n".join(line for line in _console(doc).splitlines() if not line.startswith("camera path:"))
    result = _assess(tiny_project, skipped + "\n", 0)
    assert not result.passed and "did not come through the camera path" in result.problems[0]


def test_verdict_fails_on_a_fail_a_missing_vector_or_a_crash(tiny_project):
    doc = json.loads((tiny_project / "mncompile.json").read_text())
    want = doc["golden"]["expected_outputs"][2][1]
    failed = _assess(tiny_project, _console(doc, fail={2: (1, want + 1, want)}), 1)
    assert not failed.passed and [v.status for v in failed.vectors] == ["PASS", "PASS", "FAIL", "PASS"]
    assert failed.problems == ("vector 2 FAILed",)  # exit status 1 says the same: not repeated
    with pytest.raises(FirmwareValidationError) as err:
        failed.raise_if_failed()
    assert err.value.exit_code == 10 and dict(EXIT_CODES)[10].startswith("firmware validation failed")
    as_json = err.value.to_json()
    assert as_json["error"] == "firmware-validation" and as_json["exit_code"] == 10
    assert as_json["vectors"][2]["status"] == "FAIL" and as_json["status"] == "FAIL"

    # The firmware stopped after two vectors (a fault): the others are missing, whatever it printed.
    crashed = _assess(tiny_project, _console(doc, count=2, status=70) + "*** HardFault (exception 3) ***\n", 70)
    assert [v.status for v in crashed.vectors] == ["PASS", "PASS", "MISSING", "MISSING"]
    assert any("reported 2 of the 4" in p for p in crashed.problems)
    assert any("status 70: the firmware crashed" in p for p in crashed.problems)


def test_verdict_checks_the_arena_of_every_kernel_set(tiny_project):
    # The firmware says "CMSIS-NN", the manifest's key is "cmsis-nn": the check must still run.
    doc = json.loads((tiny_project / "mncompile.json").read_text())
    predicted = doc["arena"]["predicted_bytes"]["cmsis-nn"]
    assert predicted != doc["arena"]["predicted_bytes"]["reference"]  # so the right key is checked
    ok = _assess(tiny_project, _console(doc, kernels="CMSIS-NN"), 0)
    assert ok.passed and ok.kernels == "cmsis-nn" and ok.arena_predicted == predicted and ok.arena_matches
    off = _assess(tiny_project, _console(doc, kernels="CMSIS-NN", used=predicted + 16), 0)
    assert not off.passed and off.arena_matches is False
    assert any("mncompile predicted" in p and "cmsis-nn" in p and "+16 B" in p for p in off.problems)


def test_cmsis_nn_on_a_helium_core_is_predicted_exactly(tmp_path):
    """CMSIS-NN's Helium (MVE) buffers are modelled: a cortex-m55 manifest predicts its own figure
    (tiny_int8: 6,772 B, arena_used_bytes() on QEMU mps3-an547), larger than the DSP core's, and run
    compares it like any other. A manifest of an older mncompile that labels it `not_predicted` is
    still only noted."""
    out = tmp_path / "fw55"
    run_cli("emit", str(TINY), "-t", "cortex-m55", "-o", str(out), check=True)
    doc = json.loads((out / "mncompile.json").read_text())
    assert "not_predicted" not in doc["arena"]
    predicted = doc["arena"]["predicted_bytes"]["cmsis-nn"]
    assert predicted == 6772
    m7 = json.loads((_m7_project(tmp_path) / "mncompile.json").read_text())
    assert predicted > m7["arena"]["predicted_bytes"]["cmsis-nn"]  # the MVE buffers are larger
    ok = _assess(out, _console(doc, kernels="CMSIS-NN", used=predicted), 0)
    assert ok.passed and ok.arena_predicted == predicted and ok.arena_matches
    off = _assess(out, _console(doc, kernels="CMSIS-NN", used=predicted + 64), 0)
    assert not off.passed and off.arena_matches is False
    doc["arena"]["not_predicted"] = {"cmsis-nn": "not predicted: an older mncompile"}
    (out / "mncompile.json").write_text(json.dumps(doc))
    old = _assess(out, _console(doc, kernels="CMSIS-NN", used=predicted + 64), 0)
    assert old.passed and old.arena_predicted is None and old.arena_matches is None


def _m7_project(tmp_path: Path) -> Path:
    out = tmp_path / "fw7"
    run_cli("emit", str(TINY), "-t", "cortex-m7", "-o", str(out), check=True)
    return out


def test_verdict_catches_an_edited_reference(tiny_project, tmp_path):
    # The device compares with src/golden_data.cc; a PASS against an edited copy is no PASS.
    project = tmp_path / "fw"
    shutil.copytree(tiny_project, project)
    doc = json.loads((project / "mncompile.json").read_text())
    source = project / "src" / "golden_data.cc"
    text = source.read_text()
    outputs_at = text.index("g_golden_outputs")
    first = re.compile(r"(-?\d+),").search(text, text.index("// vector 0", outputs_at) + len("// vector 0"))
    value = int(first.group(1))
    source.write_text(text[:first.start(1)] + str(value + 1) + text[first.end(1):])
    result = _assess(project, _console(doc), 0)
    assert not result.passed and result.vectors[0].status == "FAIL"
    assert "src/golden_data.cc differs from mncompile.json at output 0" in result.vectors[0].detail
    assert result.modified == ("src/golden_data.cc",)


# --- error paths through the command line, without TFLM --------------------------------------


def _error(proc, code: int) -> dict:
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one JSON document
    assert doc["exit_code"] == code and doc["message"]
    return doc


def test_run_refuses_a_folder_without_a_manifest(tmp_path):
    doc = _error(run_cli("run", str(tmp_path), "--json"), 2)
    assert "not a project written by mncompile emit" in doc["message"]
    proc = run_cli("run", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "not a project written by mncompile emit" in proc.stderr


def test_run_refuses_another_target(tiny_project):
    doc = _error(run_cli("run", str(tiny_project), "--target", "cortex-m4", "--json"), 2)
    assert "emitted for cortex-m7" in doc["message"] and "one CPU" in doc["message"]
    assert "drop --target" in doc["hint"]
    proc = run_cli("run", str(tiny_project), "--target", "cortex-m99")
    assert proc.returncode == 2 and "unknown target" in proc.stderr


def test_run_says_to_flash_a_target_without_qemu(tmp_path):
    project = tmp_path / "h7"
    run_cli("emit", str(TINY), "-t", "stm32h743", "-o", str(project), check=True)
    doc = _error(run_cli("run", str(project), "--json"), 7)
    assert "stm32h743" in doc["message"] and "no QEMU machine" in doc["message"]
    assert "flash the board" in doc["hint"] and "README.md" in doc["hint"]
    # An Ethos-U project (a manifest naming that target) is refused the same way, before any build.
    manifest = json.loads((project / "mncompile.json").read_text())
    manifest["options"]["target"] = "ethos-u55-128"
    (project / "mncompile.json").write_text(json.dumps(manifest))
    doc = _error(run_cli("run", str(project), "--json"), 7)
    assert "ethos-u55-128" in doc["message"] and not (project / "build").exists()


def test_run_without_tflm_refuses_to_download_it(tiny_project, tmp_path, monkeypatch):
    monkeypatch.delenv("TFLM_ROOT", raising=False)
    build = tmp_path / "build"
    doc = _error(run_cli("run", str(tiny_project), "--build-dir", str(build), "--json"), 9)
    assert "FetchContent" in doc["message"] and "internet" in doc["message"]
    assert "--tflm-root" in doc["hint"] and f"cmake -S {tiny_project.resolve()} -B {build}" in doc["hint"]
    assert not build.exists()  # nothing configured, nothing downloaded
    doc = _error(run_cli("run", str(tiny_project), "--tflm-root", str(tmp_path), "--json"), 2)
    assert "not a tflite-micro checkout" in doc["message"]
    monkeypatch.setenv("TFLM_ROOT", str(tmp_path))
    doc = _error(run_cli("run", str(tiny_project), "--json"), 2)
    assert "TFLM_ROOT (environment)" in doc["message"]


def test_build_run_checks_what_validate_needs_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("TFLM_ROOT", raising=False)
    out = tmp_path / "b"
    proc = run_cli("build", "--model", str(TINY), "--run", "--out", str(out))
    assert proc.returncode == 9 and "FetchContent" in proc.stderr and not out.exists()
    proc = run_cli("build", "--model", str(TINY), "--target", "stm32h743", "--run", "--out", str(out))
    assert proc.returncode == 7 and "no QEMU machine" in proc.stderr and not out.exists()


def test_build_run_chains_validate_after_emit(tmp_path, monkeypatch):
    """`build --run` runs the project emit wrote, in OUT/firmware-build; validate is done only then."""
    from mncompile import pipeline
    from mncompile.run import validate

    calls, failing = [], []

    def fake_run(project, *, build_dir, reporter):
        calls.append((project, build_dir))
        proj = validate.load_project(project)
        firmware = FirmwareBuild(build_dir / "firmware.elf", build_dir, 1000, 20, 300, "reference")
        want = proj.golden[0][0]
        fail = {0: (0, want + 1, want)} if failing else None
        output = _console(proj.manifest, fail=fail)
        qemu = QemuResult(1 if failing else 0, output, ("qemu",))
        return validate.assess(proj, proj.target, "mps2-an500", firmware, qemu)

    monkeypatch.setattr(pipeline, "resolve_tflm", lambda *args, **kwargs: None)
    monkeypatch.setattr(pipeline, "check_runnable", lambda target: target.qemu_machine)
    monkeypatch.setattr(pipeline, "run_project", fake_run)
    out = tmp_path / "b"
    result = pipeline.build(pipeline.BuildOptions(model=TINY, out=out, run=True))
    assert calls == [(out / "firmware", out / "firmware-build")]
    assert result.completed[-2:] == ("emit", "validate")
    doc = result.to_json()
    assert {s["name"]: s["status"] for s in doc["stages"]}["validate"] == "done"
    assert doc["run"]["status"] == "PASS" and doc["run"]["instructions_per_tick"] == 40

    # Through the command line: a FAIL is exit 10, and --json still prints one document, the
    # build's, with the error's fields added.
    from typer.testing import CliRunner

    from mncompile.cli.app import app

    failing.append(True)
    cli = CliRunner().invoke(app, ["build", "--model", str(TINY), "--run", "--out", str(tmp_path / "d"), "--json"])
    assert cli.exit_code == 10, cli.output
    doc = json.loads(cli.stdout)
    assert doc["error"] == "firmware-validation" and doc["exit_code"] == 10
    assert doc["run"]["vectors"][0]["status"] == "FAIL" and doc["stages"][-1] == {"name": "validate", "status": "done"}

    skipped = pipeline.build(pipeline.BuildOptions(model=TINY, out=tmp_path / "c"))
    assert skipped.validation is None and "validate" not in skipped.completed
    assert {s["name"]: s["status"] for s in skipped.to_json()["stages"]}["validate"] == "skipped"


# --- against real TFLM ----------------------------------------------------------------------


@pytest.fixture
def kept_folder(request, tmp_path) -> Path:
    """A folder kept between test sessions (pytest's cache, .pytest_cache/d/): the project is emitted
    there again each time and built in the same build folder, so TFLM compiles once, not every run."""
    cache = getattr(request.config, "cache", None)
    return cache.mkdir("mncompile-run-tflm") if cache is not None else tmp_path


@pytest.mark.skipif(not TFLM_ROOT, reason="TFLM_ROOT is unset: point it at a tflite-micro checkout with its "
                                          "third-party downloads to build the project (README: Testing "
                                          "against real TFLM)")
@needs_toolchain
@needs_qemu
def test_run_builds_and_validates_the_tiny_project_on_qemu(kept_folder):
    project, build = kept_folder / "fw", kept_folder / "build"
    run_cli("emit", str(TINY), "-t", "cortex-m7", "-o", str(project), "--force", check=True)
    proc = run_cli("run", str(project), "--build-dir", str(build), "--json", timeout=3600)
    print(proc.stderr)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    print(doc["output"])  # what the firmware printed (pytest -s shows it)
    manifest = json.loads((project / "mncompile.json").read_text())
    assert doc["status"] == "PASS" and doc["passed"] and doc["problems"] == []
    assert doc["target"] == "cortex-m7" and doc["qemu_machine"] == "mps2-an500" and doc["kernels"] == "reference"
    assert all(doc["sizes"][k] > 0 for k in ("text", "bss"))
    assert [v["status"] for v in doc["vectors"]] == ["PASS"] * manifest["golden"]["count"]
    assert [v["class"] for v in doc["vectors"]] == manifest["golden"]["predictions"]
    assert doc["golden"] == {"expected": 4, "reported": 4, "passed": 4, "reference_checked": True}
    assert doc["ticks"]["unit"] == "SysTick ticks" and doc["ticks"]["per_inference"] > 0
    assert doc["instructions_per_tick"] == 40
    assert doc["instructions_per_inference"] == round(doc["ticks"]["per_inference"] * 40)
    assert doc["macs"] > 0 and doc["instructions_per_mac"] == pytest.approx(
        doc["instructions_per_inference"] / doc["macs"])
    assert doc["arena"]["used"] == doc["arena"]["predicted"] == manifest["arena"]["predicted_bytes"]["reference"]
    assert doc["arena"]["matches_prediction"] is True

    # Text output, from the same build folder (nothing to recompile).
    text = run_cli("run", str(project), "--build-dir", str(build), timeout=600)
    print(text.stdout)
    assert text.returncode == 0 and "4/4 PASS" in text.stdout and "instructions/MAC" in text.stdout
    assert "TFLM reference kernels" in text.stdout and "= predicted" in text.stdout

    # Corrupt the first expected value the firmware compares with: the build picks the edit up,
    # vector 0 FAILs on the device, and run exits 10 with the report in its one JSON document.
    source = project / "src" / "golden_data.cc"
    code = source.read_text()
    first = re.compile(r"(-?\d+),").search(code, code.index("// vector 0", code.index("g_golden_outputs")) + 11)
    expected = int(first.group(1))
    corrupted = expected + 1 if expected < 127 else expected - 1
    source.write_text(code[:first.start(1)] + str(corrupted) + code[first.end(1):])
    proc = run_cli("run", str(project), "--build-dir", str(build), "--json", timeout=600)
    print(proc.stderr)
    assert proc.returncode == 10, proc.stderr
    doc = json.loads(proc.stdout)
    print(doc["output"])
    assert doc["error"] == "firmware-validation" and doc["exit_code"] == 10 and doc["status"] == "FAIL"
    assert [v["status"] for v in doc["vectors"]] == ["FAIL", "PASS", "PASS", "PASS"]
    assert f"got {expected}, expected {corrupted}" in doc["vectors"][0]["detail"]
    assert "src/golden_data.cc differs from mncompile.json" in doc["vectors"][0]["detail"]
    assert "vector 0: FAIL at output index 0" in doc["output"] and doc["qemu"]["exit_status"] == 1


def test_the_stack_line_is_parsed_and_a_missing_one_is_none():
    from mncompile.run.build import parse_firmware_output

    report = parse_firmware_output("vector 0: PASS, class 1 (a), 5 SysTick ticks\nstack: 3144 of 65536 bytes used\n"
                                   "summary: 1/1 PASS, arena_used_bytes 864, 5 SysTick ticks in total\n")
    assert (report.stack_used, report.stack_size) == (3144, 65536) and report.all_passed
    assert parse_firmware_output("stack: lots of 65536 bytes used\n").stack_used is None
