/*
 * STRIDED_SLICE int8 (TFLM reference_ops::StridedSlice) with start/stop/step resolved per dimension
 * (quantmath_movement.strided_slice_params reproduces TFLM's strided_slice_logic). TFLM walks five
 * nested loops `for (i = start; step > 0 ? i < stop : i > stop; i += step)` and writes the output
 * in that order; here each dimension's index list is counted first (count = ceil(|stop - start| /
 * |step|) when the list is not empty) and the element offsets are formed from the counts, so no
 * offset ever leaves the input. A unit step in the last dimension copies runs with memcpy.
 */
#include "mn_kernels.h"

#include <stddef.h>
#include <string.h>

/* number of indices start, start + step, ... before stop; MN_EINVAL for an invalid dimension */
static int mn_slice_count(int32_t dim, int32_t start, int32_t stop, int32_t step, size_t *count)
{
    uint32_t diff, ustep;
    if (dim < 1 || step == 0 || stop < -1 || stop > dim) {
        return MN_EINVAL;
    }
    if (step > 0 ? stop <= start : start <= stop) {
        *count = 0;
        return MN_OK;
    }
    if (start < 0 || start >= dim) {
        return MN_EINVAL;
    }
    if (step > 0) {
        diff = (uint32_t)stop - (uint32_t)start;
        ustep = (uint32_t)step;
    } else {
        diff = (uint32_t)start - (uint32_t)stop;
        ustep = 0u - (uint32_t)step;
    }
    *count = (size_t)((diff - 1u) / ustep + 1u);
    return MN_OK;
}

int mn_strided_slice_s8(const mn_strided_slice_params *p, const int8_t *in, int8_t *out)
{
    size_t n[MN_MOVEMENT_MAX_DIMS], stride[MN_MOVEMENT_MAX_DIMS];
    ptrdiff_t st[MN_MOVEMENT_MAX_DIMS];
    size_t total = 1, i0, i1, i2, i3, i4;
    ptrdiff_t base = 0;
    int empty = 0;
    int32_t d;
    if (p == 0 || in == 0 || out == 0) {
        return MN_EINVAL;
    }
    for (d = MN_MOVEMENT_MAX_DIMS - 1; d >= 0; --d) {
        if (mn_slice_count(p->in_dims[d], p->start[d], p->stop[d], p->step[d], &n[d]) != MN_OK ||
            (size_t)p->in_dims[d] > (size_t)INT32_MAX / total) {
            return MN_EINVAL;
        }
        stride[d] = total;
        total *= (size_t)p->in_dims[d];
        empty |= n[d] == 0;
    }
    if (empty) {
        return MN_OK;
    }
    for (d = 0; d < MN_MOVEMENT_MAX_DIMS; ++d) {
        /* |step| * (n - 1) < dim when n > 1, so step * stride stays inside the input's size */
        st[d] = n[d] > 1 ? (ptrdiff_t)p->step[d] * (ptrdiff_t)stride[d] : 0;
        base += (ptrdiff_t)p->start[d] * (ptrdiff_t)stride[d];
    }
    for (i0 = 0; i0 < n[0]; ++i0) {
        const ptrdiff_t o0 = base + (ptrdiff_t)i0 * st[0];
        for (i1 = 0; i1 < n[1]; ++i1) {
            const ptrdiff_t o1 = o0 + (ptrdiff_t)i1 * st[1];
            for (i2 = 0; i2 < n[2]; ++i2) {
                const ptrdiff_t o2 = o1 + (ptrdiff_t)i2 * st[2];
                for (i3 = 0; i3 < n[3]; ++i3) {
                    const int8_t *src = in + (o2 + (ptrdiff_t)i3 * st[3]);
                    if (st[4] == 1 || n[4] == 1) {
                        memcpy(out, src, n[4]);
                    } else {
                        const ptrdiff_t s4 = st[4];
                        for (i4 = 0; i4 < n[4]; ++i4) {
                            out[i4] = src[(ptrdiff_t)i4 * s4];
                        }
                    }
                    out += n[4];
                }
            }
        }
    }
    return MN_OK;
}
