/*
 * MEAN, SUM, REDUCE_MAX, REDUCE_MIN int8 over any set of axes: TFLM reference_ops::QuantizedMeanOrSum
 * (MEAN and SUM: int32 sum of each group, minus in_zp * n, one MultiplyByQuantizedMultiplier, + out_zp,
 * clamped to int8) and reference_ops::ReduceGeneric (MAX / MIN, starting from -128 / 127).
 *
 * The shape is first folded into five groups [k0][r0][k1][r1][k2] (row-major; k kept, r reduced;
 * size-1 dimensions dropped, neighbours of the same kind merged, filled from the innermost dimension
 * so that an innermost reduced run is r1 and an innermost kept run is k2; at most four dimensions
 * always fit). Output (a, b, c) of [k0][k1][k2] reduces the r0 x r1 inputs (a, i, b, j, c). Two loop
 * shapes, every input read once and every output written once, in increasing order:
 * - k2 == 1: each output reduces r0 contiguous runs of r1 bytes;
 * - k2 > 1: a block of up to MN_REDUCE_BLOCK outputs (columns) accumulates r0 * r1 rows.
 * With the Arm DSP extension (little-endian), sums go through SXTAB16 into halfword lanes (two bytes
 * per instruction), flushed into the int32 sums before a lane could overflow, and MAX/MIN
 * columns four per word (SSUB8 + SEL). Integer sums are exact modulo 2^32 (unsigned arithmetic here,
 * TFLM's int32 wraps the same on every target it runs on), so every order gives TFLM's bytes.
 */
#include "mn_kernels.h"

#define MN_REDUCE_BLOCK 32

#if MN_KERNELS_DSP && !defined(__ARM_BIG_ENDIAN)
#define MN_REDUCE_SIMD_SUM 1
#else
#define MN_REDUCE_SIMD_SUM 0
#endif

typedef struct {
    size_t k0, r0, k1, r1, k2;
} mn_reduce_groups;

static int mn_reduce_fold(const mn_reduce_params *p, mn_reduce_groups *g)
{
    size_t s[5] = {1, 1, 1, 1, 1};
    size_t total = 1;
    int32_t d;
    int slot = 4; /* even slots kept, odd slots reduced */
    for (d = 3; d >= 0; --d) {
        const int32_t dim = p->dims[d];
        const int32_t red = p->reduce[d];
        if (dim < 1 || (red != 0 && red != 1) || (size_t)dim > (size_t)INT32_MAX / total) {
            return MN_EINVAL;
        }
        total *= (size_t)dim;
        if (dim == 1) {
            continue;
        }
        if ((slot & 1) != red) {
            --slot;
        }
        s[slot] *= (size_t)dim;
    }
    g->k0 = s[0];
    g->r0 = s[1];
    g->k1 = s[2];
    g->r1 = s[3];
    g->k2 = s[4];
    return MN_OK;
}

static inline int32_t mn_u2i(uint32_t v)
{
    return (int32_t)v; /* two's complement, as the library assumes */
}

static inline uint32_t mn_i2u(int32_t v)
{
    return (uint32_t)v;
}

/* the low halfword of v, sign-extended (SXTH) */
static inline int32_t mn_lo16s(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xFFFFu);
}

/* ------------------------------------------------------------------------------------------------
 * MEAN and SUM */

#if MN_REDUCE_SIMD_SUM
static inline uint32_t mn_lanes_sum(int32_t v)
{
    return mn_i2u(mn_lo16s(v) + (v >> 16));
}
#endif

/* acc + the sum of n contiguous int8 */
static uint32_t mn_sum_run(const int8_t *x, size_t n, uint32_t acc)
{
    size_t i = 0;
#if MN_REDUCE_SIMD_SUM
    /* each halfword lane takes two bytes per word: 128 words keep |lane| <= 32768 */
    while (n - i >= 4) {
        size_t words = (n - i) / 4;
        int32_t h = 0;
        if (words > 128) {
            words = 128;
        }
        for (; words > 0; --words) {
            const uint32_t v = mn_load4(x + i);
            h = mn_even16(v, h);
            h = mn_odd16(v, h);
            i += 4;
        }
        acc += mn_lanes_sum(h);
    }
#else
    for (; i + 4 <= n; i += 4) {
        acc += mn_i2u((int32_t)x[i] + (int32_t)x[i + 1] + (int32_t)x[i + 2] + (int32_t)x[i + 3]);
    }
#endif
    for (; i < n; ++i) {
        acc += mn_i2u(x[i]);
    }
    return acc;
}

static inline int8_t mn_mean_out(uint32_t sum, uint32_t zp_n, const mn_reduce_params *p)
{
    const int32_t v = mn_mbqm(mn_u2i(sum - zp_n), p->mult, p->shift);
    return (int8_t)mn_sat8(mn_u2i((uint32_t)v + (uint32_t)p->out_zp));
}

#if MN_REDUCE_SIMD_SUM
/* sum[0..3] += the halfword lanes of e (columns 0, 2) and o (columns 1, 3) */
MN_ALWAYS_INLINE void mn_flush_lanes(uint32_t *sum, int32_t e, int32_t o)
{
    sum[0] += mn_i2u(mn_lo16s(e));
    sum[1] += mn_i2u(mn_lo16s(o));
    sum[2] += mn_i2u(e >> 16);
    sum[3] += mn_i2u(o >> 16);
}

/* columns [0, 4) or [0, 8) (eight, a constant where inlined) of the rows base + i * s0 + j * s1 into
 * sum, in halfword lanes flushed every 256 rows (|lane| <= 256 * 128 = 32768) */
MN_ALWAYS_INLINE void mn_sum_columns_simd(const int8_t *base, size_t s0, size_t r0, size_t s1, size_t r1,
                                          uint32_t *sum, int eight)
{
    int32_t e0 = 0, o0 = 0, e1 = 0, o1 = 0;
    size_t i, room = 256; /* rows the lanes can still take */
    for (i = 0; i < r0; ++i) {
        const int8_t *x = base + i * s0;
        size_t left = r1;
        while (left > 0) {
            size_t m = left < room ? left : room;
            left -= m;
            room -= m;
            for (; m > 0; --m) {
                const uint32_t v0 = mn_load4(x);
                e0 = mn_even16(v0, e0);
                o0 = mn_odd16(v0, o0);
                if (eight) {
                    const uint32_t v1 = mn_load4(x + 4);
                    e1 = mn_even16(v1, e1);
                    o1 = mn_odd16(v1, o1);
                }
                x += s1;
            }
            if (room == 0) {
                mn_flush_lanes(sum, e0, o0);
                if (eight) {
                    mn_flush_lanes(sum + 4, e1, o1);
                }
                e0 = o0 = e1 = o1 = 0;
                room = 256;
            }
        }
    }
    mn_flush_lanes(sum, e0, o0);
    if (eight) {
        mn_flush_lanes(sum + 4, e1, o1);
    }
}
#endif

/* columns [0, n) (n <= MN_REDUCE_BLOCK) of the rows base + i * s0 + j * s1 (i < r0, j < r1) into sum:
 * with SIMD eight, then four columns in halfword lanes, the rest one by one */
static void mn_sum_columns(const int8_t *base, size_t s0, size_t r0, size_t s1, size_t r1, size_t n, uint32_t *sum)
{
    size_t i, j, c, k = 0;
#if MN_REDUCE_SIMD_SUM
    for (; k + 8 <= n; k += 8) {
        mn_sum_columns_simd(base + k, s0, r0, s1, r1, sum + k, 1);
    }
    if (k + 4 <= n) {
        mn_sum_columns_simd(base + k, s0, r0, s1, r1, sum + k, 0);
        k += 4;
    }
#endif
    if (k == n) {
        return;
    }
    for (i = 0; i < r0; ++i) {
        const int8_t *x = base + i * s0;
        for (j = 0; j < r1; ++j) {
            for (c = k; c < n; ++c) {
                sum[c] += mn_i2u(x[c]);
            }
            x += s1;
        }
    }
}

static int mn_reduce_sum(const mn_reduce_params *p, const int8_t *in, int8_t *out)
{
    mn_reduce_groups g;
    size_t a, b, c0, i, j;
    uint32_t zp_n;
    if (p == 0 || in == 0 || out == 0 || p->shift < -31 || p->shift > 31 || mn_reduce_fold(p, &g) != MN_OK) {
        return MN_EINVAL;
    }
    /* TFLM: static_cast<int32_t>(sum - int64(in_zp) * n), i.e. modulo 2^32 */
    zp_n = (uint32_t)p->in_zp * (uint32_t)(g.r0 * g.r1);
    for (a = 0; a < g.k0; ++a) {
        for (b = 0; b < g.k1; ++b) {
            const size_t s0 = g.k1 * g.r1 * g.k2;
            const int8_t *base = in + ((a * g.r0 * g.k1 + b) * g.r1) * g.k2;
            int8_t *o = out + (a * g.k1 + b) * g.k2;
            if (g.k2 == 1) {
                uint32_t acc = 0;
                for (i = 0; i < g.r0; ++i) {
                    acc = mn_sum_run(base + i * s0, g.r1, acc);
                }
                o[0] = mn_mean_out(acc, zp_n, p);
                continue;
            }
            for (c0 = 0; c0 < g.k2; c0 += MN_REDUCE_BLOCK) {
                const size_t n = g.k2 - c0 < MN_REDUCE_BLOCK ? g.k2 - c0 : MN_REDUCE_BLOCK;
                uint32_t sum[MN_REDUCE_BLOCK];
                for (j = 0; j < n; ++j) {
                    sum[j] = 0;
                }
                mn_sum_columns(base + c0, s0, g.r0, g.k2, g.r1, n, sum);
                for (j = 0; j < n; ++j) {
                    o[c0 + j] = mn_mean_out(sum[j], zp_n, p);
                }
            }
        }
    }
    return MN_OK;
}

int mn_mean_s8(const mn_reduce_params *p, const int8_t *in, int8_t *out)
{
    return mn_reduce_sum(p, in, out);
}

int mn_sum_s8(const mn_reduce_params *p, const int8_t *in, int8_t *out)
{
    return mn_reduce_sum(p, in, out);
}

/* ------------------------------------------------------------------------------------------------
 * REDUCE_MAX and REDUCE_MIN (is_max a constant in each instantiation) */

MN_ALWAYS_INLINE int32_t mn_pick(int32_t acc, int32_t x, int is_max)
{
    return is_max ? (x > acc ? x : acc) : (x < acc ? x : acc);
}

MN_ALWAYS_INLINE void mn_extreme_columns(const int8_t *base, size_t s0, size_t r0, size_t s1, size_t r1, size_t n,
                                         int8_t *o, int is_max)
{
    const int32_t init = is_max ? -128 : 127;
    int32_t m[MN_REDUCE_BLOCK];
    size_t i, j, c, k = 0;
#if MN_KERNELS_DSP
    for (; k + 4 <= n; k += 4) {
        uint32_t w = is_max ? 0x80808080u : 0x7F7F7F7Fu;
        for (i = 0; i < r0; ++i) {
            const int8_t *x = base + i * s0 + k;
            for (j = 0; j < r1; ++j) {
                w = is_max ? mn_max4_s8(w, mn_load4(x)) : mn_min4_s8(w, mn_load4(x));
                x += s1;
            }
        }
        memcpy(o + k, &w, sizeof w);
    }
#endif
    if (k == n) {
        return;
    }
    for (c = k; c < n; ++c) {
        m[c] = init;
    }
    for (i = 0; i < r0; ++i) {
        const int8_t *x = base + i * s0;
        for (j = 0; j < r1; ++j) {
            for (c = k; c < n; ++c) {
                m[c] = mn_pick(m[c], x[c], is_max);
            }
            x += s1;
        }
    }
    for (c = k; c < n; ++c) {
        o[c] = (int8_t)m[c];
    }
}

MN_ALWAYS_INLINE int mn_reduce_extreme(const mn_reduce_params *p, const int8_t *in, int8_t *out, int is_max)
{
    mn_reduce_groups g;
    size_t a, b, c0, i, j;
    if (p == 0 || in == 0 || out == 0 || mn_reduce_fold(p, &g) != MN_OK) {
        return MN_EINVAL;
    }
    for (a = 0; a < g.k0; ++a) {
        for (b = 0; b < g.k1; ++b) {
            const size_t s0 = g.k1 * g.r1 * g.k2;
            const int8_t *base = in + ((a * g.r0 * g.k1 + b) * g.r1) * g.k2;
            int8_t *o = out + (a * g.k1 + b) * g.k2;
            if (g.k2 == 1) {
                int32_t m = is_max ? -128 : 127;
                for (i = 0; i < g.r0; ++i) {
                    const int8_t *x = base + i * s0;
                    for (j = 0; j < g.r1; ++j) {
                        m = mn_pick(m, x[j], is_max);
                    }
                }
                o[0] = (int8_t)m;
                continue;
            }
            for (c0 = 0; c0 < g.k2; c0 += MN_REDUCE_BLOCK) {
                const size_t n = g.k2 - c0 < MN_REDUCE_BLOCK ? g.k2 - c0 : MN_REDUCE_BLOCK;
                mn_extreme_columns(base + c0, s0, g.r0, g.k2, g.r1, n, o + c0, is_max);
            }
        }
    }
    return MN_OK;
}

int mn_reduce_max_s8(const mn_reduce_params *p, const int8_t *in, int8_t *out)
{
    return mn_reduce_extreme(p, in, out, 1);
}

int mn_reduce_min_s8(const mn_reduce_params *p, const int8_t *in, int8_t *out)
{
    return mn_reduce_extreme(p, in, out, 0);
}
