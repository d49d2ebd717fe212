/*
 * MUL int8, elementwise or 4-D broadcast: TFLM reference_integer_ops::MulElementwise /
 * BroadcastMul6DSlow, one requantization of the product of the offset inputs. The broadcast loop
 * visits the same pairs of elements as TFLM's BroadcastBinaryOpSimple; the result of a pair depends
 * on that pair only.
 *
 * The rows take every parameter as a local scalar: stores through the int8_t output may alias any
 * object in memory, so the compiler would otherwise reload the parameters for every element.
 */
#include "mn_kernels.h"

typedef struct {
    int32_t in1_offset, in2_offset, out_offset, mult, shift, act_min, act_max;
} mn_mul_q;

/* How a row requantizes, fixed per call: the single-multiply right shift with the int8 clamp (SSAT),
 * the same with a fused activation's clamp, or the general two-step MultiplyByQuantizedMultiplier. */
enum { MN_MUL_RIGHT_SAT = 0, MN_MUL_RIGHT_CLAMP = 1, MN_MUL_GENERAL = 2 };

static int mn_mul_mode(const mn_mul_q *q)
{
    if (!mn_mbqm_right_ok(q->mult, q->shift)) {
        return MN_MUL_GENERAL;
    }
    return q->act_min == -128 && q->act_max == 127 ? MN_MUL_RIGHT_SAT : MN_MUL_RIGHT_CLAMP;
}

/* One output from the product of the offset inputs x = a + in1_offset, y = b + in2_offset (|x|, |y|
 * <= 255: the product fits easily). Everything arrives by value so that, inlined, the invariants stay
 * in registers (a store through int8_t * may alias any object in memory). */
MN_ALWAYS_INLINE int8_t mn_mul_one(int32_t x, int32_t y, int32_t m, int32_t shift, int32_t out_offset,
                                   int32_t lo, int32_t hi, int mode)
{
    const int32_t prod = x * y;
    if (mode == MN_MUL_RIGHT_SAT) {
        return (int8_t)mn_sat8(mn_mbqm_right(prod, m, shift) + out_offset);
    }
    if (mode == MN_MUL_RIGHT_CLAMP) {
        return (int8_t)mn_clamp(mn_mbqm_right(prod, m, shift) + out_offset, lo, hi);
    }
    return (int8_t)mn_clamp(mn_mbqm_ref(prod, m, shift) + out_offset, lo, hi);
}

/* n outputs from a[i], b[i]: elementwise MUL, and the channel rows of squeeze-excite */
MN_ALWAYS_INLINE void mn_mul_contig_mode(const mn_mul_q *q, const int8_t *a, const int8_t *b, int8_t *out, int32_t n,
                                         int mode)
{
    const int32_t o1 = q->in1_offset, o2 = q->in2_offset, oo = q->out_offset;
    const int32_t m = q->mult, s = q->shift, lo = q->act_min, hi = q->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = mn_mul_one(a[i] + o1, b[i] + o2, m, s, oo, lo, hi, mode);
    }
}

/* n outputs from a[i * sa], b[i * sb] (a stride 0 is a broadcast value) */
MN_ALWAYS_INLINE void mn_mul_strided_mode(const mn_mul_q *q, const int8_t *a, int32_t sa, const int8_t *b,
                                          int32_t sb, int8_t *out, int32_t n, int mode)
{
    const int32_t o1 = q->in1_offset, o2 = q->in2_offset, oo = q->out_offset;
    const int32_t m = q->mult, s = q->shift, lo = q->act_min, hi = q->act_max;
    int32_t i;
    if (sa == 1 && sb == 0) {
        const int32_t y = b[0] + o2;
        for (i = 0; i < n; ++i) {
            out[i] = mn_mul_one(a[i] + o1, y, m, s, oo, lo, hi, mode);
        }
    } else if (sa == 0 && sb == 1) {
        const int32_t x = a[0] + o1;
        for (i = 0; i < n; ++i) {
            out[i] = mn_mul_one(x, b[i] + o2, m, s, oo, lo, hi, mode);
        }
    } else {
        for (i = 0; i < n; ++i) {
            out[i] = mn_mul_one(a[(ptrdiff_t)i * sa] + o1, b[(ptrdiff_t)i * sb] + o2, m, s, oo, lo, hi, mode);
        }
    }
}

static void mn_mul_contig(const mn_mul_q *q, const int8_t *a, const int8_t *b, int8_t *out, int32_t n, int mode)
{
    if (mode == MN_MUL_RIGHT_SAT) {
        mn_mul_contig_mode(q, a, b, out, n, MN_MUL_RIGHT_SAT);
    } else if (mode == MN_MUL_RIGHT_CLAMP) {
        mn_mul_contig_mode(q, a, b, out, n, MN_MUL_RIGHT_CLAMP);
    } else {
        mn_mul_contig_mode(q, a, b, out, n, MN_MUL_GENERAL);
    }
}

static void mn_mul_strided(const mn_mul_q *q, const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out,
                           int32_t n, int mode)
{
    if (mode == MN_MUL_RIGHT_SAT) {
        mn_mul_strided_mode(q, a, sa, b, sb, out, n, MN_MUL_RIGHT_SAT);
    } else if (mode == MN_MUL_RIGHT_CLAMP) {
        mn_mul_strided_mode(q, a, sa, b, sb, out, n, MN_MUL_RIGHT_CLAMP);
    } else {
        mn_mul_strided_mode(q, a, sa, b, sb, out, n, MN_MUL_GENERAL);
    }
}

static int mn_mul_load(const mn_mul_params *p, mn_mul_q *q)
{
    if (p == 0 || p->out_shift < -31 || p->out_shift > 31 || p->act_min > p->act_max) {
        return 0;
    }
    q->in1_offset = p->in1_offset;
    q->in2_offset = p->in2_offset;
    q->out_offset = p->out_offset;
    q->mult = p->out_mult;
    q->shift = p->out_shift;
    q->act_min = p->act_min;
    q->act_max = p->act_max;
    return 1;
}

int mn_mul_s8(const mn_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    mn_mul_q q;
    if (!mn_mul_load(p, &q) || in1 == 0 || in2 == 0 || out == 0 || p->size < 0) {
        return MN_EINVAL;
    }
    mn_mul_contig(&q, in1, in2, out, p->size, mn_mul_mode(&q));
    return MN_OK;
}

int mn_mul_broadcast_s8(const mn_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    mn_mul_q q;
    int32_t d[4], s1[4], s2[4], k, i0, i1, i2;
    int mode;
    if (!mn_mul_load(p, &q) || in1 == 0 || in2 == 0 || out == 0) {
        return MN_EINVAL;
    }
    for (k = 0; k < 4; ++k) {
        d[k] = p->out_dims[k];
        s1[k] = p->in1_strides[k];
        s2[k] = p->in2_strides[k];
    }
    mode = mn_mul_mode(&q);
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *a = in1 + (ptrdiff_t)i0 * s1[0] + (ptrdiff_t)i1 * s1[1] + (ptrdiff_t)i2 * s1[2];
                const int8_t *b = in2 + (ptrdiff_t)i0 * s2[0] + (ptrdiff_t)i1 * s2[1] + (ptrdiff_t)i2 * s2[2];
                if (s1[3] == 1 && s2[3] == 1) {
                    mn_mul_contig(&q, a, b, out, d[3], mode);
                } else {
                    mn_mul_strided(&q, a, s1[3], b, s2[3], out, d[3], mode);
                }
                out += d[3] > 0 ? d[3] : 0;
            }
        }
    }
    return MN_OK;
}
