"""Calibration data: a stratified, seeded sample of the model's own training images,
preprocessed exactly as in training (the sidecar's ``x = pixel * scale + offset``). Only the
sampled images are decoded: a folder dataset's images are read on demand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mncompile.errors import InvalidOptionError
from mncompile.model.datasets import Dataset, Preprocessing

DEFAULT_CALIB_SAMPLES = 200


@dataclass(frozen=True)
class Calibration:
    dataset: str
    samples: int
    per_class: tuple[int, ...]
    preprocessing: Preprocessing
    requested: int = 0  # --calib-samples; more than `samples` when the training split is smaller

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "samples": self.samples, "requested": self.requested,
                "per_class": list(self.per_class),
                "split": "train", "preprocessing": self.preprocessing.to_json()}


def stratified_counts(class_sizes: np.ndarray, n: int) -> np.ndarray:
    """How many images of each class make `n` in proportion to `class_sizes`
    (largest remainder, at least one per class while n allows, never more than a class has)."""
    sizes = np.asarray(class_sizes, dtype=np.int64)
    n = int(min(n, sizes.sum()))
    exact = sizes * n / sizes.sum()
    counts = np.minimum(np.floor(exact).astype(np.int64), sizes)
    if n >= len(sizes):
        counts = np.maximum(counts, np.minimum(1, sizes))
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    i = 0
    while counts.sum() < n:
        c = order[i % len(order)]
        if counts[c] < sizes[c]:
            counts[c] += 1
        i += 1
    while counts.sum() > n:  # only when the at-least-one rule overshot
        c = int(np.argmax(counts))
        counts[c] -= 1
    return counts


def calibration_set(dataset: Dataset, n: int, preprocessing: Preprocessing,
                    seed: int = 0) -> tuple[np.ndarray, Calibration]:
    """(float32 images N x H x W x C, description) drawn from the training split."""
    if n < 1:
        raise InvalidOptionError(f"--calib-samples must be at least 1, not {n}")
    labels = dataset.y_train
    sizes = np.bincount(labels, minlength=len(dataset.class_names))
    counts = stratified_counts(sizes, n)
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in enumerate(counts)]
    index = np.sort(np.concatenate(chosen))
    x = preprocessing.apply(dataset.x_train[index])  # decodes these `n` images, not the split
    return x, Calibration(dataset.name, int(len(index)), tuple(int(c) for c in counts), preprocessing, int(n))
