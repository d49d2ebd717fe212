/*
 * Vector table for QEMU mps2-an385 (Arm AN385: Cortex-M3 on MPS2+).
 *
 * The vector table sits first in FLASH, the code SSRAM at 0x00000000, where
 * the core reads its initial SP and PC (VTOR resets to 0). The rest of the
 * startup code is common/reset.c (see common/startup.h). Built for Armv6-M
 * (the Cortex-M0+): the table has no SecureFault entry, as on Armv7-M.
 */
#include "startup.h"

#define DEVICE_IRQS 32 /* QEMU's mps2 boards wire 32 external interrupts */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_32,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
