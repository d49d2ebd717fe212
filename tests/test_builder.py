"""The Keras builder against the analytic counts: an independent cross-check.

Keras computes output shapes and parameter counts itself; the mult-adds here
are recomputed from the built layers' own kernel and output shapes.
"""

from __future__ import annotations

import pytest

from mncompile.model.analytic import summarize
from mncompile.model.builder import build_keras
from mncompile.model.spec import MobileNetSpec

SPECS = [
    MobileNetSpec("v1", 1.0, 224, 3, 1000),
    MobileNetSpec("v1", 0.25, 96, 1, 10),
    MobileNetSpec("v1", 0.3, 97, 3, 7),  # odd side: SAME padding rounds up
    MobileNetSpec("v2", 1.0, 224, 3, 1000),
    MobileNetSpec("v2", 0.35, 96, 3, 2),
    MobileNetSpec("v2", 1.4, 128, 1, 5),
]


def keras_macs(model) -> int:
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * c
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            kh, kw, cin, cout = layer.kernel.shape
            total += h * w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            total += cin * cout
    return total


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.name}x{s.channels}c{s.classes}")
def test_keras_model_matches_analytic(spec):
    model = build_keras(spec)
    summary = summarize(spec)
    assert tuple(model.inputs[0].shape) == (1, *spec.input_shape)  # static batch 1
    assert tuple(model.outputs[0].shape) == (1, spec.classes)
    assert model.count_params() == summary.keras_params
    assert keras_macs(model) == summary.macs
    for row in summary.rows:
        if row.kind in ("conv", "depthwise", "pointwise", "add"):
            assert tuple(model.get_layer(row.name).output.shape[1:]) == row.output_shape, row.name


@pytest.mark.parametrize("arch,alpha", [("v1", 1.0), ("v1", 0.75), ("v1", 0.5), ("v1", 0.25),
                                        ("v2", 1.0), ("v2", 0.35), ("v2", 1.4)])
def test_parameter_count_equals_keras_applications(arch, alpha):
    """Keras' own MobileNet/MobileNetV2 (weights=None: nothing downloads) as the reference."""
    import keras

    factory = keras.applications.MobileNet if arch == "v1" else keras.applications.MobileNetV2
    reference = factory(input_shape=(224, 224, 3), alpha=alpha, weights=None, classes=1000)
    assert summarize(MobileNetSpec(arch, alpha, 224, 3, 1000)).keras_params == \
        reference.count_params()
