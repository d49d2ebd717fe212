/*
 * Startup, shared by every board: common/reset.c holds Reset_Handler,
 * Default_Handler and the weak system exception handlers; a board's own
 * startup.c holds only its vector table, built from the macros below:
 *
 *   #define DEVICE_IRQS 32
 *
 *   MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
 *       MN_SYSTEM_VECTORS,
 *       MN_IRQS_32,
 *   };
 *   MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
 *
 * The table goes first in FLASH (section .isr_vector), where the core reads
 * its initial SP and PC; Reset_Handler points VTOR at it.
 */
#ifndef MNCOMPILE_STARTUP_H
#define MNCOMPILE_STARTUP_H

#include <stdint.h>

#include "cortexm.h"

/* One vector: the initial stack pointer, or a handler. */
typedef union {
    void *stack_top;
    void (*handler)(void);
} mn_vector_t;

/* The board's vector table (its startup.c). */
extern const mn_vector_t mn_vector_table[];

/* Linker script symbol: the initial stack pointer. */
extern uint32_t __stack_top[];

/* common/reset.c. Reset_Handler prepares the C/C++ runtime and runs main().
 * Default_Handler reports the exception on the console and ends the program
 * (common/fault.c), so a crash never hangs. The system handlers are weak
 * aliases of Default_Handler: defining a function of that name anywhere (the
 * QEMU boards define SysTick_Handler) replaces it. */
void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void);
void NMI_Handler(void);
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);
void SecureFault_Handler(void);
void SVC_Handler(void);
void DebugMon_Handler(void);
void PendSV_Handler(void);
void SysTick_Handler(void);

/* Where the vector table goes (the linker scripts KEEP it first in FLASH). */
#define MN_VECTOR_TABLE_SECTION __attribute__((section(".isr_vector"), used))

/* SecureFault exists on Armv8-M Mainline; on Armv7-M vector 7 is reserved. */
#if MN_ARMV8M_MAIN
#define MN_SECUREFAULT_VECTOR {.handler = SecureFault_Handler}
#else
#define MN_SECUREFAULT_VECTOR {.handler = 0}
#endif

/* The 16 system vectors every Cortex-M table starts with. */
#define MN_SYSTEM_VECTORS                                                                 \
    {.stack_top = __stack_top}, {.handler = Reset_Handler}, {.handler = NMI_Handler},     \
        {.handler = HardFault_Handler}, {.handler = MemManage_Handler},                   \
        {.handler = BusFault_Handler}, {.handler = UsageFault_Handler},                   \
        MN_SECUREFAULT_VECTOR, {.handler = 0}, {.handler = 0}, {.handler = 0},            \
        {.handler = SVC_Handler}, {.handler = DebugMon_Handler}, {.handler = 0},          \
        {.handler = PendSV_Handler}, {.handler = SysTick_Handler}

/* Device interrupt vectors, all Default_Handler: MN_IRQS_n is n of them (ISO C
 * has no range initializers, hence the doubling macros; combine them for other
 * counts, e.g. 124 = MN_IRQS_64, MN_IRQS_32, MN_IRQS_16, MN_IRQS_8, MN_IRQS_4). */
#define MN_IRQS_1 {.handler = Default_Handler}
#define MN_IRQS_2 MN_IRQS_1, MN_IRQS_1
#define MN_IRQS_4 MN_IRQS_2, MN_IRQS_2
#define MN_IRQS_8 MN_IRQS_4, MN_IRQS_4
#define MN_IRQS_16 MN_IRQS_8, MN_IRQS_8
#define MN_IRQS_32 MN_IRQS_16, MN_IRQS_16
#define MN_IRQS_64 MN_IRQS_32, MN_IRQS_32
#define MN_IRQS_128 MN_IRQS_64, MN_IRQS_64

/* Fails the build unless `table` has the 16 system vectors and one per device
 * interrupt. */
#define MN_CHECK_VECTOR_TABLE(table, device_irqs)                                         \
    _Static_assert(sizeof(table) / sizeof((table)[0]) == 16u + (device_irqs),             \
                   "the vector table needs 16 system vectors and one per device interrupt")

#endif /* MNCOMPILE_STARTUP_H */
