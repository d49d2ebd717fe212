/*
 * Vector table for the Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F).
 *
 * The table sits first in FLASH at 0x00000000, where the core reads its initial SP and PC (the image replaces the Arduino bootloader, see linker.ld). The rest of the startup code is common/reset.c (see common/startup.h).
 */
#include "startup.h"

#define DEVICE_IRQS 48 /* nRF52840: interrupts 0..47 (product specification, instantiation table) */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_32, MN_IRQS_16,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
