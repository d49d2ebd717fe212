/*
 * CONV_2D, int8 per-channel: TFLM reference_integer_ops::ConvPerChannel semantics.
 *
 * acc = sum over taps inside the image of filter * (input + in_offset)   (padding contributes 0)
 * acc += bias; acc = MultiplyByQuantizedMultiplier(acc, mult[c], shift[c]) + out_offset;
 * clamp to [act_min, act_max].
 *
 * Every path is a GEMM over two output pixels at a time: two input rows (the pixels of a 1x1
 * convolution, or receptive fields copied into patches, im2col) against every filter row, two
 * output channels at a time (four accumulators). Patches fill taps outside the image with the input
 * zero point, whose (x + in_offset) is exactly 0, so the sums equal TFLM's, which skips them. The
 * accumulators start at the bias (int32 sums wrap the same in any order); with `bias_sum` (bias +
 * in_offset * filter row sum, from the code generator) they start there and the inputs are used raw.
 *
 * With the DSP extension the two rows are first widened to int16 pairs on the stack, ordered as
 * SXTB16 splits a filter word (bytes 0,2 and 1,3), with the offset added once: the inner loop then
 * costs per 4 steps 2 filter word loads, 4 SXTB16, 4 operand loads and 8 SMLAD for 16 MACs (the
 * widening is shared by every output channel). Depths above MN_CONV_GEMM_MAX widen in the loop.
 * Helium cores run mn_conv_mve.c where it handles the geometry.
 */
#include "mn_kernels.h"
#include "mn_kernels_mve.h"

/* Largest im2col patch (k_h * k_w * in_c bytes) kept on the stack; two are (one per pixel of a
 * pair). Larger receptive fields take the direct loop. */
#define MN_CONV_PATCH_MAX 160


/* The accumulator's start for output channel oc, and the offset added to inputs: bias_sum folds the
 * offset in (raw inputs), otherwise the bias (or 0) and in_offset. */
static inline int32_t mn_conv_start(const mn_conv_params *p, int32_t oc)
{
    if (p->bias_sum != 0) {
        return p->bias_sum[oc];
    }
    return p->bias != 0 ? p->bias[oc] : 0;
}

static inline int32_t mn_conv_off(const mn_conv_params *p)
{
    return p->bias_sum != 0 ? 0 : p->in_offset;
}

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
    const int32_t off = mn_conv_off(p);
    const int32_t out_c = p->out_c;
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
        const int32_t b0 = mn_conv_start(p, oc);
        const int32_t b1 = mn_conv_start(p, oc + 1);
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
        const int32_t b0 = mn_conv_start(p, oc);
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

#if MN_KERNELS_DSP
/* The DSP GEMM works on four output pixels at a time, their rows widened to int16 on the stack:
 * MN_S16_WORDS(n) words for depth n, 8 per block of 4 steps (pixel j's (x0, x2) and (x1, x3) at
 * words 2j and 2j + 1), then the n % 4 tail steps of each pixel as int32. */
#define MN_S16_PX 4
#define MN_S16_WORDS(n) (2 * ((n) & ~3) + MN_S16_PX * ((n) & 3))

/* Widens row x (n bytes, + off) into slot j of s, ordered as SXTB16 splits a filter word. */
static void mn_s16_fill(const int8_t *x, int32_t n, int32_t off, int32_t *s, int32_t j)
{
    const int32_t off16 = mn_dup16(off);
    const int32_t blocks = n >> 2, tail = n & 3;
    int32_t *d = s + 2 * j;
    int32_t k;
    for (k = 0; k < blocks; ++k, x += 4, d += 2 * MN_S16_PX) {
        const uint32_t v = mn_load4(x);
        d[0] = mn_even16(v, off16);
        d[1] = mn_odd16(v, off16);
    }
    d = s + 2 * MN_S16_PX * blocks + j * tail;
    for (k = 0; k < tail; ++k) {
        d[k] = (int32_t)x[k] + off;
    }
}

/* acc + the two operand words at byte offset `off` from x times (ue, uo): one LDRD and two SMLAD
 * (GCC splits a 64-bit load it cannot prove 8-byte aligned into two LDR; the asm loads the pair) */
#if defined(__GNUC__) && !defined(MN_KERNELS_EMULATE_DSP)
#define MN_S16_MAC(x, off, ue, uo, acc)                                                                            \
    do {                                                                                                           \
        int32_t lo_, hi_;                                                                                          \
        __asm__("ldrd %0, %1, [%2, %3]"                                                                            \
                : "=r"(lo_), "=r"(hi_)                                                                             \
                : "r"(x), "i"(off), "m"(*(const int32_t(*)[2])(const void *)((const char *)(x) + (off))));        \
        acc = mn_smlad(hi_, uo, mn_smlad(lo_, ue, acc));                                                           \
    } while (0)
#else
#define MN_S16_MAC(x, off, ue, uo, acc)                                                                            \
    do {                                                                                                           \
        const int32_t *x_ = (const int32_t *)(const void *)((const char *)(x) + (off));                           \
        acc = mn_smlad(x_[1], uo, mn_smlad(x_[0], ue, acc));                                                       \
    } while (0)
#endif

/* one block of 4 steps at byte offset `off` of xp: a filter word against the four pixels' operand
 * words (16 MACs) */
#define MN_S16_STEP(xp, off, wp)                                                                                   \
    do {                                                                                                           \
        const uint32_t w_ = mn_load4(wp);                                                                          \
        const int32_t ue_ = mn_even8(w_);                                                                          \
        const int32_t uo_ = mn_odd8(w_);                                                                           \
        MN_S16_MAC(xp, (off), ue_, uo_, a0);                                                                       \
        MN_S16_MAC(xp, (off) + 8, ue_, uo_, a1);                                                                   \
        MN_S16_MAC(xp, (off) + 16, ue_, uo_, a2);                                                                  \
        MN_S16_MAC(xp, (off) + 24, ue_, uo_, a3);                                                                  \
    } while (0)

/* The four widened rows in s (depth n) times every filter row: out[j * out_c + oc]. */
MN_ALWAYS_INLINE void mn_conv_s16_body(const mn_conv_params *p, const int32_t *s, int32_t n, int8_t *out,
                                       const int fast)
{
    const int32_t blocks = n >> 2, tail = n & 3;
    const int32_t *const st = s + 2 * MN_S16_PX * blocks;
    const size_t out_c = (size_t)p->out_c;
    const int32_t *mult = p->out_mult;
    const int32_t *shift = p->out_shift;
    const int32_t *start = p->bias_sum != 0 ? p->bias_sum : p->bias;
    const int32_t out_offset = p->out_offset, act_min = p->act_min, act_max = p->act_max;
    const int8_t *w0 = p->filter;
    int8_t *const end = out + out_c;
    int32_t i;
    for (; out != end; ++out, w0 += n) {
        const int32_t b = start != 0 ? *start++ : 0;
        int32_t a0 = b, a1 = b, a2 = b, a3 = b;
        const int32_t *xp = s;
        const int8_t *wp = w0;
        const int8_t *const w8 = w0 + 8 * (blocks >> 1);
        while (wp != w8) {
            MN_S16_STEP(xp, 0, wp);
            MN_S16_STEP(xp, 32, wp + 4);
            xp += 4 * MN_S16_PX;
            wp += 8;
        }
        if ((blocks & 1) != 0) {
            MN_S16_STEP(xp, 0, wp);
            wp += 4;
        }
        for (i = 0; i < tail; ++i) {
            const int32_t f = wp[i];
            a0 += st[i] * f;
            a1 += st[tail + i] * f;
            a2 += st[2 * tail + i] * f;
            a3 += st[3 * tail + i] * f;
        }
        {
            const int32_t m = *mult++, sh = *shift++;
            out[0] = mn_requant_val(a0, m, sh, fast, out_offset, act_min, act_max);
            out[out_c] = mn_requant_val(a1, m, sh, fast, out_offset, act_min, act_max);
            out[2 * out_c] = mn_requant_val(a2, m, sh, fast, out_offset, act_min, act_max);
            out[3 * out_c] = mn_requant_val(a3, m, sh, fast, out_offset, act_min, act_max);
        }
    }
}

static void mn_conv_s16_fast(const mn_conv_params *p, const int32_t *s, int32_t n, int8_t *out)
{
    mn_conv_s16_body(p, s, n, out, 1);
}

#if MN_KERNELS_REQUANT_ANY
static void mn_conv_s16_any(const mn_conv_params *p, const int32_t *s, int32_t n, int8_t *out)
{
    mn_conv_s16_body(p, s, n, out, 0);
}
#endif

/* four consecutive output pixels (out, out + out_c, ...) from the rows widened in s */
static void mn_conv_s16(const mn_conv_params *p, const mn_requant_ctx *q, const int32_t *s, int32_t n, int8_t *out)
{
#if MN_KERNELS_REQUANT_ANY
    if (!q->fast) {
        mn_conv_s16_any(p, s, n, out);
        return;
    }
#else
    (void)q; /* the callers take the direct loop unless q->fast */
#endif
    mn_conv_s16_fast(p, s, n, out);
}
#endif

static void mn_conv_2px_fast(const mn_conv_params *p, const int8_t *x0, int32_t n, int8_t *out0, int8_t *out1)
{
    mn_conv_2px_body(p, x0, n, out0, out1, 1);
}

#if MN_KERNELS_REQUANT_ANY || !MN_KERNELS_DSP
#define MN_CONV_2PX_ANY 1
static void mn_conv_2px_any(const mn_conv_params *p, const int8_t *x0, int32_t n, int8_t *out0, int8_t *out1)
{
    mn_conv_2px_body(p, x0, n, out0, out1, 0);
}
#else
#define MN_CONV_2PX_ANY 0
#endif

static void mn_conv_2px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *x0, int32_t n, int8_t *out0,
                        int8_t *out1)
{
#if MN_CONV_2PX_ANY
    if (!q->fast) {
        mn_conv_2px_any(p, x0, n, out0, out1);
        return;
    }
#else
    (void)q; /* the callers take the direct loop unless q->fast */
#endif
    mn_conv_2px_fast(p, x0, n, out0, out1);
}

/* One row x0 (n bytes) times every filter row: out0[oc]. */
static void mn_conv_1px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *x0, int32_t n, int8_t *out0)
{
    const int32_t off = mn_conv_off(p);
    const int8_t *w0 = p->filter;
    int32_t oc;
#if MN_KERNELS_DSP
    const int32_t off16 = mn_dup16(off);
#endif
    for (oc = 0; oc < p->out_c; ++oc, w0 += n) {
        int32_t a0 = mn_conv_start(p, oc);
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
static void mn_conv_generic_dsp(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *in, int8_t *out,
                                int32_t n)
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

#if MN_KERNELS_DSP && (MN_CONV_SHALLOW_1X1 || MN_CONV_SHALLOW_GENERIC)
/* Shallow pointwise layers (depth 8 or 16), fast requantization: the four-pixel GEMM spends more on
 * each output channel's set-up than on its 8-16 MACs there. One pixel at a time instead, its input
 * widened into registers, against a stack table per output channel of {start, multiplier,
 * 2^(e1-1), e1} and the filter row already widened: per output 1 LDM, n/4 LDRD, n/2 SMLAD and the
 * requantization of mn_mbqm_right. */
#define MN_SMALL_TABLE_WORDS 768

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
static void mn_conv_small8(const mn_conv_params *p, const int8_t *in, int8_t *out, size_t pixels)
{
    mn_conv_small_body(p, in, out, pixels, 8);
}

static void mn_conv_small16(const mn_conv_params *p, const int8_t *in, int8_t *out, size_t pixels)
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
#define MN_CONV_TABLE_DEPTH 32

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
static void mn_conv_table_generic(const mn_conv_params *p, const int8_t *in, int8_t *out, int32_t n)
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

int mn_conv2d_generic_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int8_t patch[2 * MN_CONV_PATCH_MAX];
    int32_t b, oy, ox, n, k = 0;
    int8_t *pending = 0;
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
        int32_t s[MN_S16_WORDS(MN_CONV_GEMM_MAX)];
        const int32_t off = mn_conv_off(p);
        int32_t j;
        for (; px + MN_S16_PX <= pixels; px += MN_S16_PX) {
            for (j = 0; j < MN_S16_PX; ++j) {
                mn_s16_fill(in + (px + (size_t)j) * in_c, p->in_c, off, s, j);
            }
            mn_conv_s16(p, &q, s, p->in_c, out + px * out_c);
        }
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
