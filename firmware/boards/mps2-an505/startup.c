/*
 * Vector table for QEMU mps2-an505 (Arm AN505: Cortex-M33 IoT Kit on MPS2+, TrustZone).
 *
 * The core boots in the Secure state with the secure VTOR at 0x10000000 (the
 * SSE's init-svtor): the vector table sits first in FLASH, the Secure alias
 * 0x10000000 of the code SSRAM. The image stays Secure and never configures
 * the SAU, so every address is Secure to it. The rest of the startup code is
 * common/reset.c (see common/startup.h); on this Armv8-M core Reset_Handler
 * also sets MSPLIM.
 */
#include "startup.h"

#define DEVICE_IRQS 124 /* 32 of the SSE (IoT Kit) + 92 of the AN505 expansion */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_64, MN_IRQS_32, MN_IRQS_16, MN_IRQS_8, MN_IRQS_4,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
