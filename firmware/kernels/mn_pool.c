/*
 * AVERAGE_POOL_2D int8 (TFLM reference_integer_ops::AveragePool) and MEAN over H,W int8
 * (TFLM reference_ops::QuantizedMeanOrSum, the path TFLM's micro MEAN takes for int8 for every
 * axis set and keep_dims value).
 */
#include "mn_kernels.h"

#define MN_MEAN_BLOCK 32

int mn_avgpool_s8(const mn_pool_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, oy, ox, c, fy, fx;
    if (p == 0 || in == 0 || out == 0 || p->batches <= 0 || p->channels <= 0 || p->stride_h <= 0 ||
        p->stride_w <= 0 || p->k_h <= 0 || p->k_w <= 0) {
        return MN_EINVAL;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * (size_t)p->in_h * (size_t)p->in_w * (size_t)p->channels;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
            const int32_t fy1 = p->k_h < p->in_h - iy0 ? p->k_h : p->in_h - iy0;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t fx1 = p->k_w < p->in_w - ix0 ? p->k_w : p->in_w - ix0;
                const int32_t count = (fy1 > fy0 && fx1 > fx0) ? (fy1 - fy0) * (fx1 - fx0) : 0;
                if (count == 0) {
                    return MN_EINVAL;
                }
                for (c = 0; c < p->channels; ++c) {
                    int32_t acc = 0;
                    for (fy = fy0; fy < fy1; ++fy) {
                        const int8_t *row = in_b + ((size_t)(iy0 + fy) * (size_t)p->in_w) * (size_t)p->channels;
                        for (fx = fx0; fx < fx1; ++fx) {
                            acc += row[(size_t)(ix0 + fx) * (size_t)p->channels + (size_t)c];
                        }
                    }
                    /* round half away from zero; C division truncates toward zero, as in TFLM */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    *out++ = (int8_t)mn_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
    return MN_OK;
}

int mn_mean_hw_s8(const mn_mean_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, c0, j;
    size_t px, pixels;
    int32_t sum[MN_MEAN_BLOCK];
    if (p == 0 || in == 0 || out == 0 || p->batches <= 0 || p->channels <= 0 || p->h <= 0 || p->w <= 0) {
        return MN_EINVAL;
    }
    pixels = (size_t)p->h * (size_t)p->w;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + (size_t)b * pixels * (size_t)p->channels;
        for (c0 = 0; c0 < p->channels; c0 += MN_MEAN_BLOCK) {
            const int32_t n = p->channels - c0 < MN_MEAN_BLOCK ? p->channels - c0 : MN_MEAN_BLOCK;
            const int8_t *x = in_b + c0;
            for (j = 0; j < n; ++j) {
                sum[j] = 0;
            }
            for (px = 0; px < pixels; ++px) {
                for (j = 0; j < n; ++j) {
                    sum[j] += x[j];
                }
                x += p->channels;
            }
            for (j = 0; j < n; ++j) {
                const int32_t shifted = sum[j] - p->in_zp * (int32_t)pixels;
                const int32_t v = mn_mbqm(shifted, p->mult, p->shift) + p->out_zp;
                out[(size_t)b * (size_t)p->channels + (size_t)(c0 + j)] = (int8_t)mn_clamp(v, -128, 127);
            }
        }
    }
    return MN_OK;
}
