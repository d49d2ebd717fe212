/*
 * Vector table for QEMU mps2-an386 (Arm AN386: Cortex-M4 on MPS2+).
 *
 * The vector table sits first in FLASH, the code SSRAM at 0x00000000, where
 * the core reads its initial SP and PC (VTOR resets to 0). The rest of the
 * startup code is common/reset.c (see common/startup.h).
 */
#include "startup.h"

#define DEVICE_IRQS 32 /* QEMU's mps2 boards wire 32 external interrupts */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_32,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
