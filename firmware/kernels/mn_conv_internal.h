/*
 * CONV_2D internals shared by mn_conv.c (entry points, patches, direct loop), mn_conv_gemm.c (the
 * GEMM cores) and mn_conv_shallow.c (shallow layers): private to firmware/kernels.
 */
#ifndef MN_CONV_INTERNAL_H
#define MN_CONV_INTERNAL_H

#include "mn_kernels.h"

/* The accumulator's start for output channel oc, and the offset added to inputs: bias_sum folds the
 * offset in (raw inputs), otherwise the bias (or 0) and in_offset. */
static inline int32_t mn_conv_start(const mn_conv_params *p, int32_t oc)
{
    if (p->bias_sum != 0) {
        return p->bias_sum[oc];
    }
    return p->bias != 0 ? p->bias[oc] : 0;
}

static inline int32_t mn_conv_off(const mn_conv_params *p)
{
    return p->bias_sum != 0 ? 0 : p->in_offset;
}


/* Output pixels per call of the widened GEMM, and the words of its stack buffer for depth n (8 per
 * block of 4 steps, then the n % 4 tail steps of each pixel as int32). */
#define MN_S16_PX 4
#define MN_S16_WORDS(n) (2 * ((n) & ~3) + MN_S16_PX * ((n) & 3))

/* The shallow paths' largest depth (generic convolutions); their per-channel table holds
 * MN_SMALL_TABLE_WORDS words (mn_kernels_config.h). */
#define MN_CONV_TABLE_DEPTH 32

/* A function whose stack buffers must not join its caller's frame (the static stack bound adds the
 * frames along the deepest call chain; inlined, the buffers of paths never taken together add up). */
#if defined(__GNUC__)
#define MN_NOINLINE __attribute__((noinline))
#else
#define MN_NOINLINE
#endif

/* mn_conv.c: the receptive field of output pixel (oy, ox) of batch `in_b` as k_h * k_w * in_c bytes
 * in filter order, taps outside the image holding `pad` */
void mn_conv_gather(const mn_conv_params *p, const int8_t *in_b, int32_t oy, int32_t ox, int8_t pad, int8_t *dst);

/* mn_conv_gemm.c: rows x0 and x0 + n times every filter row (out0, out1); row x0 alone (out0) */
void mn_conv_2px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *x0, int32_t n, int8_t *out0,
                 int8_t *out1);
void mn_conv_1px(const mn_conv_params *p, const mn_requant_ctx *q, const int8_t *x0, int32_t n, int8_t *out0);

#if MN_KERNELS_DSP
/* mn_conv_gemm.c: row x (n bytes, + off) widened into slot j of s; the four rows of s times every
 * filter row, into out, out + out_c, ... */
void mn_s16_fill(const int8_t *x, int32_t n, int32_t off, int32_t *s, int32_t j);
void mn_conv_s16(const mn_conv_params *p, const mn_requant_ctx *q, const int32_t *s, int32_t n, int8_t *out);

/* mn_conv_shallow.c (fast requantization only): 1x1 layers of depth 8 and 16 over `pixels` pixels;
 * other convolutions of depth n <= MN_CONV_TABLE_DEPTH; both need out_c * (4 + n4 / 2) <=
 * MN_SMALL_TABLE_WORDS (n4: n rounded up to a multiple of 4) */
void mn_conv_small8(const mn_conv_params *p, const int8_t *in, int8_t *out, size_t pixels);
void mn_conv_small16(const mn_conv_params *p, const int8_t *in, int8_t *out, size_t pixels);
void mn_conv_table_generic(const mn_conv_params *p, const int8_t *in, int8_t *out, int32_t n);
#endif

#endif /* MN_CONV_INTERNAL_H */
