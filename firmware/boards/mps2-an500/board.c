/*
 * Board support for QEMU mps2-an500 (Cortex-M7): console over semihosting,
 * time from SysTick, exit through semihosting. The code is common/board_qemu.h,
 * shared by the QEMU boards; only the clock is this board's own.
 *
 * The 25 MHz SYSCLK QEMU's MPS2 boards feed the core and SysTick
 * (hw/arm/mps2.c): 40 instructions per tick under -icount shift=0.
 */
#define MN_BOARD_CPU_HZ 25000000u

#include "board_qemu.h"
