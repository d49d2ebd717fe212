"""Analytic multiply-adds and parameters of a MobileNet, without Keras.

Conventions (documented in the README):
- multiply-adds count one per weight use: conv ``H*W*K*K*Cin*Cout``,
  depthwise ``H*W*K*K*C``, pointwise ``H*W*Cin*Cout``, classifier
  ``Cin*classes``; pooling, add and softmax count 0, as in the paper;
- parameters are those of the deployed network: weights, plus one bias per
  output channel where batch normalization is folded into the convolution,
  plus the classifier's weights and bias. `keras_params` adds what Keras
  counts on top (BN gamma, beta, moving mean and variance: 4 per channel
  instead of the one folded bias).
- for a depthwise-separable pair (depthwise KxK over M channels, then 1x1 to
  N channels), the row of the 1x1 layer carries what a standard KxK
  convolution from M to N channels would cost at the same output size, and
  the saving factor (depthwise + pointwise) / standard = 1/N + 1/K^2
  (MobileNet paper, section 3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from mncompile.model.spec import Layer, MobileNetSpec, layers


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, int, int]
    macs: int
    params: int
    standard_macs: int | None = None  # standard-conv equivalent of a separable pair
    saving: float | None = None  # (dw + pw) / standard

    def to_json(self) -> dict:
        return {"layer": self.name, "type": self.kind, "output_shape": list(self.output_shape),
                "macs": self.macs, "params": self.params,
                "standard_conv_macs": self.standard_macs, "saving_factor": self.saving}


@dataclass(frozen=True)
class NetworkSummary:
    spec: MobileNetSpec
    rows: tuple[LayerRow, ...]
    macs: int
    params: int
    keras_params: int
    separable_macs: int
    standard_macs: int

    def to_json(self) -> dict:
        s = self.spec
        return {
            "model": {"arch": s.arch, "alpha": s.alpha, "resolution": s.resolution,
                      "channels": s.channels, "classes": s.classes},
            "layers": [r.to_json() for r in self.rows],
            "totals": {"macs": self.macs, "params": self.params,
                       "keras_params": self.keras_params,
                       "separable_macs": self.separable_macs,
                       "standard_conv_macs": self.standard_macs,
                       "saving_factor": (self.separable_macs / self.standard_macs
                                         if self.standard_macs else None)},
        }


def layer_macs(layer: Layer) -> int:
    hw2 = layer.out_hw * layer.out_hw
    k2 = layer.kernel * layer.kernel
    if layer.kind == "conv":
        return hw2 * k2 * layer.in_ch * layer.out_ch
    if layer.kind == "depthwise":
        return hw2 * k2 * layer.in_ch
    if layer.kind == "pointwise":
        return hw2 * layer.in_ch * layer.out_ch
    if layer.kind == "fc":
        return layer.in_ch * layer.out_ch
    return 0


def layer_weights(layer: Layer) -> int:
    k2 = layer.kernel * layer.kernel
    if layer.kind == "conv":
        return k2 * layer.in_ch * layer.out_ch
    if layer.kind == "depthwise":
        return k2 * layer.in_ch
    if layer.kind in ("pointwise", "fc"):
        return layer.in_ch * layer.out_ch
    return 0


def layer_biases(layer: Layer) -> int:
    return layer.out_ch if (layer.batchnorm or layer.bias) else 0


def summarize(spec: MobileNetSpec) -> NetworkSummary:
    net = layers(spec)
    rows: list[LayerRow] = []
    separable = standard = 0
    previous: Layer | None = None
    for layer in net:
        macs = layer_macs(layer)
        std = saving = None
        if (layer.kind == "pointwise" and previous is not None
                and previous.kind == "depthwise" and previous.block == layer.block):
            k2 = previous.kernel * previous.kernel
            std = layer.out_hw * layer.out_hw * k2 * previous.in_ch * layer.out_ch
            pair = layer_macs(previous) + macs
            saving = pair / std
            separable += pair
            standard += std
        rows.append(LayerRow(layer.name, layer.kind, (layer.out_hw, layer.out_hw, layer.out_ch),
                             macs, layer_weights(layer) + layer_biases(layer), std, saving))
        previous = layer
    bn_channels = sum(layer.out_ch for layer in net if layer.batchnorm)
    fc_bias = sum(layer.out_ch for layer in net if layer.bias)
    weights = sum(layer_weights(layer) for layer in net)
    return NetworkSummary(
        spec=spec, rows=tuple(rows), macs=sum(r.macs for r in rows),
        params=sum(r.params for r in rows), keras_params=weights + 4 * bn_channels + fc_bias,
        separable_macs=separable, standard_macs=standard)
