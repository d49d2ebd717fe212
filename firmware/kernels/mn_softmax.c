/*
 * SOFTMAX int8 -> int8 (output scale 1/256, zero point -128): TFLM reference_ops::Softmax for
 * quantized types, with gemmlowp's fixed-point exp_on_negative_values (input Q5.26) and
 * TFLM's GetReciprocal (accumulator Q12.19). Pure integer arithmetic, no tables.
 */
#include "mn_kernels.h"

#define MN_SCALED_DIFF_INTEGER_BITS 5
#define MN_ACCUMULATION_INTEGER_BITS 12

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0 (saturating left shift). */
static int32_t mn_sat_lshift(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((((int64_t)1) << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* Wrapping add/sub, as gemmlowp's raw int32 Add/Sub behave on two's complement hardware. */
static int32_t mn_wadd(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t mn_wsub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static int32_t mn_exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883;
    const int32_t x = mn_wadd(a, (int32_t)1 << 28); /* a + 1/8 */
    const int32_t x2 = mn_srdhm(x, x);
    const int32_t x3 = mn_srdhm(x2, x);
    const int32_t x4 = mn_srdhm(x2, x2);
    const int32_t x4_over_4 = mn_rdbpot(x4, 2);
    const int32_t poly = mn_rdbpot(mn_wadd(mn_srdhm(mn_wadd(x4_over_4, x3), one_third), x2), 1);
    return mn_wadd(constant_term, mn_srdhm(constant_term, mn_wadd(x, poly)));
}

/* exp(a) for a <= 0: a in Q5.26, result in Q0.31 (gemmlowp exp_on_negative_values<int32, 5>). */
static int32_t mn_exp_on_negative_values(int32_t a)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 31 - MN_SCALED_DIFF_INTEGER_BITS;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = mn_wsub(a & (one_quarter - 1), one_quarter);
    const int32_t remainder = mn_wsub(a_mod_quarter_minus_one_quarter, a);
    int32_t result = mn_exp_quarter(mn_sat_lshift(a_mod_quarter_minus_one_quarter, MN_SCALED_DIFF_INTEGER_BITS));
    int32_t k;
    for (k = 0; k < 7; ++k) { /* exponents -2 .. 4: exp(-2^e) */
        if (remainder & ((int32_t)1 << (fractional_bits - 2 + k))) {
            result = mn_srdhm(result, multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1, Q0.31 in and out (Newton-Raphson in Q2.29). */
static int32_t mn_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = mn_wadd(1515870810, mn_srdhm(half_denominator, -1010580540)); /* 48/17 - 32/17 d */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = mn_srdhm(half_denominator, x);
        const int32_t one_minus = mn_wsub((int32_t)1 << 29, half_denominator_times_x);
        x = mn_wadd(x, mn_sat_lshift(mn_srdhm(x, one_minus), 2));
    }
    return mn_sat_lshift(x, 1);
}

static int32_t mn_clz32(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0 ? 32 : (int32_t)__builtin_clz(x);
#else
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

int mn_softmax_s8(const mn_softmax_params *p, const int8_t *in, int8_t *out)
{
    int32_t i, c;
    if (p == 0 || in == 0 || out == 0 || p->outer <= 0 || p->depth <= 0) {
        return MN_EINVAL;
    }
    for (i = 0; i < p->outer; ++i) {
        const int8_t *x = in + (size_t)i * (size_t)p->depth;
        int8_t *y = out + (size_t)i * (size_t)p->depth;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0;
        int32_t headroom_plus_one, num_bits_over_unit, shifted_scale, exponent;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t rescaled =
                    mn_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                sum_of_exps = mn_wadd(sum_of_exps, mn_rdbpot(mn_exp_on_negative_values(rescaled),
                                                             MN_ACCUMULATION_INTEGER_BITS));
            }
        }
        if (sum_of_exps <= 0) {
            return MN_EINVAL; /* cannot happen: the row maximum alone contributes exp(0) */
        }
        /* TFLM GetReciprocal(sum_of_exps, 12, &num_bits_over_unit) */
        headroom_plus_one = mn_clz32((uint32_t)sum_of_exps);
        num_bits_over_unit = MN_ACCUMULATION_INTEGER_BITS - headroom_plus_one;
        shifted_scale = mn_one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31)));
        exponent = num_bits_over_unit + 31 - 8;
        if (exponent < 0 || exponent > 31) {
            return MN_EINVAL; /* TFLM: TFLITE_CHECK(0 <= exponent && exponent <= 31) */
        }
        /* the row may be in place: every x[c] is read before y[c] is written */
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t rescaled =
                    mn_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                const int32_t e = mn_exp_on_negative_values(rescaled);
                const int32_t unsat = mn_rdbpot(mn_srdhm(shifted_scale, e), exponent);
                y[c] = (int8_t)mn_clamp(unsat - 128, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
    return MN_OK;
}
