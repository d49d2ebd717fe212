"""``--golden-images DIR``: the user's own pictures as golden vectors.

DIR holds image files (.png, .jpg, .jpeg, .bmp), directly or in class folders
DIR/<label>/. A class folder named after one of the model's labels gives its
images that true class; loose files and other folders have none (-1). Images are
taken round-robin over the folders (loose files first), so different classes
appear, in sorted order within each. Every file is decoded before any is used: an
unreadable one is a `DatasetError` that names it, and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mncompile.errors import DatasetError
from mncompile.model.datasets import IMAGE_SUFFIXES
from mncompile.progress import Reporter


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _groups(root: Path) -> list[tuple[str | None, list[Path]]]:
    if not root.exists():
        raise DatasetError(f"golden image folder {root} does not exist",
                           hint="pass a folder of .png/.jpg/.jpeg/.bmp files (or of class folders of them)")
    if not root.is_dir():
        raise DatasetError(f"--golden-images {root} is not a folder",
                           hint="pass a folder of .png/.jpg/.jpeg/.bmp files (or of class folders of them)")
    groups: list[tuple[str | None, list[Path]]] = [(None, _images_in(root))]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        groups.append((sub.name, _images_in(sub)))
    groups = [(name, files) for name, files in groups if files]
    if not groups:
        raise DatasetError(f"no images in {root}", hint="put .png/.jpg/.jpeg/.bmp files in it, or in class folders "
                                                        "named after the labels")
    return groups


def check_golden_images(root: str | Path) -> Path:
    """`root` as a Path when it is a folder holding images (DatasetError otherwise): checked
    before slow work starts; the images themselves are decoded when the golden vectors are made."""
    _groups(Path(root))
    return Path(root)


def _decode(path: Path) -> np.ndarray:
    """The picture as 8-bit RGB (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    from mncompile.model.datasets import _open_as

    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            return np.asarray(_open_as(img, "RGB", path), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot read golden image {path}: {exc}", hint="delete or replace that file") from None


def read_golden_images(root: Path, count: int, class_names: tuple[str, ...],
                       reporter: Reporter) -> tuple[list[np.ndarray], tuple[int, ...], tuple[str, ...]]:
    """Up to `count` pictures of `root` (RGB uint8 at their own size), their true classes (-1:
    unknown) and their paths relative to `root`."""
    root = Path(root)
    groups = _groups(root)
    unknown = [name for name, _ in groups if name is not None and name not in class_names]
    if unknown:
        reporter.info(f"golden image folder(s) {', '.join(unknown)} in {root} match no label "
                      f"({', '.join(class_names)}): their true class is unknown")
    # every file is decoded first: a broken one fails before anything is used
    decoded = {path: _decode(path) for _, files in groups for path in files}
    picked: list[tuple[str | None, Path]] = []
    position = [0] * len(groups)
    while len(picked) < count and any(position[g] < len(files) for g, (_, files) in enumerate(groups)):
        for g, (name, files) in enumerate(groups):
            if len(picked) < count and position[g] < len(files):
                picked.append((name, files[position[g]]))
                position[g] += 1
    left = len(decoded) - len(picked)
    if left:
        reporter.info(f"{left} of the {len(decoded)} images in {root} are not used: --golden {count} takes "
                      f"{len(picked)}")
    labels = tuple(class_names.index(name) if name in class_names else -1 for name, _ in picked)
    files = tuple(path.relative_to(root).as_posix() for _, path in picked)
    return [decoded[path] for _, path in picked], labels, files
