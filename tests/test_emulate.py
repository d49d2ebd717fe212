"""Host emulators: TFLM in a worker process, LiteRT, and how they agree."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import verified
from PIL import Image

from mncompile.errors import EmulatorError, InvalidOptionError
from mncompile.graph.reader import parse_model
from mncompile.validate.emulate import Job, agreement, emulate, emulate_tensors, run_tflm
from mncompile.validate.layers import single_op_model


def vww_inputs(shared_data) -> np.ndarray:
    """The two photos (grayscale, replicated to RGB) plus 14 random images, as int8:
    the model's input scale is 1/255 and zero point -128, so q = pixel - 128."""
    photos = [np.asarray(Image.open(shared_data / f"{n}.bmp").convert("RGB")) for n in ("person", "no_person")]
    rand = np.random.default_rng(0).integers(0, 256, (14, 96, 96, 3))
    pixels = np.concatenate([np.stack(photos).astype(np.int64), rand])
    return (pixels - 128).astype(np.int8)


def test_vww_runs_on_both_emulators_and_tflm_matches_litert_reference(shared_data, capsys):
    model = shared_data / "vww_96_int8.tflite"
    x = vww_inputs(shared_data)
    tflm = emulate(verified(model), x, "tflm")
    xnn = emulate(verified(model), x, "litert")
    ref = emulate(verified(model), x, "litert-ref")
    for y in (tflm, xnn, ref):
        assert y.shape == (16, 2) and y.dtype == np.int8
    # Bit-exact means array_equal: TFLM against LiteRT's reference kernels, an independent
    # implementation of the same integer semantics.
    np.testing.assert_array_equal(tflm, ref)
    # The XNNPACK path is not bit-exact; report the agreement rather than assume it.
    a = agreement(tflm, xnn)
    with capsys.disabled():
        print(f"\nVWW int8, TFLM vs LiteRT/XNNPACK: {a.identical}/{a.samples} bit-identical, "
              f"max {a.max_abs_lsb} LSB, top-1 same on {a.top1_agree}/{a.samples}")
    assert a.samples == 16
    # softmax outputs: probabilities (q + 128) / 256 of two classes sum to about 1
    assert np.all(np.abs((tflm.astype(int) + 128).sum(axis=1) - 256) <= 2)


def test_tflm_is_deterministic_across_worker_runs(quantized_digits):
    x = np.random.default_rng(3).integers(-128, 128, (5, 96, 96, 1)).astype(np.int8)
    model = verified(quantized_digits["path"])
    np.testing.assert_array_equal(emulate(model, x), emulate(model, x))


def test_every_intermediate_tensor_matches_litert_reference(quantized_digits):
    path = quantized_digits["path"]
    graph = verified(path).graph
    x = np.random.default_rng(4).integers(-128, 128, (3, 96, 96, 1)).astype(np.int8)
    tensors = tuple(op.outputs[0] for op in graph.ops)
    tflm = emulate_tensors(verified(path), x, tensors, "tflm")
    ref = emulate_tensors(verified(path), x, tensors, "litert-ref")
    for t in tensors:
        assert tflm[t].shape == (3, *graph.tensors[t].shape[1:])
        np.testing.assert_array_equal(tflm[t], ref[t], err_msg=graph.tensors[t].name)
    np.testing.assert_array_equal(tflm[-1], tflm[graph.outputs[0]])


def test_single_op_models_reproduce_the_full_model_bit_for_bit(quantized_digits, tmp_path):
    """Each op cut out of the graph, fed the exact int8 inputs it sees in the full model,
    must give exactly the full model's output for it (the basis of 'SQNR alone')."""
    path = quantized_digits["path"]
    graph = verified(path).graph
    model = parse_model(path.read_bytes())
    x = np.random.default_rng(5).integers(-128, 128, (2, 96, 96, 1)).astype(np.int8)
    full = emulate_tensors(verified(path), x, tuple(op.outputs[0] for op in graph.ops))
    full[graph.inputs[0]] = x
    jobs = []
    for op in graph.ops:
        one = verified(single_op_model(model, op.index))
        jobs.append(Job(one, tuple(full[t] for t in graph.activation_inputs(op))))
    for op, result in zip(graph.ops, run_tflm(jobs), strict=True):
        np.testing.assert_array_equal(result["output_0"], full[op.outputs[0]], err_msg=f"op {op.index}")


def test_a_tflm_abort_becomes_a_typed_error(tmp_path):
    """An untrained model's softmax input scale makes TFLM abort in Prepare. Bypassing the
    quantize checks, the emulator must turn that abort into an EmulatorError."""
    from mncompile.model.builder import build_keras
    from mncompile.model.loader import LoadedModel
    from mncompile.model.spec import MobileNetSpec
    from mncompile.quantize.checks import SOFTMAX_ABORT
    from mncompile.quantize.convert import to_int8_tflite

    spec = MobileNetSpec("v1", 0.25, 96, 1, 10)
    loaded = LoadedModel(tmp_path / "u.keras", "keras", build_keras(spec, batch_size=1), spec.input_shape, 10, None)
    calib = np.random.default_rng(0).uniform(-1, 1, (8, 96, 96, 1)).astype(np.float32)
    path = tmp_path / "untrained.tflite"
    path.write_bytes(to_int8_tflite(loaded, calib))
    graph = verified(path).graph
    softmax = next(op for op in graph.ops if op.kind == "SOFTMAX")
    assert SOFTMAX_ABORT(1.0, graph.tensors[softmax.inputs[0]].quant.scale)  # the case we guard
    with pytest.raises(EmulatorError, match="aborted"):
        emulate(verified(path), np.zeros((1, 96, 96, 1), np.int8), "tflm")


def test_inputs_are_validated(quantized_digits):
    with pytest.raises(InvalidOptionError, match="int8"):
        emulate(verified(quantized_digits["path"]), np.zeros((1, 96, 96, 1), np.float32))
    with pytest.raises(InvalidOptionError, match="96, 96, 1"):
        emulate(verified(quantized_digits["path"]), np.zeros((1, 64, 64, 1), np.int8))
    with pytest.raises(InvalidOptionError, match="litert-ref"):
        emulate(verified(quantized_digits["path"]), np.zeros((1, 96, 96, 1), np.int8), "qemu")


def test_agreement_counts():
    a = np.array([[1, 2, 3], [4, 5, 6], [0, 0, 9]], np.int8)
    b = np.array([[1, 2, 3], [4, 7, 6], [0, 10, 9]], np.int8)
    ag = agreement(a, b)
    assert (ag.samples, ag.identical, ag.max_abs_lsb, ag.top1_agree) == (3, 1, 10, 1)
