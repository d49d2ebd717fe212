"""CMSIS-NN's int8 buffer sizes, as TFLM's `kernels/cmsis_nn/*.cc` Prepare asks for them.

CMSIS-NN (at the commit tflite-micro 90b983c2 pins) sizes each kernel's work buffer with a
``*_get_buffer_size`` function whose body depends on the core it is compiled for: ``_dsp`` on a
core with the DSP extension and no MVE (Cortex-M4/M7/M33), ``_mve`` on a Helium core
(Cortex-M55/M85, ``ARM_MATH_MVEI``). Both are replayed here for arm-none-eabi-gcc builds (armclang
changes two constants, noted where they apply). Sources, under ``Source/`` of CMSIS-NN:
`ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c`,
`ConvolutionFunctions/arm_depthwise_conv_get_buffer_sizes_s8.c`,
`FullyConnectedFunctions/arm_fully_connected_get_buffer_sizes_s8.c`,
`PoolingFunctions/arm_avgpool_get_buffer_sizes_s8.c`; the constants in
`Include/arm_nnsupportfunctions.h`.
"""

from __future__ import annotations

from dataclasses import dataclass

CH_IN_BLOCK_MVE = 124  # channels per block of arm_depthwise_conv_s8_opt on MVE
# depthwise with one input channel runs as a convolution above this many output channels (MVE;
# armclang: 8)
ONE_IN_CH_THRESHOLD = 1


@dataclass(frozen=True)
class ConvGeometry:
    """What TFLM passes CMSIS-NN: cmsis_nn_dims of input ``(n, h, w, c)``, filter ``(h, w, c)``,
    output ``(h, w, c)``, and cmsis_nn_conv_params' padding, stride and dilation as ``(h, w)``."""

    input: tuple[int, int, int, int]
    filter: tuple[int, int, int]
    output: tuple[int, int, int]
    padding: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]


def _c_div(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _c_mod(a: int, b: int) -> int:
    """C's % (takes the dividend's sign)."""
    return a - _c_div(a, b) * b


def _is_1x1(g: ConvGeometry) -> bool:  # arm_nn_is_convolve_1x1
    return g.padding == (0, 0) and g.filter[:2] == (1, 1) and g.dilation == (1, 1) and g.input[3] == g.filter[2]


def _is_1_x_n(g: ConvGeometry) -> bool:  # arm_nn_is_convolve_1_x_n
    return (g.input[1] == 1 and g.dilation[1] == 1 and g.filter[0] == 1 and (g.stride[1] * g.input[3]) % 4 == 0
            and g.input[3] == g.filter[2])


def convolve_s8_mve(input_c: int, kh: int, kw: int) -> int:
    """arm_convolve_s8_get_buffer_size_mve: four im2col columns, each whole 16-byte lanes."""
    return 4 * ((input_c * kw * kh + 15) // 16) * 16


def convolve_s8_dsp(input_c: int, kh: int, kw: int) -> int:
    """arm_convolve_s8_get_buffer_size (no MVE): two int16 columns of align4(kh * kw * c)."""
    cols = kh * kw * input_c
    return 2 * (cols + (-cols) % 4) * 2


def convolve_1_x_n_s8_mve(g: ConvGeometry) -> int:
    """arm_convolve_1_x_n_s8_get_buffer_size_mve: the padded left or right edge's column."""
    c, input_x, kernel_x, output_x = g.input[3], g.input[2], g.filter[1], g.output[1]
    pad_x, stride_x = g.padding[1], g.stride[1]
    asym_pad = _c_mod((output_x - 1) * stride_x + kernel_x - input_x, 2)
    right = max(1, _c_div(pad_x + asym_pad + stride_x - 1, stride_x)) if pad_x + asym_pad != 0 else 0
    left = max(1, _c_div(pad_x + stride_x - 1, stride_x)) if pad_x != 0 else 0
    if right + max(output_x - (right + left), 0) + left != output_x:
        return convolve_s8_mve(c, g.filter[0], kernel_x)
    pad_left = pad_x * c
    pad_right = right * c if asym_pad else pad_left
    elems_left = kernel_x * c
    return max(elems_left + pad_left, elems_left - c + pad_right)


def convolve_wrapper_s8(g: ConvGeometry, mve: bool) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size (gcc): 1x1 needs none (the DSP 1x1 fast buffer is
    armclang-only; on MVE it is 0), 1xN its edge column on MVE, the rest an im2col buffer."""
    if _is_1x1(g):
        return 0
    kh, kw = g.filter[:2]
    if mve:
        return convolve_1_x_n_s8_mve(g) if _is_1_x_n(g) else convolve_s8_mve(g.input[3], kh, kw)
    return convolve_s8_dsp(g.input[3], kh, kw)  # the DSP 1xN buffer is arm_convolve_s8's


def depthwise_wrapper_s8(g: ConvGeometry, mve: bool) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size (gcc). `g.filter[2]` is the output depth, as
    TFLM's depthwise Prepare sets it. On MVE one input channel with more than
    `ONE_IN_CH_THRESHOLD` outputs runs as a convolution (its buffer plus the transposed filter);
    otherwise arm_depthwise_conv_s8_opt's buffer when depth is kept, batch 1 and no dilation (on a DSP
    core not for 3x3 with padding <= 1, which arm_depthwise_conv_3x3_s8 runs)."""
    n, _, _, in_c = g.input
    kh, kw, out_c = g.filter
    if mve and in_c == 1 and out_c > ONE_IN_CH_THRESHOLD:
        # arm_deptwise_conv_s8_one_in_ch_get_buffer_size_mve: filter dims {out_c, kh, kw, 1}. TFLM's
        # Prepare leaves the stride of cmsis_nn_dw_conv_params unset; only the 1xN case reads it
        # (an input and filter of height 1), modelled with the operator's stride.
        conv = ConvGeometry(g.input, (kh, kw, 1), g.output, g.padding, g.stride, g.dilation)
        return convolve_wrapper_s8(conv, True) + out_c * kh * kw
    if in_c != g.output[2] or n != 1 or g.dilation != (1, 1):
        return 0
    if mve:
        return 4 * CH_IN_BLOCK_MVE * kw * kh  # arm_depthwise_conv_s8_opt_get_buffer_size_mve
    if (kh, kw) == (3, 3) and g.padding[0] <= 1 and g.padding[1] <= 1:
        return 0
    return 2 * in_c * kh * kw  # arm_depthwise_conv_s8_opt_get_buffer_size_dsp


def fully_connected_s8(output_depth: int, mve: bool) -> int:
    """arm_fully_connected_s8_get_buffer_size: the MVE kernel's int32 kernel sums, none on DSP."""
    return 4 * output_depth if mve else 0


def avgpool_s8(channels: int, mve: bool) -> int:
    """arm_avgpool_s8_get_buffer_size: one int32 per channel on DSP, none on MVE."""
    return 0 if mve else 4 * channels
