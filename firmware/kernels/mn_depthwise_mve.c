/*
 * DEPTHWISE_CONV_2D with Helium (MVE), out of place, any depth multiplier, stride, dilation and
 * padding: output pixel by pixel, four output channels per vector (int32 lanes). Per tap inside the
 * image: the four inputs (VLDRB.S32, or a byte gather when depth_mult > 1) and weights widened to
 * int32, one VMUL and VADD into the accumulator, one VADD into the weight sum; then
 * acc + in_offset * wsum + bias = sum((x + in_offset) * w) + bias exactly as TFLM sums it (taps
 * outside the image are skipped, as TFLM does), requantized four lanes at a time (mn_mve_mbqm).
 * Channel tails are predicated (VCTP32). In-place calls fall back to the DSP path.
 */
#include "mn_kernels_mve.h"

#if MN_KERNELS_MVE

static void mn_dw_range(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first, int32_t *end)
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

/* one block of four output channels (pred: the lanes that exist) of one output pixel */
MN_ALWAYS_INLINE void mn_dw_block(const mn_dw_params *p, const int8_t *in, ptrdiff_t x0, int32_t ky0, int32_t ky1,
                                  int32_t kx0, int32_t kx1, int8_t *o, int32_t oc, mve_pred16_t pr, int dm1,
                                  int full)
{
    const int32_t oc_n = p->out_c;
    const int32_t row = p->in_w * p->in_c * p->dilation_h;
    const int32_t col = p->in_c * p->dilation_w;
    const int32_t wrow = p->k_w * oc_n;
    int32x4_t acc = vdupq_n_s32(0), wsum = vdupq_n_s32(0), v, shift;
    uint32x4_t ch = vdupq_n_u32(0);
    ptrdiff_t xc = x0 + oc;
    int32_t ky, kx;
    if (!dm1) {
        /* input channel (oc + i) / depth_mult of each lane, relative to the pixel */
        const int32_t dm = p->depth_mult;
        ch = vsetq_lane_u32((uint32_t)(oc / dm), ch, 0);
        ch = vsetq_lane_u32((uint32_t)((oc + 1) / dm), ch, 1);
        ch = vsetq_lane_u32((uint32_t)((oc + 2) / dm), ch, 2);
        ch = vsetq_lane_u32((uint32_t)((oc + 3) / dm), ch, 3);
        xc = x0;
    }
    for (ky = ky0; ky < ky1; ++ky) {
        const int8_t *xr = in + xc + ky * row + kx0 * col;
        const int8_t *wr = p->filter + ky * wrow + kx0 * oc_n + oc;
        for (kx = kx0; kx < kx1; ++kx) {
            int32x4_t wv, xv;
            if (full) {
                wv = vldrbq_s32(wr);
                xv = dm1 ? vldrbq_s32(xr) : vldrbq_gather_offset_s32(xr, ch);
            } else {
                wv = vldrbq_z_s32(wr, pr);
                xv = dm1 ? vldrbq_z_s32(xr, pr) : vldrbq_gather_offset_z_s32(xr, ch, pr);
            }
            acc = vaddq_s32(acc, vmulq_s32(xv, wv));
            wsum = vaddq_s32(wsum, wv);
            xr += col;
            wr += oc_n;
        }
    }
    acc = vmlaq_n_s32(acc, wsum, p->in_offset);
    if (full) {
        if (p->bias != 0) {
            acc = vaddq_s32(acc, vldrwq_s32(p->bias + oc));
        }
        shift = vldrwq_s32(p->out_shift + oc);
        v = mn_mve_mbqm(acc, vldrwq_s32(p->out_mult + oc), mn_mve_left(shift), mn_mve_negright(shift));
        vstrbq_s32(o + oc, mn_mve_out(v, p->out_offset, p->act_min, p->act_max));
    } else {
        if (p->bias != 0) {
            acc = vaddq_s32(acc, vldrwq_z_s32(p->bias + oc, pr));
        }
        shift = vldrwq_z_s32(p->out_shift + oc, pr);
        v = mn_mve_mbqm(acc, vldrwq_z_s32(p->out_mult + oc, pr), mn_mve_left(shift), mn_mve_negright(shift));
        vstrbq_p_s32(o + oc, mn_mve_out(v, p->out_offset, p->act_min, p->act_max), pr);
    }
}

/* one output pixel, every channel; x0: the offset from `in` of the window origin (may lie outside
 * the image: only taps inside are addressed and read) */
MN_ALWAYS_INLINE void mn_dw_pixel(const mn_dw_params *p, const int8_t *in, ptrdiff_t x0, int32_t ky0, int32_t ky1,
                                  int32_t kx0, int32_t kx1, int8_t *o, int dm1)
{
    int32_t oc = 0;
    for (; oc + 4 <= p->out_c; oc += 4) {
        mn_dw_block(p, in, x0, ky0, ky1, kx0, kx1, o, oc, 0, dm1, 1);
    }
    if (oc < p->out_c) {
        mn_dw_block(p, in, x0, ky0, ky1, kx0, kx1, o, oc, vctp32q((uint32_t)(p->out_c - oc)), dm1, 0);
    }
}

MN_ALWAYS_INLINE void mn_dw_body(const mn_dw_params *p, const int8_t *in, int8_t *out, int dm1)
{
    int32_t b, oy, ox;
    const size_t in_img = (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * in_img;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            mn_dw_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                mn_dw_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
                mn_dw_pixel(p, in_b, ((ptrdiff_t)iy0 * p->in_w + ix0) * p->in_c, ky0, ky1, kx0, kx1, out, dm1);
                out += p->out_c;
            }
        }
    }
}

int mn_depthwise_mve_s8(const mn_dw_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    (void)scratch;
    if ((const int8_t *)out == in || p->out_h <= 0 || p->out_w <= 0 || p->in_h <= 0 || p->in_w <= 0) {
        return MN_MVE_FALLBACK;
    }
    if (p->depth_mult == 1) {
        mn_dw_body(p, in, out, 1);
    } else {
        mn_dw_body(p, in, out, 0);
    }
    return MN_OK;
}
#else
typedef int mn_depthwise_mve_unused; /* ISO C forbids an empty translation unit */
#endif
