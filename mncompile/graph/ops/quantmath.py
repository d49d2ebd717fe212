"""The quantization arithmetic of TFLM's Prepare functions, in Python, bit for bit.

The AOT backend has no Prepare at run time: the code generator precomputes every multiplier,
shift, padding and clamp range here and emits them as constants for ``firmware/kernels``.
Each function names the TFLM code it reproduces. Two kinds of float arithmetic occur there
and are mirrored exactly:

- **double** (Python ``float``) for multipliers: effective scales are formed from the
  float32 tensor scales widened to double (``static_cast<double>(float)``), in TFLM's order
  of operations, then ``QuantizeMultiplier`` (``frexp`` + ``std::round``);
- **float32** (``numpy.float32``) where TFLM computes in ``float``: the clamp range of fused
  activations (``Quantize``: ``TfLiteRound(f / scale)``) and QUANTIZE itself (and, optionally,
  the per-tensor fully connected scale product of the pinned TFLM source; see
  `fully_connected_params`).

Shift convention is TFLM's: positive shifts left, negative shifts right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mncompile.errors import QuantizationError

INT8_MIN, INT8_MAX = -128, 127
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
ADD_LEFT_SHIFT = 20  # int8 ADD (15 for int16)
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5


class QuantMathError(QuantizationError, ValueError):
    """A parameter TFLM would reject (TF_LITE_ENSURE / TFLITE_CHECK in its Prepare): exit 6, like the
    quantize stage's own checks. The code generator adds which operator it was."""


def f32(x: float) -> float:
    """`x` rounded to float32 and widened back to double: what a float32 scale in a
    .tflite is when TFLM does ``static_cast<double>(scale)``."""
    return float(np.float32(x))


def _round_half_away(x: float) -> int:
    """std::round on a double (TfLiteRound): halves go away from zero."""
    a = abs(x)
    r = math.floor(a)
    if a - r >= 0.5:  # exact: the fraction of a double is a double
        r += 1
    return int(r) if x >= 0 else -int(r)


def _round_half_away_f32(x: np.float32) -> np.float32:
    """std::round on a float (TfLiteRound(float)): exact in float32 arithmetic."""
    x = np.float32(x)
    t = np.trunc(x)
    frac = np.float32(x - t)  # exact
    if frac >= np.float32(0.5):
        t = np.float32(t + np.float32(1))
    elif frac <= np.float32(-0.5):
        t = np.float32(t - np.float32(1))
    return np.float32(t)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplier`` (quantization_util.cc, TFLITE_SINGLE_ROUNDING off):
    ``real ~= multiplier * 2^(shift - 31)`` with multiplier in [2^30, 2^31) or 0."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real):
        raise QuantMathError(f"multiplier {real} is not finite")
    q, shift = math.frexp(real)  # q in [0.5, 1), same as std::frexp
    q_fixed = _round_half_away(q * float(1 << 31))  # exact: q * 2^31 is a double below 2^31
    if abs(q_fixed) > (1 << 31):
        raise QuantMathError(f"QuantizeMultiplier({real}) overflows")  # TFLITE_CHECK
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if q_fixed > (1 << 31) - 1:
        raise QuantMathError(f"QuantizeMultiplier({real}) overflows")
    if shift < -31:  # flush multipliers below ~2^-31 to zero, as TFLM does
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplierSmallerThanOneExp``: CHECKs 0 < real < 1 (shift <= 0)."""
    if not 0.0 < real < 1.0:
        raise QuantMathError(f"multiplier {real} must be in (0, 1)")
    m, s = quantize_multiplier(real)
    if s > 0:
        raise QuantMathError(f"multiplier {real} gives a left shift")
    return m, s


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplierGreaterThanOne``: CHECKs real > 1 (shift >= 0)."""
    if not real > 1.0:
        raise QuantMathError(f"multiplier {real} must be > 1")
    m, s = quantize_multiplier(real)
    if s < 0:
        raise QuantMathError(f"multiplier {real} gives a right shift")
    return m, s


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM ``MultiplyByQuantizedMultiplier`` (int32, double rounding): the reference for the
    C ``mn_requantize``; also useful to precompute constants."""
    def wrap32(v: int) -> int:
        return (v + (1 << 31)) % (1 << 32) - (1 << 31)

    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    a = wrap32(x * (1 << left))
    if a == multiplier == -(1 << 31):
        high = (1 << 31) - 1
    else:
        # SaturatingRoundingDoublingHighMul: (ab + nudge) / 2^31 truncated toward zero, which
        # equals floor((ab + 2^30) / 2^31) for either sign of ab
        high = (a * multiplier + (1 << 30)) >> 31
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)


# ---------------------------------------------------------------------------------------------
# activation ranges and padding


def quantize_scalar_f32(value: float, scale: float, zero_point: int) -> int:
    """TFLM kernel_util ``Quantize``: ``zero_point + (int32) TfLiteRound(float(value) / scale)``."""
    with np.errstate(over="ignore", divide="ignore"):
        tmp = _round_half_away_f32(np.float32(value) / np.float32(scale))
    if not (np.float32(-(2.0**31)) <= tmp <= np.float32(2.0**31 - 1)):
        raise QuantMathError(f"{value} / {scale} overflows int32")
    return int(zero_point) + int(tmp)


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """TFLM ``CalculateActivationRangeQuantized``: the clamp of a fused activation, quantized."""
    act = activation.upper()
    if act == "NONE":
        return qmin, qmax
    if act == "RELU":
        return max(qmin, quantize_scalar_f32(0.0, scale, zero_point)), qmax
    if act == "RELU6":
        return (max(qmin, quantize_scalar_f32(0.0, scale, zero_point)),
                min(qmax, quantize_scalar_f32(6.0, scale, zero_point)))
    if act == "RELU_N1_TO_1":
        return (max(qmin, quantize_scalar_f32(-1.0, scale, zero_point)),
                min(qmax, quantize_scalar_f32(1.0, scale, zero_point)))
    raise QuantMathError(f"unsupported fused activation {activation!r}")


def out_size(padding: str, in_size: int, k: int, stride: int, dilation: int = 1) -> int:
    """TFLM ``ComputeOutSizeChecked`` (TensorFlow's GetWindowedOutputSize)."""
    eff = (k - 1) * dilation + 1
    if padding.upper() == "SAME":
        return (in_size + stride - 1) // stride
    if padding.upper() == "VALID":
        return (in_size + stride - eff) // stride
    raise QuantMathError(f"unknown padding {padding!r}")


def padding_before(padding: str, in_size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLM ``ComputePaddingHeightWidth`` along one axis: (output size, padding before).
    The padding after is implicit (the kernels skip taps outside the input)."""
    out = out_size(padding, in_size, k, stride, dilation)
    eff = (k - 1) * dilation + 1
    total = max(0, (out - 1) * stride + eff - in_size)
    return out, total // 2


# ---------------------------------------------------------------------------------------------
# per-operator parameters


@dataclass(frozen=True)
class ChannelRequant:
    """Per-output-channel requantization of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED."""

    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    act_min: int
    act_max: int
    in_offset: int  # -input zero point
    out_offset: int  # output zero point
    per_channel: bool = True


def conv_params(input_scale: float, input_zero_point: int, weight_scales: Sequence[float], output_scale: float,
                output_zero_point: int, activation: str = "NONE", channels: int | None = None) -> ChannelRequant:
    """TFLM ``PopulateConvolutionQuantizationParams`` (CONV_2D and DEPTHWISE_CONV_2D):
    ``double(in_scale) * double(w_scale[c]) / double(out_scale)`` per channel; a single weight
    scale is broadcast to `channels` entries."""
    scales = [f32(s) for s in weight_scales]
    n = channels if channels is not None else len(scales)
    if len(scales) not in (1, n):
        raise QuantMathError(f"{len(scales)} weight scales for {n} channels")
    in_s, out_s = f32(input_scale), f32(output_scale)
    mults, shifts = [], []
    for c in range(n):
        w = scales[c] if len(scales) > 1 else scales[0]
        m, s = quantize_multiplier(in_s * w / out_s)
        mults.append(m)
        shifts.append(s)
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    return ChannelRequant(tuple(mults), tuple(shifts), lo, hi, -int(input_zero_point), int(output_zero_point))


def folded_bias(filter_rows: np.ndarray, bias: np.ndarray | None, in_offset: int) -> np.ndarray:
    """``bias[c] + in_offset * sum(filter row c)`` wrapped to int32, the kernels' ``bias_sum``: with it a
    convolution multiplies raw inputs (``sum((x + off) * w) + b == sum(x * w) + (b + off * sum(w))``
    modulo 2^32, as TFLM's int32 accumulator wraps). `filter_rows`: one row per output channel."""
    rows = np.asarray(filter_rows).reshape(len(filter_rows), -1).astype(np.int64)
    total = rows.sum(axis=1) * int(in_offset)
    if bias is not None:
        total = total + np.asarray(bias, dtype=np.int64).reshape(-1)
    return ((total + 2**31) % 2**32 - 2**31).astype(np.int32)


def fully_connected_params(input_scale: float, input_zero_point: int, weight_scales: Sequence[float],
                           output_scale: float, output_zero_point: int, activation: str = "NONE",
                           bias_scale: float | None = None, per_tensor_product: str = "double") -> ChannelRequant:
    """TFLM ``CalculateOpDataFullyConnected``. Per channel (several weight scales): as conv.

    Per tensor, the TFLM versions disagree on how the scale product is rounded:

    - ``"double"`` (default): ``double(in_scale) * double(w_scale) / double(out_scale)``, what
      the installed ``tflite-micro`` host interpreter computes (observed to the last bit of the
      multiplier by tests/test_kernels.py), so the AOT backend matches mncompile's golden
      outputs, which come from that interpreter;
    - ``"float32"``: ``double(float(in_scale * w_scale)) / double(out_scale)``, the source of
      ``GetQuantizedConvolutionMultipler`` at the pinned TFLM commit 90b983c2 (kernel_util.cc),
      i.e. TFLM firmware built from that commit. The two multipliers differ in the last bits
      for some scales, which moves an output by one in rare cases.

    With a bias TFLM also ENSUREs |in*w - bias_scale| / out <= 0.02 (double product)."""
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    if len(weight_scales) > 1:
        return conv_params(input_scale, input_zero_point, weight_scales, output_scale, output_zero_point, activation)
    in_s, w_s, out_s = f32(input_scale), f32(weight_scales[0]), f32(output_scale)
    if bias_scale is not None and abs(in_s * w_s - f32(bias_scale)) / out_s > 0.02:
        raise QuantMathError("bias scale differs from input scale * weight scale")
    if per_tensor_product == "double":
        real = in_s * w_s / out_s
    elif per_tensor_product == "float32":
        real = float(np.float32(input_scale) * np.float32(weight_scales[0])) / out_s
    else:
        raise QuantMathError(f"per_tensor_product must be 'double' or 'float32', not {per_tensor_product!r}")
    m, s = quantize_multiplier(real)
    return ChannelRequant((m,), (s,), lo, hi, -int(input_zero_point), int(output_zero_point), per_channel=False)


@dataclass(frozen=True)
class AddParams:
    in1_offset: int
    in2_offset: int
    out_offset: int
    left_shift: int
    in1_mult: int
    in1_shift: int
    in2_mult: int
    in2_shift: int
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


def add_params(in1_scale: float, in1_zero_point: int, in2_scale: float, in2_zero_point: int, output_scale: float,
               output_zero_point: int, activation: str = "NONE") -> AddParams:
    """TFLM ``CalculateOpDataAdd`` (int8: left_shift 20)."""
    s1, s2, so = f32(in1_scale), f32(in2_scale), f32(output_scale)
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier_smaller_than_one(s1 / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one(s2 / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one(twice_max / (float(1 << ADD_LEFT_SHIFT) * so))
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    return AddParams(-int(in1_zero_point), -int(in2_zero_point), int(output_zero_point), ADD_LEFT_SHIFT,
                     m1, sh1, m2, sh2, mo, sho, lo, hi)


def mean_params(input_scale: float, output_scale: float, num_elements: int) -> tuple[int, int]:
    """(multiplier, shift) of int8 MEAN, with the division by the number of reduced elements
    folded in exactly as TFLM's ``reference_ops::QuantizedMeanOrSum`` does at run time.

    TFLM's micro MEAN (reduce_common.cc ``EvalMeanHelper``) sends int8 through
    ``QuantizedMeanOrSum`` for every axis set and keep_dims value (the float-only special
    case for 4-D axes {1, 2} does not apply to int8). Prepare: ``QuantizeMultiplier(
    double(in_scale) / double(out_scale))``; Eval: ``shift = min(floor(log2 n), 32,
    31 + shift)``, ``multiplier = (int64(multiplier) << shift) / n`` (truncating),
    ``out_shift = shift_prepare - shift``; then ``MultiplyByQuantizedMultiplier(sum - zp_in * n)
    + zp_out`` clamped to int8 (no fused activation)."""
    if num_elements <= 0:
        raise QuantMathError("MEAN over no elements")
    mult, shift = quantize_multiplier(f32(input_scale) / f32(output_scale))
    s = min(num_elements.bit_length() - 1, 32, 31 + shift)
    mult = (mult << s) // num_elements  # both non-negative: floor == truncation
    return int(mult), int(shift - s)


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_params(input_scale: float, beta: float = 1.0) -> SoftmaxParams:
    """TFLM ``CalculateSoftmaxParams`` for int8 input: ``PreprocessSoftmaxScaling(beta,
    in_scale, 5)`` (``min(beta * in_scale * 2^26, 2^31 - 1)`` then
    QuantizeMultiplierGreaterThanOne) and ``diff_min = -CalculateInputRadius(5, left_shift)``
    (``floor(31 * 2^26 / 2^left_shift)``). Output must be scale 1/256, zero point -128."""
    real = min(f32(beta) * f32(input_scale) * float(1 << (31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS)),
               float((1 << 31) - 1))
    m, s = quantize_multiplier_greater_than_one(real)
    radius = math.floor(1.0 * ((1 << SOFTMAX_SCALED_DIFF_INTEGER_BITS) - 1)
                        * float(1 << (31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS)) / float(1 << s))
    return SoftmaxParams(m, s, -int(radius))


@dataclass(frozen=True)
class WindowGeometry:
    out_h: int
    out_w: int
    pad_top: int
    pad_left: int


def window_geometry(padding: str, in_h: int, in_w: int, k_h: int, k_w: int, stride_h: int, stride_w: int,
                    dilation_h: int = 1, dilation_w: int = 1) -> WindowGeometry:
    """Output size and top/left padding of a windowed op (conv, depthwise, pooling)."""
    oh, pt = padding_before(padding, in_h, k_h, stride_h, dilation_h)
    ow, pl = padding_before(padding, in_w, k_w, stride_w, dilation_w)
    if oh <= 0 or ow <= 0:
        raise QuantMathError(f"{padding} window {k_h}x{k_w} does not fit a {in_h}x{in_w} input")
    return WindowGeometry(oh, ow, pt, pl)


def broadcast_strides(in1_shape: Sequence[int], in2_shape: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """4-D output dims and per-input element strides (0 along broadcast dimensions) for
    ``mn_add_broadcast_s8``: NumPy/TFLite broadcasting of shapes of rank <= 4."""
    if len(in1_shape) > 4 or len(in2_shape) > 4:
        raise QuantMathError("broadcasting supports rank <= 4")
    a = (1,) * (4 - len(in1_shape)) + tuple(int(d) for d in in1_shape)
    b = (1,) * (4 - len(in2_shape)) + tuple(int(d) for d in in2_shape)
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            raise QuantMathError(f"shapes {tuple(in1_shape)} and {tuple(in2_shape)} do not broadcast")
        out.append(max(x, y))

    def strides(shape):
        st, acc = [0] * 4, 1
        for d in range(3, -1, -1):
            st[d] = 0 if shape[d] == 1 and out[d] != 1 else acc
            acc *= shape[d]
        return tuple(st)

    return tuple(out), strides(a), strides(b)
