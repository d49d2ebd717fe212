/*
 * CONV_2D, int8 per-channel: TFLM reference_integer_ops::ConvPerChannel semantics.
 *
 * acc = sum over taps inside the image of filter * (input + in_offset)   (padding contributes 0)
 * acc += bias; acc = MultiplyByQuantizedMultiplier(acc, mult[c], shift[c]) + out_offset;
 * clamp to [act_min, act_max].
 */
#include "mn_kernels.h"

/* First and one-past-last filter tap k with 0 <= origin + dilation * k < size. */
static void mn_tap_range(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first, int32_t *end)
{
    int32_t k0 = 0;
    int32_t k1 = taps;
    while (k0 < taps && origin + dilation * k0 < 0) {
        ++k0;
    }
    while (k1 > k0 && origin + dilation * (k1 - 1) >= size) {
        --k1;
    }
    *first = k0;
    *end = k1;
}

static int mn_conv_valid(const mn_conv_params *p)
{
    return p != 0 && p->filter != 0 && p->out_mult != 0 && p->out_shift != 0 && p->batches > 0 && p->in_c > 0 &&
           p->out_c > 0 && p->k_h > 0 && p->k_w > 0 && p->stride_h > 0 && p->stride_w > 0 && p->dilation_h > 0 &&
           p->dilation_w > 0;
}

static int8_t mn_conv_output(const mn_conv_params *p, int32_t acc, int32_t oc)
{
    if (p->bias != 0) {
        acc += p->bias[oc];
    }
    acc = mn_mbqm(acc, p->out_mult[oc], p->out_shift[oc]) + p->out_offset;
    return (int8_t)mn_clamp(acc, p->act_min, p->act_max);
}

int mn_conv2d_generic_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, oy, ox, oc, ky, kx;
    const int32_t in_c = p ? p->in_c : 0;
    if (!mn_conv_valid(p) || in == 0 || out == 0) {
        return MN_EINVAL;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            mn_tap_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                mn_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int8_t *f_oc = p->filter + (size_t)oc * (size_t)p->k_h * (size_t)p->k_w * (size_t)in_c;
                    int32_t acc = 0;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int32_t iy = iy0 + p->dilation_h * ky;
                        for (kx = kx0; kx < kx1; ++kx) {
                            const int32_t ix = ix0 + p->dilation_w * kx;
                            const int8_t *x = in_b + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)in_c;
                            const int8_t *f = f_oc + ((size_t)ky * (size_t)p->k_w + (size_t)kx) * (size_t)in_c;
                            acc = mn_dot_s8(f, x, in_c, p->in_offset, acc);
                        }
                    }
                    *out++ = mn_conv_output(p, acc, oc);
                }
            }
        }
    }
    return MN_OK;
}

int mn_conv2d_1x1_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int32_t oc, ic;
    size_t px, pixels;
    const int32_t in_c = p ? p->in_c : 0;
    if (!mn_conv_valid(p) || in == 0 || out == 0 || p->k_h != 1 || p->k_w != 1 || p->stride_h != 1 ||
        p->stride_w != 1 || p->pad_top != 0 || p->pad_left != 0 || p->out_h != p->in_h || p->out_w != p->in_w) {
        return MN_EINVAL;
    }
    pixels = (size_t)p->batches * (size_t)p->in_h * (size_t)p->in_w;
    for (px = 0; px < pixels; ++px) {
        const int8_t *x = in + px * (size_t)in_c;
        /* four output channels per pass over the input pixel */
        for (oc = 0; oc + 4 <= p->out_c; oc += 4) {
            const int8_t *f0 = p->filter + (size_t)oc * (size_t)in_c;
            const int8_t *f1 = f0 + in_c;
            const int8_t *f2 = f1 + in_c;
            const int8_t *f3 = f2 + in_c;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            ic = 0;
#if MN_KERNELS_DSP
            {
                const int32_t off16 = mn_dup16(p->in_offset);
                for (; ic + 4 <= in_c; ic += 4) {
                    const uint32_t xv = mn_load4(x + ic);
                    const int32_t xe = mn_even16(xv, off16);
                    const int32_t xo = mn_odd16(xv, off16);
                    uint32_t wv = mn_load4(f0 + ic);
                    a0 = __smlad(xo, mn_odd8(wv), __smlad(xe, mn_even8(wv), a0));
                    wv = mn_load4(f1 + ic);
                    a1 = __smlad(xo, mn_odd8(wv), __smlad(xe, mn_even8(wv), a1));
                    wv = mn_load4(f2 + ic);
                    a2 = __smlad(xo, mn_odd8(wv), __smlad(xe, mn_even8(wv), a2));
                    wv = mn_load4(f3 + ic);
                    a3 = __smlad(xo, mn_odd8(wv), __smlad(xe, mn_even8(wv), a3));
                }
            }
#endif
            for (; ic < in_c; ++ic) {
                const int32_t v = (int32_t)x[ic] + p->in_offset;
                a0 += (int32_t)f0[ic] * v;
                a1 += (int32_t)f1[ic] * v;
                a2 += (int32_t)f2[ic] * v;
                a3 += (int32_t)f3[ic] * v;
            }
            out[0] = mn_conv_output(p, a0, oc);
            out[1] = mn_conv_output(p, a1, oc + 1);
            out[2] = mn_conv_output(p, a2, oc + 2);
            out[3] = mn_conv_output(p, a3, oc + 3);
            out += 4;
        }
        for (; oc < p->out_c; ++oc) {
            *out++ = mn_conv_output(p, mn_dot_s8(p->filter + (size_t)oc * (size_t)in_c, x, in_c, p->in_offset, 0), oc);
        }
    }
    return MN_OK;
}

int mn_conv2d_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    if (p != 0 && p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
        p->pad_left == 0 && p->out_h == p->in_h && p->out_w == p->in_w) {
        return mn_conv2d_1x1_s8(p, in, out);
    }
    return mn_conv2d_generic_s8(p, in, out);
}
