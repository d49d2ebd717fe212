/*
 * MAX_POOL_2D int8: TFLM reference_integer_ops::MaxPool semantics. Every output pixel takes, per
 * channel, the maximum over its window clipped to the image (padding taps are skipped), starting
 * from -128, then the activation clamp. Pixel by pixel, channels innermost (contiguous loads):
 * with the Arm DSP extension eight, then four channels per step as words (SSUB8 + SEL per tap,
 * mn_max4_s8), the rest (and everything in the portable build) four channels, then one, in scalars.
 */
#include "mn_kernels.h"

/* channels [c, c_end) of one output pixel, scalar: win = the window's first tap (channel 0),
 * row = bytes between input rows, ch = bytes between input pixels */
static void mn_maxpool_scalar(const int8_t *win, size_t row, size_t ch, int32_t nfy, int32_t nfx, size_t c,
                              size_t c_end, int32_t lo, int32_t hi, int8_t *out)
{
    int32_t y, x;
    for (; c + 4 <= c_end; c += 4) {
        int32_t m0 = -128, m1 = -128, m2 = -128, m3 = -128;
        const int8_t *r = win + c;
        for (y = 0; y < nfy; ++y) {
            const int8_t *t = r;
            for (x = 0; x < nfx; ++x) {
                m0 = t[0] > m0 ? t[0] : m0;
                m1 = t[1] > m1 ? t[1] : m1;
                m2 = t[2] > m2 ? t[2] : m2;
                m3 = t[3] > m3 ? t[3] : m3;
                t += ch;
            }
            r += row;
        }
        out[c] = (int8_t)mn_clamp(m0, lo, hi);
        out[c + 1] = (int8_t)mn_clamp(m1, lo, hi);
        out[c + 2] = (int8_t)mn_clamp(m2, lo, hi);
        out[c + 3] = (int8_t)mn_clamp(m3, lo, hi);
    }
    for (; c < c_end; ++c) {
        int32_t m = -128;
        const int8_t *r = win + c;
        for (y = 0; y < nfy; ++y) {
            const int8_t *t = r;
            for (x = 0; x < nfx; ++x) {
                m = *t > m ? *t : m;
                t += ch;
            }
            r += row;
        }
        out[c] = (int8_t)mn_clamp(m, lo, hi);
    }
}

#if MN_KERNELS_DSP
static inline void mn_store4(int8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

/* every byte of a word set to the int8 value v */
static inline uint32_t mn_splat8(int32_t v)
{
    return ((uint32_t)v & 0xFFu) * 0x01010101u;
}

/* the channels of one output pixel that fill words (8, then 4 at a time); returns how many */
static size_t mn_maxpool_words(const int8_t *win, size_t row, size_t ch, int32_t nfy, int32_t nfx, int clamp,
                               uint32_t lo4, uint32_t hi4, int8_t *out)
{
    int32_t y, x;
    size_t c = 0;
    for (; c + 8 <= ch; c += 8) {
        uint32_t m0 = 0x80808080u, m1 = 0x80808080u;
        const int8_t *r = win + c;
        for (y = 0; y < nfy; ++y) {
            const int8_t *t = r;
            for (x = 0; x < nfx; ++x) {
                m0 = mn_max4_s8(m0, mn_load4(t));
                m1 = mn_max4_s8(m1, mn_load4(t + 4));
                t += ch;
            }
            r += row;
        }
        if (clamp) {
            m0 = mn_min4_s8(mn_max4_s8(m0, lo4), hi4);
            m1 = mn_min4_s8(mn_max4_s8(m1, lo4), hi4);
        }
        mn_store4(out + c, m0);
        mn_store4(out + c + 4, m1);
    }
    if (c + 4 <= ch) {
        uint32_t m0 = 0x80808080u;
        const int8_t *r = win + c;
        for (y = 0; y < nfy; ++y) {
            const int8_t *t = r;
            for (x = 0; x < nfx; ++x) {
                m0 = mn_max4_s8(m0, mn_load4(t));
                t += ch;
            }
            r += row;
        }
        if (clamp) {
            m0 = mn_min4_s8(mn_max4_s8(m0, lo4), hi4);
        }
        mn_store4(out + c, m0);
        c += 4;
    }
    return c;
}
#endif

int mn_maxpool_s8(const mn_pool_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, oy, ox;
    size_t ch, row, c;
    if (p == 0 || in == 0 || out == 0 || p->batches <= 0 || p->in_h <= 0 || p->in_w <= 0 || p->channels <= 0 ||
        p->out_h <= 0 || p->out_w <= 0 || p->k_h <= 0 || p->k_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->pad_top < 0 || p->pad_left < 0 || p->act_min < -128 || p->act_max > 127 || p->act_min > p->act_max) {
        return MN_EINVAL;
    }
    ch = (size_t)p->channels;
    row = (size_t)p->in_w * ch;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
            const int32_t fy1 = p->k_h < p->in_h - iy0 ? p->k_h : p->in_h - iy0;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t fx1 = p->k_w < p->in_w - ix0 ? p->k_w : p->in_w - ix0;
                if (fy1 <= fy0 || fx1 <= fx0) {
                    /* no tap inside the image: TFLM's initial -128, clamped */
                    for (c = 0; c < ch; ++c) {
                        out[c] = (int8_t)mn_clamp(-128, p->act_min, p->act_max);
                    }
                } else {
                    const int8_t *win = in_b + (size_t)(iy0 + fy0) * row + (size_t)(ix0 + fx0) * ch;
                    c = 0;
#if MN_KERNELS_DSP
                    c = mn_maxpool_words(win, row, ch, fy1 - fy0, fx1 - fx0, p->act_min > -128 || p->act_max < 127,
                                         mn_splat8(p->act_min), mn_splat8(p->act_max), out);
#endif
                    mn_maxpool_scalar(win, row, ch, fy1 - fy0, fx1 - fx0, c, ch, p->act_min, p->act_max, out);
                }
                out += ch;
            }
        }
    }
    return MN_OK;
}
