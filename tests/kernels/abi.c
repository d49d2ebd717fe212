/* Test-only helper compiled with firmware/kernels into the host library tests/test_kernels.py
 * loads: the size of every parameter struct, so the ctypes mirrors cannot drift silently. */
#include <string.h>

#include "mn_kernels.h"

size_t mn_test_sizeof(const char *name);

size_t mn_test_sizeof(const char *name)
{
    if (strcmp(name, "mn_conv_params") == 0) {
        return sizeof(mn_conv_params);
    }
    if (strcmp(name, "mn_dw_params") == 0) {
        return sizeof(mn_dw_params);
    }
    if (strcmp(name, "mn_fc_params") == 0) {
        return sizeof(mn_fc_params);
    }
    if (strcmp(name, "mn_pool_params") == 0) {
        return sizeof(mn_pool_params);
    }
    if (strcmp(name, "mn_mean_params") == 0) {
        return sizeof(mn_mean_params);
    }
    if (strcmp(name, "mn_softmax_params") == 0) {
        return sizeof(mn_softmax_params);
    }
    if (strcmp(name, "mn_add_params") == 0) {
        return sizeof(mn_add_params);
    }
    if (strcmp(name, "mn_pad_params") == 0) {
        return sizeof(mn_pad_params);
    }
    if (strcmp(name, "mn_affine_params") == 0) {
        return sizeof(mn_affine_params);
    }
    return 0;
}
