"""Tests for mncompile.model.datasets: bundled sets, image folders, bad data, preprocessing."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mncompile.errors import DatasetError
from mncompile.model.datasets import Preprocessing, load_dataset, natural_channels

# --------------------------------------------------------------------------- helpers


def _digits_reference():
    """sklearn's digits, read independently of the code under test."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    levels = bunch.images.astype(np.uint8)  # 0..16, exact (the file stores integers)
    assert np.array_equal(levels, bunch.images)
    return levels, bunch.target.astype(np.int64)


def _recover_indices(x8: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Map each loaded 8x8 image (0..255) back to its index in sklearn's digits.

    The loader scales 0..16 to 0..255; dividing back and rounding recovers the
    original level whatever rounding the loader used (k*255/16 is never within
    0.5 of another level's value).
    """
    lookup = {img.tobytes(): i for i, img in enumerate(levels)}
    assert len(lookup) == len(levels), "reference digits are expected to be unique"
    recovered = np.round(x8[..., 0].astype(np.float64) * 16.0 / 255.0).astype(np.uint8)
    idx = np.array([lookup[img.tobytes()] for img in recovered])
    # the scaling itself: every pixel is the level * 255/16, rounded one way or the other
    expected = levels[idx].astype(np.float64) * 255.0 / 16.0
    assert np.all(np.abs(x8[..., 0].astype(np.float64) - expected) <= 0.5 + 1e-9)
    return idx


def _raises_dataset_error(*args, **kwargs) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        load_dataset(*args, **kwargs)
    err = info.value
    assert err.exit_code == 3
    return err


def _save(path: Path, mode: str, value, size=(20, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}[path.suffix.lower()]
    Image.new(mode, size, value).save(path, format=fmt)
    return path


def _message_without(err: DatasetError, root: Path) -> str:
    """The message with the (test-named) tmp path removed, so names can't match by accident."""
    return err.message.replace(str(root), "<root>")


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits_ref():
    return _digits_reference()


@pytest.fixture(scope="module")
def digits96():
    return load_dataset("digits", 96)


@pytest.fixture(scope="module")
def digits96_again():
    return load_dataset("digits", 96)


@pytest.fixture(scope="module")
def digits8():
    # at 8x8 the resize is the identity, so images can be traced back to sklearn's samples
    return load_dataset("digits", 8)


@pytest.fixture(scope="module")
def digits8_seed1():
    return load_dataset("digits", 8, seed=1)


def test_digits_shapes_and_classes(digits96):
    ds = digits96
    assert ds.x_train.dtype == np.uint8 and ds.x_val.dtype == np.uint8
    assert ds.x_train.shape[1:] == (96, 96, 1)
    assert ds.x_val.shape[1:] == (96, 96, 1)
    assert ds.x_train.shape[0] == len(ds.y_train)
    assert ds.x_val.shape[0] == len(ds.y_val)
    assert len(ds.y_train) + len(ds.y_val) == 1797
    assert ds.class_names == tuple(str(d) for d in range(10))
    assert ds.channels == 1 and ds.resolution == 96
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert ds.name == "digits"
    assert natural_channels("digits") == 1
    pre = ds.preprocessing()
    assert (pre.size, pre.color_mode) == (96, "L")
    meta = ds.to_json()
    assert meta["train_images"] + meta["val_images"] == 1797
    assert meta["classes"] == [str(d) for d in range(10)]


def test_digits_split_is_stratified(digits96, digits_ref):
    _, targets = digits_ref
    per_class = np.bincount(targets, minlength=10)
    assert per_class.sum() == 1797
    val_counts = np.bincount(digits96.y_val, minlength=10)
    train_counts = np.bincount(digits96.y_train, minlength=10)
    assert np.all(val_counts > 0), "every class must be present in validation"
    expected_val = np.array([round(0.2 * n) for n in per_class])
    assert val_counts.tolist() == expected_val.tolist()
    assert (train_counts + val_counts).tolist() == per_class.tolist()


def test_digits_train_val_disjoint_and_cover_all(digits8, digits_ref):
    levels, targets = digits_ref
    train_idx = _recover_indices(digits8.x_train, levels)
    val_idx = _recover_indices(digits8.x_val, levels)
    # labels travel with their images
    assert np.array_equal(targets[train_idx], digits8.y_train)
    assert np.array_equal(targets[val_idx], digits8.y_val)
    # no sample twice, none in both, all of them used
    assert len(set(train_idx.tolist())) == len(train_idx)
    assert len(set(val_idx.tolist())) == len(val_idx)
    assert set(train_idx.tolist()).isdisjoint(val_idx.tolist())
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(1797))
    # per class, validation holds round(20 %) of that class's samples
    for cls in range(10):
        n = int(np.sum(targets == cls))
        assert int(np.sum(targets[val_idx] == cls)) == round(0.2 * n)


def test_digits_96_is_bilinear_upscale_of_same_split(digits96, digits8):
    # the split depends on labels and seed only, not on resolution
    assert np.array_equal(digits96.y_train, digits8.y_train)
    assert np.array_equal(digits96.y_val, digits8.y_val)
    for small, big in ((digits8.x_train, digits96.x_train), (digits8.x_val, digits96.x_val)):
        for i in (0, 1, len(small) // 2, len(small) - 1):
            up = np.asarray(Image.fromarray(small[i, :, :, 0]).resize((96, 96),
                                                                      Image.Resampling.BILINEAR))
            assert np.array_equal(up, big[i, :, :, 0])


def test_digits_deterministic(digits96, digits96_again):
    assert np.array_equal(digits96.x_train, digits96_again.x_train)
    assert np.array_equal(digits96.y_train, digits96_again.y_train)
    assert np.array_equal(digits96.x_val, digits96_again.x_val)
    assert np.array_equal(digits96.y_val, digits96_again.y_val)


def test_digits_other_seed_gives_other_split(digits8, digits8_seed1, digits_ref):
    levels, targets = digits_ref
    val0 = set(_recover_indices(digits8.x_val, levels).tolist())
    val1 = set(_recover_indices(digits8_seed1.x_val, levels).tolist())
    assert val0 != val1
    # still stratified with the same per-class sizes
    assert np.array_equal(np.bincount(digits8.y_val), np.bincount(digits8_seed1.y_val))
    assert digits8_seed1.seed == 1


def test_digits_three_channels_replicate_gray():
    gray = load_dataset("digits", 24)
    rgb = load_dataset("digits", 24, channels=3)
    assert gray.x_train.shape[-1] == 1
    assert rgb.x_train.shape == gray.x_train.shape[:-1] + (3,)
    assert rgb.x_val.shape == gray.x_val.shape[:-1] + (3,)
    assert np.array_equal(rgb.y_train, gray.y_train)
    for c in range(3):
        assert np.array_equal(rgb.x_train[..., c], gray.x_train[..., 0])
        assert np.array_equal(rgb.x_val[..., c], gray.x_val[..., 0])
    assert rgb.preprocessing().color_mode == "RGB"


# --------------------------------------------------------------------------- shapes


@pytest.fixture(scope="module")
def shapes64():
    return load_dataset("shapes", 64)


def _image_hashes(ds) -> Counter:
    return Counter(img.tobytes() for img in np.concatenate([ds.x_train, ds.x_val]))


def test_shapes_basic(shapes64):
    ds = shapes64
    assert len(ds.class_names) == 4
    assert ds.class_names == tuple(sorted(ds.class_names))
    assert ds.x_train.dtype == np.uint8
    assert ds.x_train.shape[1:] == (64, 64, 3) and ds.x_val.shape[1:] == (64, 64, 3)
    assert ds.channels == 3 and natural_channels("shapes") == 3
    counts = np.bincount(ds.y_train, minlength=4) + np.bincount(ds.y_val, minlength=4)
    assert counts.tolist() == [250] * 4
    assert np.bincount(ds.y_val, minlength=4).tolist() == [50] * 4
    # images are distinct (random noise) and not all grey: the colour is real
    assert len(_image_hashes(ds)) == 1000
    x = ds.x_train.astype(np.int16)
    assert np.abs(x[..., 0] - x[..., 1]).mean() > 1


def test_shapes_deterministic(shapes64):
    again = load_dataset("shapes", 64)
    assert np.array_equal(shapes64.x_train, again.x_train)
    assert np.array_equal(shapes64.x_val, again.x_val)
    assert np.array_equal(shapes64.y_train, again.y_train)
    assert np.array_equal(shapes64.y_val, again.y_val)


def test_shapes_other_seed_gives_other_images(shapes64):
    other = load_dataset("shapes", 64, seed=7)
    a, b = _image_hashes(shapes64), _image_hashes(other)
    # not merely a different split of the same images: the pictures themselves differ
    assert a != b
    assert not set(a) & set(b)


# --------------------------------------------------------------------------- folders


@pytest.fixture()
def rgb_folder(tmp_path) -> Path:
    root = tmp_path / "data"
    # created in non-sorted order; class indices must follow sorted folder names
    for i, ext in enumerate((".png", ".jpg", ".bmp", ".PNG")):
        _save(root / "zebra" / f"z{i}{ext}", "RGB", (20, 20, 220), size=(40 + i, 30))
        _save(root / "apple" / f"a{i}{ext}", "RGB", (220, 20, 20), size=(17, 23 + i))
    # things that must be ignored
    (root / "apple" / "notes.txt").write_text("not an image")
    (root / "zebra" / "labels.csv").write_text("a,b\n")
    (root / "apple" / ".hidden.png").write_bytes(b"garbage, would fail if read")
    (root / "zebra" / ".DS_Store").write_bytes(b"\x00\x01\x02")
    (root / "README.md").write_text("top-level file, not a class")
    _save(root / ".cache" / "c0.png", "RGB", (0, 255, 0))
    _save(root / ".cache" / "c1.png", "RGB", (0, 255, 0))
    return root


def test_folder_rgb_loads_with_sorted_labels(rgb_folder):
    assert natural_channels(str(rgb_folder)) == 3
    ds = load_dataset(str(rgb_folder), 16)
    assert ds.class_names == ("apple", "zebra")
    assert ds.x_train.shape[1:] == (16, 16, 3) and ds.x_val.shape[1:] == (16, 16, 3)
    assert ds.x_train.dtype == np.uint8
    # 4 images per class; hidden/non-image files and the hidden folder are not counted
    assert len(ds.y_train) + len(ds.y_val) == 8
    assert np.bincount(ds.y_val, minlength=2).tolist() == [1, 1]
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
        for img, label in zip(x, y, strict=True):
            mean = img.reshape(-1, 3).mean(axis=0)
            red = mean[0] > 150 and mean[2] < 80
            blue = mean[2] > 150 and mean[0] < 80
            assert red or blue
            assert label == (0 if red else 1)  # apple (red) is class 0, zebra (blue) class 1
    assert ds.preprocessing().color_mode == "RGB"


def test_folder_resolution_is_requested_size(rgb_folder):
    ds = load_dataset(str(rgb_folder), 9)
    assert ds.x_train.shape[1:3] == (9, 9) and ds.resolution == 9


def test_folder_grayscale(tmp_path):
    root = tmp_path / "gray"
    for i, ext in enumerate((".png", ".jpg", ".bmp")):
        _save(root / "dark" / f"d{i}{ext}", "L", 30)
        _save(root / "light" / f"l{i}{ext}", "L", 220)
    (root / "dark" / "info.txt").write_text("ignored")
    assert natural_channels(str(root)) == 1
    ds = load_dataset(str(root), 12)
    assert ds.class_names == ("dark", "light")
    assert ds.x_train.shape[1:] == (12, 12, 1)
    assert len(ds.y_train) + len(ds.y_val) == 6
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
        for img, label in zip(x, y, strict=True):
            assert label == (0 if img.mean() < 128 else 1)
    assert ds.preprocessing().color_mode == "L"
    # the same folder can be asked for 3 channels: gray replicated
    ds3 = load_dataset(str(root), 12, channels=3)
    assert ds3.x_train.shape[1:] == (12, 12, 3)
    assert np.array_equal(ds3.x_train[..., 1], ds.x_train[..., 0])


# --------------------------------------------------------------------------- bad data


def test_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    err = _raises_dataset_error(str(missing), 32)
    assert "does not exist" in err.message and str(missing) in err.message
    assert err.hint


def test_path_is_a_file(tmp_path):
    f = tmp_path / "data.png"
    _save(f, "RGB", (1, 2, 3))
    err = _raises_dataset_error(str(f), 32)
    assert "not a folder" in err.message and str(f) in err.message
    assert err.hint


def test_empty_folder(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    err = _raises_dataset_error(str(root), 32)
    assert "no images" in err.message
    assert err.hint


def test_folder_with_only_non_images(tmp_path):
    root = tmp_path / "noimg"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "x.txt").write_text("x")
    (root / "b" / ".y.png").write_bytes(b"hidden")
    err = _raises_dataset_error(str(root), 32)
    assert "no images" in err.message


def test_class_folder_without_images(tmp_path):
    root = tmp_path / "d"
    _save(root / "cats" / "c0.png", "L", 10)
    _save(root / "cats" / "c1.png", "L", 20)
    (root / "giraffes").mkdir()
    (root / "giraffes" / "readme.txt").write_text("no pictures yet")
    err = _raises_dataset_error(str(root), 32)
    msg = _message_without(err, root)
    assert "no images" in msg
    assert "giraffes" in msg and "cats" not in msg
    assert err.hint


def test_only_one_class(tmp_path):
    root = tmp_path / "d"
    _save(root / "lonely" / "a.png", "L", 10)
    _save(root / "lonely" / "b.png", "L", 20)
    err = _raises_dataset_error(str(root), 32)
    msg = _message_without(err, root)
    assert "one class" in msg and "lonely" in msg
    assert err.hint


@pytest.mark.parametrize("channels", [None, 1])
def test_corrupt_image(tmp_path, channels):
    root = tmp_path / "d"
    _save(root / "a" / "a0.png", "L", 10)
    _save(root / "a" / "a1.png", "L", 10)
    _save(root / "b" / "b0.png", "L", 200)
    bad = root / "b" / "x.png"
    bad.write_bytes(b"this is not a PNG file at all \x00\xff" * 10)
    err = _raises_dataset_error(str(root), 32, channels=channels)
    assert str(bad) in err.message
    assert "cannot" in err.message
    assert err.hint


def test_truncated_image(tmp_path):
    root = tmp_path / "d"
    _save(root / "a" / "a0.png", "L", 10)
    _save(root / "a" / "a1.png", "L", 10)
    _save(root / "b" / "b0.png", "L", 200)
    good = _save(root / "b" / "b1.png", "L", 200, size=(64, 64))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    err = _raises_dataset_error(str(root), 32)
    assert str(good) in err.message


def test_class_with_single_image(tmp_path):
    root = tmp_path / "d"
    _save(root / "many" / "m0.png", "L", 10)
    _save(root / "many" / "m1.png", "L", 10)
    _save(root / "many" / "m2.png", "L", 10)
    _save(root / "single" / "s0.png", "L", 200)
    err = _raises_dataset_error(str(root), 32)
    msg = _message_without(err, root)
    assert "'single'" in msg and "'many'" not in msg
    assert "1 image" in msg
    assert err.hint


@pytest.mark.parametrize("channels", [None, 3])
def test_mixed_modes(tmp_path, channels):
    root = tmp_path / "d"
    _save(root / "a" / "a0.png", "RGB", (200, 10, 10))
    _save(root / "a" / "a1.png", "RGB", (200, 10, 10))
    _save(root / "b" / "b0.png", "L", 50)
    _save(root / "b" / "b1.png", "L", 50)
    err = _raises_dataset_error(str(root), 32, channels=channels)
    msg = _message_without(err, root)
    assert "mode" in msg
    assert re.search(r"\bRGB\b", msg) and re.search(r"\bL\b", msg)
    assert err.hint


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_val_fraction(fraction):
    err = _raises_dataset_error("digits", 8, val_fraction=fraction)
    assert str(fraction) in err.message


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    root = tmp_path / "d"
    for cls, level in (("dark", 32 * 257), ("mid", 128 * 257)):
        for i in range(2):
            p = root / cls / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((10, 10), level, np.uint16)).save(p)
    assert natural_channels(str(root)) == 1
    ds = load_dataset(str(root), 10)
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    assert abs(x[y == 0].mean() - 32) < 3
    assert abs(x[y == 1].mean() - 128) < 3


# --------------------------------------------------------------------------- preprocessing


def test_preprocessing_default_maps_to_minus_one_one():
    pre = Preprocessing(size=96, color_mode="L")
    out = pre.apply(np.array([0, 255, 128], dtype=np.uint8))
    assert out.dtype == np.float32
    assert out[0] == np.float32(-1.0)
    assert out[1] == np.float32(1.0)
    assert -1.0 < out[2] < 1.0
    assert out[2] == pytest.approx(128 / 127.5 - 1.0, abs=1e-6)
    # shape is preserved
    img = np.zeros((2, 4, 4, 1), np.uint8)
    assert pre.apply(img).shape == img.shape


@pytest.mark.parametrize("pre", [
    Preprocessing(size=96, color_mode="L"),
    Preprocessing(size=32, color_mode="RGB", scale=1 / 255.0, offset=0.0),
    Preprocessing(size=7, color_mode="RGB", scale=0.0123456789, offset=-0.5, resample="bilinear"),
])
def test_preprocessing_json_round_trip(pre):
    data = pre.to_json()
    assert data["size"] == [pre.size, pre.size]
    assert data["color_mode"] == pre.color_mode
    back = Preprocessing.from_json(json.loads(json.dumps(data)))
    assert back == pre
    assert back.scale == pre.scale and back.offset == pre.offset
    pixels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(back.apply(pixels), pre.apply(pixels))
