"""Proof from the pixel: the preprocessing contract in projects, golden frames, the camera path on QEMU.

The device converts raw camera frames with firmware/preprocess and must produce exactly the
input tensor the host's NumPy reference gives (tests/test_camera.py proves C == NumPy on the
host, against Pillow and TensorFlow); here the firmware does it on QEMU's Cortex-M boards and
the TFLM host interpreter's outputs for those tensors are the expected outputs. Models are made
by tests/tflite_writer.py (no fetched files); the MLPerf VWW model is used when ../shared/data
is there.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tflite_writer as writer
from conftest import run_cli

QEMU_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")  # mps2-an386/an500/an505, mps3-an547
VWW_QUANT = (1.0 / 255.0, -128)

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm and arm-none-eabi-gcc are needed to run firmware")


def _conv_model(channels: int = 3, side: int = 16, in_quant=VWW_QUANT) -> bytes:
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, size=(4, 3, 3, channels)).astype(np.int8)
    return writer.conv2d((1, side, side, channels), in_quant, w, 0.004, rng.integers(-500, 500, 4).astype(np.int32),
                         (0.05, 3), stride=(2, 2))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("camera-models")
    files = {"rgb": _conv_model(3), "gray": _conv_model(1),
             "float_in": writer.quantize((1, 12, 12, 3), (2.0 / 255.0, -1))}
    out = {}
    for name, data in files.items():
        out[name] = folder / f"{name}.tflite"
        out[name].write_bytes(data)
    return out


def _manifest(project: Path) -> dict:
    return json.loads((project / "mncompile.json").read_text(encoding="utf-8"))


def _emit(model: Path, out: Path, *args: str, target: str = "cortex-m7", backend: str = "aot"):
    return run_cli("emit", str(model), "--target", target, "-o", str(out), "--backend", backend, *args)


# ---------------------------------------------------------------------------------------------
# the contract in the project


@pytest.mark.parametrize("backend", ["aot", "tflm"])
def test_int8_input_without_sidecar_maps_pixels_onto_its_quantization_range(models, tmp_path, backend):
    """VWW's input quantization (1/255, -128) without a sidecar: x = pixel / 255, [0, 1], not the default."""
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, backend=backend)
    assert proc.returncode == 0, proc.stderr
    prep = _manifest(out)["preprocessing"]
    assert prep["range"] == [[0.0, 1.0]] and prep["offset"] == 0.0 and "quantization" in prep["source"]
    settings = (out / "src" / "model_settings.h").read_text()
    if backend == "aot":
        assert "#define MODEL_PIXEL_SCALE 0.00392156886f" in settings and "#define MODEL_PIXEL_OFFSET 0.0f" in settings
    else:
        assert "kPixelScale[1] = { 0.00392156886f }" in settings and "kPixelOffset[1] = { 0.0f }" in settings
    lut = (out / "src" / "model_input.c").read_text()
    body = lut[lut.index("{") + 1:lut.index("};")]
    np.testing.assert_array_equal([int(v) for v in body.replace("\n", "").split(",") if v.strip()],
                                  np.tile(np.arange(256) - 128, 3))  # pixel p is level p - 128 on every channel
    golden = _manifest(out)["golden"]
    assert "random pixels" in golden["warning"] and "warning:" in proc.stderr  # noise, said so


def test_vww_emit_without_sidecar_maps_pixels_onto_zero_one(shared_data, tmp_path):
    out = tmp_path / "vww"
    proc = _emit(shared_data / "vww_96_int8.tflite", out)
    assert proc.returncode == 0, proc.stderr
    prep = _manifest(out)["preprocessing"]
    assert prep["range"] == [[0.0, 1.0]] and prep["scale"] == pytest.approx(1 / 255.0)
    assert "x = pixel * 0.00392157 (0..255 -> [0, 1])" in (out / "src" / "model_settings.h").read_text()


def test_contradicting_range_is_refused_naming_both(models, tmp_path):
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, "--input-range", "-1,1")
    assert proc.returncode == 2 and not out.exists()
    assert "[-1, 1]" in proc.stderr and "[0, 1]" in proc.stderr


@pytest.mark.parametrize("args,match", [
    (("--input-range", "0;1"), "--input-range"),
    (("--input-range", "1,0"), "LO < HI"),
    (("--mean", "0.5,0.5", "--std", "0.2"), "2 values"),
    (("--camera-format", "bgr24"), "unknown camera format"),
    (("--camera-size", "160"), "WIDTHxHEIGHT"),
])
def test_bad_options_exit_2_and_write_nothing(models, tmp_path, args, match):
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, *args)
    assert proc.returncode == 2, proc.stderr
    assert match in proc.stderr and not out.exists()


def test_labels_file_with_the_wrong_count_exits_2(models, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n", encoding="utf-8")  # the model has 4 outputs
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, "--labels", str(labels))
    assert proc.returncode == 2 and "3 labels and the model 4 output classes" in proc.stderr and not out.exists()


def _picture(path: Path, rgb: tuple[int, int, int], size=(40, 30)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.zeros((size[1], size[0], 3), np.uint8)
    x[...] = rgb
    x[: size[1] // 2, : size[0] // 3] = 255 - np.asarray(rgb, np.uint8)  # some structure to resize
    Image.fromarray(x, "RGB").save(path)


def test_unreadable_golden_image_exits_3_naming_it(models, tmp_path):
    photos = tmp_path / "photos"
    _picture(photos / "a.png", (10, 200, 30))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, "--golden-images", str(photos))
    assert proc.returncode == 3 and "broken.jpg" in proc.stderr and not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _emit(models["rgb"], out, "--golden-images", str(empty))
    assert proc.returncode == 3 and "no images" in proc.stderr and not out.exists()


def test_golden_images_round_robin_over_class_folders_with_true_labels(models, tmp_path):
    photos = tmp_path / "photos"
    _picture(photos / "loose.png", (0, 0, 0))
    for k, name in enumerate(("cat", "dog", "owl")):
        for i in range(3):
            _picture(photos / name / f"{i}.png", (40 * k + 20 * i, 90, 200 - 30 * k))
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nowl\nyak\n", encoding="utf-8")
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, "--golden-images", str(photos), "--labels", str(labels), "--golden", "5")
    assert proc.returncode == 0, proc.stderr
    golden = _manifest(out)["golden"]
    assert golden["files"] == ["loose.png", "cat/0.png", "dog/0.png", "owl/0.png", "cat/1.png"]
    assert golden["labels"] == [-1, 0, 1, 2, 0] and "warning" not in golden
    assert _manifest(out)["model"]["classes"] == ["cat", "dog", "owl", "yak"]


def test_dataset_golden_vectors_are_stratified(tmp_path):
    """--dataset digits --golden 4: four different classes (evenly spaced picks could repeat one)."""
    from mncompile.model.datasets import load_dataset
    from mncompile.validate.golden import stratified_pick

    data = load_dataset("digits", 8, 1)
    pick = stratified_pick(data.y_val, 4)
    assert len(set(data.y_val[pick].tolist())) == 4
    pick = stratified_pick(data.y_val, 25)
    counts = np.bincount(data.y_val[pick], minlength=10)
    assert counts.min() >= 2 and counts.max() <= 3


# ---------------------------------------------------------------------------------------------
# on the device


def _run(project: Path):
    proc = run_cli("run", str(project), "--json")
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)


@needs_qemu
@pytest.mark.parametrize("target", QEMU_TARGETS)
def test_camera_path_is_bit_exact_on_every_qemu_board(models, tmp_path, target):
    """RGB565, YUV422 and RGB888 frames of 30x22 (an odd ratio), resized bilinearly to 16x16, on the device."""
    photos = tmp_path / "photos"
    _picture(photos / "one" / "a.png", (200, 40, 90), size=(61, 47))
    _picture(photos / "two" / "b.png", (20, 160, 240), size=(33, 80))
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, "--golden-images", str(photos), "--camera-format", "rgb565,yuv422,rgb888",
                 "--camera-size", "30x22", target=target)
    assert proc.returncode == 0, proc.stderr
    assert _manifest(out)["golden"]["camera"]["frame_bytes"] == [30 * 22 * 2, 30 * 22 * 2, 30 * 22 * 3] * 2
    proc, doc = _run(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["golden"]["passed"] == 6 and doc["camera_path"]["frames"] == 6


@needs_qemu
def test_gray_model_from_yuv422_and_rgb565be_nearest(models, tmp_path):
    """A 1-channel model: Y of YUV422 as it is, luma of big-endian RGB565; nearest resize, upscaling."""
    out = tmp_path / "p"
    proc = _emit(models["gray"], out, "--camera-format", "yuv422,rgb565be", "--camera-size", "10x12",
                 "--resize", "nearest", target="cortex-m33")
    assert proc.returncode == 0, proc.stderr
    proc, doc = _run(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["golden"]["passed"] == 8 and doc["camera_path"]["frames"] == 8


@needs_qemu
def test_float_input_model_takes_the_table_as_float32(models, tmp_path):
    """A model whose own QUANTIZE reads float32: the camera path writes float32, compared bit for bit."""
    out = tmp_path / "p"
    proc = _emit(models["float_in"], out, "--camera-format", "rgb565", "--camera-size", "20x16",
                 "--input-range", "-1,1")
    assert proc.returncode == 0, proc.stderr
    assert "const float g_model_input_lut[3 * 256]" in (out / "src" / "model_input.c").read_text()
    proc, doc = _run(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["golden"]["passed"] == 4 and doc["camera_path"]["frames"] == 4


@needs_qemu
def test_a_changed_frame_byte_fails_at_the_input_not_the_output(models, tmp_path):
    """The firmware really compares its tensor with the host's: flip one frame byte and it FAILs there."""
    out = tmp_path / "p"
    assert _emit(models["rgb"], out, "--camera-format", "rgb888", "--golden", "1").returncode == 0
    source = out / "src" / "golden_data.c"
    text = source.read_text()
    start = text.index("golden_frame_0[")
    first = re.compile(r"0x([0-9a-f]{2})").search(text, start)
    flipped = f"0x{int(first.group(1), 16) ^ 0x80:02x}"
    source.write_text(text[:first.start()] + flipped + text[first.end():])
    proc, doc = _run(out)
    assert proc.returncode == 10, proc.stdout + proc.stderr
    assert "FAIL at input index 0: the camera path gave" in doc["vectors"][0]["detail"]


@needs_qemu
def test_build_float_h5_with_contract_labels_golden_images_on_qemu(trained_digits, tmp_path):
    """The issue's command: a float .h5 with no sidecar, its input range, labels and photos, through
    build --backend aot --run, from RGB565 and YUV422 frames."""
    from PIL import Image

    from mncompile.model.datasets import load_dataset
    from mncompile.tfenv import keras_module

    h5 = tmp_path / "digits.h5"
    keras_module().models.load_model(trained_digits["path"]).save(h5)
    assert not (tmp_path / "digits.h5.json").exists()
    names = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(names) + "\n", encoding="utf-8")
    data = load_dataset("digits", 64, 3)  # photos at their own size, in colour
    photos = tmp_path / "photos"
    for cls in (3, 7):
        k = int(np.flatnonzero(data.y_val == cls)[0])
        (photos / names[cls]).mkdir(parents=True)
        Image.fromarray(data.x_val[k], "RGB").save(photos / names[cls] / f"{k}.png")
    out = tmp_path / "build"
    proc = run_cli("build", "--model", str(h5), "--dataset", "digits", "--input-range", "-1,1", "--labels",
                   str(labels), "--golden-images", str(photos), "--camera-format", "rgb565,yuv422",
                   "--camera-size", "120x90", "--backend", "aot", "--run", "--layer-samples", "0",
                   "--calib-samples", "50", "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["run"]["status"] == "PASS" and doc["run"]["golden"]["passed"] == 4
    assert doc["run"]["camera_path"]["frames"] == 4
    side = json.loads((out / "model_int8.tflite.json").read_text())
    assert side["classes"] == list(names) and side["preprocessing"]["range"] == [[-1.0, 1.0]]
    manifest = _manifest(out / "firmware")
    assert manifest["preprocessing"]["source"] == "the --input-range option"
    assert manifest["golden"]["labels"] == [7, 7, 3, 3]  # class folders in sorted order: seven, three
    assert manifest["golden"]["camera"]["vector_formats"] == ["rgb565", "yuv422", "rgb565", "yuv422"]
    assert "golden_frame_3[" in (out / "firmware" / "src" / "golden_data.c").read_text()
    assert "model_input_from_frame(&frame, model_input())" in (out / "firmware" / "README.md").read_text()


@needs_qemu
def test_large_golden_frames_live_with_the_model_not_in_the_code_region(models, tmp_path):
    """Two 400x300 RGB888 frames (720 KB) exceed mps3-an547's 512 KB code region (ITCM): the golden
    data goes to the .model section (its 2 MB MODEL region), and the firmware links and passes."""
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, "--camera-size", "400x300", "--golden", "2", target="cortex-m55")
    assert proc.returncode == 0, proc.stderr
    assert 'GOLDEN_SECTION __attribute__((section(".model.golden")))' in (out / "src" / "golden_data.c").read_text()
    proc, doc = _run(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["golden"]["passed"] == 2 and doc["camera_path"]["frames"] == 2


def test_oversized_golden_frames_are_refused_before_they_are_made(models, tmp_path):
    out = tmp_path / "p"
    proc = _emit(models["rgb"], out, "--camera-size", "4096x4096", "--golden", "2")
    assert proc.returncode == 2 and "--camera-size" in proc.stderr and not out.exists()


def test_camera_options_on_a_tensor_model_are_refused(tmp_path):
    model = tmp_path / "fc.tflite"
    rng = np.random.default_rng(1)
    model.write_bytes(writer.fully_connected((1, 40), (0.05, 0), rng.integers(-127, 128, (6, 40)).astype(np.int8),
                                             0.01, None, (0.1, 0)))
    out = tmp_path / "p"
    proc = _emit(model, out, "--camera-format", "rgb565")
    assert proc.returncode == 2 and "camera frames are images" in proc.stderr and not out.exists()
