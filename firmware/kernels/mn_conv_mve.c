/*
 * CONV_2D with Helium (MVE): four output pixels x four output channels per step.
 *
 * Each output pixel's receptive field is a row of K = k_h * k_w * in_c int8 values: the input
 * itself where the field is one contiguous run inside the image (1x1 convolutions, 1xk rows), or
 * a copy on the stack (im2col, MN_CONV_MVE_PATCH_MAX bytes per pixel, copied by tail-predicated
 * VLDRB/VSTRB runs) with taps outside the image set to the input zero point. One pixel row against
 * four filter rows gives one int32 vector whose lanes are four output channels: per 16 bytes one
 * input VLDRB, four weight VLDRBs and four VMLADAVA.S8 (64 MACs), the tail of K predicated; for
 * K <= 16 the four filter rows stay in registers for the four pixels (16 VMLADAV, no loop). The
 * sums start at bias_sum = bias + in_offset * sum(filter row) (int32 wrapping), given by the code
 * generator or summed here with VADDVA: sum((x + off) * w) + bias equals sum(x * w) + bias_sum
 * modulo 2^32, and a zero-point tap (x = -off) adds exactly what bias_sum counted for it, so the
 * sums are TFLM's, which skips those taps. The four channels' multipliers and shifts are vectors
 * too, loaded once per four pixels: each pixel is requantized in one vector (mn_mve_mbqm,
 * bit-exact with TFLM; the left shift only when some channel has one) and stored with one
 * VSTRB.32 (channel tails predicated).
 */
#include "mn_kernels_mve.h"

#if MN_KERNELS_MVE

/* Largest im2col patch (bytes per pixel) on the stack; four are. Larger receptive fields that are
 * not one contiguous run inside the image fall back to the DSP path. */
#ifndef MN_CONV_MVE_PATCH_MAX
#define MN_CONV_MVE_PATCH_MAX 320
#endif

/* lanes 0..3 = a0..a3 */
MN_ALWAYS_INLINE int32x4_t mn_conv_pack(int32_t a0, int32_t a1, int32_t a2, int32_t a3)
{
    int32x4_t v;
    __asm__("vmov %q[v][2], %q[v][0], %[a0], %[a2]\n\t"
            "vmov %q[v][3], %q[v][1], %[a1], %[a3]"
            : [v] "=w"(v)
            : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3));
    return v;
}

/* One pixel row x (k bytes) dotted with four filter rows w0..w3, in a tail-predicated low-overhead
 * loop (DLSTP.8/LETP: the last iteration's lanes beyond k are neither loaded nor added): per 16
 * bytes one VLDRB of inputs, four of weights (post-incremented) and four VMLADAVA.S8 = 64 MACs.
 * Lane j of the result: row j. GCC 12 neither post-increments these loads nor predicates the tail
 * itself, hence the assembly. */
MN_ALWAYS_INLINE int32x4_t mn_conv_dot4(const int8_t *x, const int8_t *w0, const int8_t *w1, const int8_t *w2,
                                        const int8_t *w3, int32_t k)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    __asm__("dlstp.8 lr, %[k]\n"
            "1:\n\t"
            "vldrb.8 q0, [%[x]], #16\n\t"
            "vldrb.8 q1, [%[w0]], #16\n\t"
            "vmladava.s8 %[a0], q1, q0\n\t"
            "vldrb.8 q2, [%[w1]], #16\n\t"
            "vmladava.s8 %[a1], q2, q0\n\t"
            "vldrb.8 q1, [%[w2]], #16\n\t"
            "vmladava.s8 %[a2], q1, q0\n\t"
            "vldrb.8 q2, [%[w3]], #16\n\t"
            "vmladava.s8 %[a3], q2, q0\n\t"
            "letp lr, 1b\n\t"
            : [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3), [x] "+r"(x), [w0] "+r"(w0),
              [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3)
            : [k] "r"(k)
            : "d0", "d1", "d2", "d3", "d4", "d5", "lr", "memory");
    return mn_conv_pack(a0, a1, a2, a3);
}

/* n > 0 bytes from s to d (tail-predicated low-overhead loop) */
MN_ALWAYS_INLINE void mn_conv_copy(int8_t *d, const int8_t *s, int32_t n)
{
    __asm__ volatile("dlstp.8 lr, %[n]\n"
                     "1:\n\t"
                     "vldrb.8 q0, [%[s]], #16\n\t"
                     "vstrb.8 q0, [%[d]], #16\n\t"
                     "letp lr, 1b"
                     : [d] "+r"(d), [s] "+r"(s)
                     : [n] "r"(n)
                     : "d0", "d1", "lr", "memory");
}

/* sum of each of the four rows (k bytes), one per lane */
MN_ALWAYS_INLINE int32x4_t mn_conv_wsum4(const int8_t *w0, const int8_t *w1, const int8_t *w2, const int8_t *w3,
                                         int32_t k)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, j;
    for (j = 0; j < k; j += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)(k - j));
        s0 = vaddvaq_s8(s0, vldrbq_z_s8(w0 + j, pr));
        s1 = vaddvaq_s8(s1, vldrbq_z_s8(w1 + j, pr));
        s2 = vaddvaq_s8(s2, vldrbq_z_s8(w2 + j, pr));
        s3 = vaddvaq_s8(s3, vldrbq_z_s8(w3 + j, pr));
    }
    return mn_conv_pack(s0, s1, s2, s3);
}

/* four pixel rows x0..x3 against four filter rows of k <= 16 bytes (v0..v3, lanes beyond k zero):
 * r[i] lane j = pixel i . row j. Each pixel row is loaded (tail-predicated) into its result
 * register, which its four VMLADAV.S8 sums then overwrite. */
MN_ALWAYS_INLINE void mn_conv_dot4x4(const int8_t *const *x, int8x16_t v0, int8x16_t v1, int8x16_t v2,
                                     int8x16_t v3, int32_t k, int32x4_t *r)
{
    int32x4_t r0, r1, r2, r3;
    int32_t a0, a1, a2, a3;
#define MN_CONV_PX(R, X)                                                                                         \
    "vpst\n\t"                                                                                                   \
    "vldrbt.8 %q[" R "], [%[" X "]]\n\t"                                                                          \
    "vmladav.s8 %[a0], %q[" R "], %q[v0]\n\t"                                                                     \
    "vmladav.s8 %[a1], %q[" R "], %q[v1]\n\t"                                                                     \
    "vmladav.s8 %[a2], %q[" R "], %q[v2]\n\t"                                                                     \
    "vmladav.s8 %[a3], %q[" R "], %q[v3]\n\t"                                                                     \
    "vmov %q[" R "][2], %q[" R "][0], %[a0], %[a2]\n\t"                                                            \
    "vmov %q[" R "][3], %q[" R "][1], %[a1], %[a3]\n\t"
    __asm__("vctp.8 %[k]\n\t" MN_CONV_PX("r0", "x0") MN_CONV_PX("r1", "x1") MN_CONV_PX("r2", "x2")
                MN_CONV_PX("r3", "x3")
            : [r0] "=&w"(r0), [r1] "=&w"(r1), [r2] "=&w"(r2), [r3] "=&w"(r3), [a0] "=&Te"(a0), [a1] "=&Te"(a1),
              [a2] "=&Te"(a2), [a3] "=&Te"(a3)
            : [x0] "r"(x[0]), [x1] "r"(x[1]), [x2] "r"(x[2]), [x3] "r"(x[3]), [v0] "w"(v0), [v1] "w"(v1),
              [v2] "w"(v2), [v3] "w"(v3), [k] "r"(k)
            : "memory");
#undef MN_CONV_PX
    r[0] = r0;
    r[1] = r1;
    r[2] = r2;
    r[3] = r3;
}

/* requantized r[i] (n of them) to out + i * stride, lanes under pc */
MN_ALWAYS_INLINE void mn_conv_store(const mn_conv_params *p, const int32x4_t *r, int32_t n, int8_t *out,
                                    int32_t stride, int32x4_t bias, int32x4_t mult, int32x4_t shift,
                                    mve_pred16_t pc, int lefts, int full)
{
    const int32x4_t negright = mn_mve_negright(shift);
    const int32x4_t left = lefts ? mn_mve_left(shift) : vdupq_n_s32(0);
    int32_t i;
#pragma GCC unroll 4
    for (i = 0; i < 4; ++i) {
        int32x4_t v;
        if (i > 0 && i >= n) {
            break;
        }
        v = vaddq_s32(r[i], bias);
        if (lefts) {
            v = vshlq_s32(v, left);
        }
        v = vqrdmulhq_s32(v, mult);
        v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, negright), 31));
        v = vrshlq_s32(v, negright);
        v = mn_mve_out(v, p->out_offset, p->act_min, p->act_max);
        if (full) {
            vstrbq_s32(out, v);
        } else {
            vstrbq_p_s32(out, v, pc);
        }
        out += stride;
    }
}

/* four output channels from oc (m of them real: the others repeat the last row) of four pixel rows
 * (n real); with_sum: p->bias (or none) + in_offset * sum(w) instead of p->bias_sum; lefts: some
 * shift is positive; small: K <= 16; full: m >= 4 */
MN_ALWAYS_INLINE void mn_conv_group(const mn_conv_params *p, const int8_t *const *x, int32_t n, int8_t *out,
                                    int32_t k, int32_t oc, int32_t m, int with_sum, int lefts, int small, int full)
{
    const mve_pred16_t pc = full ? 0xFFFF : vctp32q((uint32_t)m);
    const int8_t *w0 = p->filter + (size_t)oc * (size_t)k;
    const int8_t *w1 = full || m > 1 ? w0 + k : w0;
    const int8_t *w2 = full || m > 2 ? w1 + k : w1;
    const int8_t *w3 = full || m > 3 ? w2 + k : w2;
    int32x4_t r[4], bias, shift, mult;
    int32_t i;
    if (small) {
        const mve_pred16_t pk = vctp8q((uint32_t)k);
        mn_conv_dot4x4(x, vldrbq_z_s8(w0, pk), vldrbq_z_s8(w1, pk), vldrbq_z_s8(w2, pk), vldrbq_z_s8(w3, pk), k, r);
    } else {
#pragma GCC unroll 4
        for (i = 0; i < 4; ++i) {
            r[i] = mn_conv_dot4(x[i], w0, w1, w2, w3, k);
        }
    }
    if (with_sum) {
        bias = vmulq_n_s32(mn_conv_wsum4(w0, w1, w2, w3, k), p->in_offset);
        if (p->bias != 0) {
            bias = vaddq_s32(bias, full ? vldrwq_s32(p->bias + oc) : vldrwq_z_s32(p->bias + oc, pc));
        }
    } else {
        bias = full ? vldrwq_s32(p->bias_sum + oc) : vldrwq_z_s32(p->bias_sum + oc, pc);
    }
    shift = full ? vldrwq_s32(p->out_shift + oc) : vldrwq_z_s32(p->out_shift + oc, pc);
    mult = full ? vldrwq_s32(p->out_mult + oc) : vldrwq_z_s32(p->out_mult + oc, pc);
    mn_conv_store(p, r, n, out + oc, p->out_c, bias, mult, shift, pc, lefts, full);
}

/* every output channel of four pixel rows (n of them real: the others repeat the last row), output
 * pixel i at out + i * out_c */
MN_ALWAYS_INLINE void mn_conv_rows(const mn_conv_params *p, const int8_t *const *x, int32_t n, int8_t *out,
                                   int with_sum, int lefts, int small)
{
    const int32_t k = p->k_h * p->k_w * p->in_c, out_c = p->out_c;
    int32_t oc;
    for (oc = 0; oc + 4 <= out_c; oc += 4) {
        mn_conv_group(p, x, n, out, k, oc, 4, with_sum, lefts, small, 1);
    }
    if (oc < out_c) {
        mn_conv_group(p, x, n, out, k, oc, out_c - oc, with_sum, lefts, small, 0);
    }
}

/* the receptive field of the output pixel whose window starts at (iy0, ix0), zero point outside */
static void mn_conv_patch(const mn_conv_params *p, const int8_t *in_b, int32_t iy0, int32_t ix0, int8_t *patch,
                          int8x16_t zp)
{
    const int32_t c = p->in_c;
    const int32_t run = p->k_w * c;
    const size_t row = (size_t)p->in_w * (size_t)c;
    int32_t ky, kx;
    if (p->dilation_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w && iy0 >= 0 &&
        iy0 + (p->k_h - 1) * p->dilation_h < p->in_h) {
        /* inside the image: k_h runs */
        const int8_t *s = in_b + (size_t)iy0 * row + (size_t)ix0 * (size_t)c;
        const size_t step = (size_t)p->dilation_h * row;
        for (ky = 0; ky < p->k_h; ++ky) {
            mn_conv_copy(patch, s, run);
            patch += run;
            s += step;
        }
        return;
    }
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
            mn_mve_copy(d + x0 * c, in_b + (size_t)iy * row + (size_t)(ix0 + x0) * (size_t)c, (x1 - x0) * c);
            mn_mve_fill(d + x1 * c, zp, (p->k_w - x1) * c);
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t ix = ix0 + kx * p->dilation_w;
                if (ix < 0 || ix >= p->in_w) {
                    mn_mve_fill(d + kx * c, zp, c);
                } else {
                    mn_mve_copy(d + kx * c, in_b + (size_t)iy * row + (size_t)ix * (size_t)c, c);
                }
            }
        }
    }
}

MN_ALWAYS_INLINE void mn_conv_mve_body(const mn_conv_params *p, const int8_t *in, int8_t *out, int with_sum,
                                       int lefts, int small)
{
    int8_t patches[4][MN_CONV_MVE_PATCH_MAX];
    const int32_t npix = p->out_h * p->out_w;
    /* one contiguous run of K bytes per window (when inside the image) */
    const int contiguous = p->k_h == 1 && (p->k_w == 1 || p->dilation_w == 1);
    /* the columns whose windows lie inside the image horizontally: ox in [ox0, ox1) */
    const int32_t ox0 = (p->pad_left + p->stride_w - 1) / p->stride_w;
    const int32_t span = p->in_w - (p->k_w - 1) * p->dilation_w + p->pad_left; /* ox * stride_w < span */
    const int32_t ox1 = span <= 0 ? 0 : (span - 1) / p->stride_w + 1;
    const int8x16_t zp = vdupq_n_s8((int8_t)-p->in_offset);
    const size_t in_img = (size_t)p->in_h * (size_t)p->in_w * (size_t)p->in_c;
    const size_t out_img = (size_t)npix * (size_t)p->out_c;
    const ptrdiff_t xstep = (ptrdiff_t)p->stride_w * p->in_c;
    int32_t b, g, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * in_img;
        int8_t *out_b = out + (size_t)b * out_img;
        int32_t oy = 0, ox = 0, iy0 = -p->pad_top;
        /* rows read in place: the row (oy) lies inside the image */
        int row_in = contiguous && iy0 >= 0 && iy0 < p->in_h;
        ptrdiff_t xo = ((ptrdiff_t)iy0 * p->in_w - p->pad_left) * p->in_c; /* window origin (ox) */
        for (g = 0; g < npix; g += 4) {
            const int8_t *x[4];
            const int32_t n = npix - g < 4 ? npix - g : 4;
            for (i = 0; i < n; ++i) {
                if (row_in && ox >= ox0 && ox < ox1) {
                    x[i] = in_b + xo;
                } else {
                    mn_conv_patch(p, in_b, iy0, ox * p->stride_w - p->pad_left, patches[i], zp);
                    x[i] = patches[i];
                }
                xo += xstep;
                if (++ox == p->out_w) {
                    ox = 0;
                    ++oy;
                    iy0 += p->stride_h;
                    row_in = contiguous && iy0 >= 0 && iy0 < p->in_h;
                    xo = ((ptrdiff_t)iy0 * p->in_w - p->pad_left) * p->in_c;
                }
            }
            for (; i < 4; ++i) {
                x[i] = x[n - 1];
            }
            mn_conv_rows(p, x, n, out_b + (size_t)g * (size_t)p->out_c, with_sum, lefts, small);
        }
    }
}

/* one instance per (bias_sum given, some left shift, K <= 16) */
static void mn_conv_mve_f(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    mn_conv_mve_body(p, in, out, 0, 0, 0);
}

static void mn_conv_mve_fl(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    mn_conv_mve_body(p, in, out, 0, 1, 0);
}

static void mn_conv_mve_fs(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    mn_conv_mve_body(p, in, out, 0, 0, 1);
}

static void mn_conv_mve_fls(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    mn_conv_mve_body(p, in, out, 0, 1, 1);
}

static void mn_conv_mve_sum(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    mn_conv_mve_body(p, in, out, 1, 1, 0);
}

static void mn_conv_mve_sums(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    mn_conv_mve_body(p, in, out, 1, 1, 1);
}

int mn_conv2d_mve_s8(const mn_conv_params *p, const int8_t *in, int8_t *out)
{
    int64_t k;
    int needs_patch, lefts = 0, small;
    int32_t oc;
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
    small = k <= 16;
    if (p->bias_sum == 0) { /* the summing path is the code generator's rare case: one shift variant */
        if (small) {
            mn_conv_mve_sums(p, in, out);
        } else {
            mn_conv_mve_sum(p, in, out);
        }
        return MN_OK;
    }
    for (oc = 0; oc < p->out_c && !lefts; ++oc) {
        lefts = p->out_shift[oc] > 0;
    }
    if (small) {
        if (lefts) {
            mn_conv_mve_fls(p, in, out);
        } else {
            mn_conv_mve_fs(p, in, out);
        }
    } else if (lefts) {
        mn_conv_mve_fl(p, in, out);
    } else {
        mn_conv_mve_f(p, in, out);
    }
    return MN_OK;
}
#else
typedef int mn_conv_mve_unused; /* ISO C forbids an empty translation unit */
#endif
