"""TFLM's Prepare arithmetic for the elementwise int8 kernels (firmware/kernels/mn_mul.c, mn_sub.c,
mn_activation.c): MUL, SUB, HARD_SWISH, LOGISTIC, RELU, RELU6, bit for bit.

Each function names the TFLM code it reproduces and raises `QuantMathError` where that Prepare
rejects the quantization (TF_LITE_ENSURE / TFLITE_CHECK), or where TFLM's arithmetic would be
undefined behaviour (shifts of 32 bits or more: only absurd scale ratios get there).

**Which TFLM.** SUB, RELU and HARD_SWISH divide two float32 scales. The source at the pinned commit
90b983c2 divides them in ``float`` and widens the quotient (``static_cast<double>(a / b)``; a 2022
fix to double was reverted there); the installed ``tflite-micro`` host interpreter (git 8f6596d),
from which mncompile's golden outputs come, widens first and divides in double -- observed to the
last bit by tests/test_kernels_elementwise.py, on scales where the two multipliers move an output.
``ratios="double"`` (the default) follows the host interpreter, ``ratios="float32"`` the pinned
source (TFLM firmware built from that commit), as `quantmath.fully_connected_params` does with its
``per_tensor_product``. MUL widens first in both. Everything else is float-type-free or agrees.

Zero points must be int8 values (TFLM takes them from the tensors without checking; the kernels'
int32 arithmetic relies on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mncompile.graph.ops.quantmath import (
    ADD_LEFT_SHIFT,
    INT8_MAX,
    INT8_MIN,
    AddParams,
    QuantMathError,
    activation_range,
    add_params,
    broadcast_strides,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one,
    quantize_scalar_f32,
)

__all__ = [
    "RATIOS", "HardSwishParams", "LogisticParams", "MulParams", "ReluParams", "Relu6Params", "broadcast_strides",
    "downscale_int32_to_int16_multiplier", "hard_swish_params", "logistic_params", "mul_params", "relu_params",
    "relu6_params", "sub_params",
]

RATIOS = ("double", "float32")  # the host interpreter's scale division, and the pinned source's
LOGISTIC_INPUT_INTEGER_BITS = 4  # int8 LOGISTIC: input rescaled to Q4.27
MAX_LEFT_SHIFT = 31  # TFLM's `x * (1 << shift)`: 1 << 32 and beyond is undefined


def _zero_point(zp: int, what: str) -> int:
    zp = int(zp)
    if not INT8_MIN <= zp <= INT8_MAX:
        raise QuantMathError(f"{what} zero point {zp} is not an int8 value")
    return zp


def _scale(scale: float, what: str) -> np.float32:
    s = np.float32(scale)
    if not (np.isfinite(s) and s > 0):
        raise QuantMathError(f"{what} scale {scale} must be positive and finite")
    return s


def _ratio(a: np.float32, b: np.float32, ratios: str) -> float:
    """a / b as TFLM forms it: ``double(a) / double(b)`` ("double") or ``double(a / b)`` with the
    quotient rounded to float32 ("float32")."""
    if ratios == "double":
        return float(a) / float(b)
    if ratios != "float32":
        raise QuantMathError(f"ratios must be one of {RATIOS}, not {ratios!r}")
    with np.errstate(over="ignore", under="ignore"):
        q = np.float32(a) / np.float32(b)
    if not np.isfinite(q):
        raise QuantMathError(f"scale ratio {a} / {b} overflows float32")
    return float(q)


def _left_shift_ok(shift: int, what: str) -> None:
    if shift > MAX_LEFT_SHIFT:
        raise QuantMathError(f"{what}: left shift {shift} (TFLM's 1 << {shift} is undefined)")


# ---------------------------------------------------------------------------------------------
# MUL


@dataclass(frozen=True)
class MulParams:
    in1_offset: int  # -input1 zero point
    in2_offset: int  # -input2 zero point
    out_offset: int  # output zero point
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


def mul_params(in1_scale: float, in1_zero_point: int, in2_scale: float, in2_zero_point: int, output_scale: float,
               output_zero_point: int, activation: str = "NONE") -> MulParams:
    """TFLM ``CalculateOpDataMul`` (mul_common.cc), int8: ``QuantizeMultiplier(double(s1) * double(s2) /
    double(s_out))`` and ``CalculateActivationRangeQuantized`` (NONE, RELU, RELU6, RELU_N1_TO_1); the
    kernel computes ``MultiplyByQuantizedMultiplier((a - zp1) * (b - zp2)) + zp_out``, clamped. No
    check in TFLM's Prepare can fail for int8; a multiplier of 2^31 or more (left shift > 31) is refused
    as undefined."""
    s1, s2, so = _scale(in1_scale, "input 1"), _scale(in2_scale, "input 2"), _scale(output_scale, "output")
    mult, shift = quantize_multiplier(float(s1) * float(s2) / float(so))
    _left_shift_ok(shift, "MUL multiplier")
    lo, hi = activation_range(activation, float(so), _zero_point(output_zero_point, "output"))
    return MulParams(-_zero_point(in1_zero_point, "input 1"), -_zero_point(in2_zero_point, "input 2"),
                     int(output_zero_point), mult, shift, lo, hi)


# ---------------------------------------------------------------------------------------------
# SUB


def sub_params(in1_scale: float, in1_zero_point: int, in2_scale: float, in2_zero_point: int, output_scale: float,
               output_zero_point: int, activation: str = "NONE", ratios: str = "double") -> AddParams:
    """TFLM ``CalculateOpDataSub`` (sub_common.cc), int8: ADD's scheme -- left_shift 20, input
    multipliers ``s_i / (2 max(s1, s2))``, output multiplier ``2 max(s1, s2) / (2^20 s_out)``, each
    through ``QuantizeMultiplierSmallerThanOneExp``, which CHECK-fails (aborts) outside (0, 1) -- and
    the fused activation range. Returns the ADD parameter set (``mn_sub_s8`` takes an ``mn_add_params``).

    ``ratios="double"``: exactly `quantmath.add_params` (the host interpreter). ``"float32"`` (the
    pinned source): ``float twice_max = 2 * max(s1, s2)``, ``double(s_i / twice_max)`` and
    ``double(twice_max / ((1 << 20) * s_out))``, each quotient rounded to float32."""
    s1, s2, so = _scale(in1_scale, "input 1"), _scale(in2_scale, "input 2"), _scale(output_scale, "output")
    zp1, zp2 = _zero_point(in1_zero_point, "input 1"), _zero_point(in2_zero_point, "input 2")
    zpo = _zero_point(output_zero_point, "output")
    if ratios == "double":
        return add_params(float(s1), zp1, float(s2), zp2, float(so), zpo, activation)
    with np.errstate(over="ignore"):
        twice_max = np.float32(2.0) * max(s1, s2)
        denominator = np.float32(1 << ADD_LEFT_SHIFT) * so  # (1 << left_shift) * float: a float product
    if not (np.isfinite(twice_max) and np.isfinite(denominator)):
        raise QuantMathError("SUB scales overflow float32")
    m1, sh1 = quantize_multiplier_smaller_than_one(_ratio(s1, twice_max, ratios))
    m2, sh2 = quantize_multiplier_smaller_than_one(_ratio(s2, twice_max, ratios))
    mo, sho = quantize_multiplier_smaller_than_one(_ratio(twice_max, denominator, ratios))
    lo, hi = activation_range(activation, float(so), zpo)
    return AddParams(-zp1, -zp2, zpo, ADD_LEFT_SHIFT, m1, sh1, m2, sh2, mo, sho, lo, hi)


# ---------------------------------------------------------------------------------------------
# HARD_SWISH


@dataclass(frozen=True)
class HardSwishParams:
    in_zp: int
    out_zp: int
    reluish_mult: int  # Q0.15 (an int16 value)
    reluish_shift: int  # any sign, <= 31
    out_mult: int  # Q0.15 (an int16 value)
    out_shift: int  # <= 0


def downscale_int32_to_int16_multiplier(multiplier: int) -> int:
    """TFLM ``DownScaleInt32ToInt16Multiplier`` (common.h): round to the upper 16 bits (half up),
    saturating at 32767."""
    if multiplier < 0:
        raise QuantMathError(f"negative multiplier {multiplier}")
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (multiplier + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int,
                      ratios: str = "double") -> HardSwishParams:
    """TFLM ``HardSwishPrepare`` (hard_swish_common.cc), int8: ``hires = (1/128) * s_in`` (float32,
    exact), output multiplier ``hires / s_out`` and reluish multiplier ``hires / (3/32768)``, each
    through ``QuantizeMultiplier`` then ``DownScaleInt32ToInt16Multiplier`` (Q0.15). ENSUREs the
    output exponent <= 0, i.e. s_in / s_out < 128 (QuantMathError otherwise); a reluish exponent > 31
    (s_in above ~2.5e7) is refused as undefined. ``ratios`` as in the module docstring (for the
    reluish multiplier the two agree after the 16-bit rounding on every scale tried)."""
    s_in, s_out = _scale(input_scale, "input"), _scale(output_scale, "output")
    hires = np.float32(1.0 / 128.0) * s_in
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    om, oe = quantize_multiplier(_ratio(hires, s_out, ratios))
    if oe > 0:
        raise QuantMathError(f"HARD_SWISH output multiplier exponent {oe} > 0 (input scale / output scale >= 128)")
    rm, re = quantize_multiplier(_ratio(hires, reluish_scale, ratios))
    _left_shift_ok(re, "HARD_SWISH reluish multiplier")
    return HardSwishParams(_zero_point(input_zero_point, "input"), _zero_point(output_zero_point, "output"),
                           downscale_int32_to_int16_multiplier(rm), re, downscale_int32_to_int16_multiplier(om), oe)


# ---------------------------------------------------------------------------------------------
# LOGISTIC


@dataclass(frozen=True)
class LogisticParams:
    in_zp: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


def _round_half_away(x: float) -> int:
    """TfLiteRound on a double."""
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return r if x >= 0 else -r


def logistic_params(input_scale: float, input_zero_point: int, output_scale: float = 1.0 / 256.0,
                    output_zero_point: int = -128) -> LogisticParams:
    """TFLM ``CalculateArithmeticOpDataLogistic`` (logistic_common.cc), int8: ENSUREs the output zero
    point -128 (QuantMathError otherwise); the output *scale* is not checked and not used (the kernel
    writes Q0.8, i.e. 1/256, regardless), so it is ignored here too. ``frexp(double(s_in) * 2^27)`` ->
    multiplier ``TfLiteRound(q * 2^31)`` (no QuantizeMultiplier: no 2^31 fix-up, no flush; for a
    float32 scale q * 2^31 is an exact integer below 2^31) and left shift;
    ``input_range_radius = CalculateInputRadius(4, shift, 31) = floor(15 * 2^27 / 2^shift)``. Shifts
    outside [0, 62] would be undefined in TFLM (``1LL << shift``) and are refused (input scales below
    about 7.5e-9 or from 2^35)."""
    del output_scale  # not checked by TFLM; see the docstring
    if int(output_zero_point) != -128:
        raise QuantMathError(f"LOGISTIC output zero point {output_zero_point} must be -128")
    s_in = _scale(input_scale, "input")
    q, shift = math.frexp(float(s_in) * float(1 << (31 - LOGISTIC_INPUT_INTEGER_BITS)))
    mult = _round_half_away(q * float(1 << 31))
    if mult > (1 << 31) - 1:  # cannot happen for a float32 scale (q has 24 significant bits)
        raise QuantMathError(f"LOGISTIC input multiplier {mult} overflows int32")
    if not 0 <= shift <= 62:
        raise QuantMathError(f"LOGISTIC input left shift {shift} outside [0, 62] (input scale {input_scale})")
    max_rescaled = (1.0 * ((1 << LOGISTIC_INPUT_INTEGER_BITS) - 1) * float(1 << (31 - LOGISTIC_INPUT_INTEGER_BITS))
                    / float(1 << shift))
    return LogisticParams(_zero_point(input_zero_point, "input"), int(math.floor(max_rescaled)), mult, shift)


# ---------------------------------------------------------------------------------------------
# RELU, RELU6


@dataclass(frozen=True)
class ReluParams:
    in_zp: int
    out_zp: int
    out_mult: int
    out_shift: int
    act_min: int
    act_max: int


def relu_params(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int,
                ratios: str = "double") -> ReluParams:
    """TFLM ``CalculateReluOpData<int8_t>`` (activations_common.cc): always requantizes,
    ``QuantizeMultiplier(s_in / s_out)`` (``ratios`` as in the module docstring; exactly 1.0 when the
    quantizations agree, which maps every input to itself); ``act_min = max(-128, zp_out +
    roundf(0 / s_out)) = max(-128, zp_out)``, ``act_max = 127``. The kernel computes ``zp_out +
    MultiplyByQuantizedMultiplier(x - zp_in)``, clamped. No check in TFLM's Prepare can fail."""
    s_in, s_out = _scale(input_scale, "input"), _scale(output_scale, "output")
    mult, shift = quantize_multiplier(_ratio(s_in, s_out, ratios))
    _left_shift_ok(shift, "RELU multiplier")
    zp_out = _zero_point(output_zero_point, "output")
    return ReluParams(_zero_point(input_zero_point, "input"), zp_out, mult, shift, max(INT8_MIN, zp_out), INT8_MAX)


@dataclass(frozen=True)
class Relu6Params:
    act_min: int
    act_max: int


def relu6_params(input_scale: float, input_zero_point: int, output_scale: float | None = None,
                 output_zero_point: int | None = None) -> Relu6Params:
    """TFLM ``Relu6Prepare`` (activations_common.cc), int8: **no requantization** -- the output is the
    input clamped to ``[zp_in, six]`` with ``six = FloatToQuantizedType<int8_t>(6.0f, s_in, zp_in)``
    (``round(6.0f / s_in) + zp_in``, the quotient in float32, clamped to int8, so its ENSURE cannot
    fail), whatever the output quantization: TFLM never reads it (observed on the host interpreter).
    The output quantization is accepted and ignored, as TFLM does; the converter always gives RELU6
    the input's quantization, where this is also the float semantics."""
    del output_scale, output_zero_point
    s_in = _scale(input_scale, "input")
    zp = _zero_point(input_zero_point, "input")
    six = quantize_scalar_f32(6.0, float(s_in), zp)  # raises where TFLM's int32 conversion is undefined
    return Relu6Params(zp, min(INT8_MAX, max(INT8_MIN, six)))
