"""Datasets: image folders, and two bundled sets that need no download.

A `Dataset` holds uint8 images at the model input (N, H, W, C), integer
labels, sorted class names, and a deterministic, stratified train/validation
split. The bundled sets are small in-memory arrays; a folder's images are a
`FolderImages`, decoded on demand (`images[i]`, `images[a:b]`, `images[index]`),
so a folder larger than memory trains (`mncompile.model.stream`). Pixels are mapped to the model's float
input by `Preprocessing` (`mncompile.preprocess.contract`), which travels with the
model in its sidecar so that quantization and the firmware use the very same
mapping.

- ``digits``: scikit-learn's bundled handwritten digits (1,797 real 8x8
  scans, 10 classes, 0..16 levels), scaled to 0..255 and upscaled bilinearly.
- ``shapes``: procedurally drawn circles, squares, triangles and crosses in
  random sizes, positions and colours on noisy backgrounds (seeded).
- a folder ``DIR/<class_name>/*.{png,jpg,jpeg,bmp}`` read with Pillow.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from mncompile.errors import DatasetError, InvalidOptionError
from mncompile.preprocess.contract import Preprocessing

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png")
BUNDLED = ("digits", "shapes")
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_SEED = 0
SHAPES_PER_CLASS = 250
SHAPE_CLASSES = ("circle", "cross", "square", "triangle")


class FolderImages:
    """A folder's images as a read-only uint8 array (N, H, W, C) decoded on demand.

    Indexing (an int, a slice, an index or boolean array, optionally followed by more axes)
    opens, converts and resizes just the images it selects, with the code the eager loader used,
    so pixels are the same bit for bit; nothing is cached. `np.asarray(images)` decodes them all
    (small folders, tests). `decoded` counts the images decoded so far; `failure` keeps the first
    `DatasetError`, which a training loop may see only wrapped in a TensorFlow error.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, files: tuple[Path, ...], resolution: int, channels: int) -> None:
        self.files = tuple(files)
        self.resolution, self.channels = int(resolution), int(channels)
        self.decoded = 0
        self.failure: DatasetError | None = None
        self._lock = threading.Lock()

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), self.resolution, self.resolution, self.channels)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"FolderImages({len(self.files)} images, {self.resolution}x{self.resolution}x{self.channels})"

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
            if key is Ellipsis:
                key, rest = slice(None), (Ellipsis, *rest)
        picked = np.arange(len(self.files))[key]
        if np.ndim(picked) == 0:
            out = self._decode(int(picked))
        else:
            out = np.empty((len(picked), *self.shape[1:]), np.uint8)
            for k, i in enumerate(picked.ravel()):
                out[k] = self._decode(int(i))
            if rest:
                rest = (slice(None), *rest)
        return out[rest] if rest else out

    def __iter__(self):
        return (self._decode(i) for i in range(len(self.files)))

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self, dtype=dtype)

    def subset(self, index: np.ndarray) -> FolderImages:
        """The images at `index`, still undecoded."""
        return FolderImages(tuple(self.files[int(i)] for i in index), self.resolution, self.channels)

    def _decode(self, i: int) -> np.ndarray:
        try:
            arr = decode_image(self.files[i], self.resolution, self.channels)
        except DatasetError as exc:
            self.failure = self.failure or exc
            raise
        with self._lock:
            self.decoded += 1
        return arr


Images = Union[np.ndarray, FolderImages]  # noqa: UP007 - a runtime alias


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    class_names: tuple[str, ...]
    x_train: Images  # uint8 (N, H, W, C): an array, or a folder's images decoded on demand
    y_train: np.ndarray  # int64 (N,)
    x_val: Images
    y_val: np.ndarray
    seed: int
    val_fraction: float

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[1])

    def preprocessing(self) -> Preprocessing:
        return Preprocessing.for_input(self.resolution, self.channels)

    def to_json(self) -> dict:
        return {"name": self.name, "classes": list(self.class_names), "seed": self.seed,
                "val_fraction": self.val_fraction, "train_images": int(len(self.y_train)),
                "val_images": int(len(self.y_val))}


def natural_channels(source: str) -> int:
    """Input channels a dataset has by nature: 1 for grayscale, 3 for colour."""
    if source == "digits":
        return 1
    if source == "shapes":
        return 3
    modes = {_mode_family(mode) for mode, _ in _scan_modes(_folder_files(Path(source)))}
    return 1 if modes == {"L"} else 3


def check_val_fraction(val_fraction: float) -> float:
    """--val-fraction, checked before any work."""
    if not 0.0 < val_fraction < 1.0:
        raise InvalidOptionError(f"--val-fraction {val_fraction:g} must be between 0 and 1 (exclusive)",
                                 hint="e.g. --val-fraction 0.2 holds a fifth of each class out for validation")
    return val_fraction


def load_dataset(source: str, resolution: int, channels: int | None = None, *,
                 val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = DEFAULT_SEED) -> Dataset:
    """Load `source` ("digits", "shapes" or a folder path) at `resolution` pixels."""
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"validation fraction {val_fraction} must be between 0 and 1")
    if channels is None:
        channels = natural_channels(source)
    if source == "digits":
        images, labels, names = _digits(resolution, channels)
    elif source == "shapes":
        images, labels, names = _shapes(resolution, channels, seed)
    else:
        images, labels, names = _folder(Path(source), resolution, channels)
    train, val = stratified_split(labels, val_fraction, seed, names)
    x_train, x_val = ((images.subset(train), images.subset(val)) if isinstance(images, FolderImages)
                      else (images[train], images[val]))
    return Dataset(name=source if source in BUNDLED else str(Path(source)),
                   class_names=names, x_train=x_train, y_train=labels[train],
                   x_val=x_val, y_val=labels[val], seed=seed, val_fraction=val_fraction)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int,
                     names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per class: shuffle with `seed`, put round(n * fraction) (at least 1) into validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in range(len(names)):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < 2:
            raise DatasetError(
                f"class {names[cls]!r} has {len(idx)} image(s); a train/validation split "
                "needs at least 2 per class", hint="add images to that class or remove it")
        idx = rng.permutation(idx)
        n_val = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _to_channels(gray_or_rgb: np.ndarray, channels: int) -> np.ndarray:
    if gray_or_rgb.ndim == 3:  # (N, H, W) grayscale
        gray_or_rgb = gray_or_rgb[..., None]
    if gray_or_rgb.shape[-1] == channels:
        return gray_or_rgb
    if channels == 3:
        return np.repeat(gray_or_rgb, 3, axis=-1)
    # ITU-R 601-2 luma, as Pillow's convert("L")
    rgb = gray_or_rgb.astype(np.float32)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)[..., None]


def _digits(resolution: int, channels: int):
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    scans = np.clip(np.round(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    images = np.stack([np.asarray(Image.fromarray(s).resize((resolution, resolution),
                                                            Image.Resampling.BILINEAR))
                       for s in scans])
    names = tuple(str(int(n)) for n in bunch.target_names)
    return _to_channels(images, channels), bunch.target.astype(np.int64), names


def _shapes(resolution: int, channels: int, seed: int):
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed + 1_000_003)
    images, labels = [], []
    for label, shape in enumerate(SHAPE_CLASSES):
        for _ in range(SHAPES_PER_CLASS):
            bg = rng.integers(0, 256, size=3)
            fg = (bg + rng.integers(80, 176, size=3)) % 256
            noise = rng.normal(0.0, 12.0, size=(resolution, resolution, 3))
            canvas = np.clip(bg[None, None, :] + noise, 0, 255).astype(np.uint8)
            img = Image.fromarray(canvas, "RGB")
            draw = ImageDraw.Draw(img)
            r = rng.uniform(0.18, 0.4) * resolution
            cx, cy = rng.uniform(r, resolution - r, size=2)
            colour = tuple(int(c) for c in fg)
            if shape == "circle":
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
            elif shape == "square":
                angle = rng.uniform(0, np.pi / 2)
                pts = [(cx + r * np.cos(angle + k * np.pi / 2), cy + r * np.sin(angle + k * np.pi / 2))
                       for k in range(4)]
                draw.polygon(pts, fill=colour)
            elif shape == "triangle":
                angle = rng.uniform(0, 2 * np.pi)
                pts = [(cx + r * np.cos(angle + k * 2 * np.pi / 3), cy + r * np.sin(angle + k * 2 * np.pi / 3))
                       for k in range(3)]
                draw.polygon(pts, fill=colour)
            else:
                w = max(2, int(r / 3))
                draw.line((cx - r, cy, cx + r, cy), fill=colour, width=w)
                draw.line((cx, cy - r, cx, cy + r), fill=colour, width=w)
            images.append(np.asarray(img))
            labels.append(label)
    return _to_channels(np.stack(images), channels), np.asarray(labels, np.int64), SHAPE_CLASSES


def _folder_files(root: Path) -> list[tuple[str, list[Path]]]:
    """Sorted (class name, sorted image files) pairs; raises on structural problems."""
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist",
                           hint="pass --dataset digits, --dataset shapes, or a folder DIR/<class>/*.png")
    if not root.is_dir():
        raise DatasetError(f"dataset {root} is not a folder",
                           hint="a dataset folder holds one sub-folder of images per class")
    classes = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in sub.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.startswith("."))
        try:
            sub.name.encode("utf-8")
        except UnicodeEncodeError:
            raise DatasetError(f"class folder {sub.name!r} in {root} has a name that is not UTF-8 text",
                               hint="rename the folder: its name becomes the class label") from None
        classes.append((sub.name, files))
    if not any(files for _, files in classes):
        raise DatasetError(
            f"no images found in {root}",
            hint=f"expected {root}{os.sep}<class_name>{os.sep}*.png|jpg|jpeg|bmp, "
                 "one sub-folder per class")
    empty = [name for name, files in classes if not files]
    if empty:
        raise DatasetError(f"class folder(s) with no images in {root}: {', '.join(empty)}",
                           hint="add .png/.jpg/.jpeg/.bmp images to them or remove them")
    if len(classes) < 2:
        raise DatasetError(f"only one class ({classes[0][0]!r}) in {root}; "
                           "a classifier needs at least 2",
                           hint="add a sub-folder of images for each other class")
    return classes


def _scan_modes(classes: list[tuple[str, list[Path]]]) -> list[tuple[str, Path]]:
    from PIL import Image, UnidentifiedImageError

    seen = []
    for _, files in classes:
        for path in files:
            try:
                with Image.open(path) as img:
                    img.verify()
                with Image.open(path) as img:
                    seen.append((img.mode, path))
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
                raise DatasetError(f"cannot read image {path}: {exc}",
                                   hint="delete or replace that file") from None
    return seen


_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L")


def _mode_family(mode: str) -> str:
    """Modes that load the same way count as one: 1-bit, 8-bit and 16-bit gray are "L"."""
    return "L" if mode in ("1", "L", *_SIXTEEN_BIT) else mode


def _open_as(img, target: str, path: Path):
    """Convert to `target` ("L" or "RGB"); 16-bit gray is scaled to 8 bits, not clipped."""
    from PIL import Image

    if img.mode in _SIXTEEN_BIT:
        wide = np.asarray(img, dtype=np.uint32)
        img = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")
    elif img.mode in ("I", "F"):
        raise DatasetError(f"image {path} has mode {img.mode} (32-bit), which has no defined "
                           "8-bit scaling", hint="convert it to 8-bit L or RGB first")
    return img.convert(target)


def _folder(root: Path, resolution: int, channels: int):
    """Scan a folder (files, labels, the mode check); its images are decoded on demand."""
    classes = _folder_files(root)
    seen = _scan_modes(classes)
    modes: dict[str, list[Path]] = {}
    for mode, path in seen:
        modes.setdefault(_mode_family(mode), []).append(path)
    if len(modes) > 1:
        detail = "; ".join(f"{mode}: {len(paths)} file(s), e.g. {paths[0]}"
                           for mode, paths in sorted(modes.items()))
        raise DatasetError(
            f"images in {root} mix modes ({detail})",
            hint="convert every image to one mode first (all RGB or all grayscale 'L'), "
                 "e.g. with Pillow's Image.convert")
    for mode, paths in modes.items():  # found now, not when training reaches them
        if mode in ("I", "F"):
            raise DatasetError(f"image {paths[0]} has mode {mode} (32-bit), which has no defined 8-bit scaling",
                               hint="convert it to 8-bit L or RGB first")
    files = tuple(path for _, paths in classes for path in paths)
    labels = np.asarray([label for label, (_, paths) in enumerate(classes) for _ in paths], np.int64)
    names = tuple(name for name, _ in classes)
    return FolderImages(files, resolution, channels), labels, names


def decode_image(path: Path, resolution: int, channels: int) -> np.ndarray:
    """One image file as uint8 (resolution, resolution, channels): converted to L or RGB,
    then resized with Pillow's bilinear filter."""
    from PIL import Image

    target = "L" if channels == 1 else "RGB"
    try:
        with Image.open(path) as img:
            img = _open_as(img, target, path).resize((resolution, resolution), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot decode image {path}: {exc}", hint="delete or replace that file") from None
    return arr if arr.ndim == 3 else arr[..., None]
