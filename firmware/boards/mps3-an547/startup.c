/*
 * Vector table for QEMU mps3-an547 (Arm AN547: Corstone-300, Cortex-M55, TrustZone).
 *
 * The core boots in the Secure state with the secure VTOR at 0x10000000 (the
 * SSE-300's init-svtor): the vector table sits first in FLASH, the Secure
 * alias 0x10000000 of the ITCM. The image stays Secure and never configures
 * the SAU, so every address is Secure to it. The rest of the startup code is
 * common/reset.c (see common/startup.h); on this Armv8.1-M core Reset_Handler
 * also sets MSPLIM.
 */
#include "startup.h"

#define DEVICE_IRQS 128 /* 32 of the SSE-300 + 96 of the AN547 expansion */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_128,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
