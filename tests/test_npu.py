"""The npu stage: Vela on the Ethos-U targets, its figures, CPU fallbacks, and NPU budgets.

Independent references: Vela's own summary CSV (read here with the csv module), the figures
the issue quotes for the MLPerf VWW model on ethos-u55-128 (Vela 5.2, defaults), and the TFLM
host interpreter's recorded arena for Vela outputs it can run (CPU operators only).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tflite_writer as writer
from conftest import verified

from mncompile.errors import BudgetError, InvalidOptionError, NpuCompilerError
from mncompile.npu import VelaOptions, compile_for_npu, parse_vela_report, tflm_arena
from mncompile.targets import all_targets, get_target
from tests.conftest import run_cli

NPU_TARGETS = tuple(t.name for t in all_targets() if t.npu is not None)


def test_every_issue_target_exists():
    assert set(NPU_TARGETS) == {"ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u65-512"}
    for name in NPU_TARGETS:
        t = get_target(name)
        assert t.npu.vela_accelerator_config == name
        assert t.npu.macs_per_cycle == int(name.rsplit("-", 1)[1])
        assert t.qemu_machine is None


def csv_row(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    return row


def check_against_csv(result) -> None:
    row = csv_row(result.summary_csv)
    assert result.sram_bytes == float(row["sram_memory_used"]) * 1024
    assert result.off_chip_flash_bytes == float(row["off_chip_flash_memory_used"]) * 1024
    assert result.dram_bytes == float(row["dram_memory_used"]) * 1024
    assert result.cycles_total == int(row["cycles_total"])
    assert result.cycles_npu == int(row["cycles_npu"])
    assert result.macs == int(row["nn_macs"])
    assert result.clock_hz == float(row["core_clock"])
    assert result.inference_time_s == float(row["inference_time"])
    assert result.inferences_per_second == float(row["inferences_per_second"])
    assert row["accelerator_configuration"].lower().replace("_", "-") == result.accelerator_config
    assert row["system_config"] == result.options.system_config
    assert row["memory_mode"] == result.options.memory_mode


@pytest.fixture(scope="module")
def vela_v1(tflite_zoo, tmp_path_factory):
    """V1 a0.25@96 (built by the session's zoo fixture) through Vela for every Ethos-U target."""
    out = tmp_path_factory.mktemp("vela_v1")
    model = verified(tflite_zoo["v1_0.25_96"])
    return {name: compile_for_npu(model, get_target(name), out / name) for name in NPU_TARGETS}


@pytest.fixture(scope="module")
def vela_vww(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("vela_vww")
    return {name: compile_for_npu(verified(shared_data / "vww_96_int8.tflite"), get_target(name), out / name)
            for name in NPU_TARGETS}


@pytest.mark.parametrize("name", NPU_TARGETS)
def test_v1_runs_entirely_on_the_npu(vela_v1, tflite_zoo, name):
    r = vela_v1[name]
    assert r.all_on_npu and r.cpu_ops == () and r.vela_cpu_ops == 0
    assert r.input_ops == len(verified(tflite_zoo["v1_0.25_96"]).graph.ops) == r.npu_input_ops
    assert [op.kind for op in verified(r.model).graph.ops] == ["CUSTOM:ethos-u"]
    check_against_csv(r)
    assert r.sram_bytes > 0 and r.cycles_total > 0
    assert r.model_bytes == r.model.stat().st_size


@pytest.mark.parametrize("name", NPU_TARGETS)
def test_vww_runs_entirely_on_the_npu(vela_vww, name):
    r = vela_vww[name]
    assert r.all_on_npu
    check_against_csv(r)
    assert r.macs == 7_491_972  # the MLPerf VWW model's MACs, as the issue gives them (7.49 M)


def test_vww_on_u55_128_matches_the_issue_reference(vela_vww):
    """Vela 5.2 with defaults: 72.73 KiB SRAM, 74.22 KiB off-chip flash, 220,870 total cycles."""
    r = vela_vww["ethos-u55-128"]
    assert (r.options.system_config, r.options.memory_mode) == ("Ethos_U55_High_End_Embedded", "Shared_Sram")
    assert round(r.sram_bytes / 1024, 2) == 72.73
    assert round(r.off_chip_flash_bytes / 1024, 2) == 74.22
    assert r.cycles_total == 220_870


def test_more_macs_per_cycle_is_not_slower(vela_vww):
    cycles = [vela_vww[f"ethos-u55-{m}"].cycles_npu for m in (64, 128, 256)]
    assert cycles[0] > cycles[1] > cycles[2]


def test_dedicated_sram_puts_the_arena_in_dram(vela_vww):
    r = vela_vww["ethos-u65-256"]
    assert r.options.memory_mode == "Dedicated_Sram"
    assert r.dram_bytes > 0 and r.off_chip_flash_bytes == 0
    graph = verified(r.model).graph
    names = {t.name: t.nbytes for t in graph.tensors}
    assert names["scratch_fast"] == r.sram_bytes  # the NPU cache is Vela's SRAM figure


# --- CPU fallback -----------------------------------------------------------------------------

Q = (0.05, -3)


@pytest.mark.parametrize("model, op, why", [
    (lambda: writer.quantize((1, 8, 8, 3), Q), "QUANTIZE", "Float32"),
    (lambda: writer.dequantize((1, 8, 8, 3), Q), "DEQUANTIZE", "Unsupported opType"),
    (lambda: writer.mean((1, 6, 6, 5), Q, Q, axes=(3,)), "MEAN", "depth"),
])
def test_unsupported_ops_are_listed_with_vela_reason(tmp_path, model, op, why):
    path = tmp_path / "m.tflite"
    path.write_bytes(model())
    r = compile_for_npu(verified(path), get_target("ethos-u55-128"), tmp_path / "vela")
    assert not r.all_on_npu
    assert [(c.node, c.op) for c in r.cpu_ops] == [(0, op)]
    assert why in r.cpu_ops[0].reason
    assert r.vela_cpu_ops == 1 and r.npu_input_ops == 0
    assert r.inferences_per_second is None  # no NPU work: Vela's figure is not a number
    assert any(f"CPU fallback: {op} at node 0" in line for line in r.summary_lines())
    json.dumps(r.to_json(), allow_nan=False)


def test_mean_over_height_and_width_stays_on_the_npu(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(writer.mean((1, 6, 6, 5), Q, Q, axes=(1, 2)))
    r = compile_for_npu(verified(path), get_target("ethos-u55-64"), tmp_path / "vela")
    assert r.all_on_npu


def test_parse_vela_report():
    text = """Warning (supported operators) operator: MEAN, ofm: 'out a'
Reason: Unsupported depth-reduction.  IFM: 1, 6, 6, 5
Reduction over depth is only supported if any of h,w,c == 1

Network summary for m
CPU operators = 1 (100.0%)
NPU operators = 0 (0.0%)
"""
    reasons, npu, cpu = parse_vela_report(text)
    assert (npu, cpu) == (0, 1)
    assert reasons == {"out a": "Unsupported depth-reduction.  IFM: 1, 6, 6, 5 Reduction over depth is only "
                                "supported if any of h,w,c == 1"}


# --- the TFLM arena of Vela's output ----------------------------------------------------------

@pytest.mark.parametrize("model", [
    lambda: writer.mean((1, 6, 6, 5), Q, Q, axes=(3,)),
    lambda: writer.quantize((1, 8, 8, 3), Q),
])
def test_arena_of_a_cpu_only_vela_model_equals_the_tflm_host_interpreter(tmp_path, model):
    """Vela's offline plan and TFLM's handling of it, checked where the host can run the model."""
    from mncompile.validate.host_arena import measure_host_arena

    path = tmp_path / "m.tflite"
    path.write_bytes(model())
    r = compile_for_npu(verified(path), get_target("ethos-u55-128"), tmp_path / "vela")
    assert verified(r.model).graph.ops[0].kind != "CUSTOM:ethos-u"
    measured = measure_host_arena(verified(r.model))
    predicted = tflm_arena(r, pointer_size=8)
    assert (predicted.planned, predicted.total) == (measured["head"], measured["total"])


def test_arena_of_the_vww_npu_model(vela_vww):
    """The head is Vela's scratch area (which holds the input and output) plus the ethos-u kernel's
    two scratch tables of 6 entries (5 inputs + 1 output): 48 B of uint64 and 24 B of size_t, each
    rounded up to 16 B and placed above the offline-planned tensors."""
    r = vela_vww["ethos-u55-128"]
    a = tflm_arena(r)
    assert a.planned == r.sram_bytes + 48 + 32
    assert [s.bytes for s in a.scratch_requests] == [48, 24]
    assert 0 < a.total - r.sram_bytes < 1024


# --- options and errors -----------------------------------------------------------------------

def test_options_are_checked(tmp_path):
    t = get_target("ethos-u55-128")
    with pytest.raises(InvalidOptionError, match="Ethos-U65"):
        VelaOptions(system_config="Ethos_U65_High_End").resolved(t)
    with pytest.raises(InvalidOptionError, match="memory mode"):
        VelaOptions(memory_mode="Fast").resolved(t)
    with pytest.raises(InvalidOptionError, match="optimisation"):
        VelaOptions(optimise="Speed").resolved(t)
    with pytest.raises(InvalidOptionError, match="has no NPU"):
        VelaOptions().resolved(get_target("cortex-m7"))


def test_size_strategy_needs_no_more_sram(tmp_path, shared_data):
    t = get_target("ethos-u55-128")
    vww = verified(shared_data / "vww_96_int8.tflite")
    perf = compile_for_npu(vww, t, tmp_path / "p")
    size = compile_for_npu(vww, t, tmp_path / "s", VelaOptions(optimise="Size"))
    assert size.options.optimise == "Size"
    assert size.sram_bytes <= perf.sram_bytes
    check_against_csv(size)


def test_missing_vela_is_a_clear_error(tmp_path, monkeypatch):
    from importlib import metadata

    real = metadata.version

    def version(name):
        if name == "ethos-u-vela":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    path = tmp_path / "m.tflite"
    path.write_bytes(writer.quantize((1, 4, 4, 1), Q))
    with pytest.raises(NpuCompilerError, match="not installed") as info:
        compile_for_npu(verified(path), get_target("ethos-u55-128"), tmp_path / "vela")
    assert "pip install" in info.value.hint
    assert not (tmp_path / "vela").exists()


def test_vela_failure_leaves_nothing(tmp_path, monkeypatch):
    import mncompile.npu as npu

    path = tmp_path / "m.tflite"
    path.write_bytes(writer.quantize((1, 4, 4, 1), Q))
    monkeypatch.setattr(npu, "vela_command", lambda *a: ["python3", "-c", "import sys; print('boom'); sys.exit(3)"])
    with pytest.raises(NpuCompilerError, match="exit 3"):
        compile_for_npu(verified(path), get_target("ethos-u55-128"), tmp_path / "vela")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]


# --- budgets through the CLI ------------------------------------------------------------------

def test_plan_cli_shows_vela_next_to_the_cpu_plan(tmp_path, shared_data):
    proc = run_cli("plan", str(shared_data / "vww_96_int8.tflite"), "-o", str(tmp_path / "p"),
                   "--target", "ethos-u55-128", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    npu = doc["npu"]
    row = csv_row(tmp_path / "p" / "npu" / Path(npu["summary_csv"]).name)
    assert npu["sram_bytes"] == float(row["sram_memory_used"]) * 1024
    assert npu["cycles_total"] == int(row["cycles_total"])
    assert npu["all_on_npu"] is True and npu["cpu_fallback"] == []
    ram = {r["name"]: r for r in doc["memory"]["limits"]}["ram"]
    assert ram["used_bytes"] == doc["npu_tflm_arena"]["total_bytes"] + doc["io_bytes"]
    # the CPU plan of the same model sits beside it
    assert doc["cpu_memory"]["arena_bytes"] == doc["tflm_arena"]["device-mncompile"]["total_bytes"]
    text = run_cli("plan", str(shared_data / "vww_96_int8.tflite"), "-o", str(tmp_path / "p"),
                   "--target", "ethos-u55-128")
    assert "CPU only" in text.stdout and "Ethos-U55 (ethos-u55-128)" in text.stdout
    assert "all 31 operators run on the Ethos-U55" in text.stdout


def test_budget_below_vela_sram_fails_with_the_npu_message(tmp_path, shared_data):
    model = shared_data / "vww_96_int8.tflite"
    ok = run_cli("plan", str(model), "-o", str(tmp_path / "p"), "--target", "ethos-u55-128", "--json")
    doc = json.loads(ok.stdout)
    need = doc["npu_tflm_arena"]["total_bytes"] + doc["io_bytes"]
    exact = run_cli("plan", str(model), "-o", str(tmp_path / "p"), "--target", "ethos-u55-128",
                    "--ram", str(need))
    assert exact.returncode == 0, exact.stderr
    over = run_cli("plan", str(model), "-o", str(tmp_path / "p"), "--target", "ethos-u55-128",
                   "--ram", str(doc["npu"]["sram_bytes"]))
    assert over.returncode == BudgetError.exit_code
    assert "compiled for the NPU by Vela does not fit ethos-u55-128" in over.stderr
    assert f"Vela's SRAM figure {doc['npu']['sram_bytes']:,} B" in over.stderr
    assert "--vela-optimise Size" in over.stderr


def test_vela_options_need_an_npu_target(tmp_path):
    model = Path(__file__).parent / "data" / "tiny_int8.tflite"
    proc = run_cli("plan", str(model), "-o", str(tmp_path / "p"), "--target", "cortex-m7", "--vela-optimise", "Size")
    assert proc.returncode == InvalidOptionError.exit_code
    assert "has no NPU" in proc.stderr
    assert not (tmp_path / "p").exists()


def test_dedicated_sram_budget_checks_the_cache_and_the_shared_memory(vela_vww):
    from mncompile.budget import check_npu_budget

    r = vela_vww["ethos-u65-256"]
    t = get_target("ethos-u65-256")
    arena = tflm_arena(r).total
    report = check_npu_budget(r.model_bytes, arena, r.sram_bytes, 27_650, t, r.options.memory_mode)
    rows = {row.name: row for row in report.rows}
    assert rows["ram"].used == r.sram_bytes and rows["ram"].limit == t.npu.sram_bytes
    assert rows["shared"].used == r.model_bytes + arena + 27_650
    tight = check_npu_budget(r.model_bytes, arena, r.sram_bytes, 27_650, t, r.options.memory_mode,
                             ram=r.sram_bytes - 1)
    assert not tight.fits and tight.exceeded[0].name == "ram"
    assert np.isfinite(r.inferences_per_second)
