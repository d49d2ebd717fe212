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


class captured_stderr:  # noqa: N801 - used as a context manager
    """Capture what C++ code writes to file descriptor 2 (the TFLite converter and
    calibrator print there), so it can be shown only when something fails."""

    def __enter__(self):
        import sys
        import tempfile

        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, *exc):
        import sys

        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        return False
