"""Float, post-training int8 and quantization-aware int8 accuracy, through the real CLI.

    .venv/bin/python bench/accuracy.py [--quick] [--keep DIR]

For each case: `mncompile train`, then `mncompile quantize` (post-training, 200 calibration images)
and `mncompile quantize --qat` (3 epochs), each int8 model measured by `mncompile eval` on the
validation split (float on LiteRT, int8 on the TFLM host interpreter). Cases:

- ``digits`` and ``shapes``: the bundled datasets, `train` defaults (V1 alpha 0.25, 96x96; shapes
  40 epochs: at the default 15 it is still near 40 %).
- ``textures``: a photo folder made here from scikit-image's bundled real photographs of brick,
  grass and gravel (``skimage.data``, 512x512 grayscale photos): each photo is cut into
  non-overlapping 32x32 tiles (256 a class), saved as RGB PNGs. No two images share a pixel, so the
  random train/validation split never shows the model a pixel of a validation tile; training
  augments with random shifts (`train --augment`, default 0.1). A user's small folder: 64 tiles a
  class train, the other 192 validate (`--val-fraction 0.75`).
- ``textures, pretrained``: the same folder and split from a pretrained base, `train --weights
  PATH --fine-tune-epochs 10`. PATH is a keras.applications MobileNet base (alpha 0.25, no top)
  trained here on a different real photo set: which-photo-is-this-tile over 16 other bundled
  photographs (scikit-image's astronaut, chelsea, coffee, rocket, hubble_deep_field, retina,
  camera, coins, horse, cell, moon, text, page, logo; scikit-learn's china and flower), 150
  tiles each, 40 epochs. Offline, this stands in for ImageNet weights.

``--quick`` trains fewer epochs (a smoke run, not the README's table). Prints a Markdown table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TILE = 32
TEXTURES = ("brick", "grass", "gravel")
SOURCE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "camera", "coins",
                 "horse", "cell", "moon", "text", "page", "logo")


def cli(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "mncompile", *args, "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"mncompile {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def tiles(image: np.ndarray, limit: int) -> list[np.ndarray]:
    """Non-overlapping TILE x TILE RGB tiles, row by row, at most `limit`."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    rgb = rgb[..., :3]
    h, w = rgb.shape[:2]
    out = [rgb[y:y + TILE, x:x + TILE] for y in range(0, h - TILE + 1, TILE) for x in range(0, w - TILE + 1, TILE)]
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def write_folder(root: Path, photos: dict[str, np.ndarray], limit: int) -> Path:
    from PIL import Image

    for name, image in photos.items():
        (root / name).mkdir(parents=True)
        for i, tile in enumerate(tiles(image, limit)):
            Image.fromarray(np.ascontiguousarray(tile).astype(np.uint8), "RGB").save(root / name / f"{i:03d}.png")
    return root


def texture_photos() -> dict[str, np.ndarray]:
    import skimage.data

    return {name: getattr(skimage.data, name)() for name in TEXTURES}


def source_photos() -> dict[str, np.ndarray]:
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(skimage.data, name)() for name in SOURCE_PHOTOS}
    sample = load_sample_images()
    for path, image in zip(sample.filenames, sample.images, strict=True):
        photos[Path(path).stem] = image
    return photos


def pretrain_base(folder: Path, out: Path, epochs: int) -> Path:
    """A keras.applications MobileNet alpha 0.25 base trained on `folder` (96x96 RGB, pixels to
    [-1, 1] as mncompile trains), saved with save_weights: what `train --weights PATH` takes."""
    from mncompile.model.datasets import load_dataset
    from mncompile.tfenv import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(0)
    data = load_dataset(str(folder), 96, 3)
    prep = data.preprocessing()
    base = keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, include_top=False, weights=None)
    for layer in base.layers:  # mncompile's momentum (model/builder.py): 0.99 lags on short runs
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model = keras.Sequential([keras.Input((96, 96, 3)), keras.layers.RandomTranslation(0.1, 0.1, seed=0), base,
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(len(data.class_names), activation="softmax")])
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(prep.apply(data.x_train), data.y_train, epochs=epochs, batch_size=32, verbose=0,
                        validation_data=(prep.apply(data.x_val), data.y_val))
    print(f"pretrained base on {len(data.class_names)} photos ({len(data.y_train)} tiles): validation accuracy "
          f"{history.history['val_accuracy'][-1]:.1%}", file=sys.stderr)
    base.save_weights(out)
    return out


def measure(case: str, work: Path, dataset: str, train_args: list[str], qat_epochs: int) -> dict:
    model = work / f"{case}.keras"
    started = time.perf_counter()
    trained = cli("train", "--dataset", dataset, "-o", str(model), *train_args)
    row = {"case": case, "train_s": time.perf_counter() - started, "keras_val": trained["val_accuracy"]}
    for method, extra in (("ptq", []), ("qat", ["--qat", "--qat-epochs", str(qat_epochs)])):
        int8 = work / f"{case}_{method}.tflite"
        cli("quantize", str(model), "-o", str(int8), *extra)
        report = cli("eval", str(model), str(int8), "--layer-samples", "0")
        row["float"] = report["float_accuracy"]
        row[method] = report["int8_accuracy"]
        row["samples"] = report["samples"]
    print(f"{case}: {json.dumps(row)}", file=sys.stderr)
    return row


def main() -> None:
    quick = "--quick" in sys.argv
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    epochs = ["--epochs", "3"] if quick else []
    qat_epochs = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        textures = write_folder(work / "textures", texture_photos(), 256)
        photos = write_folder(work / "photos", source_photos(), 150)
        weights = pretrain_base(photos, work / "photos_base.weights.h5", 3 if quick else 40)
        small = ["--channels", "3", "--val-fraction", "0.75"]
        rows = [measure("digits", work, "digits", epochs, qat_epochs),
                measure("shapes", work, "shapes", epochs or ["--epochs", "40"], qat_epochs),
                measure("textures", work, str(textures), [*small, *epochs], qat_epochs),
                measure("textures, pretrained", work, str(textures),
                        [*small, "--weights", str(weights), "--fine-tune-epochs", "2" if quick else "10", *epochs],
                        qat_epochs)]
    print("| case | validation images | float | PTQ int8 | QAT int8 | PTQ - float | QAT - float |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['samples']} | {r['float']:.2%} | {r['ptq']:.2%} | {r['qat']:.2%} | "
              f"{100 * (r['ptq'] - r['float']):+.2f} pp | {100 * (r['qat'] - r['float']):+.2f} pp |")


if __name__ == "__main__":
    main()
