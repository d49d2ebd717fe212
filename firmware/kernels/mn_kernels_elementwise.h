/*
 * mn_kernels_elementwise.h - part of mncompile's int8 kernel library (see mn_kernels.h, which includes
 * this file after its own declarations; include mn_kernels.h, not this file).
 *
 * Elementwise int8 kernels, each bit-exact with TFLM's reference kernel for the operator:
 * MUL and SUB (same shape or 4-D broadcast), HARD_SWISH, LOGISTIC, RELU, RELU6. Parameters come
 * from mncompile.aot.quantmath_elementwise (TFLM's Prepare arithmetic); conventions as in
 * mn_kernels.h (every field int32_t or a pointer, *_offset = -input zero point / +output zero point,
 * shift > 0 shifts left). In place: the output may be the same buffer as any input that has the
 * output's shape (every element is read before its output is written; a broadcast input may not be
 * the output). Unary kernels on more than MN_ELEMENTWISE_LUT_MIN elements first tabulate their
 * function for all 256 int8 inputs (256 bytes of stack), then look every element up.
 */
#ifndef MN_KERNELS_ELEMENTWISE_H
#define MN_KERNELS_ELEMENTWISE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Unary kernels tabulate their function when size exceeds this (the table costs 256 evaluations). */
#define MN_ELEMENTWISE_LUT_MIN 256

/* MUL int8: out = clamp(out_offset + MultiplyByQuantizedMultiplier((a + in1_offset) * (b + in2_offset),
 * out_mult, out_shift), act_min, act_max), TFLM reference_integer_ops::MulElementwise /
 * BroadcastMul6DSlow (one multiplier s1 * s2 / s_out, any shift in [-31, 31]).
 * mn_mul_s8 reads `size` elements of each input; mn_mul_broadcast_s8 walks out_dims (4-D, pad leading
 * dims with 1) with per-input element strides that are 0 along broadcast dimensions (as mn_add_params;
 * quantmath.broadcast_strides), e.g. squeeze-excite [1,H,W,C] * [1,1,1,C]. */
typedef struct {
    int32_t size;
    int32_t in1_offset, in2_offset, out_offset;
    int32_t out_mult, out_shift;
    int32_t act_min, act_max;
    int32_t out_dims[4];
    int32_t in1_strides[4];
    int32_t in2_strides[4];
} mn_mul_params;

/* HARD_SWISH int8: TFLM reference_ops::HardSwish<int8_t> (16-bit fixed point: input * 2^7, "reluish"
 * multiplier in Q0.15 with its own shift, output multiplier in Q0.15 with shift <= 0;
 * SaturatingDoublingHighMul truncates, the others round). Multipliers are int16 values in int32 fields. */
typedef struct {
    int32_t size;
    int32_t in_zp, out_zp;
    int32_t reluish_mult, reluish_shift; /* shift in [-31, 31] */
    int32_t out_mult, out_shift;         /* shift in [-31, 0] */
} mn_hard_swish_params;

/* LOGISTIC int8 -> int8, output Q0.8 with zero point -128 (TFLM reference_integer_ops::Logistic:
 * inputs beyond +-input_range_radius saturate, the rest go through gemmlowp's fixed-point logistic
 * on Q4.27). input_left_shift in [0, 62]; the multiplier is only applied while radius > 0 (shift <= 30). */
typedef struct {
    int32_t size;
    int32_t in_zp;
    int32_t input_range_radius;
    int32_t input_multiplier, input_left_shift;
} mn_logistic_params;

/* RELU int8 (TFLM ReluQuantized): out = clamp(out_zp + MultiplyByQuantizedMultiplier(x - in_zp,
 * out_mult, out_shift), act_min, act_max); always requantizes (identity when the scales agree). */
typedef struct {
    int32_t size;
    int32_t in_zp, out_zp;
    int32_t out_mult, out_shift; /* shift in [-31, 31] */
    int32_t act_min, act_max;
} mn_relu_params;

/* RELU6 int8 (TFLM Relu6Quantized): out = clamp(x, act_min, act_max) with act_min = input zero point,
 * act_max = the input quantization of 6.0; TFLM does not requantize to the output quantization. */
typedef struct {
    int32_t size;
    int32_t act_min, act_max;
} mn_relu6_params;

/* MUL; MN_EINVAL for a NULL pointer, size < 0, shift outside [-31, 31] or act_min > act_max. */
int mn_mul_s8(const mn_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
int mn_mul_broadcast_s8(const mn_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);

/* SUB int8 (TFLM reference_ops::SubElementwise / BroadcastQuantSubSlow): out = in1 - in2 with the ADD
 * parameter set (quantmath_elementwise.sub_params): both inputs shifted left by left_shift and scaled
 * to a common scale (shifts <= 0), the difference requantized (shift <= 0), clamped. Same shape rules
 * as mn_add_s8 / mn_add_broadcast_s8; MN_EINVAL for a NULL pointer, size < 0, left_shift outside
 * [0, 30], a shift outside [-31, 0] or act_min > act_max. */
int mn_sub_s8(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
int mn_sub_broadcast_s8(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);

/* Unary kernels: `size` elements; MN_EINVAL for a NULL pointer, size < 0, a field outside its
 * documented range (shifts; hard swish: multipliers and zero points outside int16; logistic: radius < 0)
 * or act_min > act_max. */
int mn_hard_swish_s8(const mn_hard_swish_params *p, const int8_t *in, int8_t *out);
int mn_logistic_s8(const mn_logistic_params *p, const int8_t *in, int8_t *out);
int mn_relu_s8(const mn_relu_params *p, const int8_t *in, int8_t *out);
int mn_relu6_s8(const mn_relu6_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* MN_KERNELS_ELEMENTWISE_H */
