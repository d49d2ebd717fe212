/*
 * Vector table for the NXP i.MX RT1060 EVK (MIMXRT1062DVL6A, Cortex-M7).
 *
 * The table sits at 0x60002000 in the FlexSPI NOR flash, after the boot header
 * (boot_header.c): the IVT's entry field points here, and the boot ROM reads
 * the initial SP and PC from it. The rest of the startup code is
 * common/reset.c.
 */
#include "startup.h"

#define DEVICE_IRQS 160 /* i.MX RT1060: interrupts 0..159 */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_128, MN_IRQS_32,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
