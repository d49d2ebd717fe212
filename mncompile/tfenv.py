"""Import TensorFlow/Keras lazily and quietly.

Nothing imports TensorFlow at module level: `mncompile --help` must not pay
for it. Functions that need Keras call `keras_module()`.
"""

from __future__ import annotations

import os


def _quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # bit-stable CPU results run to run
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def keras_module():
    _quiet()
    import keras

    return keras


def tf_module():
    _quiet()
    import tensorflow as tf

    return tf
