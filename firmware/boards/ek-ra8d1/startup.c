/*
 * Vector table for the Renesas EK-RA8D1 (R7FA8D1BH, Cortex-M85).
 *
 * The table sits first in the code flash at 0x02000000, where the core reads its initial SP and PC. Device interrupts are the ICU's 96 event links (IELSR0..95). The rest of the startup code is common/reset.c (see common/startup.h).
 */
#include "startup.h"

#define DEVICE_IRQS 96 /* RA8D1: NVIC interrupts 0..95, one per ICU event link */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_64, MN_IRQS_32,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
