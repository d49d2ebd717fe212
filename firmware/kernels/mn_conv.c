/*
 * CONV_2D, int8 per-channel: TFLM reference_integer_ops::ConvPerChannel semantics.
 *
 * acc = sum over taps inside the image of filter * (input + in_offset)   (padding contributes 0)
 * acc += bias; acc = MultiplyByQuantizedMultiplier(acc, mult[c], shift[c]) + out_offset;
 * clamp to [act_min, act_max].
 *
 * Both paths are one GEMM core, mn_conv_2px: two input rows (pixels) against every filter row,
 * two output channels at a time (four accumulators; with the DSP extension each SMLAD does two
 * MACs on sign-extended pairs, the input offset added by SXTAB16 for free). The 1x1 path feeds it
 * input pixels directly; the generic path copies each output pixel's receptive field (im2col, a
 * patch of k_h * k_w * in_c bytes on the stack) and fills taps outside the image with the input
 * zero point, whose (x + in_offset) is exactly 0, so the sums equal TFLM's, which skips them.
 * The bias starts the accumulator (int32 sums wrap the same in any order).
 */
#include "mn_kernels.h"

/* Largest im2col patch (k_h * k_w * in_c bytes) kept on the stack; two are (one per pixel of a
 * pair). Larger receptive fields take the direct loop. */
#define MN_CONV_PATCH_MAX 160

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

#if MN_KERNELS_DSP
/* four input bytes of two pixels (xp, xp + n) times those of two filter rows (wp, wp + n):
 * 16 MACs in 8 SMLAD into a00 a01 a10 a11 (pixel, channel) */
#define MN_CONV_STEP_2X2(xp, wp)                                                                                   \
    do {                                                                                                           \
        const uint32_t xa_ = mn_load4(xp);                                                                         \
        const uint32_t xb_ = mn_load4((xp) + n);                                                                   \
        const uint32_t wa_ = mn_load4(wp);                                                                         \
        const uint32_t wb_ = mn_load4((wp) + n);                                                                   \
        int32_t x_ = mn_even16(xa_, off16);                                                                        \
        int32_t u_ = mn_even8(wa_);                                                                                \
        int32_t v_ = mn_even8(wb_);                                                                                \
        a00 = mn_smlad(x_, u_, a00);                                                                               \
        a01 = mn_smlad(x_, v_, a01);                                                                               \
        x_ = mn_even16(xb_, off16);                                                                                \
        a10 = mn_smlad(x_, u_, a10);                                                                               \
        a11 = mn_smlad(x_, v_, a11);                                                                               \
        x_ = mn_odd16(xa_, off16);                                                                                 \
        u_ = mn_odd8(wa_);                                                                                         \
        v_ = mn_odd8(wb_);                                                                                         \
        a00 = mn_smlad(x_, u_, a00);                                                                               \
        a01 = mn_smlad(x_, v_, a01);                                                                               \
        x_ = mn_odd16(xb_, off16);                                                                                 \
        a10 = mn_smlad(x_, u_, a10);                                                                               \
        a11 = mn_smlad(x_, v_, a11);                                                                               \
    } while (0)
#endif

/* Rows x0 and x1 = x0 + n (n bytes each) times every filter row (n bytes, out_c rows): out0[oc],
 * out1[oc] for every output channel. Instantiated for fast requantization and for any. */
MN_ALWAYS_INLINE void mn_conv_2px_body(const mn_conv_params *p, const int8_t *x0, int32_t n, int8_t *out0,
                                       int8_t *out1, const int fast)
{
    const int8_t *const x1 = x0 + n;
    const int32_t off = p->in_offset;
    const int32_t out_c = p->out_c;
    const int32_t *const bias = p->bias;
    const int32_t *const mult = p->out_mult;
    const int32_t *const shift = p->out_shift;
    const int32_t out_offset = p->out_offset, act_min = p->act_min, act_max = p->act_max;
    const int8_t *w0 = p->filter;
    int32_t oc;
#if MN_KERNELS_DSP
    const int32_t off16 = mn_dup16(off);
#endif
    for (oc = 0; oc + 2 <= out_c; oc += 2, w0 += 2 * (size_t)n) {
        const int8_t *w1 = w0 + n;
        const int32_t b0 = bias != 0 ? bias[oc] : 0;
        const int32_t b1 = bias != 0 ? bias[oc + 1] : 0;
        int32_t a00 = b0, a01 = b1, a10 = b0, a11 = b1;
        int32_t i = 0;
#if MN_KERNELS_DSP
        if (n >= 4) {
            const int8_t *xp = x0;
            const int8_t *wp = w0;
            const int8_t *const x8 = x0 + (n & ~7);
            while (xp != x8) {
                MN_CONV_STEP_2X2(xp, wp);
                xp += 4;
                wp += 4;
                MN_CONV_STEP_2X2(xp, wp);
                xp += 4;
                wp += 4;
            }
            if ((n & 4) != 0) {
                MN_CONV_STEP_2X2(xp, wp);
            }
            i = n & ~3;
        }
#endif
        for (; i < n; ++i) {
            const int32_t v0 = (int32_t)x0[i] + off;
            const int32_t v1 = (int32_t)x1[i] + off;
            const int32_t f0 = w0[i];
            const int32_t f1 = w1[i];
            a00 += v0 * f0;
            a01 += v0 * f1;
            a10 += v1 * f0;
            a11 += v1 * f1;
        }
        {
            const int32_t m0 = mult[oc], s0 = shift[oc];
            const int32_t m1 = mult[oc + 1], s1 = shift[oc + 1];
            out0[oc] = mn_requant_val(a00, m0, s0, fast, out_offset, act_min, act_max);
            out0[oc + 1] = mn_requant_val(a01, m1, s1, fast, out_offset, act_min, act_max);
            out1[oc] = mn_requant_val(a10, m0, s0, fast, out_offset, act_min, act_max);
            out1[oc + 1] = mn_requant_val(a11, m1, s1, fast, out_offset, act_min, act_max);
        }
    }
    if (oc < out_c) {
        const int32_t b0 = bias != 0 ? bias[oc] : 0;
        int32_t a0 = b0, a1 = b0;
        int32_t i = 0;
#if MN_KERNELS_DSP
        for (; i + 4 <= n; i += 4) {
            const uint32_t xa = mn_load4(x0 + i);
            const uint32_t xb = mn_load4(x1 + i);
            const uint32_t wa = mn_load4(w0 + i);
            const int32_t we = mn_even8(wa);
            const int32_t wo = mn_odd8(wa);
            a0 = mn_smlad(mn_odd16(xa, off16), wo, mn_smlad(mn_even16(xa, off16), we, a0));
            a1 = mn_smlad(mn_odd16(xb, off16), wo, mn_smlad(mn_even16(xb, off16), we, a1));
        }
#endif
        for (; i < n; ++i) {
            a0 += ((int32_t)x0[i] + off) * (int32_t)w0[i];
            a1 += ((int32_t)x1[i] + off) * (int32_t)w0[i];
        }
        out0[oc] = mn_requant_val(a0, mult[oc], shift[oc], fast, out_offset, act_min, act_max);
        out1[oc] = mn_requant_val(a1, mult[oc], shift[oc], fast, out_offset, act_min, act_max);
    }
}

static void mn_conv_2px_fast(const mn_conv_params *p, const int8_t *x0, int32_t n, int8_t *out0, int8_t *out1)
{
    mn_conv_2px_body(p, x0, n, out0, out1, 1);
}

static void mn_conv_2px_any(const mn_conv_params *p, const int8_t *x0, int32_t n, int8_t *out0, int8_t *out1)
{
    mn_conv_2px_body(p, x0, n, out0, out1, 0);
}

static void mn_conv_2px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *x0, int32_t n, int8_t *out0,
                        int8_t *out1)
{
    if (q->fast) {
        mn_conv_2px_fast(p, x0, n, out0, out1);
    } else {
        mn_conv_2px_any(p, x0, n, out0, out1);
    }
}

/* One row x0 (n bytes) times every filter row: out0[oc]. */
static void mn_conv_1px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *x0, int32_t n, int8_t *out0)
{
    const int32_t off = p->in_offset;
    const int8_t *w0 = p->filter;
    int32_t oc;
#if MN_KERNELS_DSP
    const int32_t off16 = mn_dup16(off);
#endif
    for (oc = 0; oc < p->out_c; ++oc, w0 += n) {
        int32_t a0 = p->bias != 0 ? p->bias[oc] : 0;
        int32_t i = 0;
#if MN_KERNELS_DSP
        for (; i + 4 <= n; i += 4) {
            const uint32_t xa = mn_load4(x0 + i);
            const uint32_t wa = mn_load4(w0 + i);
            a0 = mn_smlad(mn_odd16(xa, off16), mn_odd8(wa), mn_smlad(mn_even16(xa, off16), mn_even8(wa), a0));
        }
#endif
        for (; i < n; ++i) {
            a0 += ((int32_t)x0[i] + off) * (int32_t)w0[i];
        }
        out0[oc] = mn_requant_s8(q, a0, p->out_mult[oc], p->out_shift[oc]);
    }
}

/* The receptive field of output pixel (oy, ox) as k_h * k_w * in_c bytes in filter order; taps
 * outside the image hold `pad` (the input zero point: x + in_offset == 0 there). */
static void mn_conv_gather(const mn_conv_params *p, const int8_t *in_b, int32_t oy, int32_t ox, int8_t pad,
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

/* Direct loop (receptive fields larger than MN_CONV_PATCH_MAX), one output at a time. */
static void mn_conv_direct(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, oy, ox, oc, ky, kx;
    const int32_t in_c = p->in_c;
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
}

int mn_conv2d_generic_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int8_t patch[2 * MN_CONV_PATCH_MAX];
    int32_t b, oy, ox, n, k = 0;
    int8_t *pending = 0;
    mn_requant_ctx q;
    if (!mn_conv_valid(p) || in == 0 || out == 0) {
        return MN_EINVAL;
    }
    n = p->k_h * p->k_w * p->in_c;
    if (p->k_h > MN_CONV_PATCH_MAX || p->k_w > MN_CONV_PATCH_MAX || p->in_c > MN_CONV_PATCH_MAX ||
        n > MN_CONV_PATCH_MAX || p->in_offset < -127 || p->in_offset > 128) {
        mn_conv_direct(p, in, out);
        return MN_OK;
    }
    q = mn_requant_init(p->out_mult, p->out_shift, p->out_c, p->out_offset, p->act_min, p->act_max);
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
                    mn_conv_2px(p, &q, patch, n, pending, out);
                    k = 0;
                }
                out += p->out_c;
            }
        }
    }
    if (k == 1) {
        mn_conv_1px(p, &q, patch, n, pending);
    }
    return MN_OK;
}

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
    q = mn_requant_init(p->out_mult, p->out_shift, p->out_c, p->out_offset, p->act_min, p->act_max);
    pixels = (size_t)p->batches * (size_t)p->in_h * (size_t)p->in_w;
    for (px = 0; px + 2 <= pixels; px += 2) {
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
