"""Plans of real MobileNets against the real TFLM host interpreter."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli, verified

from mncompile.errors import EmulatorError
from mncompile.plan import plan_model
from mncompile.plan.offline import embed_plan, read_offline_plan
from mncompile.validate.emulate import emulate
from mncompile.validate.host_arena import measure_host_arena


def tflm_head_tail(path) -> tuple[int, int, int]:
    """(planned head, persistent tail, total) bytes from TFLM's RecordingMicroAllocator."""
    measured = measure_host_arena(verified(path))
    return measured["head"], measured["tail"], measured["total"]


def _check_model(path, tmp_path):
    result = plan_model(verified(path))
    head, tail, total = tflm_head_tail(path)
    assert result.greedy.arena_bytes == head  # the replica plans exactly what TFLM plans
    assert result.ours.arena_bytes == result.lower_bound
    assert result.arena_total("host-tflm-greedy") == total  # whole arena predicted to the byte
    planned = tmp_path / f"{path.stem}_planned.tflite"
    planned.write_bytes(embed_plan(verified(path), result.buffers, result.ours))
    assert planned.stat().st_size == result.planned_model_bytes
    head2, tail2, total2 = tflm_head_tail(planned)
    assert head2 == result.ours.arena_bytes and tail2 == tail  # TFLM follows our plan
    assert result.arena_total("host-mncompile") == total2
    x = np.random.default_rng(0).integers(-128, 128, (2, *result.graph.tensors[result.graph.inputs[0]].shape[1:]))
    x = x.astype(np.int8)
    np.testing.assert_array_equal(emulate(verified(path), x), emulate(verified(planned), x))
    return result, head


@pytest.mark.parametrize("name", ["v1_0.25_96", "v1_0.25_224", "v1_1.0_224", "v2_0.35_96", "v2_1.0_224"])
def test_zoo_greedy_matches_tflm_and_ours_reaches_the_lower_bound(tflite_zoo, name, tmp_path):
    _check_model(tflite_zoo[name], tmp_path)


def test_vww_ours_is_55296_where_tflm_plans_73728(shared_data, tmp_path):
    result, head = _check_model(shared_data / "vww_96_int8.tflite", tmp_path)
    assert (result.lower_bound, result.ours.arena_bytes, result.greedy.arena_bytes, head) == (
        55_296, 55_296, 73_728, 73_728)


@pytest.mark.parametrize("which", ["vww", "v2_0.35_96"])
def test_tflm_runs_in_exactly_the_predicted_arena_and_not_in_less(which, request, tflite_zoo):
    path = (request.getfixturevalue("shared_data") / "vww_96_int8.tflite" if which == "vww"
            else tflite_zoo[which])
    predicted = plan_model(verified(path)).arena_total("host-tflm-greedy")
    assert measure_host_arena(verified(path), arena_size=predicted)["total"] == predicted
    with pytest.raises(EmulatorError):
        measure_host_arena(verified(path), arena_size=predicted - 16)  # one alignment step less


def test_device_prediction_for_vww(shared_data):
    result = plan_model(verified(shared_data / "vww_96_int8.tflite"))
    assert result.arena_total("device-tflm-greedy") == 100_660  # arena_used_bytes() on a Cortex-M7
    assert result.arena_total("device-mncompile") == 100_660 - (73_728 - 55_296)


def test_offline_plan_round_trips(tflite_zoo):
    path = tflite_zoo["v2_0.35_96"]
    result = plan_model(verified(path))
    data = embed_plan(verified(path), result.buffers, result.ours)
    offsets = read_offline_plan(verified(data))
    assert len(offsets) == len(result.graph.tensors)
    for b, o in zip(result.buffers, result.ours.offsets, strict=True):
        assert offsets[b.tensor] == o
    constants = [t.index for t in result.graph.tensors if t.is_constant]
    assert all(offsets[i] == -1 for i in constants)
    again = embed_plan(verified(data), result.buffers, result.ours)
    assert read_offline_plan(verified(again)).tolist() == offsets.tolist()
    assert result.planned_model.data == data  # what the plan stage itself embeds


def test_plan_command_writes_files_deterministically(tflite_zoo, tmp_path):
    path = tflite_zoo["v1_0.25_96"]
    for out in (tmp_path / "a", tmp_path / "b"):
        proc = run_cli("plan", str(path), "-o", str(out), "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["lower_bound_bytes"] == doc["mncompile_bytes"] == 55_296 and doc["tflm_greedy_bytes"] == 73_728
    assert len(doc["buffers"]) == 31 and {"offset", "first", "last", "bytes"} <= set(doc["buffers"][0])
    for name in ("plan.json", "memory.png", f"{path.stem}_planned.tflite"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = run_cli("plan", str(path), "-o", str(tmp_path / "c"), check=True).stdout
    assert "lower bound 55,296 B; TFLM greedy 73,728 B (1.33x); mncompile 55,296 B (1.00x" in table


def test_plan_rejects_a_broken_file(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 7)
    proc = run_cli("plan", str(bad))
    assert proc.returncode == 4 and "bad.tflite" in proc.stderr and "Traceback" not in proc.stderr
