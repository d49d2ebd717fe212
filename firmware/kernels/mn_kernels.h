/*
 * mn_kernels.h - mncompile's int8 kernel library for interpreter-free (AOT) firmware.
 *
 * Every kernel computes bit-exactly what TensorFlow Lite Micro's reference kernels
 * compute for the same operator, tensors and quantization parameters (the int8 paths
 * TFLM's micro kernels take; double-rounding MultiplyByQuantizedMultiplier, i.e.
 * TFLITE_SINGLE_ROUNDING off, TFLM's default). There is no Prepare at run time: all
 * multipliers, shifts, paddings and clamp ranges arrive precomputed (mncompile's
 * `mncompile.aot.quantmath` computes them exactly as TFLM's Prepare does), so the
 * parameter structs below are plain data a code generator can emit as `static const`
 * initialisers. Every field is an int32_t, a float or a pointer: no padding, one ABI.
 *
 * Conventions
 * - Tensors are NHWC, row-major, densely packed. Activations are int8_t.
 * - `*_offset` fields follow TFLM: in_offset = -input_zero_point, out_offset = output_zero_point.
 * - Requantization multipliers/shifts are TFLM's (QuantizeMultiplier): shift > 0 shifts left.
 * - act_min/act_max clamp the output in the quantized domain (fused NONE/RELU/RELU6).
 * - Kernels return MN_OK, or MN_EINVAL when a documented precondition does not hold
 *   (nothing is written then, except where noted). No kernel allocates memory.
 * - Portable C99. The only float arithmetic is in mn_quantize_f32_s8/mn_dequantize_s8_f32
 *   (as in TFLM). Assumes two's complement int32_t and arithmetic right shift of negative
 *   values (true of GCC, Clang, armcc/armclang, IAR); a compile-time check enforces the latter.
 * - RESHAPE has no kernel: it is a view of the same bytes (TFLM's reshape copies only when
 *   input and output are different buffers; an AOT planner simply aliases them).
 */
#ifndef MN_KERNELS_H
#define MN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mn_kernels_config.h"

/* Armv7E-M / Armv8-M DSP extension (Cortex-M4, M7, M33, M55): CONV_2D, DEPTHWISE_CONV_2D and
 * FULLY_CONNECTED multiply sign-extended int8 pairs with SMLAD/SMLABB/SMLATT. Integer sums are
 * exact, so the results are identical to the portable loops. Define MN_KERNELS_PORTABLE to force
 * the portable C everywhere. Define MN_KERNELS_EMULATE_DSP (tests, on any host) to compile the
 * same DSP-path code with C emulations of the ACLE intrinsics (mn_smlad() and friends below). */
#if defined(MN_KERNELS_PORTABLE)
#define MN_KERNELS_DSP 0
#elif defined(MN_KERNELS_EMULATE_DSP)
#define MN_KERNELS_DSP 1
#elif defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32)
#define MN_KERNELS_DSP 1
#else
#define MN_KERNELS_DSP 0
#endif
#if (MN_KERNELS_DSP || defined(__ARM_FEATURE_SAT)) && !defined(MN_KERNELS_EMULATE_DSP)
#include <arm_acle.h>
#endif

/* Helium (M-profile vector extension, Cortex-M55/M85): CONV_2D and DEPTHWISE_CONV_2D take vector
 * kernels (mn_*_mve.c). Define MN_KERNELS_NO_MVE to keep the DSP path on a Helium core (the bench
 * compares the two); MN_KERNELS_PORTABLE turns both off. */
#if defined(__ARM_FEATURE_MVE) && !defined(MN_KERNELS_NO_MVE) && !defined(MN_KERNELS_PORTABLE) && \
    !defined(MN_KERNELS_EMULATE_DSP)
#define MN_KERNELS_MVE 1
#else
#define MN_KERNELS_MVE 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define MN_KERNELS_VERSION 1

#define MN_OK 0
#define MN_EINVAL (-1)

/* ------------------------------------------------------------------------------------------
 * Parameter structs
 * ---------------------------------------------------------------------------------------- */

/* CONV_2D. filter: [out_c][k_h][k_w][in_c] int8 (per-channel symmetric, zero point 0);
 * bias: [out_c] int32 (scale in_scale*w_scale[c], zero point 0) or NULL;
 * out_mult/out_shift: [out_c] (a per-tensor filter scale is broadcast to out_c entries);
 * bias_sum: NULL, or [out_c] int32 bias[c] + in_offset * (sum of filter row c), wrapping like
 * int32 (the code generator computes it): the kernels then ignore `bias` and multiply raw inputs,
 * as sum((x + off) * w) + b == sum(x * w) + (b + off * sum(w)) modulo 2^32, and a padding tap
 * holding the input zero point (x = -off) adds exactly what bias_sum counted for it. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left; /* TFLM ComputePaddingHeightWidth; bottom/right padding is implicit */
    int32_t in_offset;         /* -input zero point */
    int32_t out_offset;        /* output zero point */
    int32_t act_min, act_max;
    const int8_t *filter;
    const int32_t *bias;
    const int32_t *out_mult;
    const int32_t *out_shift;
    const int32_t *bias_sum;
} mn_conv_params;

/* DEPTHWISE_CONV_2D. out_c = in_c * depth_mult. filter: [1][k_h][k_w][out_c] int8
 * (per-channel along dimension 3); bias/out_mult/out_shift: [out_c]. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t depth_mult;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t in_offset, out_offset;
    int32_t act_min, act_max;
    const int8_t *filter;
    const int32_t *bias;
    const int32_t *out_mult;
    const int32_t *out_shift;
} mn_dw_params;

/* FULLY_CONNECTED. weights: [out_depth][in_depth] int8, zero point 0; bias [out_depth] or NULL.
 * per_channel = 0: out_mult[0]/out_shift[0] apply to every output (TFLM's per-tensor path,
 * whose multiplier comes from the float32 product in_scale*w_scale, see quantmath);
 * per_channel = 1: out_mult/out_shift have out_depth entries. */
typedef struct {
    int32_t batches;
    int32_t in_depth, out_depth;
    int32_t in_offset, out_offset;
    int32_t act_min, act_max;
    int32_t per_channel;
    const int8_t *weights;
    const int32_t *bias;
    const int32_t *out_mult;
    const int32_t *out_shift;
} mn_fc_params;

/* AVERAGE_POOL_2D (input and output share scale and zero point, as TFLM requires). */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max;
} mn_pool_params;

/* MEAN over H and W of an NHWC tensor (keep_dims true or false: same bytes).
 * mult/shift already include the division by h*w exactly as TFLM's QuantizedMeanOrSum
 * folds it in (see quantmath.mean_params). Output is clamped to [-128, 127] only. */
typedef struct {
    int32_t batches;
    int32_t h, w, channels;
    int32_t in_zp, out_zp;
    int32_t mult, shift;
} mn_mean_params;

/* SOFTMAX int8 -> int8 over the last dimension (output scale 1/256, zero point -128).
 * input_multiplier/input_left_shift/diff_min as TFLM's CalculateSoftmaxParams. */
typedef struct {
    int32_t outer; /* product of all dimensions but the last */
    int32_t depth; /* last dimension */
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} mn_softmax_params;

/* ADD int8 (left_shift 20). mn_add_s8 reads `size` elements of each input; mn_add_broadcast_s8
 * walks out_dims (4-D, pad leading dims with 1) with per-input element strides that are 0 along
 * broadcast dimensions. Output may alias either input (elementwise, same shape). */
typedef struct {
    int32_t size;
    int32_t in1_offset, in2_offset, out_offset;
    int32_t left_shift;
    int32_t in1_mult, in1_shift;
    int32_t in2_mult, in2_shift;
    int32_t out_mult, out_shift;
    int32_t act_min, act_max;
    int32_t out_dims[4];
    int32_t in1_strides[4];
    int32_t in2_strides[4];
} mn_add_params;

/* PAD int8, up to 4-D (pad leading dims with 1 / 0). pad_value: the output zero point when
 * the model gives no constant_values (TFLM). */
typedef struct {
    int32_t in_dims[4];
    int32_t pad_before[4];
    int32_t pad_after[4];
    int32_t pad_value;
} mn_pad_params;

/* QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32 (per tensor). */
typedef struct {
    int32_t size;
    float scale;
    int32_t zero_point;
} mn_affine_params;

/* ------------------------------------------------------------------------------------------
 * Kernels
 * ---------------------------------------------------------------------------------------- */

/* CONV_2D: takes mn_conv2d_1x1_s8 when k 1x1, stride 1, no padding, else the generic loop. */
int mn_conv2d_s8(const mn_conv_params *p, const int8_t *in, int8_t *out);
int mn_conv2d_generic_s8(const mn_conv_params *p, const int8_t *in, int8_t *out);
/* Pointwise fast path; MN_EINVAL unless k_h == k_w == 1, stride 1, pad 0, out_h/out_w == in_h/in_w. */
int mn_conv2d_1x1_s8(const mn_conv_params *p, const int8_t *in, int8_t *out);

/* DEPTHWISE_CONV_2D. out may equal in (same buffer, in-place) when depth_mult == 1: the kernel
 * then needs `scratch` of mn_depthwise_scratch_bytes(p) bytes (one input channel plane) and
 * works channel by channel. With distinct, non-overlapping buffers scratch may be NULL.
 * Partially overlapping buffers are not supported. */
size_t mn_depthwise_scratch_bytes(const mn_dw_params *p);
int mn_depthwise_conv_s8(const mn_dw_params *p, const int8_t *in, int8_t *out, int8_t *scratch);

int mn_fully_connected_s8(const mn_fc_params *p, const int8_t *in, int8_t *out);

/* MN_EINVAL (and output left partly written) if a window covers no input, as TFLM's false. */
int mn_avgpool_s8(const mn_pool_params *p, const int8_t *in, int8_t *out);
int mn_mean_hw_s8(const mn_mean_params *p, const int8_t *in, int8_t *out);
int mn_softmax_s8(const mn_softmax_params *p, const int8_t *in, int8_t *out);
int mn_add_s8(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
int mn_add_broadcast_s8(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out);
int mn_pad_s8(const mn_pad_params *p, const int8_t *in, int8_t *out);
/* round(x / scale) half away from zero, in float32, + zero point, clamped to int8. Values with
 * |x / scale| >= 2^31 (and NaN) saturate (TFLM's cast is undefined there). */
int mn_quantize_f32_s8(const mn_affine_params *p, const float *in, int8_t *out);
/* scale * (q - zero_point), rounded once to float32 (TFLM computes in double and casts; the
 * product of a float32 and a 9-bit integer is exact in double, so the results are identical). */
int mn_dequantize_s8_f32(const mn_affine_params *p, const int8_t *in, float *out);

/* TFLM's MultiplyByQuantizedMultiplier(int32 x, multiplier, shift), double rounding: exported
 * for tests and for generated code that requantizes on its own. */
int32_t mn_requantize(int32_t x, int32_t multiplier, int32_t shift);

/* ------------------------------------------------------------------------------------------
 * Fixed-point helpers (gemmlowp semantics), shared by the kernels
 * ---------------------------------------------------------------------------------------- */

/* Negative values must shift arithmetically (the helpers below rely on it). */
typedef char mn_assert_arithmetic_shift[((-1 >> 1) == -1) ? 1 : -1];

/* gemmlowp SaturatingRoundingDoublingHighMul: (a*b + 2^30) / 2^31 rounded half away from zero,
 * computed with a floor shift ((ab + nudge) truncated toward zero equals floor(ab + 2^30) >> 31). */
static inline int32_t mn_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    return (int32_t)((ab + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero, 0 <= exponent <= 31. */
static inline int32_t mn_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier (int32 overload, TFLITE_SINGLE_ROUNDING off), step by step
 * as TFLM computes it. The left shift wraps like TFLM's int32 product on two's complement
 * hardware, without undefined behaviour. */
static inline int32_t mn_mbqm_ref(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return mn_rdbpot(mn_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* The same for a right shift e = -shift with 2 <= e <= 31 and multiplier m >= 0 (every layer with
 * an effective scale below 1/2: convolutions in practice), in one 64-bit multiply-accumulate.
 * With ab = x * m, s = [x < 0] and t = floor((ab + 2^30) / 2^31) (SaturatingRoundingDoublingHighMul,
 * which cannot saturate when m >= 0), RoundingDivideByPOT(t, e) = floor((t + 2^(e-1) - [t < 0]) / 2^e).
 * [t < 0] may be replaced by s: they differ only when t = 0, where both give 0 (e >= 1). As the
 * added term is an integer, the two floors merge:
 *     result = floor((ab + 2^30 - s * 2^31 + 2^(30+e)) / 2^(31+e))
 *            = hi >> (e-1),   hi = floor((ab + 2^30 - s * 2^31 + 2^(e-2) * 2^32) / 2^32)   (e >= 2),
 * the high word of one SMLAL from (lo, hi) = (2^30 | x & 2^31, 2^(e-2) - s). |hi| < 2^31. Checked exhaustively against mn_mbqm_ref on
 * edge values and ties, and by every kernel test. */
static inline int32_t mn_mbqm_right(int32_t x, int32_t m, int32_t shift)
{
    const int32_t e1 = -shift - 1;
    /* (lo, hi) = +-2^30 + 2^(e-2) * 2^32: the rounding term rides in the high word */
    const uint32_t lo = ((uint32_t)x & 0x80000000u) | 0x40000000u;
    const int32_t hi = ((int32_t)1 << (e1 - 1)) + (x >> 31);
    const int64_t d = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo);
    return (int32_t)(((int64_t)x * (int64_t)m + d) >> 32) >> e1;
}

/* 1 when mn_mbqm_right computes MultiplyByQuantizedMultiplier(., m, shift) */
static inline int mn_mbqm_right_ok(int32_t m, int32_t shift)
{
    return m >= 0 && (uint32_t)-2 - (uint32_t)shift <= 29u;
}

/* TFLM MultiplyByQuantizedMultiplier (int32 overload, TFLITE_SINGLE_ROUNDING off) */
static inline int32_t mn_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    if (mn_mbqm_right_ok(multiplier, shift)) {
        return mn_mbqm_right(x, multiplier, shift);
    }
    return mn_mbqm_ref(x, multiplier, shift);
}

static inline int32_t mn_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* clamp to [-128, 127]: one SSAT on Arm */
static inline int32_t mn_sat8(int32_t x)
{
#if defined(__ARM_FEATURE_SAT) && !defined(MN_KERNELS_EMULATE_DSP)
#if defined(__GNUC__)
    /* GCC's arm_acle.h (12.x) stores __builtin_arm_ssat's unsigned int result in an int32_t inside
     * the __ssat macro, which -Wsign-conversion reports at every use. The value is in [-128, 127]
     * and the instruction is the same: silence that one conversion here, not in every file. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#endif
    return __ssat(x, 8);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#else
    return mn_clamp(x, -128, 127);
#endif
}

/* Requantization of a whole layer: fast when every channel takes mn_mbqm_right and the clamp is the
 * int8 range (one SSAT), which the kernels check once per call. */
typedef struct {
    int32_t out_offset, act_min, act_max;
    int fast;
} mn_requant_ctx;

static inline mn_requant_ctx mn_requant_init(const int32_t *mult, const int32_t *shift, int32_t channels,
                                             int32_t out_offset, int32_t act_min, int32_t act_max)
{
    mn_requant_ctx q;
    int32_t c;
    q.out_offset = out_offset;
    q.act_min = act_min;
    q.act_max = act_max;
    q.fast = act_min == -128 && act_max == 127;
    for (c = 0; c < channels && q.fast; ++c) {
        q.fast = mn_mbqm_right_ok(mult[c], shift[c]);
    }
    return q;
}

/* acc (bias included) -> MultiplyByQuantizedMultiplier(acc, m, shift) + out_offset, clamped to
 * [act_min, act_max]; `fast` as in mn_requant_ctx (a constant where inlined: no test at run time) */
static inline int8_t mn_requant_val(int32_t acc, int32_t m, int32_t shift, int fast, int32_t out_offset,
                                    int32_t act_min, int32_t act_max)
{
    if (fast) {
        return (int8_t)mn_sat8(mn_mbqm_right(acc, m, shift) + out_offset);
    }
    return (int8_t)mn_clamp(mn_mbqm(acc, m, shift) + out_offset, act_min, act_max);
}

static inline int8_t mn_requant_s8(const mn_requant_ctx *q, int32_t acc, int32_t m, int32_t shift)
{
    return mn_requant_val(acc, m, shift, q->fast, q->out_offset, q->act_min, q->act_max);
}

/* for kernel bodies instantiated twice (fast requantization or not) */
#if defined(__GNUC__)
#define MN_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define MN_ALWAYS_INLINE static inline
#endif

#if MN_KERNELS_DSP
/* The ACLE intrinsics the DSP paths use, behind mn_ names: the real instructions on Arm, or exact
 * C emulations (MN_KERNELS_EMULATE_DSP) so the host tests run the same DSP-path code. */
#if defined(MN_KERNELS_EMULATE_DSP)
static inline int32_t mn_lo16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xFFFFu);
}

static inline int32_t mn_hi16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v >> 16);
}

static inline int32_t mn_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

/* SXTB16: bytes 0 and 2 sign-extended to halfwords */
static inline int32_t mn_sxtb16(uint32_t v)
{
    return mn_pack16((int32_t)(int8_t)(uint8_t)(v & 0xFFu), (int32_t)(int8_t)(uint8_t)((v >> 16) & 0xFFu));
}

/* SXTAB16: a's halfwords plus bytes 0 and 2 of v sign-extended (each halfword wraps) */
static inline int32_t mn_sxtab16(int32_t a, uint32_t v)
{
    const int32_t b = mn_sxtb16(v);
    return mn_pack16(mn_lo16(a) + mn_lo16(b), mn_hi16(a) + mn_hi16(b));
}

/* SMLAD: acc + a.lo * b.lo + a.hi * b.hi (wraps modulo 2^32, as the instruction does) */
static inline int32_t mn_smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mn_lo16(a) * mn_lo16(b)) + (uint32_t)(mn_hi16(a) * mn_hi16(b)));
}

/* SMLABB / SMLATT: acc + a.lo * b.lo, acc + a.hi * b.hi */
static inline int32_t mn_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mn_lo16(a) * mn_lo16(b)));
}

static inline int32_t mn_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mn_hi16(a) * mn_hi16(b)));
}

/* SXTB16 / SXTAB16 of v rotated right by 8 (bytes 1 and 3) */
static inline int32_t mn_sxtb16_ror8(uint32_t v)
{
    return mn_sxtb16((v >> 8) | (v << 24));
}

static inline int32_t mn_sxtab16_ror8(int32_t a, uint32_t v)
{
    return mn_sxtab16(a, (v >> 8) | (v << 24));
}
#else
static inline int32_t mn_sxtb16(uint32_t v)
{
    return __sxtb16((int32_t)v);
}

static inline int32_t mn_sxtab16(int32_t a, uint32_t v)
{
    return __sxtab16(a, (int32_t)v);
}

static inline int32_t mn_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

static inline int32_t mn_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

static inline int32_t mn_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}

/* SXTB16 / SXTAB16 with the operand rotated right by 8 (bytes 1 and 3) in one instruction: GCC 12
 * emits a separate ROR for __sxtb16(ror(v, 8)), so the rotated encodings are written out. */
static inline int32_t mn_sxtb16_ror8(uint32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static inline int32_t mn_sxtab16_ror8(int32_t a, uint32_t v)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}
#endif

/* Four int8 from any address (Cortex-M3 and later load unaligned words). */
static inline uint32_t mn_load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* in_offset in both halfwords, for SXTAB16 */
static inline int32_t mn_dup16(int32_t x)
{
    return (int32_t)(((uint32_t)x & 0xFFFFu) | ((uint32_t)x << 16));
}

/* bytes 0,2 and 1,3 of v sign-extended to halfwords, plus off16 per halfword (|x + off| <= 255) */
static inline int32_t mn_even16(uint32_t v, int32_t off16)
{
    return mn_sxtab16(off16, v);
}

static inline int32_t mn_odd16(uint32_t v, int32_t off16)
{
    return mn_sxtab16_ror8(off16, v);
}

/* the same without an offset (weights) */
static inline int32_t mn_even8(uint32_t v)
{
    return mn_sxtb16(v);
}

static inline int32_t mn_odd8(uint32_t v)
{
    return mn_sxtb16_ror8(v);
}
#endif

/* First and one-past-last filter tap k with 0 <= origin + dilation * k < size (the taps of a window
 * inside the image along one axis): CONV_2D, DEPTHWISE_CONV_2D and their vector paths. */
static inline void mn_tap_range(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first,
                                int32_t *end)
{
    int32_t k0 = 0;
    int32_t k1 = taps;
    while (k0 < taps && origin + dilation * k0 < 0) {
        ++k0;
    }
    while (k1 > k0 && origin + dilation * (k1 - 1) >= size) {
        --k1;
    }
    *first = k0;
    *end = k1;
}

/* acc + sum over i < n of w[i] * (x[i] + in_offset), the inner loop of CONV_2D and FC. */
static inline int32_t mn_dot_s8(const int8_t *w, const int8_t *x, int32_t n, int32_t in_offset, int32_t acc)
{
    int32_t i = 0;
#if MN_KERNELS_DSP
    const int32_t off16 = mn_dup16(in_offset);
    for (; i + 4 <= n; i += 4) {
        const uint32_t xv = mn_load4(x + i);
        const uint32_t wv = mn_load4(w + i);
        acc = mn_smlad(mn_even16(xv, off16), mn_even8(wv), acc);
        acc = mn_smlad(mn_odd16(xv, off16), mn_odd8(wv), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)w[i] * ((int32_t)x[i] + in_offset);
    }
    return acc;
}

#ifdef __cplusplus
}
#endif

/* The kernel families declared in their own headers. */
#include "mn_kernels_elementwise.h"
#include "mn_kernels_movement.h"
#include "mn_kernels_pool.h"

#endif /* MN_KERNELS_H */
