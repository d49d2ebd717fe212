/*
 * mn_kernels_pool.h - part of mncompile's int8 kernel library (see mn_kernels.h, which includes
 * this file after its own declarations; include mn_kernels.h, not this file).
 *
 * Pooling and reductions, each bit-exact with the int8 path TFLM's micro kernel takes:
 * MAX_POOL_2D (mn_maxpool.c) and MEAN, SUM, REDUCE_MAX, REDUCE_MIN over any set of axes
 * (mn_reduce.c). Parameters come from mncompile.aot.quantmath_pool (TFLM's Prepare arithmetic);
 * conventions as in mn_kernels.h (every field int32_t, NHWC / row-major, shift > 0 shifts left).
 * AVERAGE_POOL_2D and MEAN over H,W of a 4-D tensor (mn_avgpool_s8, mn_mean_hw_s8) are in
 * mn_kernels.h; mn_mean_s8 below computes the same bytes as mn_mean_hw_s8 for axes {1, 2}.
 * None of these kernels needs scratch memory.
 */
#ifndef MN_KERNELS_POOL_H
#define MN_KERNELS_POOL_H

#ifdef __cplusplus
extern "C" {
#endif

/* MAX_POOL_2D int8 (TFLM reference_integer_ops::MaxPool), with mn_pool_params (mn_kernels.h; the
 * parameters AVERAGE_POOL_2D takes, from quantmath_pool.pool_params): for every output pixel and
 * channel, the maximum of the window clipped to the image (taps in the padding are skipped, not
 * zero), starting from -128, then clamped to [act_min, act_max]. Input and output share scale and
 * zero point (TFLM's Prepare requires it), so there is no requantization. A window that covers no
 * input gives clamp(-128) as in TFLM (SAME and VALID padding never produce one).
 * `out` must not overlap `in`. With the Arm DSP extension four channels go per word (SSUB8 + SEL).
 * MN_EINVAL for a NULL pointer, a size, window or stride < 1, padding < 0, or an activation range
 * outside int8 or empty. */
int mn_maxpool_s8(const mn_pool_params *p, const int8_t *in, int8_t *out);

/* MEAN, SUM, REDUCE_MAX, REDUCE_MIN int8 over any set of axes of a tensor of up to 4 dimensions
 * (TFLM reference_ops::QuantizedMeanOrSum for MEAN and SUM, reference_ops::ReduceGeneric for
 * REDUCE_MAX / REDUCE_MIN). dims: the input shape, padded on the left with 1s (row-major, last
 * dimension contiguous); reduce[d]: 1 if dimension d is reduced, 0 if kept (size-1 dimensions may be
 * either). The output holds the kept dimensions in order: keep_dims true or false are the same bytes.
 * quantmath_pool.reduce_params fills dims/reduce from a shape of any rank and TFLM's axis list
 * (negative and repeated axes resolved; size-1 dimensions dropped and neighbours of equal kind
 * merged, so tensors of higher rank fit when at most four groups remain).
 *
 * mn_mean_s8 / mn_sum_s8: with n = the product of the reduced dimensions and S the int32 sum of a
 * group of n inputs, out = clamp(MultiplyByQuantizedMultiplier(S - in_zp * n, mult, shift) + out_zp,
 * -128, 127) (no fused activation), the int32 arithmetic wrapping like TFLM's. For MEAN, mult/shift
 * already fold in 1/n exactly as TFLM does at run time (quantmath_pool.mean_reduce_params); for SUM
 * they are QuantizeMultiplier(in_scale / out_scale) (quantmath_pool.sum_reduce_params). The two
 * functions are the same computation (two names for the two operators).
 * mn_reduce_max_s8 / mn_reduce_min_s8: the maximum / minimum of each group; input and output share
 * scale and zero point (TFLM requires it: quantmath_pool.max_min_reduce_params), so in_zp, out_zp,
 * mult and shift are not used.
 *
 * `out` may be the same buffer as `in` (in place: every output is written after the inputs it
 * needs, at an offset no larger than theirs); other overlaps are not supported.
 * MN_EINVAL for a NULL pointer, a dimension < 1, a reduce flag other than 0/1, more than 2^31 - 1
 * elements, or (mean/sum) shift outside [-31, 31]. */
typedef struct {
    int32_t dims[4];
    int32_t reduce[4];
    int32_t in_zp, out_zp;
    int32_t mult, shift;
} mn_reduce_params;

int mn_mean_s8(const mn_reduce_params *p, const int8_t *in, int8_t *out);
int mn_sum_s8(const mn_reduce_params *p, const int8_t *in, int8_t *out);
int mn_reduce_max_s8(const mn_reduce_params *p, const int8_t *in, int8_t *out);
int mn_reduce_min_s8(const mn_reduce_params *p, const int8_t *in, int8_t *out);

#if MN_KERNELS_DSP
/* Four signed bytes at once, lane by lane: max (SSUB8 sets the GE flags where a >= b, SEL picks a
 * there, b elsewhere) and min (the same flags, SEL the other way round). Exact C emulations under
 * MN_KERNELS_EMULATE_DSP, like mn_smlad() and friends in mn_kernels.h. */
#if defined(MN_KERNELS_EMULATE_DSP)
static inline uint32_t mn_sel_ge8(uint32_t a, uint32_t b, uint32_t if_ge, uint32_t if_lt)
{
    uint32_t r = 0;
    uint32_t k;
    for (k = 0; k < 32u; k += 8u) {
        const int32_t x = (int32_t)(int8_t)(uint8_t)(a >> k);
        const int32_t y = (int32_t)(int8_t)(uint8_t)(b >> k);
        r |= ((x >= y ? if_ge : if_lt) >> k & 0xFFu) << k;
    }
    return r;
}

static inline uint32_t mn_max4_s8(uint32_t a, uint32_t b)
{
    return mn_sel_ge8(a, b, a, b);
}

static inline uint32_t mn_min4_s8(uint32_t a, uint32_t b)
{
    return mn_sel_ge8(a, b, b, a);
}
#else
static inline uint32_t mn_max4_s8(uint32_t a, uint32_t b)
{
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return __sel(a, b);
}

static inline uint32_t mn_min4_s8(uint32_t a, uint32_t b)
{
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return __sel(b, a);
}
#endif
#endif

#ifdef __cplusplus
}
#endif

#endif /* MN_KERNELS_POOL_H */
