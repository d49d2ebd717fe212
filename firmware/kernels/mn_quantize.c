/*
 * QUANTIZE float32 -> int8 (TFLM reference_ops::AffineQuantize) and DEQUANTIZE int8 -> float32
 * (reference_ops::Dequantize), plus the exported requantization primitive.
 */
#include "mn_kernels.h"

int32_t mn_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    return mn_mbqm(x, multiplier, shift);
}

/* TfLiteRound(float) = roundf: half away from zero. Exact without libm: the fraction of a
 * float with |v| < 2^31 is exactly v - trunc(v). Saturates outside int32. */
static int32_t mn_round_to_int32(float v)
{
    int32_t t;
    float frac;
    if (!(v < 2147483648.0f)) { /* also NaN */
        return v != v ? 0 : INT32_MAX;
    }
    if (v < -2147483648.0f) {
        return INT32_MIN;
    }
    t = (int32_t)v;
    frac = v - (float)t;
    if (frac >= 0.5f) {
        return t + 1;
    }
    if (frac <= -0.5f) {
        return t - 1;
    }
    return t;
}

int mn_quantize_f32_s8(const mn_affine_params *p, const float *in, int8_t *out)
{
    int32_t i;
    if (p == 0 || in == 0 || out == 0 || p->size < 0) {
        return MN_EINVAL;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t r = mn_round_to_int32(in[i] / p->scale);
        /* r + zero_point saturating: r may be near the int32 limits */
        const int32_t q = r > 127 - p->zero_point ? 127 : (r < -128 - p->zero_point ? -128 : r + p->zero_point);
        out[i] = (int8_t)q;
    }
    return MN_OK;
}

int mn_dequantize_s8_f32(const mn_affine_params *p, const int8_t *in, float *out)
{
    int32_t i;
    if (p == 0 || in == 0 || out == 0 || p->size < 0) {
        return MN_EINVAL;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = p->scale * (float)((int32_t)in[i] - p->zero_point);
    }
    return MN_OK;
}
