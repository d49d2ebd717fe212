/*
 * DEPTHWISE_CONV_2D with Helium (MVE). Depth multiplier 1 (in or out of place): the channel-planar
 * path below (four output pixels of one channel per int32 vector, one VMLA by the scalar tap weight
 * per tap). Otherwise, out of place, any depth multiplier, stride, dilation and padding: output
 * pixel by pixel, four output channels per vector (int32 lanes). Per tap inside the
 * image: the four inputs (VLDRB.S32, or a byte gather when depth_mult > 1) and weights widened to
 * int32, one VMUL and VADD into the accumulator, one VADD into the weight sum; then
 * acc + in_offset * wsum + bias = sum((x + in_offset) * w) + bias exactly as TFLM sums it (taps
 * outside the image are skipped, as TFLM does), requantized four lanes at a time (mn_mve_mbqm).
 * Channel tails are predicated (VCTP32). In-place calls the planar path cannot take fall back to
 * the DSP path.
 */
#include "mn_kernels_mve.h"

#if MN_KERNELS_MVE

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
            mn_tap_range(iy0, p->dilation_h, p->k_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                mn_tap_range(ix0, p->dilation_w, p->k_w, p->in_w, &kx0, &kx1);
                mn_dw_pixel(p, in_b, ((ptrdiff_t)iy0 * p->in_w + ix0) * p->in_c, ky0, ky1, kx0, kx1, out, dm1);
                out += p->out_c;
            }
        }
    }
}

/* ---- channel-planar path (depth multiplier 1) ----
 * A chunk of channels is copied, a few input rows at a time, into a ring of channel-planar rows on
 * the stack: per channel `ring` rows (the rows one output row reads), each split into stride_w
 * phases (column x at phase x % stride_w, index x / stride_w) of `len` bytes, padding columns and
 * rows holding the input zero point. Four consecutive output pixels of one channel are then one
 * int32 vector: each tap is one contiguous VLDRB.S32 and one VMLA by the tap weight (a scalar),
 * starting from bias + in_offset * sum(w) (zero-point taps add zero), requantized with the
 * channel's scalar multiplier and shift and stored with one VSTRB.32 scatter (stride out_c). */
#ifndef MN_DW_MVE_BUF
#define MN_DW_MVE_BUF 3072 /* bytes of ring (stack) */
#endif
#define MN_DW_MVE_CHUNK 64 /* channels per chunk at most (bias sums on the stack) */

typedef struct {
    int32_t c0, cc;  /* the chunk's channels */
    int32_t ring;    /* rows per channel */
    int32_t len;     /* bytes per phase */
    int32_t rowb;    /* bytes per ring row: stride_w * len */
    int32_t chb;     /* bytes per channel: ring * rowb */
} mn_dw_geo;

/* padded input row r into ring slot r % ring, every channel of the chunk */
static void mn_dw_load_row(const mn_dw_params *p, const mn_dw_geo *g, const int8_t *in_b, int8_t *buf, int32_t r,
                           int8x16_t zp)
{
    const int32_t iy = r - p->pad_top;
    int8_t *d0 = buf + (r % g->ring) * g->rowb;
    int32_t c, ix;
    if (iy < 0 || iy >= p->in_h) {
        for (c = 0; c < g->cc; ++c) {
            mn_mve_fill(d0 + c * g->chb, zp, g->rowb);
        }
        return;
    }
    {
        const int32_t sw = p->stride_w, in_c = p->in_c;
        const uint16x8_t offs = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)g->chb);
        const int8_t *src = in_b + (size_t)iy * (size_t)p->in_w * (size_t)in_c + (size_t)g->c0;
        int32_t x = p->pad_left, phase = x % sw, idx = x / sw;
        for (ix = 0; ix < p->in_w && idx < g->len; ++ix) {
            int8_t *d = d0 + phase * g->len + idx;
            for (c = 0; c < g->cc; c += 8) {
                const mve_pred16_t pr = vctp16q((uint32_t)(g->cc - c));
                vstrbq_scatter_offset_p_s16(d + c * g->chb, offs, vldrbq_z_s16(src + c, pr), pr);
            }
            src += in_c;
            if (++phase == sw) {
                phase = 0;
                ++idx;
            }
        }
    }
}

/* one output row of every channel of the chunk; slot0: the ring slot of its first input row.
 * KH, KW, SW, DW are constants where inlined for a fixed geometry; right: every shift <= 0 */
MN_ALWAYS_INLINE void mn_dw_plane_row(const mn_dw_params *p, const mn_dw_geo *g, const int8_t *buf, int32_t slot0,
                                      int8_t *o_row, const int32_t *bsum, int32_t KH, int32_t KW, int32_t SW,
                                      int32_t DW)
{
    const int32_t out_c = p->out_c, out_w = p->out_w, len = g->len;
    const uint32x4_t offs = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)out_c);
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int32_t out_offset = p->out_offset;
    int32_t c;
    for (c = 0; c < g->cc; ++c) {
        const int8_t *rp[5];
        int32_t w[25];
        const int32_t ch = g->c0 + c;
        const int32_t mult = p->out_mult[ch], shift = p->out_shift[ch];
        const int32_t left = shift > 0 ? shift : 0, right = shift < 0 ? shift : 0;
        const int32_t b = bsum[c];
        int8_t *o = o_row + ch;
        int32_t ky, kx, ox;
#pragma GCC unroll 5
        for (ky = 0; ky < KH; ++ky) {
            rp[ky] = buf + c * g->chb + ((slot0 + ky * p->dilation_h) % g->ring) * g->rowb;
#pragma GCC unroll 5
            for (kx = 0; kx < KW; ++kx) {
                w[ky * KW + kx] = p->filter[(ky * KW + kx) * out_c + ch];
            }
        }
        for (ox = 0; ox < out_w; ox += 4) {
            int32x4_t acc = vdupq_n_s32(b);
#pragma GCC unroll 5
            for (ky = 0; ky < KH; ++ky) {
#pragma GCC unroll 5
                for (kx = 0; kx < KW; ++kx) {
                    const int32_t t = kx * DW;
                    acc = vmlaq_n_s32(acc, vldrbq_s32(rp[ky] + (t % SW) * len + t / SW + ox), w[ky * KW + kx]);
                }
            }
            if (left > 0) {
                acc = vshlq_r_s32(acc, left);
            }
            acc = vqrdmulhq_n_s32(acc, mult);
            if (right < 0) {
                acc = vqaddq_s32(acc, vshrq_n_s32(acc, 31));
                acc = vrshlq_n_s32(acc, right);
            }
            acc = vminq_s32(vmaxq_s32(vaddq_n_s32(acc, out_offset), lo), hi);
            if (ox + 4 <= out_w) {
                vstrbq_scatter_offset_s32(o, offs, acc);
            } else {
                vstrbq_scatter_offset_p_s32(o, offs, acc, vctp32q((uint32_t)(out_w - ox)));
            }
            o += 4 * out_c;
        }
    }
}

MN_ALWAYS_INLINE void mn_dw_planar_body(const mn_dw_params *p, const int8_t *in, int8_t *out, int32_t len,
                                        int32_t KH, int32_t KW, int32_t SW, int32_t DW)
{
    int8_t buf[MN_DW_MVE_BUF] __attribute__((aligned(8)));
    int32_t bsum[MN_DW_MVE_CHUNK];
    const int8x16_t zp = vdupq_n_s8((int8_t)-p->in_offset);
    const size_t in_img = (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
    const size_t out_row = (size_t)p->out_w * (size_t)p->out_c;
    mn_dw_geo g;
    int32_t bt, oy, c, t;
    g.ring = (p->k_h - 1) * p->dilation_h + 1;
    g.len = len;
    g.rowb = p->stride_w * len;
    g.chb = g.ring * g.rowb;
    g.cc = MN_DW_MVE_BUF / g.chb;
    if (g.cc > MN_DW_MVE_CHUNK) {
        g.cc = MN_DW_MVE_CHUNK;
    }
    for (bt = 0; bt < p->batches; ++bt) {
        const int8_t *in_b = in + (size_t)bt * in_img;
        int8_t *out_b = out + (size_t)bt * (size_t)p->out_h * out_row;
        int32_t cc_max = g.cc;
        for (g.c0 = 0; g.c0 < p->in_c; g.c0 += g.cc) {
            int32_t next = 0;
            g.cc = p->in_c - g.c0 < cc_max ? p->in_c - g.c0 : cc_max;
            for (c = 0; c < g.cc; ++c) {
                int32_t s = 0;
                for (t = 0; t < p->k_h * p->k_w; ++t) {
                    s += p->filter[t * p->out_c + g.c0 + c];
                }
                bsum[c] = (int32_t)((uint32_t)(p->bias != 0 ? p->bias[g.c0 + c] : 0) +
                                    (uint32_t)p->in_offset * (uint32_t)s);
            }
            mn_mve_fill(buf, zp, g.cc * g.chb);
            for (oy = 0; oy < p->out_h; ++oy) {
                const int32_t top = oy * p->stride_h;
                int32_t r = next > top ? next : top;
                for (; r < top + g.ring; ++r) {
                    mn_dw_load_row(p, &g, in_b, buf, r, zp);
                }
                next = r;
                mn_dw_plane_row(p, &g, buf, top % g.ring, out_b + (size_t)oy * out_row, bsum, KH, KW, SW, DW);
            }
        }
        g.cc = cc_max;
    }
}

static void mn_dw_planar_3x3s1(const mn_dw_params *p, const int8_t *in, int8_t *out, int32_t len)
{
    mn_dw_planar_body(p, in, out, len, 3, 3, 1, 1);
}

static void mn_dw_planar_3x3s2(const mn_dw_params *p, const int8_t *in, int8_t *out, int32_t len)
{
    mn_dw_planar_body(p, in, out, len, 3, 3, 2, 1);
}

static void mn_dw_planar_any(const mn_dw_params *p, const int8_t *in, int8_t *out, int32_t len)
{
    mn_dw_planar_body(p, in, out, len, p->k_h, p->k_w, p->stride_w, p->dilation_w);
}

/* MN_OK when the planar path computed the output */
static int mn_dw_planar(const mn_dw_params *p, const int8_t *in, int8_t *out)
{
    int32_t len, rows;
    if (p->depth_mult != 1 || p->in_offset < -127 || p->in_offset > 128 || p->k_h > 5 || p->k_w > 5 ||
        p->out_w > MN_DW_MVE_BUF || p->dilation_w > MN_DW_MVE_BUF || p->dilation_h > MN_DW_MVE_BUF ||
        p->stride_w > MN_DW_MVE_BUF) {
        return MN_MVE_FALLBACK;
    }
    /* 32-bit arithmetic (no 64-bit division helper): every factor is at most MN_DW_MVE_BUF here, and
     * each product is checked against the buffer before the next */
    len = (p->out_w + 3) / 4 * 4 + (p->k_w - 1) * p->dilation_w / p->stride_w;
    rows = (p->k_h - 1) * p->dilation_h + 1;
    if (rows > MN_DW_MVE_BUF / p->stride_w || len > MN_DW_MVE_BUF / (rows * p->stride_w)) {
        return MN_MVE_FALLBACK;
    }
    if (p->k_h == 3 && p->k_w == 3 && p->dilation_h == 1 && p->dilation_w == 1 && p->stride_w == 1) {
        mn_dw_planar_3x3s1(p, in, out, len);
    } else if (p->k_h == 3 && p->k_w == 3 && p->dilation_h == 1 && p->dilation_w == 1 && p->stride_w == 2) {
        mn_dw_planar_3x3s2(p, in, out, len);
    } else {
        mn_dw_planar_any(p, in, out, len);
    }
    return MN_OK;
}

int mn_depthwise_mve_s8(const mn_dw_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    (void)scratch;
    if (p->out_h <= 0 || p->out_w <= 0 || p->in_h <= 0 || p->in_w <= 0) {
        return MN_MVE_FALLBACK;
    }
    /* the planar path's fixed costs per channel and row (zero-point fill, row copies, weight loads)
     * outweigh its faster taps on small maps: from 10x10 outputs (measured on VWW: 12x12 2.7 against
     * 4.6 instructions/MAC, 6x6 4.4 against 4.3), and for in-place calls, which only it handles */
    if ((p->out_h * p->out_w >= 100 || (const int8_t *)out == in) && mn_dw_planar(p, in, out) == MN_OK) {
        return MN_OK;
    }
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
