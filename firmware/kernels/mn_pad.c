/*
 * PAD int8 (TFLM reference_ops::Pad / PadImageStyle): every output element outside the input
 * box gets pad_value, every inside element is copied.
 */
#include "mn_kernels.h"

#include <string.h>

int mn_pad_s8(const mn_pad_params *p, const int8_t *in, int8_t *out)
{
    int32_t od[4], d, i0, i1, i2;
    size_t row;
    if (p == 0 || in == 0 || out == 0) {
        return MN_EINVAL;
    }
    for (d = 0; d < 4; ++d) {
        if (p->in_dims[d] < 0 || p->pad_before[d] < 0 || p->pad_after[d] < 0) {
            return MN_EINVAL;
        }
        od[d] = p->pad_before[d] + p->in_dims[d] + p->pad_after[d];
    }
    row = (size_t)p->in_dims[3];
    for (i0 = 0; i0 < od[0]; ++i0) {
        const int32_t y0 = i0 - p->pad_before[0];
        for (i1 = 0; i1 < od[1]; ++i1) {
            const int32_t y1 = i1 - p->pad_before[1];
            for (i2 = 0; i2 < od[2]; ++i2) {
                const int32_t y2 = i2 - p->pad_before[2];
                if (y0 < 0 || y0 >= p->in_dims[0] || y1 < 0 || y1 >= p->in_dims[1] || y2 < 0 ||
                    y2 >= p->in_dims[2]) {
                    memset(out, (int8_t)p->pad_value, (size_t)od[3]);
                } else {
                    const int8_t *src =
                        in + (((size_t)y0 * (size_t)p->in_dims[1] + (size_t)y1) * (size_t)p->in_dims[2] + (size_t)y2) *
                                 row;
                    memset(out, (int8_t)p->pad_value, (size_t)p->pad_before[3]);
                    memcpy(out + p->pad_before[3], src, row);
                    memset(out + p->pad_before[3] + row, (int8_t)p->pad_value, (size_t)p->pad_after[3]);
                }
                out += od[3];
            }
        }
    }
    return MN_OK;
}
