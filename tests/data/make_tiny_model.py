"""Make tests/data/tiny_int8.tflite and its sidecar: the tiny model of the emit snapshot tests.

Run once with the project's virtualenv (`.venv/bin/python tests/data/make_tiny_model.py`);
the outputs are committed so the snapshot does not depend on the converter of the day.
It is not a MobileNet: a 12x12x1 input, a strided 3x3 conv, a depthwise 3x3 conv, a 1x1
conv, global average pooling, a dense layer and softmax: the op kinds of MobileNet V1 in
a 10 KB model. Its class names are hostile to C on purpose (quotes, a would-be call,
comment markers, trigraphs, non-ASCII): the generated C must keep them as inert data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CLASSES = ['a"; system("x"); //', "caf\u00e9 \u65e5\u672c", "??/ */ \\", "plain"]


def main() -> None:
    from mncompile.model.loader import LoadedModel
    from mncompile.quantize.convert import to_int8_tflite
    from mncompile.tfenv import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(7)
    layers = keras.layers
    inputs = keras.Input((12, 12, 1), batch_size=1)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.Conv2D(16, 1, activation="relu6")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(len(CLASSES))(x)
    outputs = layers.Softmax()(x)
    model = keras.Model(inputs, outputs)
    calib = np.random.default_rng(3).uniform(-1, 1, (32, 12, 12, 1)).astype(np.float32)
    path = HERE / "tiny_int8.tflite"
    path.write_bytes(to_int8_tflite(LoadedModel(path, "keras", model, (12, 12, 1), len(CLASSES), None), calib))
    sidecar = {"format": "mncompile-model/1", "arch": None, "alpha": None, "resolution": 12, "channels": 1,
               "classes": CLASSES,
               "preprocessing": {"size": [12, 12], "color_mode": "L", "resample": "bilinear",
                                 "scale": 1 / 127.5, "offset": -1.0, "formula": "x = pixel * scale + offset"},
               "dataset": {}, "metrics": {}, "quantization": {}}
    (HERE / "tiny_int8.tflite.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
