/*
 * Vector table for the Raspberry Pi Pico (RP2040, Cortex-M0+).
 *
 * The table sits at 0x10000100, right after boot2 (the first 256 bytes of
 * flash, section .boot2), where boot2 points VTOR and reads the initial SP
 * and PC. 42 entries need 256-byte alignment on the Cortex-M0+: 0x10000100
 * has it. The rest of the startup code is common/reset.c.
 */
#include "startup.h"

#define DEVICE_IRQS 26 /* RP2040: interrupts 0..25 (datasheet 2.3.2) */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_16, MN_IRQS_8, MN_IRQS_2,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
