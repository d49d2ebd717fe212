/*
 * CONV_2D with Helium (MVE): a GEMM of four output pixels against every filter row.
 *
 * Each output pixel's receptive field is a row of K = k_h * k_w * in_c int8 values: the input
 * itself where the field is one contiguous run inside the image (1x1 convolutions, 1xk rows), or
 * a copy on the stack (im2col, MN_CONV_MVE_PATCH_MAX bytes per pixel) with taps outside the image
 * set to the input zero point. For each filter row, one VLDRB of 16 weights and four VMLADAVA.S8
 * (one per pixel row) do 64 MACs on raw int8 values; the tail of K is predicated (VCTP8). The
 * accumulators start at bias_sum = bias + in_offset * sum(filter row) (int32 wrapping), given by
 * the code generator or summed here with VADDVA as the rows stream by: sum((x + off) * w) + bias
 * equals sum(x * w) + bias_sum modulo 2^32, and a zero-point tap (x = -off) adds exactly what
 * bias_sum counted for it, so the sums are TFLM's, which skips those taps. The four results are
 * requantized in one vector (mn_mve_mbqm_n, bit-exact with TFLM) and scattered to the four pixels.
 */
#include "mn_kernels_mve.h"

#if MN_KERNELS_MVE

/* Largest im2col patch (bytes per pixel) on the stack; four are. Larger receptive fields that are
 * not one contiguous run inside the image fall back to the DSP path. */
#ifndef MN_CONV_MVE_PATCH_MAX
#define MN_CONV_MVE_PATCH_MAX 320
#endif

/* One filter row w (k bytes) dotted with four input rows, in a tail-predicated low-overhead loop
 * (DLSTP.8/LETP: the last iteration's lanes beyond k are neither loaded nor added): per 16 bytes one
 * VLDRB of weights, four of inputs (post-incremented) and four VMLADAVA.S8 = 64 MACs. The four sums
 * come back as one vector (lane i: row i); *wsum += sum of w (VADDVA) when with_sum. GCC 12 neither
 * post-increments these loads nor predicates the tail itself, hence the assembly. */
MN_ALWAYS_INLINE int32x4_t mn_conv_dot4(const int8_t *const *x, const int8_t *w, int32_t k, int with_sum,
                                        int32_t *wsum)
{
    int32x4_t v;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    if (with_sum) {
        int32_t s = 0;
        __asm__("dlstp.8 lr, %[k]\n"
                "1:\n\t"
                "vldrb.8 q0, [%[w]], #16\n\t"
                "vldrb.8 q1, [%[x0]], #16\n\t"
                "vaddva.s8 %[s], q0\n\t"
                "vmladava.s8 %[a0], q1, q0\n\t"
                "vldrb.8 q2, [%[x1]], #16\n\t"
                "vmladava.s8 %[a1], q2, q0\n\t"
                "vldrb.8 q1, [%[x2]], #16\n\t"
                "vmladava.s8 %[a2], q1, q0\n\t"
                "vldrb.8 q2, [%[x3]], #16\n\t"
                "vmladava.s8 %[a3], q2, q0\n\t"
                "letp lr, 1b\n\t"
                : [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3), [s] "+Te"(s), [w] "+r"(w),
                  [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [x3] "+r"(x3)
                : [k] "r"(k)
                : "d0", "d1", "d2", "d3", "d4", "d5", "lr", "memory");
        *wsum = s;
    } else {
        __asm__("dlstp.8 lr, %[k]\n"
                "1:\n\t"
                "vldrb.8 q0, [%[w]], #16\n\t"
                "vldrb.8 q1, [%[x0]], #16\n\t"
                "vmladava.s8 %[a0], q1, q0\n\t"
                "vldrb.8 q2, [%[x1]], #16\n\t"
                "vmladava.s8 %[a1], q2, q0\n\t"
                "vldrb.8 q1, [%[x2]], #16\n\t"
                "vmladava.s8 %[a2], q1, q0\n\t"
                "vldrb.8 q2, [%[x3]], #16\n\t"
                "vmladava.s8 %[a3], q2, q0\n\t"
                "letp lr, 1b\n\t"
                : [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3), [w] "+r"(w), [x0] "+r"(x0),
                  [x1] "+r"(x1), [x2] "+r"(x2), [x3] "+r"(x3)
                : [k] "r"(k)
                : "d0", "d1", "d2", "d3", "d4", "d5", "lr", "memory");
    }
    __asm__("vmov %q[v][2], %q[v][0], %[a0], %[a2]\n\t"
            "vmov %q[v][3], %q[v][1], %[a1], %[a3]"
            : [v] "=w"(v)
            : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3));
    return v;
}

/* every output channel of four pixel rows (n of them real: the others repeat the last row), output
 * pixel i at out + i * out_c */
MN_ALWAYS_INLINE void mn_conv_rows(const mn_conv_params *p, const int8_t *const *x, int32_t n, int8_t *out,
                                   int with_sum)
{
    const int32_t k = p->k_h * p->k_w * p->in_c;
    const int32_t oc_n = p->out_c;
    const int32_t in_offset = p->in_offset, out_offset = p->out_offset, lo = p->act_min, hi = p->act_max;
    const int32_t *bias = with_sum ? p->bias : p->bias_sum;
    const int32_t *mult = p->out_mult, *shift = p->out_shift;
    const uint32x4_t offs = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)oc_n);
    const mve_pred16_t pr = vctp32q((uint32_t)n);
    const int8_t *w = p->filter;
    int32_t oc;
    for (oc = 0; oc < oc_n; ++oc) {
        int32_t wsum = 0;
        int32x4_t v = mn_conv_dot4(x, w, k, with_sum, &wsum);
        int32_t start = bias != 0 ? bias[oc] : 0;
        if (with_sum) {
            start = (int32_t)((uint32_t)start + (uint32_t)in_offset * (uint32_t)wsum);
        }
        v = vaddq_n_s32(v, start);
        v = mn_mve_mbqm_n(v, mult[oc], shift[oc]);
        v = mn_mve_out(v, out_offset, lo, hi);
        vstrbq_scatter_offset_p_s32(out + oc, offs, v, pr);
        w += k;
    }
}

/* the receptive field of the output pixel whose window starts at (iy0, ix0), zero point outside */
static void mn_conv_patch(const mn_conv_params *p, const int8_t *in_b, int32_t iy0, int32_t ix0, int8_t *patch,
                          int8x16_t zp)
{
    const int32_t c = p->in_c;
    const int32_t run = p->k_w * c;
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        int8_t *d = patch + ky * run;
        if (iy < 0 || iy >= p->in_h) {
            mn_mve_fill(d, zp, run);
            continue;
        }
        if (p->dilation_w == 1) {
            const int32_t x0 = ix0 < 0 ? -ix0 : 0;
            const int32_t x1 = ix0 + p->k_w > p->in_w ? p->in_w - ix0 : p->k_w;
            if (x1 <= x0) {
                mn_mve_fill(d, zp, run);
                continue;
            }
            mn_mve_fill(d, zp, x0 * c);
            mn_mve_copy(d + x0 * c, in_b + ((size_t)iy * (size_t)p->in_w + (size_t)(ix0 + x0)) * (size_t)c,
                        (x1 - x0) * c);
            mn_mve_fill(d + x1 * c, zp, (p->k_w - x1) * c);
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t ix = ix0 + kx * p->dilation_w;
                if (ix < 0 || ix >= p->in_w) {
                    mn_mve_fill(d + kx * c, zp, c);
                } else {
                    mn_mve_copy(d + kx * c, in_b + ((size_t)iy * (size_t)p->in_w + (size_t)ix) * (size_t)c, c);
                }
            }
        }
    }
}

MN_ALWAYS_INLINE void mn_conv_mve_body(const mn_conv_params *p, const int8_t *in, int8_t *out, int with_sum)
{
    int8_t patches[4][MN_CONV_MVE_PATCH_MAX];
    const int32_t npix = p->out_h * p->out_w;
    /* one contiguous run of K bytes per window (when inside the image) */
    const int contiguous = p->k_h == 1 && (p->k_w == 1 || p->dilation_w == 1);
    const int8x16_t zp = vdupq_n_s8((int8_t)-p->in_offset);
    const size_t in_img = (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
    const size_t out_img = (size_t)npix * (size_t)p->out_c;
    int32_t b, g, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * in_img;
        int8_t *out_b = out + (size_t)b * out_img;
        int32_t oy = 0, ox = 0;
        for (g = 0; g < npix; g += 4) {
            const int8_t *x[4];
            const int32_t n = npix - g < 4 ? npix - g : 4;
            for (i = 0; i < n; ++i) {
                const int32_t iy0 = oy * p->stride_h - p->pad_top;
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                if (contiguous && iy0 >= 0 && ix0 >= 0 && iy0 < p->in_h && ix0 + (p->k_w - 1) * p->dilation_w < p->in_w) {
                    x[i] = in_b + ((size_t)iy0 * (size_t)p->in_w + (size_t)ix0) * (size_t)p->in_c;
                } else {
                    mn_conv_patch(p, in_b, iy0, ix0, patches[i], zp);
                    x[i] = patches[i];
                }
                if (++ox == p->out_w) {
                    ox = 0;
                    ++oy;
                }
            }
            for (; i < 4; ++i) {
                x[i] = x[n - 1];
            }
            mn_conv_rows(p, x, n, out_b + (size_t)g * (size_t)p->out_c, with_sum);
        }
    }
}

static void mn_conv_mve_folded(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    mn_conv_mve_body(p, in, out, 0);
}

static void mn_conv_mve_summing(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    mn_conv_mve_body(p, in, out, 1);
}

int mn_conv2d_mve_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int64_t k;
    int needs_patch;
    /* the zero point fills patches: it must be an int8 */
    if (p->in_offset < -127 || p->in_offset > 128 || p->out_h <= 0 || p->out_w <= 0 ||
        p->in_h <= 0 || p->in_w <= 0) {
        return MN_MVE_FALLBACK;
    }
    k = (int64_t)p->k_h * p->k_w * p->in_c;
    needs_patch = !(p->k_h == 1 && (p->k_w == 1 || p->dilation_w == 1)) || p->pad_top > 0 || p->pad_left > 0 ||
                  (int64_t)(p->out_h - 1) * p->stride_h - p->pad_top + (int64_t)(p->k_h - 1) * p->dilation_h >=
                      p->in_h ||
                  (int64_t)(p->out_w - 1) * p->stride_w - p->pad_left + (int64_t)(p->k_w - 1) * p->dilation_w >=
                      p->in_w;
    if (k > INT32_MAX / 2 || (needs_patch && k > MN_CONV_MVE_PATCH_MAX)) {
        return MN_MVE_FALLBACK;
    }
    if (p->bias_sum != 0) {
        mn_conv_mve_folded(p, in, out);
    } else {
        mn_conv_mve_summing(p, in, out);
    }
    return MN_OK;
}
#else
typedef int mn_conv_mve_unused; /* ISO C forbids an empty translation unit */
#endif
