/*
 * SUB int8, elementwise or 4-D broadcast: TFLM reference_ops::SubElementwise / BroadcastQuantSubSlow.
 * ADD's scheme (both inputs shifted left by left_shift and scaled to a common scale, then one output
 * requantization) with a difference instead of a sum; the parameters are an mn_add_params. The
 * broadcast loop visits the same pairs of elements as TFLM's BroadcastBinaryOpSimple.
 */
#include "mn_kernels.h"

typedef struct {
    int32_t in1_offset, in2_offset, out_offset, left_shift;
    int32_t in1_mult, in1_shift, in2_mult, in2_shift, out_mult, out_shift, act_min, act_max;
} mn_sub_q;

/* One input scaled to the common scale: TFLM's MultiplyByQuantizedMultiplierSmallerThanOneExp of the
 * offset value shifted left, which is mn_mbqm for shifts <= 0. */
MN_ALWAYS_INLINE int32_t mn_sub_scale(int32_t x, int32_t left_shift, int32_t m, int32_t shift)
{
    return mn_mbqm((int32_t)((uint32_t)x << left_shift), m, shift);
}

/* n outputs from a[i * sa], b[i * sb]. The parameters are local scalars so that the invariants stay
 * in registers (a store through int8_t * may alias any object in memory). */
MN_ALWAYS_INLINE void mn_sub_row_mode(const mn_sub_q *q, const int8_t *a, int32_t sa, const int8_t *b, int32_t sb,
                                      int8_t *out, int32_t n, int right)
{
    const int32_t o1 = q->in1_offset, o2 = q->in2_offset, oo = q->out_offset, ls = q->left_shift;
    const int32_t m1 = q->in1_mult, s1 = q->in1_shift, m2 = q->in2_mult, s2 = q->in2_shift;
    const int32_t mo = q->out_mult, so = q->out_shift, lo = q->act_min, hi = q->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t diff = mn_sub_scale(a[(ptrdiff_t)i * sa] + o1, ls, m1, s1) -
                             mn_sub_scale(b[(ptrdiff_t)i * sb] + o2, ls, m2, s2);
        const int32_t raw = right ? mn_mbqm_right(diff, mo, so) : mn_mbqm_ref(diff, mo, so);
        out[i] = (int8_t)mn_clamp(raw + oo, lo, hi);
    }
}

static void mn_sub_row(const mn_sub_q *q, const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out,
                       int32_t n)
{
    if (mn_mbqm_right_ok(q->out_mult, q->out_shift)) {
        if (sa == 1 && sb == 1) {
            mn_sub_row_mode(q, a, 1, b, 1, out, n, 1);
        } else {
            mn_sub_row_mode(q, a, sa, b, sb, out, n, 1);
        }
    } else {
        mn_sub_row_mode(q, a, sa, b, sb, out, n, 0);
    }
}

static int mn_sub_load(const mn_add_params *p, mn_sub_q *q)
{
    if (p == 0 || p->left_shift < 0 || p->left_shift > 30 || p->in1_shift > 0 || p->in1_shift < -31 ||
        p->in2_shift > 0 || p->in2_shift < -31 || p->out_shift > 0 || p->out_shift < -31 ||
        p->act_min > p->act_max) {
        return 0;
    }
    q->in1_offset = p->in1_offset;
    q->in2_offset = p->in2_offset;
    q->out_offset = p->out_offset;
    q->left_shift = p->left_shift;
    q->in1_mult = p->in1_mult;
    q->in1_shift = p->in1_shift;
    q->in2_mult = p->in2_mult;
    q->in2_shift = p->in2_shift;
    q->out_mult = p->out_mult;
    q->out_shift = p->out_shift;
    q->act_min = p->act_min;
    q->act_max = p->act_max;
    return 1;
}

int mn_sub_s8(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    mn_sub_q q;
    if (!mn_sub_load(p, &q) || in1 == 0 || in2 == 0 || out == 0 || p->size < 0) {
        return MN_EINVAL;
    }
    mn_sub_row(&q, in1, 1, in2, 1, out, p->size);
    return MN_OK;
}

int mn_sub_broadcast_s8(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    mn_sub_q q;
    int32_t d[4], s1[4], s2[4], k, i0, i1, i2;
    if (!mn_sub_load(p, &q) || in1 == 0 || in2 == 0 || out == 0) {
        return MN_EINVAL;
    }
    for (k = 0; k < 4; ++k) {
        d[k] = p->out_dims[k];
        s1[k] = p->in1_strides[k];
        s2[k] = p->in2_strides[k];
    }
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *a = in1 + (ptrdiff_t)i0 * s1[0] + (ptrdiff_t)i1 * s1[1] + (ptrdiff_t)i2 * s1[2];
                const int8_t *b = in2 + (ptrdiff_t)i0 * s2[0] + (ptrdiff_t)i1 * s2[1] + (ptrdiff_t)i2 * s2[2];
                mn_sub_row(&q, a, s1[3], b, s2[3], out, d[3]);
                out += d[3] > 0 ? d[3] : 0;
            }
        }
    }
    return MN_OK;
}
