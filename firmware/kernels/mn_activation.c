/*
 * Standalone int8 activations: HARD_SWISH, LOGISTIC, RELU, RELU6, bit-exact with TFLM's reference
 * kernels (hard_swish.h, integer_ops/logistic.h with gemmlowp's fixed-point logistic, activations.h).
 *
 * An int8 -> int8 function has 256 possible inputs: beyond MN_ELEMENTWISE_LUT_MIN elements the
 * kernels evaluate the function once per int8 value into a 256-byte table on the stack, then look
 * every element up. Each element is read before its output is written, so out may equal in.
 */
#include "mn_kernels.h"

/* out[i] = table[in[i] + 128], four per iteration (every load before the stores: out may be in) */
static void mn_lut_apply(const int8_t *table, const int8_t *in, int8_t *out, int32_t size)
{
    const int8_t *t = table + 128;
    int32_t i = 0;
    for (; i + 4 <= size; i += 4) {
        const int8_t y0 = t[in[i]], y1 = t[in[i + 1]], y2 = t[in[i + 2]], y3 = t[in[i + 3]];
        out[i] = y0;
        out[i + 1] = y1;
        out[i + 2] = y2;
        out[i + 3] = y3;
    }
    for (; i < size; ++i) {
        out[i] = t[in[i]];
    }
}

/* ------------------------------------------------------------------------------------------
 * int16 fixed point, exactly as TFLM/gemmlowp compute it on int16_t (HARD_SWISH)
 * ---------------------------------------------------------------------------------------- */

/* the int16_t a value converts to (two's complement wrap, without implementation-defined casts) */
static inline int32_t mn_wrap16(int32_t x)
{
    return (int32_t)(((uint32_t)x + 0x8000u) & 0xFFFFu) - 0x8000;
}

/* gemmlowp SaturatingRoundingDoublingHighMul<int16_t>: (ab + nudge) / 2^15 truncated, which equals
 * floor((ab + 2^14) / 2^15) for either sign of ab; -1 * -1 saturates */
static inline int32_t mn_srdhm16(int32_t a, int32_t b)
{
    if (a == -32768 && b == -32768) {
        return 32767;
    }
    return (a * b + (1 << 14)) >> 15;
}

/* TFLM reference_ops::SaturatingDoublingHighMul: ab / 2^15 truncated toward zero */
static inline int32_t mn_sdhm16(int32_t a, int32_t b)
{
    const int32_t ab = a * b;
    if (a == -32768 && b == -32768) {
        return 32767;
    }
    return ab >= 0 ? ab >> 15 : -((-ab) >> 15);
}

/* gemmlowp RoundingDivideByPOT<int16_t>(x, e), 0 <= e <= 31, with its int16 arithmetic: for e >= 16
 * the mask (2^e - 1) truncates to -1 (so that e.g. 0 -> 1), as TFLM computes it */
static inline int32_t mn_rdbpot16(int32_t x, int32_t e)
{
    const int32_t mask = mn_wrap16((int32_t)(((int64_t)1 << e) - 1));
    const int32_t remainder = x & mask;
    const int32_t threshold = mn_wrap16((mask >> 1) + (x < 0 ? 1 : 0));
    return mn_wrap16((x >> e) + (remainder > threshold ? 1 : 0));
}

/* TFLM reference_ops::SaturatingLeftShift(int16 value, amount), 0 <= amount <= 30 */
static inline int32_t mn_sat_lshift16(int32_t x, int32_t amount)
{
    if (x == 0) {
        return 0;
    }
    if (amount >= 16) {
        return x > 0 ? 32767 : -32768;
    }
    return mn_clamp(x * ((int32_t)1 << amount), -32768, 32767);
}

/* ------------------------------------------------------------------------------------------
 * HARD_SWISH
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    int32_t in_zp, out_zp, reluish_mult, reluish_shift, out_mult, out_shift;
} mn_hs_q;

/* TFLM reference_ops::HardSwish<int8_t> for one input value */
static int8_t mn_hard_swish_one(const mn_hs_q *q, int32_t x)
{
    const int32_t hires = (x - q->in_zp) * 128; /* |.| <= 255 * 128: an int16 */
    const int32_t preshift_out = mn_srdhm16(hires, q->out_mult);
    int32_t reluish = hires;
    int32_t y;
    if (q->reluish_shift > 0) {
        reluish = mn_sat_lshift16(reluish, q->reluish_shift - 1);
    }
    reluish = mn_srdhm16(reluish, q->reluish_mult);
    if (q->reluish_shift > 0) {
        reluish = mn_sat_lshift16(reluish, 1);
    } else if (q->reluish_shift < 0) {
        reluish = mn_rdbpot16(reluish, -q->reluish_shift);
    }
    reluish = (reluish + 32768) >> 1; /* [-1, 1] -> [0, 1] in Q0.15 */
    y = mn_rdbpot16(mn_sdhm16(reluish, preshift_out), -q->out_shift);
    y = mn_wrap16(y + q->out_zp); /* in int16_t as TFLM (|y| <= 32639: no wrap with int8 zero points) */
    return (int8_t)mn_sat8(y);
}

int mn_hard_swish_s8(const mn_hard_swish_params *p, const int8_t *in, int8_t *out)
{
    mn_hs_q q;
    int32_t i, size;
    if (p == 0 || in == 0 || out == 0 || p->size < 0 || p->reluish_shift < -31 || p->reluish_shift > 31 ||
        p->out_shift < -31 || p->out_shift > 0 || p->reluish_mult < -32768 || p->reluish_mult > 32767 ||
        p->out_mult < -32768 || p->out_mult > 32767 || p->in_zp < -32768 || p->in_zp > 32767 ||
        p->out_zp < -32768 || p->out_zp > 32767) {
        return MN_EINVAL;
    }
    q.in_zp = p->in_zp;
    q.out_zp = p->out_zp;
    q.reluish_mult = p->reluish_mult;
    q.reluish_shift = p->reluish_shift;
    q.out_mult = p->out_mult;
    q.out_shift = p->out_shift;
    size = p->size;
    if (size > MN_ELEMENTWISE_LUT_MIN) {
        int8_t table[256];
        for (i = 0; i < 256; ++i) {
            table[i] = mn_hard_swish_one(&q, i - 128);
        }
        mn_lut_apply(table, in, out, size);
    } else {
        for (i = 0; i < size; ++i) {
            out[i] = mn_hard_swish_one(&q, in[i]);
        }
    }
    return MN_OK;
}

/* ------------------------------------------------------------------------------------------
 * LOGISTIC: gemmlowp logistic<int32_t, 4> (input Q4.27, result Q0.31)
 * ---------------------------------------------------------------------------------------- */

static inline int32_t mn_wadd32(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t mn_wsub32(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0 (saturating left shift) */
static inline int32_t mn_sat_lshift32(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: Q0.31 in and out */
static int32_t mn_exp_on_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = mn_wadd32(a, (int32_t)1 << 28); /* a + 1/8 */
    const int32_t x2 = mn_srdhm(x, x);
    const int32_t x3 = mn_srdhm(x2, x);
    const int32_t x4 = mn_srdhm(x2, x2);
    const int32_t x4_over_4 = mn_rdbpot(x4, 2);
    const int32_t poly = mn_rdbpot(mn_wadd32(mn_srdhm(mn_wadd32(x4_over_4, x3), one_third), x2), 1);
    return mn_wadd32(exp_minus_one_eighth, mn_srdhm(exp_minus_one_eighth, mn_wadd32(x, poly)));
}

/* gemmlowp exp_on_negative_values<int32_t, 4>: a <= 0 in Q4.27, result Q0.31 */
static int32_t mn_exp_on_negative_q4(int32_t a)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 3 (the barrel shifter of an input with 4 integer bits) */
    static const int32_t multipliers[6] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401};
    const int32_t one_quarter = (int32_t)1 << 25;
    const int32_t a_mod_quarter_minus_one_quarter = mn_wsub32(a & (one_quarter - 1), one_quarter);
    const int32_t remainder = mn_wsub32(a_mod_quarter_minus_one_quarter, a);
    int32_t result = mn_exp_on_quarter(mn_sat_lshift32(a_mod_quarter_minus_one_quarter, 4));
    int32_t k;
    if (a == 0) {
        return INT32_MAX;
    }
    for (k = 0; k < 6; ++k) {
        if (remainder & ((int32_t)1 << (25 + k))) {
            result = mn_srdhm(result, multipliers[k]);
        }
    }
    return result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 in and out (Newton-Raphson in Q2.29) */
static int32_t mn_one_over_one_plus(int32_t a)
{
    const int64_t sum = (int64_t)a + (int64_t)INT32_MAX; /* RoundingHalfSum(a, One) */
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = mn_wadd32(1515870810, mn_srdhm(half_denominator, -1010580540)); /* 48/17 - 32/17 d */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = mn_wsub32((int32_t)1 << 29, mn_srdhm(half_denominator, x));
        x = mn_wadd32(x, mn_sat_lshift32(mn_srdhm(x, one_minus), 2));
    }
    return mn_sat_lshift32(x, 1);
}

typedef struct {
    int32_t in_zp, radius, mult, shift;
} mn_logistic_q;

/* TFLM reference_integer_ops::Logistic (int8) for one input value */
static int8_t mn_logistic_one(const mn_logistic_q *q, int32_t x)
{
    const int32_t input = x - q->in_zp;
    int32_t a, neg_abs, pos, y;
    if (input <= -q->radius) {
        return -128;
    }
    if (input >= q->radius) {
        return 127;
    }
    a = mn_mbqm(input, q->mult, q->shift); /* Q4.27 */
    if (a == 0) {
        y = (int32_t)1 << 30; /* logistic(0) = 1/2 */
    } else {
        neg_abs = a > 0 ? mn_wsub32(0, a) : a;
        pos = mn_one_over_one_plus(mn_exp_on_negative_q4(neg_abs)); /* logistic(|a|) */
        y = a > 0 ? pos : mn_wsub32(INT32_MAX, pos);
    }
    return (int8_t)mn_sat8(mn_rdbpot(y, 23) - 128); /* Q0.31 -> Q0.8, zero point -128 */
}

int mn_logistic_s8(const mn_logistic_params *p, const int8_t *in, int8_t *out)
{
    mn_logistic_q q;
    int32_t i, size;
    if (p == 0 || in == 0 || out == 0 || p->size < 0 || p->input_range_radius < 0 ||
        (p->input_range_radius > 0 && (p->input_left_shift < -31 || p->input_left_shift > 31))) {
        return MN_EINVAL;
    }
    q.in_zp = p->in_zp;
    q.radius = p->input_range_radius;
    q.mult = p->input_multiplier;
    q.shift = p->input_left_shift;
    size = p->size;
    if (size > MN_ELEMENTWISE_LUT_MIN) {
        int8_t table[256];
        for (i = 0; i < 256; ++i) {
            table[i] = mn_logistic_one(&q, i - 128);
        }
        mn_lut_apply(table, in, out, size);
    } else {
        for (i = 0; i < size; ++i) {
            out[i] = mn_logistic_one(&q, in[i]);
        }
    }
    return MN_OK;
}

/* ------------------------------------------------------------------------------------------
 * RELU, RELU6
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    int32_t in_zp, out_zp, mult, shift, act_min, act_max;
} mn_relu_q;

static inline int8_t mn_relu_one(const mn_relu_q *q, int32_t x)
{
    return (int8_t)mn_clamp(q->out_zp + mn_mbqm(x - q->in_zp, q->mult, q->shift), q->act_min, q->act_max);
}

int mn_relu_s8(const mn_relu_params *p, const int8_t *in, int8_t *out)
{
    mn_relu_q q;
    int32_t i, size;
    if (p == 0 || in == 0 || out == 0 || p->size < 0 || p->out_shift < -31 || p->out_shift > 31 ||
        p->act_min > p->act_max) {
        return MN_EINVAL;
    }
    q.in_zp = p->in_zp;
    q.out_zp = p->out_zp;
    q.mult = p->out_mult;
    q.shift = p->out_shift;
    q.act_min = p->act_min;
    q.act_max = p->act_max;
    size = p->size;
    if (size > MN_ELEMENTWISE_LUT_MIN) {
        int8_t table[256];
        for (i = 0; i < 256; ++i) {
            table[i] = mn_relu_one(&q, i - 128);
        }
        mn_lut_apply(table, in, out, size);
    } else {
        for (i = 0; i < size; ++i) {
            out[i] = mn_relu_one(&q, in[i]);
        }
    }
    return MN_OK;
}

int mn_relu6_s8(const mn_relu6_params *p, const int8_t *in, int8_t *out)
{
    int32_t i, size, lo, hi;
    if (p == 0 || in == 0 || out == 0 || p->size < 0 || p->act_min > p->act_max) {
        return MN_EINVAL;
    }
    size = p->size;
    lo = p->act_min;
    hi = p->act_max;
    for (i = 0; i < size; ++i) {
        out[i] = (int8_t)mn_clamp(in[i], lo, hi);
    }
    return MN_OK;
}
