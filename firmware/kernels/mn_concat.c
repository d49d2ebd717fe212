/*
 * CONCATENATION int8 (TFLM reference_ops::Concatenation), one call per input: input k is `outer`
 * rows of `size` bytes, each copied to its columns [out_offset, out_offset + size) of the output's
 * rows of out_stride bytes. TFLM copies the rows of all inputs interleaved (row r of input 0, row r
 * of input 1, ...); each output byte is written once either way, so the bytes are the same.
 */
#include "mn_kernels.h"

#include <string.h>

int mn_concat_s8(const mn_concat_params *p, const int8_t *in, int8_t *out)
{
    size_t r, outer, size, stride;
    if (p == 0 || in == 0 || out == 0 || p->outer < 1 || p->size < 0 || p->out_offset < 0 ||
        p->out_stride < p->size || p->out_offset > p->out_stride - p->size ||
        p->out_stride > INT32_MAX / p->outer) {
        return MN_EINVAL;
    }
    outer = (size_t)p->outer;
    size = (size_t)p->size;
    stride = (size_t)p->out_stride;
    out += p->out_offset;
    if (outer == 1 || size == stride) {
        if (out != in) { /* already in place: a planner put the input inside the output */
            memcpy(out, in, outer * size);
        }
        return MN_OK;
    }
    for (r = 0; r < outer; ++r) {
        memcpy(out, in, size);
        out += stride;
        in += size;
    }
    return MN_OK;
}
