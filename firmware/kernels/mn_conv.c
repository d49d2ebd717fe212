/*
 * CONV_2D, int8 per-channel: TFLM reference_integer_ops::ConvPerChannel semantics.
 *
 * acc = sum over taps inside the image of filter * (input + in_offset)   (padding contributes 0)
 * acc += bias; acc = MultiplyByQuantizedMultiplier(acc, mult[c], shift[c]) + out_offset;
 * clamp to [act_min, act_max].
 *
 * Every path is a GEMM: input rows (the pixels of a 1x1 convolution, or receptive fields copied into
 * patches, im2col) against every filter row. Patches fill taps outside the image with the input
 * zero point, whose (x + in_offset) is exactly 0, so the sums equal TFLM's, which skips them. The
 * accumulators start at the bias (int32 sums wrap the same in any order); with `bias_sum` (bias +
 * in_offset * filter row sum, from the code generator) they start there and the inputs are used raw.
 *
 * With the DSP extension four rows are first widened to int16 on the stack, ordered as SXTB16 splits
 * a filter word (bytes 0,2 and 1,3), with the offset added once: per 4 steps and output channel, one
 * filter word, two SXTB16, and per pixel one LDRD and two SMLAD (the widening is shared by every
 * output channel). Shallow layers (depth 8-32) take a per-channel table instead; depths above
 * MN_CONV_GEMM_MAX, and the portable build, widen in the loop (two pixels x two channels).
 * Helium cores run mn_conv_mve.c where it handles the geometry.
 *
 * This file: the entry points, the patches (im2col) and the direct loop; mn_conv_gemm.c: the GEMM
 * cores; mn_conv_shallow.c: shallow layers (depth 8-32).
 */
#include "mn_conv_internal.h"
#include "mn_kernels_mve.h"

/* Largest im2col patch (k_h * k_w * in_c bytes) kept on the stack; two are (one per pixel of a
 * pair). Larger receptive fields take the direct loop. */
#define MN_CONV_PATCH_MAX 160

static int mn_conv_valid(const mn_conv_params *p)
{
    return p != 0 && p->filter != 0 && p->out_mult != 0 && p->out_shift != 0 && p->batches > 0 && p->in_c > 0 &&
           p->out_c > 0 && p->k_h > 0 && p->k_w > 0 && p->stride_h > 0 && p->stride_w > 0 && p->dilation_h > 0 &&
           p->dilation_w > 0;
}

static int8_t mn_conv_output(const mn_conv_params *p, int32_t acc, int32_t oc)
{
    acc = mn_mbqm(acc, p->out_mult[oc], p->out_shift[oc]) + p->out_offset;
    return (int8_t)mn_clamp(acc, p->act_min, p->act_max);
}

/* The receptive field of output pixel (oy, ox) as k_h * k_w * in_c bytes in filter order; taps
 * outside the image hold `pad` (the input zero point: x + in_offset == 0 there). */
void mn_conv_gather(const mn_conv_params *p, const int8_t *in_b, int32_t oy, int32_t ox, int8_t pad,
                           int8_t *dst)
{
    const size_t in_c = (size_t)p->in_c;
    const size_t row_bytes = (size_t)p->k_w * in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    int32_t ky, kx, kx0, kx1;
    mn_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
    for (ky = 0; ky < p->k_h; ++ky, dst += row_bytes) {
        const int32_t iy = iy0 + p->dilation_h * ky;
        if (iy < 0 || iy >= p->in_h || kx0 >= kx1) {
            memset(dst, pad, row_bytes);
            continue;
        }
        if (kx0 > 0) {
            memset(dst, pad, (size_t)kx0 * in_c);
        }
        if (kx1 < p->k_w) {
            memset(dst + (size_t)kx1 * in_c, pad, (size_t)(p->k_w - kx1) * in_c);
        }
        {
            const int8_t *src = in_b + ((size_t)iy * (size_t)p->in_w + (size_t)(ix0 + p->dilation_w * kx0)) * in_c;
            if (p->dilation_w == 1) { /* the taps inside the image are one run of bytes */
                memcpy(dst + (size_t)kx0 * in_c, src, (size_t)(kx1 - kx0) * in_c);
            } else {
                for (kx = kx0; kx < kx1; ++kx, src += (size_t)p->dilation_w * in_c) {
                    memcpy(dst + (size_t)kx * in_c, src, in_c);
                }
            }
        }
    }
}

/* sum of n filter bytes times the input zero point (-in_offset): what bias_sum counted for a tap
 * outside the image, which TFLM skips */
static int32_t mn_conv_pad_tap(const int8_t *f, int32_t n, int32_t in_offset)
{
    int32_t i, sum = 0;
    for (i = 0; i < n; ++i) {
        sum += f[i];
    }
    return (int32_t)((uint32_t)sum * (uint32_t)-in_offset);
}

/* Direct loop (receptive fields larger than the patches), one output at a time. */
static void mn_conv_direct(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, oy, ox, oc, ky, kx;
    const int32_t in_c = p->in_c;
    const int32_t off = mn_conv_off(p);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int8_t *f = p->filter + (size_t)oc * (size_t)p->k_h * (size_t)p->k_w * (size_t)in_c;
                    int32_t acc = mn_conv_start(p, oc);
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int32_t iy = iy0 + p->dilation_h * ky;
                        for (kx = 0; kx < p->k_w; ++kx, f += in_c) {
                            const int32_t ix = ix0 + p->dilation_w * kx;
                            if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
                                const int8_t *x = in_b + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)in_c;
                                acc = mn_dot_s8(f, x, in_c, off, acc);
                            } else if (p->bias_sum != 0) {
                                acc = (int32_t)((uint32_t)acc + (uint32_t)mn_conv_pad_tap(f, in_c, p->in_offset));
                            }
                        }
                    }
                    *out++ = mn_conv_output(p, acc, oc);
                }
            }
        }
    }
}

#if MN_KERNELS_DSP
/* Generic path with the DSP extension. Depth n <= MN_CONV_GEMM_MAX: output pixels four at a time,
 * each pixel's patch widened into its slot (the last one to three pixels through int8 patches).
 * Deeper, up to 4 * MN_CONV_GEMM_MAX: two int8 patches in the same stack bytes, two pixels at a time
 * through the core that widens in the loop. */
MN_NOINLINE static void mn_conv_generic_dsp(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *in,
                                            int8_t *out, int32_t n)
{
    union {
        int32_t s[MN_S16_WORDS(MN_CONV_GEMM_MAX)];
        int8_t deep[4 * MN_CONV_GEMM_MAX];
    } buf;
    int8_t patch[2 * MN_CONV_GEMM_MAX];
    const int32_t off = mn_conv_off(p);
    const int32_t pixels = p->out_h * p->out_w, total = p->batches * pixels;
    const int wide = n <= MN_CONV_GEMM_MAX;
    int8_t *const pair = wide ? patch : buf.deep;
    int32_t t, k = 0;
    int8_t *first = out;
    for (t = 0; t < total; ++t, out += p->out_c) {
        const int32_t b = t / pixels, oy = (t % pixels) / p->out_w, ox = t % p->out_w;
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
        if (wide && total - (t - k) >= MN_S16_PX) {
            mn_conv_gather(p, in_b, oy, ox, (int8_t)-p->in_offset, patch);
            mn_s16_fill(patch, n, off, buf.s, k);
            if (k == 0) {
                first = out;
            }
            if (++k == MN_S16_PX) {
                mn_conv_s16(p, q, buf.s, n, first);
                k = 0;
            }
        } else { /* two pixels at a time */
            mn_conv_gather(p, in_b, oy, ox, (int8_t)-p->in_offset, pair + k * n);
            if (k == 0) {
                first = out;
                k = 1;
            } else {
                mn_conv_2px(p, q, pair, n, first, out);
                k = 0;
            }
        }
    }
    if (k == 1) {
        mn_conv_1px(p, q, pair, n, first);
    }
}
#endif

/* The two-pixel core on int8 patches (n <= MN_CONV_PATCH_MAX): the portable build's path. */
MN_NOINLINE static void mn_conv_generic_2px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *in,
                                            int8_t *out, int32_t n)
{
    int8_t patch[2 * MN_CONV_PATCH_MAX];
    int32_t b, oy, ox, k = 0;
    int8_t *pending = 0;
    /* output pixels in order, two per GEMM call */
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                mn_conv_gather(p, in_b, oy, ox, (int8_t)-p->in_offset, patch + k * n);
                if (k == 0) {
                    pending = out;
                    k = 1;
                } else {
                    mn_conv_2px(p, q, patch, n, pending, out);
                    k = 0;
                }
                out += p->out_c;
            }
        }
    }
    if (k == 1) {
        mn_conv_1px(p, q, patch, n, pending);
    }
}

int mn_conv2d_generic_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int32_t n;
    mn_requant_ctx q;
    if (!mn_conv_valid(p) || in == 0 || out == 0) {
        return MN_EINVAL;
    }
#if MN_KERNELS_MVE
    if (mn_conv2d_mve_s8(p, in, out) == MN_OK) {
        return MN_OK;
    }
#endif
    n = p->k_h * p->k_w * p->in_c;
    q = mn_requant_init(p->out_mult, p->out_shift, p->out_c, p->out_offset, p->act_min, p->act_max);
#if MN_KERNELS_DSP
#if !MN_KERNELS_REQUANT_ANY
    if (!q.fast) { /* the GEMM cores are compiled for the fast requantization only */
        mn_conv_direct(p, in, out);
        return MN_OK;
    }
#endif
#if MN_CONV_SHALLOW_GENERIC
    if (q.fast && n <= MN_CONV_TABLE_DEPTH && p->out_c * (4 + ((n + 3) & ~3) / 2) <= MN_SMALL_TABLE_WORDS &&
        p->in_offset >= -127 && p->in_offset <= 128) {
        mn_conv_table_generic(p, in, out, n);
        return MN_OK;
    }
#endif
    if (p->k_h <= 4 * MN_CONV_GEMM_MAX && p->k_w <= 4 * MN_CONV_GEMM_MAX && p->in_c <= 4 * MN_CONV_GEMM_MAX &&
        n <= 4 * MN_CONV_GEMM_MAX && p->in_offset >= -127 && p->in_offset <= 128) {
        mn_conv_generic_dsp(p, &q, in, out, n);
        return MN_OK;
    }
#endif
    if (p->k_h > MN_CONV_PATCH_MAX || p->k_w > MN_CONV_PATCH_MAX || p->in_c > MN_CONV_PATCH_MAX ||
        n > MN_CONV_PATCH_MAX || p->in_offset < -127 || p->in_offset > 128) {
        mn_conv_direct(p, in, out);
        return MN_OK;
    }
    mn_conv_generic_2px(p, &q, in, out, n);
    return MN_OK;
}


#if MN_KERNELS_DSP
/* The 1x1 path's pixels four at a time through the widened GEMM; returns how many it did. */
MN_NOINLINE static size_t mn_conv_1x1_wide(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *in,
                                           int8_t *out, size_t pixels)
{
    int32_t s[MN_S16_WORDS(MN_CONV_GEMM_MAX)];
    const size_t in_c = (size_t)p->in_c, out_c = (size_t)p->out_c;
    const int32_t off = mn_conv_off(p);
    size_t px;
    int32_t j;
    for (px = 0; px + MN_S16_PX <= pixels; px += MN_S16_PX) {
        for (j = 0; j < MN_S16_PX; ++j) {
            mn_s16_fill(in + (px + (size_t)j) * in_c, p->in_c, off, s, j);
        }
        mn_conv_s16(p, q, s, p->in_c, out + px * out_c);
    }
    return px;
}
#endif

int mn_conv2d_1x1_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    size_t px, pixels;
    mn_requant_ctx q;
    const size_t in_c = p ? (size_t)p->in_c : 0;
    const size_t out_c = p ? (size_t)p->out_c : 0;
    if (!mn_conv_valid(p) || in == 0 || out == 0 || p->k_h != 1 || p->k_w != 1 || p->stride_h != 1 ||
        p->stride_w != 1 || p->pad_top != 0 || p->pad_left != 0 || p->out_h != p->in_h || p->out_w != p->in_w) {
        return MN_EINVAL;
    }
#if MN_KERNELS_MVE
    if (mn_conv2d_mve_s8(p, in, out) == MN_OK) {
        return MN_OK;
    }
#endif
    q = mn_requant_init(p->out_mult, p->out_shift, p->out_c, p->out_offset, p->act_min, p->act_max);
    pixels = (size_t)p->batches * (size_t)p->in_h * (size_t)p->in_w;
    px = 0;
#if MN_KERNELS_DSP
#if !MN_KERNELS_REQUANT_ANY
    if (!q.fast) { /* the GEMM cores are compiled for the fast requantization only */
        mn_conv_direct(p, in, out);
        return MN_OK;
    }
#endif
#if MN_CONV_SHALLOW_1X1
    if (q.fast && (p->in_c == 8 || p->in_c == 16) && p->out_c * (4 + p->in_c / 2) <= MN_SMALL_TABLE_WORDS) {
        if (p->in_c == 8) {
            mn_conv_small8(p, in, out, pixels);
        } else {
            mn_conv_small16(p, in, out, pixels);
        }
        return MN_OK;
    }
#endif
    if (p->in_c <= MN_CONV_GEMM_MAX) {
        px = mn_conv_1x1_wide(p, &q, in, out, pixels);
    }
#endif
    for (; px + 2 <= pixels; px += 2) {
        mn_conv_2px(p, &q, in + px * in_c, p->in_c, out + px * out_c, out + (px + 1) * out_c);
    }
    if (px < pixels) {
        mn_conv_1px(p, &q, in + px * in_c, p->in_c, out + px * out_c);
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
