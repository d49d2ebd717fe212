"""The graph IR: per-op mult-adds and parameters against the analytic model, and bad files."""

from __future__ import annotations

import pytest
from conftest import verified

from mncompile.errors import ModelError
from mncompile.graph.metrics import graph_costs
from mncompile.model.analytic import summarize
from mncompile.model.spec import MobileNetSpec


@pytest.mark.parametrize("name", ["v1_0.25_96", "v2_0.35_96", "v1_1.0_224"])
def test_macs_and_params_per_op_match_the_analytic_table(tflite_zoo, name):
    arch, alpha, resolution = name.split("_")
    summary = summarize(MobileNetSpec(arch, float(alpha), int(resolution), 3, 4))
    graph = verified(tflite_zoo[name]).graph
    costs = graph_costs(graph)
    weighted = [c for c in costs if c.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    rows = [r for r in summary.rows if r.macs > 0]
    assert [c.macs for c in weighted] == [r.macs for r in rows]  # layer by layer, in order
    assert sum(c.macs for c in costs) == summary.macs
    # Parameters: weights + folded batch-norm bias. The converter omits an all-zero bias (the
    # classifier's, in these untrained test models): then the op's bias input is -1 and the
    # graph holds exactly `classes` fewer parameters for that layer.
    for c, r in zip(weighted, rows, strict=True):
        op = graph.ops[c.op]
        omitted = r.params - c.params
        assert omitted == (graph.tensors[op.outputs[0]].shape[-1] if op.inputs[2] == -1 else 0), r.name


@pytest.mark.parametrize("data", [b"", b"TFL3", b"\x00" * 8, b"\x10\x00\x00\x00TFL3" + b"\xff" * 40])
def test_corrupt_files_are_typed_errors(tmp_path, data):
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    with pytest.raises(ModelError, match="bad.tflite"):
        verified(path)


def test_truncated_real_model_is_a_typed_error(tflite_zoo, tmp_path):
    data = tflite_zoo["v1_0.25_96"].read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError):
        verified(path)
