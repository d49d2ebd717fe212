/*
 * Vector table for ST STM32F746G-DISCO (STM32F746NG, Cortex-M7).
 *
 * The table sits first in FLASH at 0x08000000 (the AXIM flash interface, the default boot address), where the core reads its initial SP and PC. The rest of the startup code is common/reset.c (see common/startup.h).
 */
#include "startup.h"

#define DEVICE_IRQS 98 /* STM32F746: interrupt positions 0..97 (RM0385) */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_64, MN_IRQS_32, MN_IRQS_2,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
