/*
 * ADD int8 with rescaling: TFLM reference_integer_ops::AddFunc, elementwise or broadcast
 * (BroadcastAdd6DSlow visits the same pairs of elements; the result per pair is identical).
 */
#include "mn_kernels.h"

static int8_t mn_add_one(const mn_add_params *p, int8_t a, int8_t b)
{
    const int32_t x1 = (int32_t)((uint32_t)(p->in1_offset + a) << p->left_shift);
    const int32_t x2 = (int32_t)((uint32_t)(p->in2_offset + b) << p->left_shift);
    const int32_t s1 = mn_mbqm(x1, p->in1_mult, p->in1_shift);
    const int32_t s2 = mn_mbqm(x2, p->in2_mult, p->in2_shift);
    const int32_t raw = mn_mbqm(s1 + s2, p->out_mult, p->out_shift) + p->out_offset;
    return (int8_t)mn_clamp(raw, p->act_min, p->act_max);
}

static int mn_add_valid(const mn_add_params *p)
{
    return p != 0 && p->left_shift >= 0 && p->left_shift < 31 && p->in1_shift <= 0 && p->in2_shift <= 0 &&
           p->out_shift <= 0;
}

/* Tensors at least this large rescale through tables: each input's rescaled value depends on its
 * int8 value alone, so 2 x 256 requantizations replace two per element. */
#define MN_ADD_TABLE_MIN 1024

static void mn_add_tables(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    int32_t t1[256], t2[256];
    int32_t i, v;
    const int32_t out_mult = p->out_mult, out_shift = p->out_shift, out_offset = p->out_offset;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    for (v = -128; v < 128; ++v) {
        t1[v + 128] = mn_mbqm((int32_t)((uint32_t)(p->in1_offset + v) << p->left_shift), p->in1_mult, p->in1_shift);
        t2[v + 128] = mn_mbqm((int32_t)((uint32_t)(p->in2_offset + v) << p->left_shift), p->in2_mult, p->in2_shift);
    }
    if (mn_mbqm_right_ok(out_mult, out_shift)) {
        for (i = 0; i < p->size; ++i) {
            const int32_t sum = t1[in1[i] + 128] + t2[in2[i] + 128];
            out[i] = (int8_t)mn_clamp(mn_mbqm_right(sum, out_mult, out_shift) + out_offset, act_min, act_max);
        }
    } else {
        for (i = 0; i < p->size; ++i) {
            const int32_t sum = t1[in1[i] + 128] + t2[in2[i] + 128];
            out[i] = (int8_t)mn_clamp(mn_mbqm(sum, out_mult, out_shift) + out_offset, act_min, act_max);
        }
    }
}

int mn_add_s8(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    int32_t i;
    if (!mn_add_valid(p) || in1 == 0 || in2 == 0 || out == 0 || p->size < 0) {
        return MN_EINVAL;
    }
    if (p->size >= MN_ADD_TABLE_MIN) {
        mn_add_tables(p, in1, in2, out);
        return MN_OK;
    }
    for (i = 0; i < p->size; ++i) {
        out[i] = mn_add_one(p, in1[i], in2[i]);
    }
    return MN_OK;
}

int mn_add_broadcast_s8(const mn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    int32_t i0, i1, i2, i3;
    if (!mn_add_valid(p) || in1 == 0 || in2 == 0 || out == 0) {
        return MN_EINVAL;
    }
    for (i0 = 0; i0 < p->out_dims[0]; ++i0) {
        for (i1 = 0; i1 < p->out_dims[1]; ++i1) {
            for (i2 = 0; i2 < p->out_dims[2]; ++i2) {
                const int8_t *a = in1 + (ptrdiff_t)i0 * p->in1_strides[0] + (ptrdiff_t)i1 * p->in1_strides[1] +
                                  (ptrdiff_t)i2 * p->in1_strides[2];
                const int8_t *b = in2 + (ptrdiff_t)i0 * p->in2_strides[0] + (ptrdiff_t)i1 * p->in2_strides[1] +
                                  (ptrdiff_t)i2 * p->in2_strides[2];
                for (i3 = 0; i3 < p->out_dims[3]; ++i3) {
                    *out++ = mn_add_one(p, a[(ptrdiff_t)i3 * p->in1_strides[3]], b[(ptrdiff_t)i3 * p->in2_strides[3]]);
                }
            }
        }
    }
    return MN_OK;
}
