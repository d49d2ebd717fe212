/*
 * Helium (MVE) kernels, private to firmware/kernels: compiled only where MN_KERNELS_MVE is 1
 * (mn_kernels.h). Each entry point takes the public kernel's validated parameters and either
 * computes the whole output (MN_OK) or returns MN_MVE_FALLBACK, having written nothing, for a
 * geometry it does not handle; the caller then runs the DSP/portable path.
 */
#ifndef MN_KERNELS_MVE_H
#define MN_KERNELS_MVE_H

#include "mn_kernels.h"

#define MN_MVE_FALLBACK 1

#if MN_KERNELS_MVE
#include <arm_mve.h>

int mn_conv2d_mve_s8(const mn_conv_params *p, const int8_t *in, int8_t *out);
int mn_depthwise_mve_s8(const mn_dw_params *p, const int8_t *in, int8_t *out, int8_t *scratch);

/* TFLM's MultiplyByQuantizedMultiplier (double rounding) on four lanes, bit-exact:
 * - x << left wraps (VSHL by register does not saturate), as mn_mbqm_ref;
 * - SaturatingRoundingDoublingHighMul(a, m) = floor((a * m + 2^30) / 2^31), saturating only for
 *   INT32_MIN * INT32_MIN: exactly VQRDMULH;
 * - RoundingDivideByPOT(t, e) rounds half away from zero, VRSHL (t + 2^(e-1)) >> e half up: the two
 *   differ only for t < 0, where floor((t - 1 + 2^(e-1)) / 2^e) is TFLM's value, so t - 1 (saturating:
 *   t = INT32_MIN has no remainder and gives the same quotient) is shifted instead when e > 0.
 * negright = -e (0 or negative). */
static inline int32x4_t mn_mve_mbqm(int32x4_t acc, int32x4_t mult, int32x4_t left, int32x4_t negright)
{
    int32x4_t t = vqrdmulhq_s32(vshlq_s32(acc, left), mult);
    t = vqaddq_s32(t, vshrq_n_s32(vandq_s32(t, negright), 31));
    return vrshlq_s32(t, negright);
}

/* the same with one multiplier and shift for all four lanes */
static inline int32x4_t mn_mve_mbqm_n(int32x4_t acc, int32_t mult, int32_t shift)
{
    int32x4_t t;
    if (shift > 0) {
        acc = vshlq_r_s32(acc, shift);
    }
    t = vqrdmulhq_n_s32(acc, mult);
    if (shift < 0) {
        t = vqaddq_s32(t, vshrq_n_s32(t, 31));
        t = vrshlq_n_s32(t, shift);
    }
    return t;
}

/* per-lane (left, -right) from TFLM shifts (> 0: left) */
static inline int32x4_t mn_mve_left(int32x4_t shift)
{
    return vmaxq_s32(shift, vdupq_n_s32(0));
}

static inline int32x4_t mn_mve_negright(int32x4_t shift)
{
    return vminq_s32(shift, vdupq_n_s32(0));
}

/* + output offset, clamped to [lo, hi] */
static inline int32x4_t mn_mve_out(int32x4_t v, int32_t out_offset, int32_t lo, int32_t hi)
{
    v = vaddq_n_s32(v, out_offset);
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}

/* n bytes from s to d, and n copies of v at d, 16 at a time with tail predication */
static inline void mn_mve_copy(int8_t *d, const int8_t *s, int32_t n)
{
    while (n > 0) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        vstrbq_p_s8(d, vldrbq_z_s8(s, pr), pr);
        d += 16;
        s += 16;
        n -= 16;
    }
}

static inline void mn_mve_fill(int8_t *d, int8x16_t v, int32_t n)
{
    while (n > 0) {
        vstrbq_p_s8(d, v, vctp8q((uint32_t)n));
        d += 16;
        n -= 16;
    }
}
#endif

#endif /* MN_KERNELS_MVE_H */
