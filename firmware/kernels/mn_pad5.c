/*
 * PAD / PADV2 int8 of up to five dimensions (TFLM reference_ops::Pad): the output is written in
 * order, the input read in order. Along each dimension the padding before and after the input box
 * is one memset of (pad count) x (bytes per index of that dimension); rows of the last dimension
 * are memset, memcpy, memset. mn_pad_s8 (mn_pad.c) is the four-dimensional version.
 */
#include "mn_kernels.h"

#include <string.h>

static int8_t *mn_pad_fill(int8_t *out, int8_t value, size_t n)
{
    memset(out, value, n);
    return out + n;
}

int mn_pad5_s8(const mn_pad5_params *p, const int8_t *in, int8_t *out)
{
    size_t blk[MN_MOVEMENT_MAX_DIMS], pb[MN_MOVEMENT_MAX_DIMS], pa[MN_MOVEMENT_MAX_DIMS];
    size_t n[MN_MOVEMENT_MAX_DIMS];
    size_t total = 1, y0, y1, y2, y3;
    int8_t v;
    int32_t d;
    if (p == 0 || in == 0 || out == 0 || p->pad_value < -128 || p->pad_value > 127) {
        return MN_EINVAL;
    }
    for (d = MN_MOVEMENT_MAX_DIMS - 1; d >= 0; --d) {
        const int32_t dim = p->in_dims[d], b = p->pad_before[d], a = p->pad_after[d];
        if (dim < 1 || b < 0 || a < 0 || b > INT32_MAX - dim || a > INT32_MAX - dim - b ||
            (size_t)(dim + b + a) > (size_t)INT32_MAX / total) {
            return MN_EINVAL;
        }
        blk[d] = total; /* output bytes per index of dimension d */
        total *= (size_t)(dim + b + a);
        n[d] = (size_t)dim;
        pb[d] = (size_t)b * blk[d];
        pa[d] = (size_t)a * blk[d];
    }
    v = (int8_t)p->pad_value;
    out = mn_pad_fill(out, v, pb[0]);
    for (y0 = 0; y0 < n[0]; ++y0) {
        out = mn_pad_fill(out, v, pb[1]);
        for (y1 = 0; y1 < n[1]; ++y1) {
            out = mn_pad_fill(out, v, pb[2]);
            for (y2 = 0; y2 < n[2]; ++y2) {
                out = mn_pad_fill(out, v, pb[3]);
                for (y3 = 0; y3 < n[3]; ++y3) {
                    out = mn_pad_fill(out, v, pb[4]);
                    memcpy(out, in, n[4]);
                    out += n[4];
                    in += n[4];
                    out = mn_pad_fill(out, v, pa[4]);
                }
                out = mn_pad_fill(out, v, pa[3]);
            }
            out = mn_pad_fill(out, v, pa[2]);
        }
        out = mn_pad_fill(out, v, pa[1]);
    }
    mn_pad_fill(out, v, pa[0]);
    return MN_OK;
}
