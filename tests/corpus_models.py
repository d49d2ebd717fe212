"""The model corpus: whole models of the field's shapes, built from nothing (no download, no file
committed), for `tests/test_corpus.py` and `bench/corpus.py`.

- `mobilenet_v3`: Keras' own `keras.applications.MobileNetV3Small` / `MobileNetV3Large`
  (`weights=None`, hard-swish and squeeze-excite: `minimalistic=False`), batch-norm statistics
  estimated from random images, converted to full int8 with int8 I/O by mncompile's converter.
- `mcunet`: an MCUNet/TinyEngine-shaped model as a PyTorch export gives it: float32 input,
  QUANTIZE, an explicit PAD before a VALID stride-2 convolution, inverted-residual blocks (ADD),
  a depthwise layer with depth multiplier 2, the NCHW global average pooling (TRANSPOSE, then MEAN
  over axes 2 and 3), FULLY_CONNECTED, SOFTMAX, DEQUANTIZE and a float32 output.
- `keyword_spotting`: a DS-CNN-shaped audio model, int8 (1, 1960) in (49 frames x 40 MFCCs),
  (1, 12) class scores out.
- `autoencoder`: an MLPerf-Tiny-anomaly-detection-shaped model, int8 (1, 640) in and out.

The last three are written op by op with the flatbuffer writer of `tests/tflite_writer.py`
(`Net` chains its tensors). Their weights are random int8 with per-channel scales chosen so that
every layer keeps its activations' RMS near 1 (scale = gain / (RMS of the int8 weights x
sqrt(fan-in))), and each activation's quantization covers that range: the int8 tensors use their
range without saturating, and the outputs are not all at the rails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from tflite_writer import SOFTMAX_OUTPUT, _Model, _pack_aligned_buffers, windowed_out_size

from mncompile.graph.ir import Quant

# The corpus, by name: (builder, kwargs). bench/corpus.py prints a row for each.
KERAS_MODELS = {
    "mobilenet_v3_small": {"arch": "MobileNetV3Small", "resolution": 64, "alpha": 1.0},
    # alpha 0.5 keeps the int8 model (1.74 MB) in cortex-m7's 2 MB of flash; alpha 1.0 is 4.7 MB
    "mobilenet_v3_large": {"arch": "MobileNetV3Large", "resolution": 64, "alpha": 0.5},
}
CLASSES = 4

INT8_RMS = math.sqrt(sum(i * i for i in range(-127, 128)) / 255)  # of integers drawn uniformly from [-127, 127]


def q(scale: float, zero_point: int = 0) -> Quant:
    return Quant((float(scale),), (int(zero_point),))


LINEAR = q(8 / 255)  # a linear activation: RMS ~1, range +-4
RELU6 = q(6 / 255, -128)  # what the converter gives a ReLU6 output: [0, 6]
RELU = q(4 / 255, -128)  # a ReLU output: [0, 4]


# ---------------------------------------------------------------------------------------------
# Keras: MobileNetV3 Small and Large


def mobilenet_v3(arch: str, resolution: int, alpha: float = 1.0, classes: int = CLASSES, seed: int = 0) -> bytes:
    """`keras.applications.<arch>(weights=None)` on a (1, R, R, 3) input, int8 with int8 I/O.

    `include_preprocessing=False`: the model takes pixels already scaled to [-1, 1], as the
    calibration images are (with True it starts with a Rescaling of 0..255 pixels).
    `dropout_rate=0` leaves the Dropout layer out. Batch-norm statistics come from training-mode
    forward passes over random images with momentum 0 (as `conftest.bn_calibrated_keras`)."""
    from mncompile.model.loader import LoadedModel
    from mncompile.quantize.convert import to_int8_tflite
    from mncompile.tfenv import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(seed)
    model = getattr(keras.applications, arch)(
        input_tensor=keras.Input((resolution, resolution, 3), batch_size=1), alpha=alpha, minimalistic=False,
        include_top=True, weights=None, classes=classes, dropout_rate=0.0, include_preprocessing=False)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    x = np.random.default_rng(seed).uniform(-1, 1, (4, resolution, resolution, 3)).astype(np.float32)
    for _ in range(2):  # momentum 0: each pass sets the statistics of every layer in turn
        for i in range(len(x)):
            model(x[i:i + 1], training=True)
    # Untrained, the logits spread so far that the int8 softmax output sits at its rails (0 or
    # 255/256): scale the classifier to logits of standard deviation 1.5, and give it the small
    # random bias a trained one has (the converter drops an all-zero bias).
    logits = model.get_layer("logits")
    features = keras.Model(model.inputs, logits.input)
    spread = float(np.std(np.concatenate([np.asarray(features(x[i:i + 1], training=False)) for i in range(len(x))])
                          @ np.asarray(logits.kernel).reshape(-1, classes)))
    kernel, _ = logits.get_weights()
    bias = np.random.default_rng(seed + 2).normal(0.0, 0.3, classes).astype(np.float32)
    logits.set_weights([kernel * np.float32(1.5 / spread), bias])
    calib = np.random.default_rng(seed + 1).uniform(-1, 1, (8, resolution, resolution, 3)).astype(np.float32)
    path = f"{arch}_{resolution}.keras"
    return to_int8_tflite(LoadedModel(path, "keras", model, (resolution, resolution, 3), classes, None), calib)


# ---------------------------------------------------------------------------------------------
# A multi-operator model, written tensor by tensor


class Net:
    """Operators chained in order; each method adds one operator and returns its output tensor."""

    def __init__(self, description: str, seed: int):
        self.m = _Model()
        self.s = self.m.s
        self.rng = np.random.default_rng(seed)
        self.description = description
        self.codes: list[str] = []
        self.ops: list = []
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.quants: dict[int, Quant | None] = {}
        self.inputs: list[int] = []

    # tensors
    def _tensor(self, name: str, shape: Sequence[int], dtype: str = "INT8", quant: Quant | None = None,
                data: np.ndarray | None = None) -> int:
        t = self.m.tensor(f"{name}_{len(self.m.tensors)}", shape, dtype, quant, data)
        self.shapes[t], self.quants[t] = tuple(int(d) for d in shape), quant
        return t

    def input(self, shape: Sequence[int], dtype: str = "INT8", quant: Quant | None = None) -> int:
        t = self._tensor("input", shape, dtype, quant)
        self.inputs.append(t)
        return t

    def _const_i32(self, name: str, values) -> int:
        a = np.asarray(values, dtype=np.int32)
        return self._tensor(name, a.shape, "INT32", None, a)

    def _op(self, kind: str, inputs: Sequence[int], outputs: Sequence[int], options_type: str | None = None,
            options=None) -> None:
        if kind not in self.codes:
            self.codes.append(kind)
        op = self.s.OperatorT()
        op.opcodeIndex = self.codes.index(kind)
        op.inputs, op.outputs = [int(i) for i in inputs], [int(i) for i in outputs]
        if options_type is not None:
            op.builtinOptionsType = getattr(self.s.BuiltinOptions, options_type)
            op.builtinOptions = options
        self.ops.append(op)

    # weights
    def _weights(self, shape: Sequence[int], channels: int, fan_in: int, gain: float, axis: int):
        w = self.rng.integers(-127, 128, shape).astype(np.int8)
        scales = gain * self.rng.uniform(0.8, 1.25, channels) / (INT8_RMS * math.sqrt(fan_in))
        return w, Quant(tuple(float(np.float32(s)) for s in scales), (0,) * channels, axis if channels > 1 else 0)

    def _bias(self, x: int, wq: Quant, channels: int, spread: float = 0.1) -> int:
        in_scale = np.float32(self.quants[x].scale)
        scales = [float(np.float32(in_scale * np.float32(s))) for s in wq.scales]
        real = self.rng.normal(0.0, spread, channels)
        values = np.round(real / np.array(scales if len(scales) > 1 else scales * channels)).astype(np.int32)
        return self._tensor("bias", (channels,), "INT32", Quant(tuple(scales), (0,) * len(scales), 0), values)

    # operators
    def quantize(self, x: int, quant: Quant) -> int:
        y = self._tensor("quantized", self.shapes[x], "INT8", quant)
        self._op("QUANTIZE", [x], [y], "QuantizeOptions", self.s.QuantizeOptionsT())
        return y

    def dequantize(self, x: int) -> int:
        y = self._tensor("dequantized", self.shapes[x], "FLOAT32")
        self._op("DEQUANTIZE", [x], [y], "DequantizeOptions", self.s.DequantizeOptionsT())
        return y

    def pad(self, x: int, paddings: Sequence[tuple[int, int]]) -> int:
        pads = np.array(paddings, dtype=np.int32)
        shape = [d + int(b) + int(a) for d, (b, a) in zip(self.shapes[x], pads, strict=True)]
        y = self._tensor("padded", shape, "INT8", self.quants[x])
        self._op("PAD", [x, self._const_i32("paddings", pads)], [y], "PadOptions", self.s.PadOptionsT())
        return y

    def _window(self, kind: str, x: int, w: np.ndarray, wq: Quant, out_c: int, kh: int, kw: int, stride: int,
                padding: str, act: str, out: Quant, dm: int | None = None) -> int:
        n, h, wd, _ = self.shapes[x]
        oh, ow = windowed_out_size(padding, h, kh, stride), windowed_out_size(padding, wd, kw, stride)
        tw = self._tensor("filter", w.shape, "INT8", wq, w)
        tb = self._bias(x, wq, out_c)
        y = self._tensor(kind.lower(), (n, oh, ow, out_c), "INT8", out)
        name = "DepthwiseConv2DOptions" if dm else "Conv2DOptions"
        opts = getattr(self.s, name + "T")()
        opts.padding = {"SAME": 0, "VALID": 1}[padding]
        opts.strideH = opts.strideW = stride
        opts.dilationHFactor = opts.dilationWFactor = 1
        opts.fusedActivationFunction = {"NONE": 0, "RELU": 1, "RELU6": 3}[act]
        if dm:
            opts.depthMultiplier = dm
        self._op(kind, [x, tw, tb], [y], name, opts)
        return y

    def conv(self, x: int, out_c: int, k: int = 1, stride: int = 1, padding: str = "SAME", act: str = "NONE",
             gain: float = 1.0, out: Quant | None = None) -> int:
        cin = self.shapes[x][3]
        w, wq = self._weights((out_c, k, k, cin), out_c, k * k * cin, gain, 0)
        return self._window("CONV_2D", x, w, wq, out_c, k, k, stride, padding, act, out or _act_quant(act))

    def conv_hw(self, x: int, out_c: int, kh: int, kw: int, stride: int, act: str, gain: float = 1.0) -> int:
        cin = self.shapes[x][3]
        w, wq = self._weights((out_c, kh, kw, cin), out_c, kh * kw * cin, gain, 0)
        return self._window("CONV_2D", x, w, wq, out_c, kh, kw, stride, "SAME", act, _act_quant(act))

    def depthwise(self, x: int, k: int = 3, stride: int = 1, dm: int = 1, act: str = "RELU6",
                  gain: float = 1.0) -> int:
        c = self.shapes[x][3] * dm
        w, wq = self._weights((1, k, k, c), c, k * k, gain, 3)
        return self._window("DEPTHWISE_CONV_2D", x, w, wq, c, k, k, stride, "SAME", act, _act_quant(act), dm)

    def add(self, a: int, b: int, out: Quant = q(12 / 255)) -> int:
        y = self._tensor("sum", np.broadcast_shapes(self.shapes[a], self.shapes[b]), "INT8", out)
        opts = self.s.AddOptionsT()
        opts.fusedActivationFunction = 0
        self._op("ADD", [a, b], [y], "AddOptions", opts)
        return y

    def transpose(self, x: int, perm: Sequence[int]) -> int:
        y = self._tensor("transposed", [self.shapes[x][p] for p in perm], "INT8", self.quants[x])
        self._op("TRANSPOSE", [x, self._const_i32("perm", list(perm))], [y], "TransposeOptions",
                 self.s.TransposeOptionsT())
        return y

    def mean(self, x: int, axes: Sequence[int], out: Quant, keep_dims: bool = False) -> int:
        shape = self.shapes[x]
        new = [1 if d in axes else n for d, n in enumerate(shape)] if keep_dims else \
            [n for d, n in enumerate(shape) if d not in axes]
        y = self._tensor("mean", new, "INT8", out)
        opts = self.s.ReducerOptionsT()
        opts.keepDims = keep_dims
        self._op("MEAN", [x, self._const_i32("axes", list(axes))], [y], "ReducerOptions", opts)
        return y

    def average_pool(self, x: int) -> int:
        """Global average pooling as the DS-CNN has it (a VALID window over all of H x W)."""
        n, h, w, c = self.shapes[x]
        y = self._tensor("pooled", (n, 1, 1, c), "INT8", self.quants[x])
        opts = self.s.Pool2DOptionsT()
        opts.padding, opts.strideH, opts.strideW, opts.filterHeight, opts.filterWidth = 1, 1, 1, h, w
        opts.fusedActivationFunction = 0
        self._op("AVERAGE_POOL_2D", [x], [y], "Pool2DOptions", opts)
        return y

    def reshape(self, x: int, shape: Sequence[int]) -> int:
        assert math.prod(shape) == math.prod(self.shapes[x])
        y = self._tensor("reshaped", shape, "INT8", self.quants[x])
        opts = self.s.ReshapeOptionsT()
        opts.newShape = [int(d) for d in shape]
        self._op("RESHAPE", [x, self._const_i32("shape", list(shape))], [y], "ReshapeOptions", opts)
        return y

    def fully_connected(self, x: int, units: int, act: str = "NONE", gain: float = 1.0,
                        out: Quant | None = None) -> int:
        depth = self.shapes[x][-1]
        w, wq = self._weights((units, depth), 1, depth, gain, 0)  # per tensor, as the converter writes FC
        tw = self._tensor("weights", w.shape, "INT8", wq, w)
        tb = self._bias(x, wq, units)
        y = self._tensor("dense", (math.prod(self.shapes[x]) // depth, units), "INT8", out or _act_quant(act))
        opts = self.s.FullyConnectedOptionsT()
        opts.fusedActivationFunction = {"NONE": 0, "RELU": 1, "RELU6": 3}[act]
        self._op("FULLY_CONNECTED", [x, tw, tb], [y], "FullyConnectedOptions", opts)
        return y

    def relu(self, x: int, out: Quant = RELU) -> int:
        y = self._tensor("relu", self.shapes[x], "INT8", out)
        self._op("RELU", [x], [y])
        return y

    def softmax(self, x: int) -> int:
        y = self._tensor("probabilities", self.shapes[x], "INT8", SOFTMAX_OUTPUT)
        opts = self.s.SoftmaxOptionsT()
        opts.beta = 1.0
        self._op("SOFTMAX", [x], [y], "SoftmaxOptions", opts)
        return y

    def finish(self, outputs: Sequence[int]) -> bytes:
        import flatbuffers

        s = self.s
        codes = []
        for kind in self.codes:
            code = s.OperatorCodeT()
            code.builtinCode = getattr(s.BuiltinOperator, kind)
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            code.version = 1
            codes.append(code)
        g = s.SubGraphT()
        g.tensors, g.operators, g.name = self.m.tensors, self.ops, b"main"
        g.inputs, g.outputs = list(self.inputs), [int(o) for o in outputs]
        model = s.ModelT()
        model.version, model.description = 3, self.description.encode()
        model.operatorCodes, model.subgraphs, model.buffers = codes, [g], self.m.buffers
        builder = flatbuffers.Builder(4096 + sum(len(b.data) for b in self.m.buffers if b.data is not None))
        _pack_aligned_buffers(builder, model)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _act_quant(act: str) -> Quant:
    return {"NONE": LINEAR, "RELU": RELU, "RELU6": RELU6}[act]


# ---------------------------------------------------------------------------------------------
# the written models


def mcunet(resolution: int = 48, classes: int = 10, seed: int = 3) -> bytes:
    """float32 (1, R, R, 3) -> QUANTIZE -> PAD 1 -> CONV 3x3 VALID /2 -> [DW 3x3, CONV 1x1, ADD]
    -> CONV 1x1 expand, DW 3x3 /2, CONV 1x1 project -> DW 3x3 x2 (depth multiplier 2) -> TRANSPOSE
    to NCHW -> MEAN over (2, 3) -> FULLY_CONNECTED -> SOFTMAX -> DEQUANTIZE -> float32 (1, classes)."""
    net = Net("mncompile corpus: MCUNet-shaped, float32 edges", seed)
    x = net.input((1, resolution, resolution, 3), "FLOAT32")
    x = net.quantize(x, q(2 / 255))  # pixels scaled to [-1, 1]
    x = net.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    stem = net.conv(x, 16, k=3, stride=2, padding="VALID", act="RELU6", gain=1.6)
    y = net.depthwise(stem, act="RELU6", gain=1.4)
    y = net.conv(y, 16, gain=1.0)
    x = net.add(stem, y)
    y = net.conv(x, 32, act="RELU6", gain=1.4)
    y = net.depthwise(y, stride=2, act="RELU6", gain=1.4)
    x = net.conv(y, 16, gain=1.0)
    x = net.depthwise(x, dm=2, act="RELU6", gain=1.4)
    x = net.transpose(x, (0, 3, 1, 2))  # a PyTorch export pools in NCHW
    x = net.mean(x, (2, 3), q(3 / 255, -128))
    x = net.fully_connected(x, classes, gain=2.5)
    return net.finish([net.dequantize(net.softmax(x))])


def keyword_spotting(classes: int = 12, seed: int = 4) -> bytes:
    """int8 (1, 1960) -> RESHAPE (1, 49, 40, 1) -> CONV 10x4 /2 -> DW 3x3 -> CONV 1x1 -> DW 3x3
    -> CONV 1x1 -> AVERAGE_POOL -> RESHAPE (1, 32) -> FULLY_CONNECTED -> SOFTMAX: int8 (1, classes)."""
    net = Net("mncompile corpus: keyword spotting (DS-CNN-shaped), int8 tensor input", seed)
    x = net.input((1, 1960), "INT8", q(1 / 128))
    x = net.reshape(x, (1, 49, 40, 1))
    x = net.conv_hw(x, 32, 10, 4, 2, "RELU", gain=1.6)
    for _ in range(2):
        x = net.depthwise(x, act="RELU", gain=1.4)
        x = net.conv(x, 32, act="RELU", gain=1.4)
    x = net.average_pool(x)
    x = net.reshape(x, (1, 32))
    x = net.fully_connected(x, classes, gain=2.5)
    return net.finish([net.softmax(x)])


def autoencoder(width: int = 640, hidden: int = 64, seed: int = 5) -> bytes:
    """int8 (1, 640) -> FC 128 -> RELU -> FC 64 -> RELU -> FC 128 -> RELU -> FC 640: int8 (1, 640)."""
    net = Net("mncompile corpus: autoencoder (MLPerf Tiny anomaly-detection-shaped), int8 tensor I/O", seed)
    x = net.input((1, width), "INT8", q(1 / 128))
    for units in (128, hidden, 128):
        x = net.relu(net.fully_connected(x, units, gain=1.4))
    return net.finish([net.fully_connected(x, width, gain=1.0)])


WRITTEN_MODELS = {"mcunet": mcunet, "keyword_spotting": keyword_spotting, "autoencoder": autoencoder}
