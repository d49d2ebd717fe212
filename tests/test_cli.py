"""The command line: fast start, output discipline, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, run_cli

from mncompile.errors import EXIT_CODES
from mncompile.model.analytic import summarize
from mncompile.model.spec import MobileNetSpec


def test_version():
    proc = run_cli("--version", check=True)
    from mncompile import __version__

    assert proc.stdout.strip() == f"mncompile {__version__}"


def test_help_lists_the_commands_and_exit_codes():
    proc = run_cli("--help", check=True)
    for command in ("build", "train", "inspect", "quantize", "eval"):
        assert command in proc.stdout
    for code, _ in EXIT_CODES:
        assert f"{code} " in proc.stdout.replace("\n", " ")


def test_help_and_inspect_do_not_import_tensorflow():
    """Start-up speed: TensorFlow (seconds to import) must stay out of --help and inspect."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from mncompile.cli.app import app\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['--version'], ['inspect', '--json'], ['train', '--help'],"
        " ['build', '--help']):\n"
        "    assert r.invoke(app, args).exit_code == 0, args\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'sklearn') if m in sys.modules)\n"
        "print(','.join(heavy))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_inspect_json_is_one_document_with_the_analytic_totals():
    proc = run_cli("inspect", "--arch", "v2", "--alpha", "0.35", "--resolution", "224", "--json",
                   check=True)
    doc = json.loads(proc.stdout)
    expected = summarize(MobileNetSpec("v2", 0.35, 224, 3, 1000))
    assert doc["totals"]["macs"] == expected.macs and doc["totals"]["params"] == expected.params
    assert len(doc["layers"]) == len(expected.rows)
    assert proc.stderr == ""


def test_inspect_table_shows_every_layer_and_totals():
    proc = run_cli("inspect", "--arch", "v1", "--alpha", "0.25", "--resolution", "96", check=True)
    for name in ("conv1", "conv_dw_13", "conv_pw_13", "classifier", "total"):
        assert name in proc.stdout
    assert "1/N + 1/Dk²" in proc.stdout


def test_rho_option():
    a = json.loads(run_cli("inspect", "--rho", "0.571", "--json", check=True).stdout)
    assert a["model"]["resolution"] == 128


def test_invalid_option_exit_code_and_json_error():
    proc = run_cli("inspect", "--alpha", "1.5", "--json")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["error"] == "invalid-option" and doc["exit_code"] == 2 and doc["hint"]
    assert "alpha=1.5" in proc.stderr


def test_both_resolution_and_rho_is_an_error():
    proc = run_cli("inspect", "--resolution", "96", "--rho", "1")
    assert proc.returncode == 2 and "not both" in proc.stderr


def test_dataset_error_exit_code(tmp_path):
    proc = run_cli("train", "--dataset", str(tmp_path / "missing"), "-o", str(tmp_path / "m.keras"))
    assert proc.returncode == 3, proc.stderr
    assert "does not exist" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_output_must_be_keras(tmp_path):
    proc = run_cli("train", "-o", str(tmp_path / "m.h5"))
    assert proc.returncode == 2 and ".keras" in proc.stderr


def test_build_rejects_bad_target_and_budget_before_any_work(tmp_path):
    out = tmp_path / "b"
    proc = run_cli("build", "--target", "cortex-a53", "--out", str(out))
    assert proc.returncode == 2 and "cortex-m7" in proc.stderr
    proc = run_cli("build", "--budget", "6 furlongs", "--out", str(out))
    assert proc.returncode == 2 and "6MB" in proc.stderr
    assert not out.exists()


def test_build_with_a_given_model_quantizes_and_evaluates(trained_digits, quantized_digits, tmp_path):
    out = tmp_path / "b"
    proc = run_cli("build", "--model", str(trained_digits["path"]), "--budget", "6MB",
                   "--target", "cortex-m7", "--out", str(out), "--layer-samples", "4", "--json",
                   check=True)
    doc = json.loads(proc.stdout)
    assert doc["budget_bytes"] == 6 * 1024 * 1024
    assert doc["target"]["name"] == "cortex-m7"
    assert doc["model"]["format"] == "keras" and doc["model"]["input_shape"] == [96, 96, 1]
    assert [(s["name"], s["status"]) for s in doc["stages"]] == [
        ("model", "done"), ("quantize", "done"), ("eval", "done"), ("plan", "done"), ("npu", "skipped"),
        ("emit", "done"), ("validate", "skipped")]
    assert doc["plan"]["mncompile_bytes"] == doc["plan"]["lower_bound_bytes"] == 55_296
    assert doc["memory"]["fits"] and doc["memory"]["arena_bytes"] < 6 * 1024 * 1024
    assert (out / "plan" / "memory.png").exists() and (out / "plan" / "model_int8_planned.tflite").exists()
    assert (out / "firmware" / "mncompile.json").is_file() and doc["emit"]["board"] == "mps2-an500"
    # the same model, same defaults: the same int8 bytes as `mncompile quantize`
    assert (out / "model_int8.tflite").read_bytes() == quantized_digits["path"].read_bytes()
    saved = json.loads((out / "eval.json").read_text())
    assert saved["int8_accuracy"] == doc["eval"]["int8_accuracy"]
    assert abs(doc["eval"]["accuracy_drop_pp"]) <= 1.0


def test_build_prints_the_float_vs_int8_table(trained_digits, tmp_path):
    proc = run_cli("build", "--model", str(trained_digits["path"]), "--out", str(tmp_path / "b"),
                   "--layer-samples", "0", check=True)
    assert "float vs int8" in proc.stdout and "TFLM host interpreter" in proc.stdout
    assert "stages done: model, quantize, eval, plan" in proc.stdout
    assert "memory on cortex-m7" in proc.stdout and "headroom" in proc.stdout
    report = (tmp_path / "b" / "report.html").read_text()  # no per-layer figures measured: no such section
    assert 'id="accuracy"' in report and 'id="layers"' not in report


def test_build_says_what_fits_and_what_does_not(tflite_zoo, tmp_path):
    """V1 alpha 1.0 at 224: its constants and arena fit a 6 MB budget, but not an STM32H743's
    2 MB of flash (nor its 512 KB AXI SRAM) unless the limits are raised."""
    model = str(tflite_zoo["v1_1.0_224"])
    proc = run_cli("build", "--model", model, "--budget", "6MB", "--target", "cortex-m7",
                   "--out", str(tmp_path / "b"), "--json")
    assert proc.returncode == 8, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["error"] == "budget"
    message = doc["message"]
    assert "budget: " in message and "(--budget), fits" in message
    assert "flash: needs" in message and "limit 2,097,152 B (target cortex-m7)" in message
    assert "--flash" in doc["hint"]
    proc = run_cli("build", "--model", model, "--budget", "6MB", "--target", "cortex-m7", "--flash", "4MB",
                   "--ram", "2MB", "--out", str(tmp_path / "c"), "--json", check=True)
    memory = json.loads(proc.stdout)["memory"]
    assert memory["fits"] and [r["name"] for r in memory["limits"]] == ["budget", "flash", "ram"]
    for row in memory["limits"]:
        assert row["headroom_bytes"] == row["limit_bytes"] - row["used_bytes"] > 0
    assert memory["total_bytes"] == memory["constants_bytes"] + memory["arena_bytes"] + memory["io_bytes"]


def test_build_refuses_before_training_when_the_estimate_cannot_fit(tmp_path):
    proc = run_cli("build", "--alpha", "1.0", "--resolution", "224", "--budget", "1MB", "--out",
                   str(tmp_path / "b"))
    assert proc.returncode == 8 and "does not fit" in proc.stderr
    assert "==> train" not in proc.stderr


def test_build_with_unreadable_model(tmp_path):
    bad = tmp_path / "m.keras"
    bad.write_bytes(b"not a zip")
    proc = run_cli("build", "--model", str(bad))
    assert proc.returncode == 4 and str(bad) in proc.stderr
