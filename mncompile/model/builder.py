"""Keras 3 builder for the layers described by `spec.layers`.

The deployed model has a static batch of 1 (``keras.Input(shape, batch_size=1)``):
Keras 3 models with a dynamic batch convert to SHAPE/STRIDED_SLICE ops that
TFLM cannot run. Training needs batches, so `train.py` trains a twin built
with ``batch_size=None`` and copies its weights onto a batch-1 model to save.

Batch-normalization momentum defaults to 0.9, not Keras' 0.99: with 0.99 the
moving statistics lag so far behind on short runs that validation accuracy
stays at chance for several epochs.

``synchronized=True`` (training under a tf.distribute strategy with several replicas) makes batch
norm average its batch statistics over all replicas, so N replicas of a global batch normalize as
one process would; the layer's weights are the same, and the deployed model is built without it.
"""

from __future__ import annotations

from mncompile.model.spec import MobileNetSpec, layers

DEFAULT_BN_MOMENTUM = 0.9
BN_EPSILON = 1e-3


def build_keras(spec: MobileNetSpec, *, batch_size: int | None = 1,
                bn_momentum: float = DEFAULT_BN_MOMENTUM, dropout: float = 0.0, synchronized: bool = False):
    import keras
    from keras import layers as L

    inputs = keras.Input(shape=spec.input_shape, batch_size=batch_size, name="input")
    outputs: dict[str, object] = {}
    x = inputs
    for layer in layers(spec):
        if layer.kind == "conv":
            x = L.Conv2D(layer.out_ch, layer.kernel, strides=layer.stride, padding="same",
                         use_bias=False, name=layer.name)(x)
        elif layer.kind == "depthwise":
            x = L.DepthwiseConv2D(layer.kernel, strides=layer.stride, padding="same",
                                  use_bias=False, name=layer.name)(x)
        elif layer.kind == "pointwise":
            x = L.Conv2D(layer.out_ch, 1, padding="same", use_bias=False, name=layer.name)(x)
        elif layer.kind == "add":
            x = L.Add(name=layer.name)([outputs[layer.residual], x])
        elif layer.kind == "avgpool":
            x = L.GlobalAveragePooling2D(name=layer.name)(x)
            if dropout > 0:
                x = L.Dropout(dropout, name="dropout")(x)
        elif layer.kind == "fc":
            x = L.Dense(layer.out_ch, name=layer.name)(x)
        elif layer.kind == "softmax":
            x = L.Softmax(name=layer.name)(x)
        if layer.batchnorm:
            x = L.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, synchronized=synchronized,
                                     name=f"{layer.name}_bn")(x)
        if layer.relu6:
            x = L.ReLU(6.0, name=f"{layer.name}_relu")(x)
        outputs[layer.name] = x
    return keras.Model(inputs, x, name=spec.name.replace(".", "_"))
