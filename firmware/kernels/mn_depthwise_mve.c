/*
 * DEPTHWISE_CONV_2D with Helium (MVE): placeholder, every geometry falls back to the DSP path.
 */
#include "mn_kernels_mve.h"

#if MN_KERNELS_MVE
int mn_depthwise_mve_s8(const mn_dw_params *p, const int8_t *in, int8_t *out, int8_t *scratch)
{
    (void)p;
    (void)in;
    (void)out;
    (void)scratch;
    return MN_MVE_FALLBACK;
}
#else
typedef int mn_depthwise_mve_unused; /* ISO C forbids an empty translation unit */
#endif
