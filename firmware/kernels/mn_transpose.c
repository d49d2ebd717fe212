/*
 * TRANSPOSE int8 (TFLM reference_ops::Transpose): output dimension d is input dimension perm[d].
 *
 * The output is written in order, one (i3, i4) plane per (i0, i1, i2). Within a plane, output row i3
 * reads input bytes src + i3 * st3 + i4 * st4 (st: the input stride of each output dimension):
 * - st4 == 1: every output row is a contiguous input run (memcpy; the whole plane when st3 == n4);
 * - st3 == 1: the plane is a 2-D transpose of an n4 x n3 block of input rows; 4x4 byte blocks go
 *   through registers (four word loads, a byte transposition with masks and shifts, four word
 *   stores; little-endian targets with unaligned word access only), edges byte by byte;
 * - otherwise bytes are gathered with stride st4.
 */
#include "mn_kernels.h"

#include <string.h>

/* Word loads and stores of any alignment in one instruction: Cortex-M3 and later (Armv6-M, e.g.
 * Cortex-M0, would call memcpy for every word: it takes the byte loop), x86 (the host tests). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    (defined(__ARM_FEATURE_UNALIGNED) || defined(__x86_64__) || defined(__i386__))
#define MN_TRANSPOSE_WORDS 1
#else
#define MN_TRANSPOSE_WORDS 0
#endif

static void mn_transpose_gather(int8_t *dst, const int8_t *src, size_t n, size_t stride)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        dst[i] = src[0];
        dst[i + 1] = src[stride];
        dst[i + 2] = src[2 * stride];
        dst[i + 3] = src[3 * stride];
        src += 4 * stride;
    }
    for (; i < n; ++i) {
        dst[i] = *src;
        src += stride;
    }
}

/* out[i3 * n4 + i4] = src[i3 + i4 * st4]: input rows i4 (st4 apart, n3 bytes used) become columns */
static void mn_transpose_tile(int8_t *out, const int8_t *src, size_t n3, size_t n4, size_t st4)
{
    size_t i3 = 0;
#if MN_TRANSPOSE_WORDS
    for (; i3 + 4 <= n3; i3 += 4) {
        size_t i4 = 0;
        for (; i4 + 4 <= n4; i4 += 4) {
            const int8_t *s = src + i4 * st4 + i3;
            int8_t *d = out + i3 * n4 + i4;
            uint32_t r0, r1, r2, r3, t0, t1, t2, t3, o;
            memcpy(&r0, s, 4);
            memcpy(&r1, s + st4, 4);
            memcpy(&r2, s + 2 * st4, 4);
            memcpy(&r3, s + 3 * st4, 4);
            /* byte k of word j (bits 8k..8k+7) is input row j, column k; transpose the 4x4 bytes */
            t0 = (r0 & 0x00FF00FFu) | ((r1 & 0x00FF00FFu) << 8);  /* r0[0] r1[0] r0[2] r1[2] */
            t1 = ((r0 & 0xFF00FF00u) >> 8) | (r1 & 0xFF00FF00u);  /* r0[1] r1[1] r0[3] r1[3] */
            t2 = (r2 & 0x00FF00FFu) | ((r3 & 0x00FF00FFu) << 8);  /* r2[0] r3[0] r2[2] r3[2] */
            t3 = ((r2 & 0xFF00FF00u) >> 8) | (r3 & 0xFF00FF00u);  /* r2[1] r3[1] r2[3] r3[3] */
            o = (t0 & 0xFFFFu) | (t2 << 16);
            memcpy(d, &o, 4);
            o = (t1 & 0xFFFFu) | (t3 << 16);
            memcpy(d + n4, &o, 4);
            o = (t0 >> 16) | (t2 & 0xFFFF0000u);
            memcpy(d + 2 * n4, &o, 4);
            o = (t1 >> 16) | (t3 & 0xFFFF0000u);
            memcpy(d + 3 * n4, &o, 4);
        }
        for (; i4 < n4; ++i4) {
            const int8_t *s = src + i4 * st4 + i3;
            int8_t *d = out + i3 * n4 + i4;
            d[0] = s[0];
            d[n4] = s[1];
            d[2 * n4] = s[2];
            d[3 * n4] = s[3];
        }
    }
#endif
    for (; i3 < n3; ++i3) {
        mn_transpose_gather(out + i3 * n4, src + i3, n4, st4);
    }
}

int mn_transpose_s8(const mn_transpose_params *p, const int8_t *in, int8_t *out)
{
    size_t in_stride[MN_MOVEMENT_MAX_DIMS], st[MN_MOVEMENT_MAX_DIMS], od[MN_MOVEMENT_MAX_DIMS];
    size_t total = 1, plane, i0, i1, i2, i3;
    uint32_t seen = 0;
    int32_t d;
    if (p == 0 || in == 0 || out == 0) {
        return MN_EINVAL;
    }
    for (d = 0; d < MN_MOVEMENT_MAX_DIMS; ++d) {
        const int32_t dim = p->in_dims[d];
        const int32_t k = p->perm[d];
        if (dim < 1 || (size_t)dim > (size_t)INT32_MAX / total || k < 0 || k >= MN_MOVEMENT_MAX_DIMS ||
            (seen >> k & 1u) != 0) {
            return MN_EINVAL;
        }
        total *= (size_t)dim;
        seen |= 1u << k;
    }
    in_stride[MN_MOVEMENT_MAX_DIMS - 1] = 1;
    for (d = MN_MOVEMENT_MAX_DIMS - 2; d >= 0; --d) {
        in_stride[d] = in_stride[d + 1] * (size_t)p->in_dims[d + 1];
    }
    for (d = 0; d < MN_MOVEMENT_MAX_DIMS; ++d) {
        od[d] = (size_t)p->in_dims[p->perm[d]];
        st[d] = in_stride[p->perm[d]];
    }
    plane = od[3] * od[4];
    for (i0 = 0; i0 < od[0]; ++i0) {
        for (i1 = 0; i1 < od[1]; ++i1) {
            for (i2 = 0; i2 < od[2]; ++i2) {
                const int8_t *src = in + i0 * st[0] + i1 * st[1] + i2 * st[2];
                if (st[4] == 1) {
                    if (st[3] == od[4]) {
                        memcpy(out, src, plane);
                    } else {
                        for (i3 = 0; i3 < od[3]; ++i3) {
                            memcpy(out + i3 * od[4], src + i3 * st[3], od[4]);
                        }
                    }
                } else if (st[3] == 1) {
                    mn_transpose_tile(out, src, od[3], od[4], st[4]);
                } else {
                    for (i3 = 0; i3 < od[3]; ++i3) {
                        mn_transpose_gather(out + i3 * od[4], src + i3 * st[3], od[4], st[4]);
                    }
                }
                out += plane;
            }
        }
    }
    return MN_OK;
}
