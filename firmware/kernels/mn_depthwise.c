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
#include "mn_kernels_mve.h"

#define MN_DW_BLOCK 16

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

#if MN_KERNELS_DSP
/* Most taps (k_h * k_w) the DSP path handles: its sign-extended weights sit on the stack. */
#define MN_DW_TAPS_MAX 25

/* One output channel c of every output pixel (depth_mult 1), portable: the DSP path's leftover
 * channels (in_c not a multiple of 4). */
static void mn_dw_channel(const mn_dw_params *p, const mn_requant_ctx *q, const int8_t *in, int8_t *out, int32_t c)
{
    int32_t b, oy, ox, ky, kx;
    const size_t ch = (size_t)p->in_c;
    const int32_t m = p->out_mult[c], sh = p->out_shift[c];
    const int32_t bias = p->bias != 0 ? p->bias[c] : 0;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * ch + c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            mn_tap_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1, acc = bias;
                mn_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
                for (ky = ky0; ky < ky1; ++ky) {
                    const int8_t *xr = in_b + (size_t)(iy0 + p->dilation_h * ky) * (size_t)p->in_w * ch;
                    const int8_t *f = p->filter + (size_t)ky * (size_t)p->k_w * ch + c;
                    for (kx = kx0; kx < kx1; ++kx) {
                        acc += (int32_t)f[(size_t)kx * ch] *
                               ((int32_t)xr[(size_t)(ix0 + p->dilation_w * kx) * ch] + p->in_offset);
                    }
                }
                out[((size_t)(b * p->out_h + oy) * (size_t)p->out_w + (size_t)ox) * ch + (size_t)c] =
                    mn_requant_s8(q, acc, m, sh);
            }
        }
    }
}

/* one tap of four channels: x word at xp, weights w[0] (channels 0, 2) and w[1] (channels 1, 3) */
#define MN_DW_TAP(xp, w)                                                                                           \
    do {                                                                                                           \
        const uint32_t xv_ = mn_load4(xp);                                                                         \
        const int32_t xe_ = mn_even16(xv_, off16);                                                                 \
        const int32_t xo_ = mn_odd16(xv_, off16);                                                                  \
        a0 = mn_smlabb(xe_, (w)[0], a0);                                                                           \
        a2 = mn_smlatt(xe_, (w)[0], a2);                                                                           \
        a1 = mn_smlabb(xo_, (w)[1], a1);                                                                           \
        a3 = mn_smlatt(xo_, (w)[1], a3);                                                                           \
    } while (0)

/* Words of the zero-point frame a small map's four channels are copied into (3x3 windows): up to
 * (in_h + 2) x (in_w + 2) = 256, a 14x14 map. */
#define MN_DW_PAD_WORDS 256

/* `count` interior output pixels of a 3x3 window (dilation 1) along a row, four channels: xp is the
 * first pixel's top-left input word (ch: the input's bytes per pixel, row: per row), xstep the input
 * step between output pixels, o the first output, ostep the output's bytes per pixel. */
MN_ALWAYS_INLINE void mn_dw3x3_run(const int8_t *xp, size_t ch, size_t row, size_t xstep, const int32_t *wext,
                                   int8_t *o, size_t ostep, int32_t count, const int32_t *bias,
                                   const int32_t *mult, const int32_t *shift, int32_t off16, const mn_requant_ctx *q,
                                   const int fast)
{
    for (; count > 0; --count, xp += xstep, o += ostep) {
        const int8_t *x = xp;
        int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
        MN_DW_TAP(x, wext);
        MN_DW_TAP(x + ch, wext + 2);
        MN_DW_TAP(x + 2 * ch, wext + 4);
        x += row;
        MN_DW_TAP(x, wext + 6);
        MN_DW_TAP(x + ch, wext + 8);
        MN_DW_TAP(x + 2 * ch, wext + 10);
        x += row;
        MN_DW_TAP(x, wext + 12);
        MN_DW_TAP(x + ch, wext + 14);
        MN_DW_TAP(x + 2 * ch, wext + 16);
        o[0] = mn_requant_val(a0, mult[0], shift[0], fast, q->out_offset, q->act_min, q->act_max);
        o[1] = mn_requant_val(a1, mult[1], shift[1], fast, q->out_offset, q->act_min, q->act_max);
        o[2] = mn_requant_val(a2, mult[2], shift[2], fast, q->out_offset, q->act_min, q->act_max);
        o[3] = mn_requant_val(a3, mult[3], shift[3], fast, q->out_offset, q->act_min, q->act_max);
    }
}

/* depth_mult 1, out of place, DSP: four channels at a time (one word per tap), their weights
 * sign-extended once into (even, odd) halfword pairs, then every output pixel: per tap one load,
 * SXTAB16 (adds the offset) and ROR, and SMLABB/SMLATT into four accumulators started at the bias. */
MN_ALWAYS_INLINE void mn_dw_pixels_dsp_body(const mn_dw_params *p, const int8_t *in, int8_t *out, const int fast)
{
    int32_t wext[2 * MN_DW_TAPS_MAX];
    int32_t b, oy, ox, c, ky, kx, t;
    const int32_t ch = p->in_c;
    const int32_t k_w = p->k_w;
    const size_t row = (size_t)p->in_w * (size_t)ch;
    const size_t xstep = (size_t)p->dilation_w * (size_t)ch;
    const int is3x3 = p->k_h == 3 && p->k_w == 3 && p->dilation_h == 1 && p->dilation_w == 1;
    const int32_t off16 = mn_dup16(p->in_offset);
    const mn_requant_ctx q = mn_requant_init(p->out_mult, p->out_shift, p->out_c, p->out_offset, p->act_min,
                                             p->act_max);
    for (c = 0; c + 4 <= ch; c += 4) {
        int32_t bias[4] = {0, 0, 0, 0};
        int32_t mult[4], shift[4];
        int8_t *o = out + c;
        for (t = 0; t < p->k_h * k_w; ++t) {
            const uint32_t wv = mn_load4(p->filter + (size_t)t * (size_t)ch + (size_t)c);
            wext[2 * t] = mn_even8(wv);
            wext[2 * t + 1] = mn_odd8(wv);
        }
        for (t = 0; t < 4; ++t) {
            bias[t] = p->bias != 0 ? p->bias[c + t] : 0;
            mult[t] = p->out_mult[c + t];
            shift[t] = p->out_shift[c + t];
        }
        if (is3x3 && (p->in_h + 2) * (p->in_w + 2) <= MN_DW_PAD_WORDS && p->pad_top <= 1 && p->pad_left <= 1) {
            /* a small map: its four channels copied into a frame of the zero point (x + in_offset = 0),
             * so every window, border ones too, runs the nine unrolled taps */
            int32_t frame[MN_DW_PAD_WORDS];
            const int32_t fw = p->in_w + 2;
            const uint32_t zp = 0x01010101u * (uint32_t)(uint8_t)(int8_t)-p->in_offset;
            for (b = 0; b < p->batches; ++b) {
                const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * row + c;
                int32_t y, x;
                for (t = 0; t < (p->in_h + 2) * fw; ++t) {
                    frame[t] = (int32_t)zp;
                }
                for (y = 0; y < p->in_h; ++y) {
                    for (x = 0; x < p->in_w; ++x) {
                        frame[(y + 1) * fw + x + 1] = (int32_t)mn_load4(in_b + (size_t)y * row + (size_t)x * (size_t)ch);
                    }
                }
                for (oy = 0; oy < p->out_h; ++oy) {
                    const int32_t fy = oy * p->stride_h - p->pad_top + 1, fx = 1 - p->pad_left;
                    mn_dw3x3_run((const int8_t *)(frame + fy * fw + fx), 4, (size_t)fw * 4, (size_t)p->stride_w * 4,
                                 wext, o, (size_t)ch, p->out_w, bias, mult, shift, off16, &q, fast);
                    o += (size_t)p->out_w * (size_t)ch;
                }
            }
            continue;
        }
        for (b = 0; b < p->batches; ++b) {
            const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * row + c;
            for (oy = 0; oy < p->out_h; ++oy) {
                const int32_t iy0 = oy * p->stride_h - p->pad_top;
                int32_t ky0, ky1;
                mn_tap_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
                const int full_rows = ky0 == 0 && ky1 == p->k_h;
                for (ox = 0; ox < p->out_w; ++ox) {
                    const int32_t ix0 = ox * p->stride_w - p->pad_left;
                    int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
                    if (is3x3 && full_rows && ix0 >= 0 && ix0 + 2 < p->in_w) {
                        /* the run of interior 3x3 windows (dilation 1) from here: nine taps unrolled */
                        int32_t run = (p->in_w - 3 - ix0) / p->stride_w + 1;
                        if (run > p->out_w - ox) {
                            run = p->out_w - ox;
                        }
                        mn_dw3x3_run(in_b + (size_t)iy0 * row + (size_t)ix0 * (size_t)ch, (size_t)ch, row,
                                     (size_t)p->stride_w * (size_t)ch, wext, o, (size_t)ch, run, bias, mult, shift,
                                     off16, &q, fast);
                        o += (size_t)run * (size_t)ch;
                        ox += run - 1;
                        continue;
                    } else {
                        int32_t kx0, kx1;
                        mn_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
                        if (kx0 < kx1) {
                            const int8_t *xr = in_b + (size_t)(ix0 + p->dilation_w * kx0) * (size_t)ch;
                            const int32_t *wr = wext + 2 * kx0;
                            const int32_t nkx = kx1 - kx0;
                            for (ky = ky0; ky < ky1; ++ky) {
                                const int8_t *xp = xr + (size_t)(iy0 + p->dilation_h * ky) * row;
                                const int32_t *wp = wr + 2 * ky * k_w;
                                for (kx = 0; kx < nkx; ++kx) {
                                    MN_DW_TAP(xp, wp);
                                    xp += xstep;
                                    wp += 2;
                                }
                            }
                        }
                    }
                    o[0] = mn_requant_val(a0, mult[0], shift[0], fast, q.out_offset, q.act_min, q.act_max);
                    o[1] = mn_requant_val(a1, mult[1], shift[1], fast, q.out_offset, q.act_min, q.act_max);
                    o[2] = mn_requant_val(a2, mult[2], shift[2], fast, q.out_offset, q.act_min, q.act_max);
                    o[3] = mn_requant_val(a3, mult[3], shift[3], fast, q.out_offset, q.act_min, q.act_max);
                    o += ch;
                }
            }
        }
    }
    for (; c < ch; ++c) {
        mn_dw_channel(p, &q, in, out, c);
    }
}

/* instantiated for fast requantization (mn_requant_ctx) and for any */
static void mn_dw_pixels_dsp_fast(const mn_dw_params *p, const int8_t *in, int8_t *out)
{
    mn_dw_pixels_dsp_body(p, in, out, 1);
}

#if MN_KERNELS_REQUANT_ANY
static void mn_dw_pixels_dsp_any(const mn_dw_params *p, const int8_t *in, int8_t *out)
{
    mn_dw_pixels_dsp_body(p, in, out, 0);
}
#else
static void mn_dw_pixels(const mn_dw_params *p, const int8_t *in, int8_t *out);
#endif

static void mn_dw_pixels_dsp(const mn_dw_params *p, const int8_t *in, int8_t *out)
{
    const mn_requant_ctx q = mn_requant_init(p->out_mult, p->out_shift, p->out_c, p->out_offset, p->act_min,
                                             p->act_max);
    if (q.fast) {
        mn_dw_pixels_dsp_fast(p, in, out);
    } else {
#if MN_KERNELS_REQUANT_ANY
        mn_dw_pixels_dsp_any(p, in, out);
#else
        mn_dw_pixels(p, in, out); /* the DSP path is compiled for the fast requantization only */
#endif
    }
}
#endif

static void mn_dw_pixels(const mn_dw_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, oy, ox, oc0, j, ky, kx;
    int32_t acc[MN_DW_BLOCK];
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            mn_tap_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                mn_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
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
                mn_tap_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
                for (ox = 0; ox < p->out_w; ++ox) {
                    const int32_t ix0 = ox * p->stride_w - p->pad_left;
                    int32_t kx0, kx1, acc = 0;
                    mn_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
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
    if ((const int8_t *)out == in &&
        (p->depth_mult != 1 || scratch == 0 || p->out_h > p->in_h || p->out_w > p->in_w)) {
        return MN_EINVAL;
    }
#if MN_KERNELS_MVE
    if (mn_depthwise_mve_s8(p, in, out, scratch) == MN_OK) {
        return MN_OK;
    }
#endif
    if ((const int8_t *)out == in) {
        mn_dw_planes(p, in, out, scratch);
    } else {
#if MN_KERNELS_DSP
        if (p->depth_mult == 1 && p->k_h <= MN_DW_TAPS_MAX && p->k_w <= MN_DW_TAPS_MAX &&
            p->k_h * p->k_w <= MN_DW_TAPS_MAX) {
            mn_dw_pixels_dsp(p, in, out);
            return MN_OK;
        }
#endif
        mn_dw_pixels(p, in, out);
    }
    return MN_OK;
}
