/*
 * CONV_2D, shallow layers with the DSP extension and the fast requantization (mn_conv.c has the
 * overview): 1x1 layers of depth 8 or 16, and other convolutions of depth up to 32, against a stack
 * table per output channel of requantization terms and the filter row already widened.
 */
#include "mn_conv_internal.h"

#if MN_KERNELS_DSP && (MN_CONV_SHALLOW_1X1 || MN_CONV_SHALLOW_GENERIC)
/* Shallow pointwise layers (depth 8 or 16), fast requantization: the four-pixel GEMM spends more on
 * each output channel's set-up than on its 8-16 MACs there. One pixel at a time instead, its input
 * widened into registers, against a stack table per output channel of {start, multiplier,
 * 2^(e1-1), e1} and the filter row already widened: per output 1 LDM, n/4 LDRD, n/2 SMLAD and the
 * requantization of mn_mbqm_right. */

MN_ALWAYS_INLINE int8_t mn_small_requant(int32_t acc, const int32_t *e, int32_t out_offset)
{
    const uint32_t lo = ((uint32_t)acc & 0x80000000u) | 0x40000000u;
    const int32_t hi = e[2] + (acc >> 31);
    const int64_t d = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo);
    return (int8_t)mn_sat8(((int32_t)(((int64_t)acc * (int64_t)e[1] + d) >> 32) >> e[3]) + out_offset);
}

/* Per output channel: {start, multiplier, 2^(e1-1), e1, the filter row widened to n4 / 2 words (steps
 * n..n4-1 are 0)}; out_c * (4 + n4 / 2) <= MN_SMALL_TABLE_WORDS, fast requantization. */
static void mn_conv_small_table(const mn_conv_params *p, int32_t n, int32_t n4, int32_t *table)
{
    const int32_t stride = 4 + n4 / 2;
    int32_t oc, k;
    for (oc = 0; oc < p->out_c; ++oc) {
        int32_t *e = table + oc * stride;
        const int8_t *w = p->filter + (size_t)oc * (size_t)n;
        const int32_t e1 = -p->out_shift[oc] - 1;
        e[0] = mn_conv_start(p, oc);
        e[1] = p->out_mult[oc];
        e[2] = (int32_t)1 << (e1 - 1);
        e[3] = e1;
        for (k = 0; k < n4 / 4; ++k) {
            uint32_t v = 0;
            if (4 * k + 4 <= n) {
                v = mn_load4(w + 4 * k);
            } else {
                int32_t i;
                for (i = 0; 4 * k + i < n; ++i) {
                    v |= (uint32_t)(uint8_t)w[4 * k + i] << (8 * i);
                }
            }
            e[4 + 2 * k] = mn_even8(v);
            e[5 + 2 * k] = mn_odd8(v);
        }
    }
}

MN_ALWAYS_INLINE void mn_conv_small_body(const mn_conv_params *p, const int8_t *in, int8_t *out, size_t pixels,
                                         const int32_t n)
{
    int32_t table[MN_SMALL_TABLE_WORDS];
    const int32_t out_c = p->out_c, stride = 4 + n / 2, off16 = mn_dup16(mn_conv_off(p));
    const int32_t out_offset = p->out_offset;
    int32_t oc, k;
    size_t px;
    mn_conv_small_table(p, n, n, table);
    for (px = 0; px < pixels; ++px, in += n) {
        int32_t x[8];
        const int32_t *e = table;
        for (k = 0; k < n / 4; ++k) {
            const uint32_t v = mn_load4(in + 4 * k);
            x[2 * k] = mn_even16(v, off16);
            x[2 * k + 1] = mn_odd16(v, off16);
        }
        for (oc = 0; oc < out_c; ++oc, e += stride) {
            int32_t acc = e[0];
            for (k = 0; k < n / 2; ++k) {
                acc = mn_smlad(x[k], e[4 + k], acc);
            }
            *out++ = mn_small_requant(acc, e, out_offset);
        }
    }
}

#if MN_CONV_SHALLOW_1X1
void mn_conv_small8(const mn_conv_params *p, const int8_t *in, int8_t *out, size_t pixels)
{
    mn_conv_small_body(p, in, out, pixels, 8);
}

void mn_conv_small16(const mn_conv_params *p, const int8_t *in, int8_t *out, size_t pixels)
{
    mn_conv_small_body(p, in, out, pixels, 16);
}
#endif
#endif

#if MN_KERNELS_DSP && MN_CONV_SHALLOW_GENERIC
/* Shallow generic convolutions (depth n = k_h * k_w * in_c up to 32, fast requantization: a first
 * 3x3 layer over RGB has 27): two pixels at a time, their patches widened into stack rows padded to a
 * multiple of 4 steps, against the table of mn_conv_small_table whose padded filter steps are 0 (the
 * tail needs no loop). Per 4 steps: one filter word, one operand word per pixel, two SMLAD. */

MN_ALWAYS_INLINE void mn_conv_table_body(const mn_conv_params *p, const int8_t *in, int8_t *out, int32_t n,
                                         const int32_t n4)
{
    int32_t table[MN_SMALL_TABLE_WORDS];
    int32_t xs[2][MN_CONV_TABLE_DEPTH / 2];
    int8_t patch[MN_CONV_TABLE_DEPTH];
    const int32_t half = n4 / 2, stride = 4 + half, out_c = p->out_c;
    const int32_t off16 = mn_dup16(mn_conv_off(p)), out_offset = p->out_offset;
    const int32_t pixels = p->out_h * p->out_w, total = p->batches * pixels;
    const int32_t row_bytes = p->k_w * p->in_c;
    const size_t in_row = (size_t)p->in_w * (size_t)p->in_c;
    int32_t t, k, oc, j = 0;
    int8_t *first = out;
    mn_conv_small_table(p, n, n4, table);
    memset(patch, 0, sizeof patch); /* the padding steps (zero filter steps) */
    for (t = 0; t < total; ++t, out += out_c) {
        const int32_t b = t / pixels, oy = (t % pixels) / p->out_w, ox = t % p->out_w;
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
        const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
        if (p->dilation_h == 1 && p->dilation_w == 1 && iy0 >= 0 && ix0 >= 0 && iy0 + p->k_h <= p->in_h &&
            ix0 + p->k_w <= p->in_w) { /* inside the image: k_h runs of row_bytes bytes */
            const int8_t *src = in_b + ((size_t)iy0 * (size_t)p->in_w + (size_t)ix0) * (size_t)p->in_c;
            int8_t *dst = patch;
            int32_t ky, i;
            for (ky = 0; ky < p->k_h; ++ky, src += in_row, dst += row_bytes) {
                for (i = 0; i + 4 <= row_bytes; i += 4) {
                    const uint32_t v = mn_load4(src + i);
                    memcpy(dst + i, &v, sizeof v);
                }
                for (; i < row_bytes; ++i) {
                    dst[i] = src[i];
                }
            }
        } else {
            mn_conv_gather(p, in_b, oy, ox, (int8_t)-p->in_offset, patch);
        }
        for (k = 0; k < n4 / 4; ++k) {
            const uint32_t v = mn_load4(patch + 4 * k);
            xs[j][2 * k] = mn_even16(v, off16);
            xs[j][2 * k + 1] = mn_odd16(v, off16);
        }
        if (j == 0 && t + 1 < total) {
            first = out;
            j = 1;
            continue;
        }
        if (j == 0) { /* the last pixel alone */
            const int32_t *e = table;
            for (oc = 0; oc < out_c; ++oc, e += stride) {
                int32_t acc = e[0];
                for (k = 0; k < half; ++k) {
                    acc = mn_smlad(xs[0][k], e[4 + k], acc);
                }
                out[oc] = mn_small_requant(acc, e, out_offset);
            }
            break;
        }
        {
            const int32_t *e = table;
            for (oc = 0; oc < out_c; ++oc, e += stride) {
                int32_t a0 = e[0], a1 = e[0];
                for (k = 0; k < half; ++k) {
                    const int32_t w = e[4 + k];
                    a0 = mn_smlad(xs[0][k], w, a0);
                    a1 = mn_smlad(xs[1][k], w, a1);
                }
                first[oc] = mn_small_requant(a0, e, out_offset);
                out[oc] = mn_small_requant(a1, e, out_offset);
            }
        }
        j = 0;
    }
}

/* instantiated for the padded depths of a first 3x3 layer over one or three channels (12, 28), whose
 * step loops then unroll; other depths loop */
void mn_conv_table_generic(const mn_conv_params *p, const int8_t *in, int8_t *out, int32_t n)
{
    const int32_t n4 = (n + 3) & ~3;
    if (n4 == 28) {
        mn_conv_table_body(p, in, out, n, 28);
    } else if (n4 == 12) {
        mn_conv_table_body(p, in, out, n, 12);
    } else {
        mn_conv_table_body(p, in, out, n, n4);
    }
}
#endif

