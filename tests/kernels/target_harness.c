/* Runs firmware/kernels on a Cortex-M board (QEMU) against outputs of the TFLM host
 * interpreter: tests/test_kernels.py generates cases.c (parameter structs as static const
 * initialisers, inputs, expected outputs and mn_test_run_cases()) and links it with this file,
 * the kernels and the board support. Prints one line per failing case and a summary; the exit
 * status is the number of failing cases (at most 100). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "mn_kernels.h"

int mn_test_run_cases(void);
int mn_test_check(const char *name, int status, const void *got, const void *expected, size_t bytes);
uint64_t mn_test_ticks(void);

int mn_test_check(const char *name, int status, const void *got, const void *expected, size_t bytes)
{
    size_t i, wrong = 0, first = 0;
    const unsigned char *g = (const unsigned char *)got;
    const unsigned char *e = (const unsigned char *)expected;
    if (status != MN_OK) {
        printf("FAIL %s: status %d\n", name, status);
        return 1;
    }
    for (i = 0; i < bytes; ++i) {
        if (g[i] != e[i]) {
            if (wrong == 0) {
                first = i;
            }
            ++wrong;
        }
    }
    if (wrong) {
        printf("FAIL %s: %u of %u bytes differ, first at %u (%d, expected %d)\n", name, (unsigned)wrong,
               (unsigned)bytes, (unsigned)first, (int)(signed char)g[first], (int)(signed char)e[first]);
        return 1;
    }
    return 0;
}

uint64_t mn_test_ticks(void)
{
    return board_ticks();
}

int main(void)
{
    int failed;
    board_init();
    printf("kernels: MN_KERNELS_DSP=%d\n", MN_KERNELS_DSP);
    printf("kernels: MN_KERNELS_MVE=%d\n", MN_KERNELS_MVE);
    failed = mn_test_run_cases();
    printf("kernels: %d failed\n", failed);
    return failed > 100 ? 100 : failed;
}
