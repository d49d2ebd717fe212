/*
 * DEPTHWISE_CONV_2D, int8 per-channel: TFLM reference_integer_ops::DepthwiseConvPerChannel
 * semantics (output channel oc reads input channel oc / depth_mult).
 *
 * Two loop orders, same arithmetic:
 * - out != in: pixel by pixel, a block of channels at a time (contiguous loads);
 * - out == in (depth_mult 1): channel by channel. Output channel c depends on input channel c
 *   only, and every output element of channel c lies at an offset congruent to c modulo the
 *   channel count, which holds input channel c (or data of an earlier, finished batch) only.
 *   So copying input plane c to scratch (in_h * in_w bytes) first makes the overwrite safe,
 *   for any stride, padding or dilation (output planes are never larger than input planes).
 */
#include "mn_kernels.h"

#define MN_DW_BLOCK 16

static void mn_dw_tap_range(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first,
                            int32_t *end)
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

static int8_t mn_dw_output(const mn_dw_params *p, int32_t acc, int32_t oc)
{
    if (p->bias != 0) {
        acc += p->bias[oc];
    }
    acc = mn_mbqm(acc, p->out_mult[oc], p->out_shift[oc]) + p->out_offset;
    return (int8_t)mn_clamp(acc, p->act_min, p->act_max);
}

size_t mn_depthwise_scratch_bytes(const mn_dw_params *p)
{
    if (p == 0 || p->depth_mult != 1) {
        return 0;
    }
    return (size_t)p->in_h * (size_t)p->in_w;
}

static void mn_dw_pixels(const mn_dw_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, oy, ox, oc0, j, ky, kx;
    int32_t acc[MN_DW_BLOCK];
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            mn_dw_tap_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                mn_dw_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
                for (oc0 = 0; oc0 < p->out_c; oc0 += MN_DW_BLOCK) {
                    const int32_t n = p->out_c - oc0 < MN_DW_BLOCK ? p->out_c - oc0 : MN_DW_BLOCK;
                    for (j = 0; j < n; ++j) {
                        acc[j] = 0;
                    }
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int32_t iy = iy0 + p->dilation_h * ky;
                        for (kx = kx0; kx < kx1; ++kx) {
                            const int32_t ix = ix0 + p->dilation_w * kx;
                            const int8_t *x = in_b + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)p->in_c;
                            const int8_t *f =
                                p->filter + ((size_t)ky * (size_t)p->k_w + (size_t)kx) * (size_t)p->out_c + oc0;
                            if (p->depth_mult == 1) {
                                const int8_t *xc = x + oc0;
                                for (j = 0; j < n; ++j) {
                                    acc[j] += (int32_t)f[j] * ((int32_t)xc[j] + p->in_offset);
                                }
                            } else {
                                for (j = 0; j < n; ++j) {
                                    acc[j] += (int32_t)f[j] * ((int32_t)x[(oc0 + j) / p->depth_mult] + p->in_offset);
                                }
                            }
                        }
                    }
                    for (j = 0; j < n; ++j) {
                        *out++ = mn_dw_output(p, acc[j], oc0 + j);
                    }
                }
            }
        }
    }
}

static void mn_dw_planes(const mn_dw_params *p, const int8_t *in, int8_t *out, int8_t *plane)
{
    int32_t b, c, y, x, oy, ox, ky, kx;
    const size_t in_c = (size_t)p->in_c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * in_c;
        int8_t *out_b = out + (size_t)b * (size_t)p->out_h * (size_t)p->out_w * in_c;
        for (c = 0; c < p->in_c; ++c) {
            const int8_t *src = in_b + c;
            int8_t *dst = plane;
            for (y = 0; y < p->in_h; ++y) {
                for (x = 0; x < p->in_w; ++x) {
                    *dst++ = *src;
                    src += in_c;
                }
            }
            for (oy = 0; oy < p->out_h; ++oy) {
                const int32_t iy0 = oy * p->stride_h - p->pad_top;
                int32_t ky0, ky1;
                mn_dw_tap_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
                for (ox = 0; ox < p->out_w; ++ox) {
                    const int32_t ix0 = ox * p->stride_w - p->pad_left;
                    int32_t kx0, kx1, acc = 0;
                    mn_dw_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *row = plane + (size_t)(iy0 + p->dilation_h * ky) * (size_t)p->in_w;
                        const int8_t *f = p->filter + (size_t)ky * (size_t)p->k_w * in_c + (size_t)c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += (int32_t)f[(size_t)kx * in_c] *
                                   ((int32_t)row[ix0 + p->dilation_w * kx] + p->in_offset);
                        }
                    }
                    out_b[((size_t)oy * (size_t)p->out_w + (size_t)ox) * in_c + (size_t)c] = mn_dw_output(p, acc, c);
                }
            }
        }
    }
}

int mn_depthwise_conv_s8(const mn_dw_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    if (p == 0 || in == 0 || out == 0 || p->filter == 0 || p->out_mult == 0 || p->out_shift == 0 ||
        p->batches <= 0 || p->in_c <= 0 || p->depth_mult <= 0 || p->out_c != p->in_c * p->depth_mult ||
        p->k_h <= 0 || p->k_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 || p->dilation_h <= 0 ||
        p->dilation_w <= 0) {
        return MN_EINVAL;
    }
    if ((const int8_t *)out == in) {
        if (p->depth_mult != 1 || scratch == 0 || p->out_h > p->in_h || p->out_w > p->in_w) {
            return MN_EINVAL;
        }
        mn_dw_planes(p, in, out, scratch);
    } else {
        mn_dw_pixels(p, in, out);
    }
    return MN_OK;
}
