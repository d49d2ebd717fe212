"""Streaming datasets: folder images decoded on demand, the tf.data training stream, and training
on a folder whose decoded size is more than the process may allocate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mncompile.model import stream
from mncompile.model.datasets import FolderImages, load_dataset
from mncompile.preprocess.contract import Preprocessing

REPO = Path(__file__).resolve().parents[1]
HEADROOM = 1 << 30  # address space the training process may add after importing TensorFlow
BIG_SIZE = (1024, 768)  # 2,359,296 B decoded (RGB)
BIG_COUNT = 520  # 1.23e9 B decoded: more than HEADROOM


def _draw(path: Path, size: tuple[int, int], shape: str, rng: np.random.Generator, mode: str = "RGB") -> None:
    """A filled circle or square on a dark background (compresses well as a JPEG)."""
    w, h = size
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 90, 3)))
    r = int(rng.uniform(0.2, 0.4) * min(w, h))
    cx, cy = int(rng.uniform(r, w - r)), int(rng.uniform(r, h - r))
    box = (cx - r, cy - r, cx + r, cy + r)
    colour = tuple(int(v) for v in rng.integers(160, 256, 3))
    draw = ImageDraw.Draw(img)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.convert(mode).save(path, quality=85)


def _folder(root: Path, count: int, size_of, mode: str = "RGB", suffix=lambda k: ".jpg") -> Path:
    rng = np.random.default_rng(0)
    for k in range(count):
        shape = ("circle", "square")[k % 2]
        _draw(root / shape / f"{k:05d}{suffix(k)}", size_of(k), shape, rng, mode)
    return root


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> Path:
    """24 RGB images of different sizes, JPEG and PNG."""
    return _folder(tmp_path_factory.mktemp("small") / "data", 24, lambda k: (40 + 7 * k, 30 + 5 * k),
                   suffix=lambda k: (".jpg", ".png")[k % 3 == 0])


def _reference(path: Path, resolution: int, channels: int) -> np.ndarray:
    """The pixels an image file should give, decoded here with Pillow, independently of mncompile."""
    with Image.open(path) as img:
        out = np.asarray(img.convert("L" if channels == 1 else "RGB")
                         .resize((resolution, resolution), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out.reshape(resolution, resolution, channels)


# --------------------------------------------------------------------------- lazy folder images


@pytest.mark.parametrize("channels", [3, 1])
def test_folder_pixels_equal_a_pillow_reference(small_folder, channels):
    ds = load_dataset(str(small_folder), 20, channels)
    assert isinstance(ds.x_train, FolderImages) and ds.x_train.decoded == 0  # scanned, not decoded
    assert ds.x_train.shape == (len(ds.y_train), 20, 20, channels) and ds.x_train.dtype == np.uint8
    for images, labels in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
        assert [ds.class_names[y] for y in labels] == [p.parent.name for p in images.files]
        expected = np.stack([_reference(p, 20, channels) for p in images.files])
        assert np.array_equal(images[:], expected)
    assert sorted(p.name for p in (*ds.x_train.files, *ds.x_val.files)) == \
        sorted(p.name for p in small_folder.rglob("*.*"))


def test_folder_images_index_like_an_array(small_folder):
    images = load_dataset(str(small_folder), 12, 3).x_train
    full = np.asarray(images)
    n = len(full)
    assert np.array_equal(images[3], full[3]) and np.array_equal(images[-1], full[-1])
    assert np.array_equal(images[2:9:3], full[2:9:3])
    pick = np.array([5, 0, 5, n - 1])
    assert np.array_equal(images[pick], full[pick])
    mask = np.arange(n) % 3 == 1
    assert np.array_equal(images[mask], full[mask])
    assert np.array_equal(images[..., 1], full[..., 1])
    assert np.array_equal(images[pick, 2:4], full[pick, 2:4])
    assert np.array_equal(np.stack(list(images)), full)
    assert images.decoded == n + 1 + 1 + 3 + 4 + mask.sum() + n + 4 + n
    with pytest.raises(IndexError):
        images[n]


# --------------------------------------------------------------------------- the tf.data stream


def _drain(ds) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(x), np.asarray(y)) for x, y in ds]


def test_train_stream_is_seeded_reshuffled_and_preprocessed():
    rng = np.random.default_rng(3)
    n, batch = 37, 8
    images = rng.integers(0, 256, size=(n, 4, 4, 3), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64)  # a label is its image's index: it shows the order
    prep = Preprocessing(size=4, color_mode="RGB", scale=(0.5, 1 / 255, 2.0), offset=(-3.0, 0.25, 1.0))
    first = _drain(stream.train_stream(images, labels, prep, batch, seed=7, epochs=2))
    again = _drain(stream.train_stream(images, labels, prep, batch, seed=7, epochs=2))
    other = _drain(stream.train_stream(images, labels, prep, batch, seed=8, epochs=2))
    per_epoch = stream.steps(n, batch)
    assert per_epoch == 5 and len(first) == 2 * per_epoch
    assert [len(y) for _, y in first] == [8, 8, 8, 8, 5] * 2  # batches do not straddle epochs
    orders = [np.concatenate([y for _, y in first[e * per_epoch:(e + 1) * per_epoch]]) for e in range(2)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(n))  # each epoch sees every image once
    assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(np.concatenate([y for _, y in other]), np.concatenate(orders))
    resumed = _drain(stream.train_stream(images, labels, prep, batch, seed=7, epochs=1, first_epoch=1))
    assert np.array_equal(np.concatenate([y for _, y in resumed]), orders[1])
    # the inputs: x = pixel * scale + offset in float32, bit for bit, for the image each label names
    x = np.concatenate([x for x, _ in first])
    y = np.concatenate([y for _, y in first])
    expected = images[y].astype(np.float32) * np.float32([0.5, 1 / 255, 2.0]) + np.float32([-3.0, 0.25, 1.0])
    assert x.dtype == np.float32 and np.array_equal(x.view(np.uint32), expected.view(np.uint32))


def test_eval_stream_keeps_the_order_and_decodes_batch_by_batch(small_folder, monkeypatch):
    ds = load_dataset(str(small_folder), 10, 3)
    prep = ds.preprocessing()
    sizes = []
    real = FolderImages.__getitem__
    monkeypatch.setattr(FolderImages, "__getitem__", lambda self, key: sizes.append(np.size(key)) or real(self, key))
    out = _drain(stream.eval_stream(ds.x_train, ds.y_train, prep, 5))[1:]
    assert sizes == [5, 5, 5, 5] and ds.x_train.decoded == 20  # one batch of indices at a time
    assert np.array_equal(np.concatenate([np.asarray(y) for _, y in out]), ds.y_train[5:])
    x = np.concatenate([np.asarray(x) for x, _ in out])
    assert np.array_equal(x, prep.apply(np.stack([_reference(p, 10, 3) for p in ds.x_train.files[5:]])))


# --------------------------------------------------------------------------- only what is needed is decoded


def test_calibration_decodes_only_its_sample(small_folder):
    from mncompile.quantize.calibrate import calibration_set

    ds = load_dataset(str(small_folder), 10, 3)
    x, described = calibration_set(ds, 4, ds.preprocessing())
    assert x.shape == (4, 10, 10, 3) and described.samples == 4
    assert ds.x_train.decoded == 4 and ds.x_val.decoded == 0


def test_eval_decodes_in_batches(small_folder, monkeypatch):
    from mncompile.validate import accuracy

    ds = load_dataset(str(small_folder), 10, 3)
    requests = []
    real = FolderImages.__getitem__
    monkeypatch.setattr(FolderImages, "__getitem__", lambda self, key: requests.append(key) or real(self, key))
    monkeypatch.setattr(accuracy, "EVAL_BATCH", 2)
    ran = []

    def fake_run(jobs, reporter=None, description=""):
        x = jobs[0].inputs[0]
        ran.append(len(x))
        return [{"output_0": x.reshape(len(x), -1)[:, :2].astype(np.float32)}]

    monkeypatch.setattr(accuracy, "run_litert", fake_run)
    monkeypatch.setattr(accuracy, "run_tflm", fake_run)
    prep = ds.preprocessing()
    f_out, q_out, _ = accuracy._outputs(None, None, ds.x_val, prep, SimpleNamespace(dtype="FLOAT32"), None)
    n = len(ds.y_val)
    assert max(ran) == 2 and sum(ran) == 3 * n
    assert ds.x_val.decoded == n and all(isinstance(k, slice) for k in requests)
    assert np.array_equal(f_out, prep.apply(ds.x_val[:]).reshape(n, -1)[:, :2])


def test_golden_vectors_decode_only_the_picked_images(small_folder, monkeypatch):
    from mncompile.model import loader
    from mncompile.validate import golden

    ds = load_dataset(str(small_folder), 10, 3)
    monkeypatch.setattr(loader, "dataset_for", lambda *args: ds)
    graph = SimpleNamespace(tensors=[SimpleNamespace(shape=(1, 10, 10, 3))], inputs=[0])
    pictures, indices, labels, _ = golden._from_dataset(SimpleNamespace(graph=graph, source="m"), None, 2, None)
    assert ds.x_val.decoded == 2 and len(pictures) == 2
    for picture, i in zip(pictures, indices, strict=True):
        assert np.array_equal(picture, _reference(ds.x_val.files[i], 10, 3))


# --------------------------------------------------------------------------- larger than memory

_CHILD = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path

    import numpy as np

    from mncompile.tfenv import keras_module, tf_module

    tf = tf_module()
    keras_module()
    tf.config.threading.set_intra_op_parallelism_threads(2)  # thread stacks count too: as on any machine
    tf.config.threading.set_inter_op_parallelism_threads(2)
    float(tf.reduce_sum(tf.ones(4)))  # TensorFlow's runtime and thread pools exist before the limit
    from mncompile.model.datasets import load_dataset
    from mncompile.model.spec import MobileNetSpec
    from mncompile.model.train import TrainConfig, train

    def vm(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    folder, out, headroom, decoded = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    start = vm("VmSize")
    resource.setrlimit(resource.RLIMIT_AS, (start + headroom, start + headroom))
    try:
        np.ones(decoded, np.uint8)
        bites = False
    except MemoryError:
        bites = True
    data = load_dataset(folder, 32, 3, val_fraction=0.1)
    result = train(MobileNetSpec("v1", 0.25, 32, 3, 2), data, out, TrainConfig(epochs=1))
    print(json.dumps({"bites": bites, "val_accuracy": result.val_accuracy, "growth": vm("VmPeak") - start,
                      "decoded": [data.x_train.decoded, data.x_val.decoded],
                      "split": [len(data.y_train), len(data.y_val)]}))
""")


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("big") / "data", BIG_COUNT, lambda k: BIG_SIZE)


def test_trains_on_a_folder_larger_than_the_memory_limit(big_folder, tmp_path):
    files = sorted(big_folder.rglob("*.jpg"))
    decoded = 0
    for path in files:
        with Image.open(path) as img:
            decoded += img.width * img.height * len(img.getbands())
    assert len(files) == BIG_COUNT and decoded > HEADROOM * 1.1
    out = tmp_path / "big.keras"
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(big_folder), str(out), str(HEADROOM), str(decoded)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bites"], "the address-space limit did not stop an allocation of the decoded folder"
    assert report["growth"] < HEADROOM
    n_train, n_val = report["split"]
    assert n_train + n_val == BIG_COUNT
    # every training image once; the validation images once during fit and once for the saved model
    assert report["decoded"] == [n_train, 2 * n_val]
    assert 0.0 <= report["val_accuracy"] <= 1.0 and out.is_file()


def test_an_image_that_fails_to_decode_in_the_stream_is_a_dataset_error(tmp_path):
    from mncompile.errors import DatasetError

    root = _folder(tmp_path / "d", 6, lambda k: (64, 48))
    ds = load_dataset(str(root), 8, 3, val_fraction=0.5)
    bad = sorted(root.rglob("*.jpg"))[0]
    bad.write_bytes(b"no longer an image")  # after the scan: found when the stream decodes it
    images, labels = (ds.x_train, ds.y_train) if bad in ds.x_train.files else (ds.x_val, ds.y_val)
    with pytest.raises(DatasetError) as info, stream.decode_errors(images):
        _drain(stream.eval_stream(images, labels, ds.preprocessing(), 2))
    assert str(bad) in info.value.message and info.value.hint
