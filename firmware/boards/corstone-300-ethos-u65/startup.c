/*
 * Vector table for Arm Corstone-300 with an Ethos-U65 NPU (Cortex-M55, TrustZone).
 *
 * The SSE-300 boots the core in the Secure state with the secure VTOR at
 * 0x10000000 (the ITCM's Secure alias): the vector table sits first in FLASH.
 * The image stays Secure and never configures the SAU. The rest of the
 * startup code is common/reset.c (see common/startup.h).
 *
 * Device interrupt 56 is the Ethos-U NPU's (Arm ML Embedded Evaluation Kit,
 * mps3/sse-300: EthosU_IRQn 56; TFLM's corstone_300 target: ethosu_irq 56).
 * Its handler, NPU_IRQHandler, comes from the generated project's
 * src/ethosu_npu.c, which passes it to the Ethos-U driver; without one, the
 * weak stand-in below reports it like any unexpected interrupt.
 */
#include "startup.h"

#define DEVICE_IRQS 128 /* 32 of the SSE-300 + 96 of the MPS3 expansion */
#define NPU_IRQ 56      /* board.toml [npu] irq */

void NPU_IRQHandler(void);

/* Naked, one branch: Default_Handler receives the exception frame and
 * EXC_RETURN untouched, as from any other vector. */
__attribute__((weak, naked)) void NPU_IRQHandler(void)
{
    __asm__ volatile("b Default_Handler");
}

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_32, MN_IRQS_16, MN_IRQS_8,           /* device interrupts 0..55 */
    {.handler = NPU_IRQHandler},                  /* 56: Ethos-U */
    MN_IRQS_64, MN_IRQS_4, MN_IRQS_2, MN_IRQS_1, /* 57..127 */
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
_Static_assert(32 + 16 + 8 == NPU_IRQ, "NPU_IRQHandler must be device interrupt 56");
