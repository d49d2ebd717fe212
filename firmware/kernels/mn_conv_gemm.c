/*
 * CONV_2D GEMM cores (mn_conv.c has the overview): two pixels x two output channels, widening the
 * int8 rows in the loop (any depth; the portable build's only core), and with the DSP extension four
 * pixels against rows widened to int16 on the stack beforehand.
 */
#include "mn_conv_internal.h"

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

/* Widens row x (n bytes, + off) into slot j of s, ordered as SXTB16 splits a filter word. */
void mn_s16_fill(const int8_t *x, int32_t n, int32_t off, int32_t *s, int32_t j)
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
void mn_conv_s16(const mn_conv_params *p, const mn_requant_ctx *q, const int32_t *s, int32_t n, int8_t *out)
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

void mn_conv_2px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *x0, int32_t n, int8_t *out0,
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
void mn_conv_1px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *x0, int32_t n, int8_t *out0)
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
