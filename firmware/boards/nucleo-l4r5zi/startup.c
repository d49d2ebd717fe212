/*
 * Vector table for ST Nucleo-L4R5ZI (STM32L4R5ZI, Cortex-M4F).
 *
 * The table sits first in FLASH at 0x08000000, where the core boots and reads its initial SP and PC. The rest of the startup code is common/reset.c (see common/startup.h).
 */
#include "startup.h"

#define DEVICE_IRQS 95 /* STM32L4R5: interrupt positions 0..94 (RM0432) */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_64, MN_IRQS_16, MN_IRQS_8, MN_IRQS_4, MN_IRQS_2, MN_IRQS_1,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
