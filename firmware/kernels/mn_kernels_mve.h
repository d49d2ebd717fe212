/*
 * Helium (MVE) kernels, private to firmware/kernels: compiled only where MN_KERNELS_MVE is 1
 * (mn_kernels.h). Each entry point takes the public kernel's validated parameters and either
 * computes the whole output (MN_OK) or returns MN_MVE_FALLBACK, having written nothing, for a
 * geometry it does not handle; the caller then runs the DSP/portable path.
 */
#ifndef MN_KERNELS_MVE_H
#define MN_KERNELS_MVE_H

#include "mn_kernels.h"

#define MN_MVE_FALLBACK 1

#if MN_KERNELS_MVE
int mn_conv2d_mve_s8(const mn_conv_params *p, const int8_t *in, int8_t *out);
int mn_depthwise_mve_s8(const mn_dw_params *p, const int8_t *in, int8_t *out, int8_t *scratch);
#endif

#endif /* MN_KERNELS_MVE_H */
