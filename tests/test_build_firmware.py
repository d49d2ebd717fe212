"""`mncompile build` end to end, and the generated TFLM project built against real TFLM.

`build --alpha 0.25 --budget 6MB --target cortex-m7` runs once per session, from nothing
(training on the default dataset), with `--epochs 3`: the stages are those of the README's
command, which trains 15 epochs; accuracy is the digits fixtures' business (tests/conftest.py),
and this keeps `make test` inside its time budget. When TFLM_ROOT names a tflite-micro checkout whose
third-party downloads are in place (flatbuffers, gemmlowp, ruy; see the README's
"Testing against real TFLM"), the project it wrote is compiled with arm-none-eabi-gcc
and run on QEMU mps2-an500: every golden vector must PASS, bit for bit, and the arena
TFLM reports must equal mncompile's prediction. CMSIS_NN_ROOT adds the CMSIS-NN build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_cli

TFLM_ROOT = os.environ.get("TFLM_ROOT")
CMSIS_NN_ROOT = os.environ.get("CMSIS_NN_ROOT")


@pytest.fixture(scope="session")
def canonical_build(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("canonical") / "out"
    proc = run_cli("build", "--alpha", "0.25", "--budget", "6MB", "--target", "cortex-m7", "--out", str(out),
                   "--epochs", "3", check=True, timeout=1800)
    return {"out": out, "stdout": proc.stdout, "stderr": proc.stderr}


def test_canonical_build_writes_a_complete_project_from_nothing(canonical_build):
    out = canonical_build["out"]
    project = out / "firmware"
    for rel in ("CMakeLists.txt", "README.md", "mncompile.json", "src/main.cc", "src/model_data.cc",
                "src/golden_data.cc", "src/model_settings.h", "firmware/boards/mps2-an500/linker.ld"):
        assert (project / rel).is_file(), rel
    doc = json.loads((project / "mncompile.json").read_text())
    assert doc["options"]["target"] == "cortex-m7" and doc["options"]["budget"] == 6 * 1024 * 1024
    assert doc["memory"]["fits"] is True
    # golden vectors are real validation images of the default dataset, with true labels, stratified
    # (four different classes), carried as the camera frames the firmware converts
    assert doc["golden"]["source"] == "digits validation split, as gray8 96x96 camera frames"
    assert len(set(doc["golden"]["labels"])) == 4 and min(doc["golden"]["labels"]) >= 0
    assert doc["preprocessing"]["range"] == [[-1.0, 1.0]] and doc["preprocessing"]["source"] == "the model's sidecar"
    labels = re.findall(r'^\s+"(\d)",$', (project / "src/model_data.cc").read_text(), re.M)
    assert labels == [str(d) for d in range(10)]
    # the summary: accuracy, RAM, flash, budget, headroom, where the project is
    summary = canonical_build["stdout"]
    assert re.search(r"summary: accuracy float \d+\.\d\d%, int8 \d+\.\d\d%", summary), summary
    for word in ("ram ", "flash ", "budget ", "headroom ", f"project {project}"):
        assert word in summary, word
    assert "stages done: model, quantize, eval, plan, emit" in summary
    # the model in flash is the quantized model with the plan embedded
    assert doc["model"]["sha256"] == __import__("hashlib").sha256((out / "model_int8.tflite").read_bytes()).hexdigest()


def _build_and_run(project: Path, build_dir: Path, kernels: str, **roots) -> None:
    from mncompile.run.build import build_project, parse_firmware_output
    from mncompile.run.qemu import run_qemu

    firmware = build_project(project, build_dir, **roots)
    assert firmware.kernels == kernels
    result = run_qemu(firmware.elf, "mps2-an500", timeout=300)
    print(result.output)  # the note quotes it: pytest -s shows it
    report = parse_firmware_output(result.output)
    doc = json.loads((project / "mncompile.json").read_text())
    assert result.exit_code == 0, result.output
    assert report.all_passed and report.total == doc["golden"]["count"], result.output
    assert report.arena_used == doc["arena"]["predicted_bytes"][kernels] == report.arena_predicted
    assert report.ticks_unit == "SysTick ticks" and all(v.ticks and v.ticks > 0 for v in report.vectors)
    if doc["golden"].get("camera"):  # every vector's input came through the camera path on the device
        assert report.camera_frames == report.total, result.output


@pytest.mark.skipif(not TFLM_ROOT, reason="TFLM_ROOT is unset: point it at a tflite-micro checkout with its "
                                          "third-party downloads to build the TFLM project (README: Testing "
                                          "against real TFLM)")
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm is not installed")
def test_tflm_project_builds_and_every_golden_vector_passes_on_qemu(canonical_build, tmp_path):
    project = canonical_build["out"] / "firmware"
    _build_and_run(project, tmp_path / "build-ref", "reference", tflm_root=Path(TFLM_ROOT))
    if CMSIS_NN_ROOT:
        _build_and_run(project, tmp_path / "build-cmsis", "cmsis-nn", tflm_root=Path(TFLM_ROOT),
                       cmsis_nn_root=Path(CMSIS_NN_ROOT))


@pytest.mark.skipif(not TFLM_ROOT, reason="TFLM_ROOT is unset: point it at a tflite-micro checkout with its "
                                          "third-party downloads to build the TFLM project (README: Testing "
                                          "against real TFLM)")
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm is not installed")
def test_tflm_project_camera_path_from_rgb565_and_yuv422_frames(tmp_path):
    """The TFLM backend's camera path with the real interpreter: RGB565 and YUV422 frames of 20x14,
    bilinear to the model's 12x12, written into interpreter.input(0) and checked bit for bit."""
    from mncompile.pipeline import emit
    from mncompile.preprocess.camera import CameraOptions

    project = emit(REPO / "tests" / "data" / "tiny_int8.tflite", "cortex-m7", tmp_path / "fw",
                   camera=CameraOptions("rgb565,yuv422", "20x14")).out
    _build_and_run(project, tmp_path / "build", "reference", tflm_root=Path(TFLM_ROOT))


# The report's key figures the canonical build must show (each checked against the JSON it names)
REPORT_FIGURES = {"build:eval.float_accuracy", "build:eval.int8_accuracy", "build:eval.accuracy_drop_pp",
                  "build:eval.samples", "build:eval.per_class.0.int8_accuracy", "manifest:memory.arena_bytes",
                  "manifest:memory.constants_bytes", "manifest:memory.total_bytes", "manifest:plan.mncompile_bytes",
                  "manifest:plan.lower_bound_bytes", "manifest:memory.limits.0.used_bytes",
                  "manifest:arena.predicted_bytes.reference", "manifest:model.firmware_bytes",
                  "build:eval.confusion.float.0.0", "build:eval.confusion.int8.9.9"}


def test_build_writes_a_report_that_opens_cleanly_in_chromium(canonical_build, tmp_path):
    """OUT/report.html in headless Chromium: no console error, every chart decodes, every key figure says
    what build.json or the manifest holds, the screenshot is not blank; a JSON that disagrees is caught."""
    from report_check import check_report, figure_mismatches

    out = canonical_build["out"]
    assert f"report: {out / 'report.html'}" in canonical_build["stderr"]
    page = check_report(out, tmp_path / "report.png", REPORT_FIGURES)
    assert {i.alt for i in page.images} == {"per-layer SQNR chart", "memory timeline"}
    # the check can fail: the same page against a build.json whose int8 accuracy is one image lower
    changed = tmp_path / "changed"
    (changed / "firmware").mkdir(parents=True)
    doc = json.loads((out / "build.json").read_text())
    doc["eval"]["int8_accuracy"] -= 1 / doc["eval"]["samples"]
    (changed / "build.json").write_text(json.dumps(doc))
    shutil.copy(out / "firmware" / "mncompile.json", changed / "firmware" / "mncompile.json")
    assert [m.split(" ")[0] for m in figure_mismatches(changed, page.figures)] == ["build:eval.int8_accuracy"]


def test_report_command_renders_the_build_report_again_byte_for_byte(canonical_build, tmp_path):
    """`mncompile report` from a copy of build.json and the manifest alone, elsewhere: the same bytes."""
    out = canonical_build["out"]
    copy = tmp_path / "copy"
    (copy / "firmware").mkdir(parents=True)
    shutil.copy(out / "build.json", copy / "build.json")
    shutil.copy(out / "firmware" / "mncompile.json", copy / "firmware" / "mncompile.json")
    proc = run_cli("report", str(copy), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (copy / "report.html").read_bytes() == (out / "report.html").read_bytes()
    assert doc["sha256"] == __import__("hashlib").sha256((out / "report.html").read_bytes()).hexdigest()
    assert doc["sections"] == ["model", "accuracy", "layers", "memory", "budget", "firmware", "reproducibility"]
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
