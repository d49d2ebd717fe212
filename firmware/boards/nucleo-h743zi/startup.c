/*
 * Vector table for ST Nucleo-H743ZI (STM32H743ZI, Cortex-M7).
 *
 * The vector table sits first in FLASH at 0x08000000, the default boot
 * address (option bytes BOOT_ADD0 = 0x0800), where the core reads its
 * initial SP and PC. Reset runs from the 64 MHz HSI; board_init() (board.c)
 * then sets the supply, voltage scale, flash wait states and PLL1 (480 MHz).
 * The rest of the startup code is common/reset.c (see common/startup.h).
 *
 * board.c defines no handler: SysTick_Handler and the device interrupt
 * handlers are free. To handle a device interrupt, define its handler and put
 * it in the table below at 16 + its IRQ number (e.g. USART3 is IRQ 39:
 * mn_vector_table[55]).
 */
#include "startup.h"

#define DEVICE_IRQS 150 /* STM32H743: interrupt positions 0..149 (RM0433) */

MN_VECTOR_TABLE_SECTION const mn_vector_t mn_vector_table[] = {
    MN_SYSTEM_VECTORS,
    MN_IRQS_128, MN_IRQS_16, MN_IRQS_4, MN_IRQS_2,
};
MN_CHECK_VECTOR_TABLE(mn_vector_table, DEVICE_IRQS);
