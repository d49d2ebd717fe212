/*
 * FULLY_CONNECTED int8: TFLM reference_integer_ops::FullyConnected (per tensor) and
 * FullyConnectedPerChannel (per channel). Weights are symmetric (zero point 0), as TFLM
 * requires for int8 (it DCHECKs filter zero point == 0), so no weights offset is applied.
 */
#include "mn_kernels.h"

int mn_fully_connected_s8(const mn_fc_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, oc;
    if (p == 0 || in == 0 || out == 0 || p->weights == 0 || p->out_mult == 0 || p->out_shift == 0 ||
        p->batches <= 0 || p->in_depth <= 0 || p->out_depth <= 0) {
        return MN_EINVAL;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + (size_t)b * (size_t)p->in_depth;
        for (oc = 0; oc < p->out_depth; ++oc) {
            const int8_t *w = p->weights + (size_t)oc * (size_t)p->in_depth;
            const int32_t q = p->per_channel ? oc : 0;
            int32_t acc = mn_dot_s8(w, x, p->in_depth, p->in_offset, 0);
            if (p->bias != 0) {
                acc += p->bias[oc];
            }
            acc = mn_mbqm(acc, p->out_mult[q], p->out_shift[q]) + p->out_offset;
            *out++ = (int8_t)mn_clamp(acc, p->act_min, p->act_max);
        }
    }
    return MN_OK;
}
