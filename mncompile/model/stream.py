"""Streams of training batches: images are decoded as batches are needed, never a split at once.

A dataset's images (`mncompile.model.datasets`: an in-memory array, or a folder's `FolderImages`
decoded on demand) become a ``tf.data`` pipeline:

    indices -> seeded shuffle (a new order each epoch) -> batch -> decode (tf.numpy_function over
    the images, parallel, in order) -> preprocessing (x = pixel * scale + offset) -> prefetch

so only the batches in flight are held in memory. `train_stream` runs all the epochs of one
``fit`` in one dataset: the order of epoch e is ``epoch_order(n, seed, e)`` (NumPy's generator
seeded with (seed, e)), the same on every run and every worker, and ``fit`` gets
``steps_per_epoch=steps(n, batch_size)`` so that it keeps one iterator across the epochs. Under a
tf.distribute strategy Keras shards the dataset: `batch_size` is the global batch.
`eval_stream` is the unshuffled validation split. `iter_batches` is the same idea in plain NumPy
for code that does not run TensorFlow (calibration, emulators).

The random-translation augmentation stays in the training model (`mncompile.model.train`), where
Keras seeds it; the streams carry data only.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np

from mncompile.errors import DatasetError
from mncompile.model.datasets import Images
from mncompile.preprocess.contract import Preprocessing
from mncompile.tfenv import tf_module


def steps(n: int, batch_size: int) -> int:
    """Batches in one epoch of `n` images (the last one may be short)."""
    return math.ceil(n / batch_size)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch `epoch` visits `n` images: a permutation fixed by (seed, epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n).astype(np.int64)


def train_stream(images: Images, labels: np.ndarray, prep: Preprocessing, batch_size: int, *, seed: int,
                 epochs: int, first_epoch: int = 0):
    """`epochs` epochs of shuffled (inputs, labels) batches, epoch numbers from `first_epoch` on.
    Pass ``steps_per_epoch=steps(len(images), batch_size)`` to ``fit``."""
    tf = tf_module()
    n = _check(images, labels)

    def batches_of(epoch):
        order = tf.numpy_function(lambda e: epoch_order(n, seed, int(e)), [epoch], tf.int64, stateful=False)
        order.set_shape([n])
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    indices = tf.data.Dataset.range(first_epoch, first_epoch + epochs).flat_map(batches_of)
    return _decoded(tf, indices, images, labels, prep)


def eval_stream(images: Images, labels: np.ndarray, prep: Preprocessing, batch_size: int):
    """The (inputs, labels) batches of a split in order, once."""
    tf = tf_module()
    n = _check(images, labels)
    return _decoded(tf, tf.data.Dataset.range(n).batch(batch_size), images, labels, prep)


def iter_batches(images: Images, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, uint8 images[start:start + batch_size]) over a split, one batch decoded at a time."""
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1")
    for start in range(0, len(images), batch_size):
        yield start, np.asarray(images[start:start + batch_size])


@contextlib.contextmanager
def decode_errors(*sources: Images):
    """Re-raise a `DatasetError` an image source met inside the pipeline (where TensorFlow wraps
    it in its own error) as itself."""
    try:
        yield
    except Exception:
        for source in sources:
            failure = getattr(source, "failure", None)
            if isinstance(failure, DatasetError):
                raise failure from None
        raise


def pipeline_errors() -> type[Exception]:
    """The errors a failing pipeline raises from ``fit`` (TensorFlow's `OpError`), to catch beside
    ValueError and RuntimeError."""
    return tf_module().errors.OpError


def _check(images: Images, labels: np.ndarray) -> int:
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise ValueError("no images to stream")
    return len(images)


def _decoded(tf, indices, images: Images, labels: np.ndarray, prep: Preprocessing):
    """Index batches -> (float32 inputs, int64 labels) batches."""
    labels = np.asarray(labels, np.int64)
    h, w, c = (int(d) for d in images.shape[1:])
    scale, offset = (np.broadcast_to(np.asarray(v, np.float32), (c,)).copy() for v in (prep.scale, prep.offset))

    def load(index: np.ndarray):
        return np.ascontiguousarray(images[index], dtype=np.uint8), labels[index]

    def decode(index):
        x, y = tf.numpy_function(load, [index], (tf.uint8, tf.int64), stateful=False)
        x.set_shape([None, h, w, c])
        y.set_shape([None])
        return x, y

    def preprocess(x, y):  # float32: the cast, one multiply, one add, as Preprocessing.apply
        return tf.cast(x, tf.float32) * scale + offset, y

    options = tf.data.Options()
    options.deterministic = True
    return (indices.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
            .with_options(options))
