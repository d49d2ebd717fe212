"""The front door: every model is verified once, then compiled or refused with a typed error.

Every case here is something a hostile or careless user did (issue 13): a corrupt or
inconsistent model, a missing or wrong input, an output that cannot be written. Each must end
in its documented exit code, with a message that names what is wrong, and leave no output
behind. The models are edits of tests/data/tiny_int8.tflite made through the flatbuffer object
API, so each case is one precise defect.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from conftest import REPO, run_cli

from mncompile.errors import ModelError
from mncompile.graph.reader import schema
from mncompile.graph.verified import read_model, verify_model

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"


def _edit(change) -> bytes:
    """tiny_int8.tflite with `change(model)` applied to its object tree (`ModelT`)."""
    model = schema().ModelT.InitFromPackedBuf(TINY.read_bytes(), 0)
    change(model)
    builder = flatbuffers.Builder(8192)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _sub(model):
    return model.subgraphs[0]


def _tensor_of(model, kind: str, role: str = "outputs", k: int = 0):
    """The tensor index at position `k` of the `role` of the first operator of `kind`."""
    s = schema()
    code = {v: n for n, v in vars(s.BuiltinOperator).items() if not n.startswith("_")}
    for op in _sub(model).operators:
        c = model.operatorCodes[op.opcodeIndex]
        if code[max(c.builtinCode, c.deprecatedBuiltinCode)] == kind:
            return getattr(op, role)[k]
    raise AssertionError(kind)


def _set_version(m):
    m.version = 4


def _no_ops(m):
    _sub(m).operators = []


def _swap_ops(m):
    ops = _sub(m).operators
    ops[0], ops[1] = ops[1], ops[0]


def _drop_op(m):
    del _sub(m).operators[2]


def _duplicate_op(m):
    ops = _sub(m).operators
    ops.insert(2, ops[1])


def _bad_name(m):
    _sub(m).tensors[3].name = b"conv\xff\xfe"


def _opcode_index(m):
    _sub(m).operators[1].opcodeIndex = 99


def _input_index(m):
    op = _sub(m).operators[1]
    op.inputs = np.array([500, *op.inputs[1:]], dtype=np.int32)


def _huge_shape(m):
    t = _sub(m).tensors[_tensor_of(m, "DEPTHWISE_CONV_2D")]
    t.shape = np.array([1, 65535, 65535, 8], dtype=np.int32)


def _qdim(m):
    t = _sub(m).tensors[_tensor_of(m, "CONV_2D", "inputs", 1)]
    t.quantization.quantizedDimension = 7


def _scale(value):
    def change(m):
        _sub(m).tensors[_tensor_of(m, "CONV_2D")].quantization.scale = np.array([value], dtype=np.float32)
    return change


def _zero_point(m):
    _sub(m).tensors[_tensor_of(m, "CONV_2D")].quantization.zeroPoint = np.array([300], dtype=np.int64)


def _channel_scales(m):
    q = _sub(m).tensors[_tensor_of(m, "CONV_2D", "inputs", 1)].quantization
    q.scale, q.zeroPoint = np.array(q.scale[:3]), np.array(q.zeroPoint[:3])


def _short_buffer(m):
    w = _sub(m).tensors[_tensor_of(m, "CONV_2D", "inputs", 1)]
    m.buffers[w.buffer].data = m.buffers[w.buffer].data[:-5]


def _buffer_index(m):
    _sub(m).tensors[0].buffer = 1000


def _stride(m):
    ops = _sub(m).operators
    ops[0].builtinOptions.strideW = 0


def _output_shape(m):
    t = _sub(m).tensors[_tensor_of(m, "CONV_2D")]
    t.shape = np.array([1, 7, 6, 8], dtype=np.int32)


def _graph_output(m):
    _sub(m).outputs = np.array([_tensor_of(m, "CONV_2D", "inputs", 1)], dtype=np.int32)


def _wrong_options(m):
    s = schema()
    op = _sub(m).operators[0]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.SoftmaxOptions, s.SoftmaxOptionsT()


def _op_version(m):
    m.operatorCodes[_sub(m).operators[0].opcodeIndex].version = 99


def _weight_zero_point(m):
    q = _sub(m).tensors[_tensor_of(m, "CONV_2D", "inputs", 1)].quantization
    q.zeroPoint = np.full(len(q.scale), 3, dtype=np.int64)


def _unknown_op(m):
    code = m.operatorCodes[_sub(m).operators[0].opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = schema().BuiltinOperator.UNPACK


def _activation(m):
    _sub(m).operators[0].builtinOptions.fusedActivationFunction = 5


def _no_bias(m):
    op = _sub(m).operators[0]
    op.inputs = np.array([*op.inputs[:2], -1], dtype=np.int32)


# (case, edit, words the message must contain)
INVALID = [
    ("schema version 4", _set_version, ["schema version 4"]),
    ("zero operators", _no_ops, ["no operators"]),
    ("swapped operators", _swap_ops, ["operator 0 (DEPTHWISE_CONV_2D) reads", "operator 1 writes only later"]),
    ("dropped operator", _drop_op, ["which no operator writes"]),
    ("operator run twice", _duplicate_op, ["already wrote"]),
    ("name not UTF-8", _bad_name, ["tensor 3", "not UTF-8"]),
    ("opcode index", _opcode_index, ["operator 1 has opcode index 99"]),
    ("op input index", _input_index, ["operator 1 (DEPTHWISE_CONV_2D) reads tensor 500"]),
    ("huge shape", _huge_shape, ["2 GiB"]),
    ("quantized_dimension 7", _qdim, ["quantized_dimension 7"]),
    ("zero scale", _scale(0.0), ["scale 0.0"]),
    ("NaN scale", _scale(math.nan), ["scale nan"]),
    ("negative scale", _scale(-0.5), ["scale -0.5"]),
    ("zero point out of range", _zero_point, ["zero point 300", "[-128, 127]"]),
    ("per-channel scale count", _channel_scales, ["3 per-channel scales"]),
    ("buffer shorter than the shape", _short_buffer, ["bytes of data"]),
    ("buffer index", _buffer_index, ["refers to buffer 1000"]),
    ("stride 0", _stride, ["operator 0 (CONV_2D)", "stride_w 0"]),
    ("output shape", _output_shape, ["operator 0 (CONV_2D)", "output has shape [1, 7, 6, 8]"]),
    ("graph output is a constant", _graph_output, ["is a constant"]),
    ("options of another operator", _wrong_options, ["operator 0 (CONV_2D) stores its options as SoftmaxOptions"]),
    ("operator version 99", _op_version, ["operator code 0 (CONV_2D) has version 99"]),
    ("asymmetric int8 weights", _weight_zero_point, ["operator 0 (CONV_2D)", "zero points [3]", "symmetric"]),
    ("operator without a registry entry", _unknown_op, ["operator 0 (UNPACK)", "no entry in mncompile's op registry"]),
    ("fused activation 5", _activation, ["operator 0 (CONV_2D)", "fused activation 5"]),
    ("quantized convolution without a bias", _no_bias, ["operator 0 (CONV_2D)", "without a bias"]),
]


def test_the_unedited_model_is_valid():
    model = read_model(TINY)
    assert model.name == "tiny_int8.tflite" and len(model.graph.ops) == 6
    w = model.graph.tensors[model.graph.ops[0].inputs[1]]
    assert model.graph.constant(w.index).shape == w.shape  # constants travel with the graph
    assert verify_model(_edit(lambda m: None), "same.tflite").graph.ops == model.graph.ops


@pytest.mark.parametrize(("case", "change", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_an_invalid_model_is_a_model_error_naming_the_defect(case, change, words):
    with pytest.raises(ModelError) as err:
        verify_model(_edit(change), "bad.tflite")
    for word in words:
        assert word in err.value.message, (case, err.value.message)
    assert "bad.tflite" in err.value.message


def test_a_bias_scale_is_not_checked_as_tflm_never_reads_it(tmp_path):
    """A bias whose own scale is negative (the MCUNet zoo's mcunet-320kb-1mb_imagenet has
    -9.2e-10) runs in TFLM, which scales a bias by input scale x filter scale: it is accepted, and
    computes what the unedited model computes."""
    from mncompile.validate.emulate import emulate

    def change(m):
        q = _sub(m).tensors[_tensor_of(m, "CONV_2D", "inputs", 2)].quantization
        q.scale = np.full(len(q.scale), -9.2e-10, dtype=np.float32)
    edited = verify_model(_edit(change), "negative_bias_scale.tflite")
    x = np.random.default_rng(0).integers(-128, 128, (2, 12, 12, 1)).astype(np.int8)
    assert np.array_equal(emulate(edited, x, "tflm"), emulate(read_model(TINY), x, "tflm"))


# The cases through the command line: emit (both backends, alternately) and plan --json.
CLI_CASES = [(c[0], c[1], ("tflm", "aot")[k % 2]) for k, c in enumerate(INVALID[:6])]



@pytest.mark.parametrize(("case", "change", "backend"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_emit_refuses_an_invalid_model_and_writes_nothing(case, change, backend, tmp_path):
    model = tmp_path / "bad.tflite"
    model.write_bytes(_edit(change))
    out = tmp_path / "project"
    proc = run_cli("emit", str(model), "--target", "cortex-m7", "-o", str(out), "--backend", backend, "--json")
    assert proc.returncode == 4, (case, proc.stderr)
    assert json.loads(proc.stdout)["error"] == "model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tflite"]


def test_plan_json_refuses_an_invalid_model_with_one_document(tmp_path):
    model = tmp_path / "bad.tflite"
    model.write_bytes(_edit(_bad_name))
    proc = run_cli("plan", str(model), "-o", str(tmp_path / "p"), "--json")
    assert proc.returncode == 4, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 4 and "tensor 3" in doc["message"] and "not UTF-8" in doc["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tflite"]


# ---------------------------------------------------------------------------------------------
# Plain mistakes: each one its exit code, before any work, nothing written


def _no_output(proc, *paths: Path) -> None:
    for path in paths:
        assert not path.exists(), path


@pytest.mark.parametrize("command", ["plan", "emit", "quantize"])
def test_a_missing_model_is_exit_4(command, tmp_path):
    args = {"plan": ["-o", str(tmp_path / "p")], "emit": ["--target", "cortex-m7", "-o", str(tmp_path / "p")],
            "quantize": ["-o", str(tmp_path / "p.tflite")]}[command]
    proc = run_cli(command, str(tmp_path / "nosuch.tflite"), *args)
    assert proc.returncode == 4, proc.stderr
    assert "does not exist" in proc.stderr and "internal error" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["plan", "emit"])
def test_a_folder_as_the_model_is_exit_4(command, tmp_path):
    folder = tmp_path / "model.tflite"
    folder.mkdir()
    args = ["-o", str(tmp_path / "p")] + (["--target", "cortex-m7"] if command == "emit" else [])
    proc = run_cli(command, str(folder), *args)
    assert proc.returncode == 4, proc.stderr
    assert "is a folder" in proc.stderr
    _no_output(proc, tmp_path / "p")


def test_a_special_file_as_the_model_is_exit_4(tmp_path):
    proc = run_cli("plan", "/dev/null", "-o", str(tmp_path / "p"))
    assert proc.returncode == 4 and "not a regular file" in proc.stderr
    _no_output(proc, tmp_path / "p")


@pytest.mark.parametrize("command", ["plan", "emit", "quantize", "build"])
def test_an_output_below_a_file_is_exit_2(command, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "sub"
    args = {"plan": ["plan", str(TINY), "-o", str(out)],
            "emit": ["emit", str(TINY), "--target", "cortex-m7", "-o", str(out)],
            "quantize": ["quantize", str(TINY), "-o", str(blocker / "m.tflite")],
            "build": ["build", "--model", str(TINY), "-o", str(out)]}[command]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "is a file" in proc.stderr and "internal error" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write into: a read-only one (not root), or /sys (root)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    sys_folder = Path("/sys")
    if not sys_folder.is_dir() or os.access(sys_folder, os.W_OK) and _writable(sys_folder):
        pytest.skip("no folder this root process cannot write to")
    return sys_folder


def _writable(folder: Path) -> bool:
    try:
        (folder / ".mncompile-test").touch()
    except OSError:
        return False
    (folder / ".mncompile-test").unlink()
    return True


@pytest.mark.parametrize("command", ["plan", "emit", "quantize", "build"])
def test_an_unwritable_output_folder_is_refused_before_any_work(command, tmp_path):
    folder = _unwritable(tmp_path)
    args = {"plan": ["plan", str(TINY), "-o", str(folder / "p")],
            "emit": ["emit", str(TINY), "--target", "cortex-m7", "-o", str(folder / "p")],
            "quantize": ["quantize", str(TINY), "-o", str(folder / "m.tflite")],
            "build": ["build", "--model", str(TINY), "-o", str(folder / "b")]}[command]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "not writable" in proc.stderr
    assert "==> " not in proc.stderr  # no stage started: refused before any work


def _with_sidecar(tmp_path: Path, document) -> Path:
    model = tmp_path / "m.tflite"
    model.write_bytes(TINY.read_bytes())
    (tmp_path / "m.tflite.json").write_text(json.dumps(document), encoding="utf-8")
    return model


def test_a_sidecar_that_is_a_list_is_exit_4(tmp_path):
    model = _with_sidecar(tmp_path, ["not", "an", "object"])
    proc = run_cli("emit", str(model), "--target", "cortex-m7", "-o", str(tmp_path / "p"))
    assert proc.returncode == 4, proc.stderr
    assert "sidecar" in proc.stderr and "JSON list" in proc.stderr
    _no_output(proc, tmp_path / "p")


def test_a_label_with_a_lone_surrogate_is_exit_4(tmp_path):
    sidecar = json.loads((REPO / "tests" / "data" / "tiny_int8.tflite.json").read_text())
    sidecar["classes"][1] = "bad\ud800label"
    model = _with_sidecar(tmp_path, sidecar)
    proc = run_cli("emit", str(model), "--target", "cortex-m7", "-o", str(tmp_path / "p"), "--backend", "aot")
    assert proc.returncode == 4, proc.stderr
    assert "class 1" in proc.stderr and "surrogate" in proc.stderr
    _no_output(proc, tmp_path / "p")


def test_the_internal_error_line_has_no_raw_markup(monkeypatch):
    """A bug (here: an injected one) is exit 1 with a readable line, and --json still one document."""
    from typer.testing import CliRunner

    import mncompile.pipeline
    from mncompile.cli.app import app

    def broken(*args, **kwargs):
        raise RuntimeError("boom [not markup]")

    monkeypatch.setattr(mncompile.pipeline, "plan", broken)
    result = CliRunner().invoke(app, ["plan", str(TINY), "--json"])
    assert result.exit_code == 1
    assert "[bold red]" not in result.stderr and "[/]" not in result.stderr
    assert "internal error: RuntimeError: boom [not markup]" in result.stderr
    assert json.loads(result.stdout) == {"error": "internal", "message": "RuntimeError: boom [not markup]",
                                         "hint": None, "exit_code": 1}


def test_plan_for_an_npu_target_with_a_relative_out_from_another_folder(tmp_path):
    """The README's own example: Vela's outputs land in OUT/npu, not in a nested copy of OUT."""
    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli("plan", str(TINY), "-o", "rel/out", "--target", "ethos-u55-128", "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    npu = work / "rel" / "out" / "npu"
    assert sorted(p.name for p in npu.iterdir()) == ["tiny_int8_summary_Ethos_U55_High_End_Embedded.csv",
                                                     "tiny_int8_vela.tflite", "vela.log"]
    assert json.loads(proc.stdout)["npu"]["model"] == "rel/out/npu/tiny_int8_vela.tflite"
