"""Pretrained starts: Keras applications' ImageNet weights (or a local weights file) as the base.

``train --weights imagenet`` builds ``keras.applications.MobileNet`` (V1) or ``MobileNetV2`` with
``include_top=False`` at the spec's alpha and resolution and takes its weights; Keras downloads the
file into its cache when online. ``--weights PATH`` takes a local weights file of that base (what
``model.save_weights`` writes, e.g. ``keras.applications.MobileNet(weights=None, include_top=False,
...)``). The base's weight layers line up one for one, in order and shape, with mncompile's own
builder (`mncompile.model.builder`, the same layer list and padding), so the weights are copied
onto it layer by layer; a file of another architecture is a `ModelError`.

Only the alphas and resolutions Keras publishes have ImageNet weights (`PUBLISHED`); the input
must have 3 channels.
"""

from __future__ import annotations

import os
from pathlib import Path

from mncompile.errors import InvalidOptionError, ModelError
from mncompile.model.spec import MobileNetSpec

IMAGENET = "imagenet"
# keras.applications' published no-top ImageNet weights (alphas, resolutions)
PUBLISHED = {
    "v1": ((0.25, 0.5, 0.75, 1.0), (128, 160, 192, 224)),
    "v2": ((0.35, 0.5, 0.75, 1.0, 1.3, 1.4), (96, 128, 160, 192, 224)),
}


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models, else ~/.keras/models."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def weights_file_name(spec: MobileNetSpec) -> str:
    """The file keras.applications looks for in its cache (and downloads) for `spec`'s base."""
    if spec.arch == "v1":
        alpha = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}[spec.alpha]
        return f"mobilenet_{alpha}_{spec.resolution}_tf_no_top.h5"
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{spec.alpha:g}_{spec.resolution}_no_top.h5"


def check_weights(weights: str | None, spec: MobileNetSpec) -> None:
    """Refuse, before any work, what cannot give weights for `spec`."""
    if weights is None:
        return
    if spec.channels != 3:
        raise InvalidOptionError(f"--weights needs a 3-channel (RGB) input, and the model has {spec.channels}",
                                 hint="pass --channels 3 (a grayscale dataset is then replicated to RGB)")
    if weights == IMAGENET:
        alphas, sides = PUBLISHED[spec.arch]
        if spec.alpha not in alphas or spec.resolution not in sides:
            raise InvalidOptionError(
                f"Keras publishes no ImageNet weights for MobileNet {spec.arch} alpha {spec.alpha:g} at "
                f"{spec.resolution}x{spec.resolution}",
                hint=f"{spec.arch}: alpha {', '.join(f'{a:g}' for a in alphas)} and resolution "
                     f"{', '.join(map(str, sides))} (README: Pretrained starts)")
        return
    path = Path(weights)
    if not path.is_file():
        raise InvalidOptionError(f"weights file {path} does not exist" if not path.exists()
                                 else f"weights file {path} is not a file",
                                 hint="pass --weights imagenet or a file written by model.save_weights(...)")


def base_weights(weights: str, spec: MobileNetSpec) -> list:
    """The weight arrays of the pretrained base, in layer order (no classifier)."""
    from mncompile.tfenv import keras_module

    keras = keras_module()
    build = keras.applications.MobileNet if spec.arch == "v1" else keras.applications.MobileNetV2
    source = IMAGENET if weights == IMAGENET else str(weights)
    if source == IMAGENET and not (keras_cache_dir() / weights_file_name(spec)).is_file() and _offline():
        raise ModelError(f"the ImageNet weights {weights_file_name(spec)} are not in Keras' cache "
                         f"{keras_cache_dir()}, and this machine cannot download them",
                         hint=f"copy {weights_file_name(spec)} (from https://storage.googleapis.com/tensorflow/"
                              f"keras-applications/mobilenet{'' if spec.arch == 'v1' else '_v2'}/) into "
                              f"{keras_cache_dir()}, or pass --weights PATH")
    try:
        base = build(input_shape=spec.input_shape, alpha=spec.alpha, include_top=False, weights=source)
    except Exception as exc:  # Keras raises ValueError, OSError or a download Exception: all say why
        if source == IMAGENET:
            raise ModelError(f"Keras could not get the ImageNet weights {weights_file_name(spec)}: {exc}",
                             hint=f"put the file into {keras_cache_dir()}, or pass --weights PATH") from None
        raise ModelError(f"weights file {weights} does not fit MobileNet {spec.arch} alpha {spec.alpha:g} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]})",
                         hint="pass the weights of keras.applications."
                              f"{'MobileNet' if spec.arch == 'v1' else 'MobileNetV2'}(alpha={spec.alpha:g}, "
                              "include_top=False), saved with save_weights") from None
    return [layer.get_weights() for layer in base.layers if layer.weights]


def _offline() -> bool:
    """True when the Keras download host cannot be reached within a few seconds (so a blocked
    network fails now with the file's name instead of hanging in a download)."""
    import socket

    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=5).close()
        return False
    except OSError:
        return True


def load_into(model, weights: str, spec: MobileNetSpec) -> int:
    """Copy the pretrained base onto `model` (mncompile's builder), layer by layer in order;
    returns how many layers took weights. ModelError when the layers do not line up."""
    source = base_weights(weights, spec)
    ours = [layer for layer in model.layers if layer.weights and layer.name != "classifier"]
    if len(ours) != len(source) or any(
            [w.shape for w in layer.get_weights()] != [w.shape for w in arrays]
            for layer, arrays in zip(ours, source, strict=False)):
        raise ModelError(f"the weights of {weights} do not line up with MobileNet {spec.arch} alpha "
                         f"{spec.alpha:g}: {len(source)} weight layers against {len(ours)}",
                         hint="pass weights of the same architecture and alpha")
    for layer, arrays in zip(ours, source, strict=True):
        layer.set_weights(arrays)
    return len(ours)


def freeze_base(model, trainable_from: int | None = None) -> None:
    """Freeze every layer but the classifier; with `trainable_from`, unfreeze the weight layers
    from that position on too, batch norms excepted (a frozen BatchNormalization runs in inference
    mode in Keras, so its statistics stay the pretrained ones)."""
    weighted = [layer for layer in model.layers if layer.weights]
    for k, layer in enumerate(weighted):
        is_bn = type(layer).__name__ == "BatchNormalization"
        layer.trainable = layer.name == "classifier" or (
            trainable_from is not None and k >= trainable_from and not is_bn)
