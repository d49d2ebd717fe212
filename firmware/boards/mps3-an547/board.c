/*
 * Board support for QEMU mps3-an547 (Cortex-M55, Secure state): console over semihosting,
 * time from SysTick, exit through semihosting. The code is common/board_qemu.h,
 * shared by the QEMU boards; only the clock is this board's own.
 *
 * The 32 MHz SYSCLK of QEMU's AN547 (hw/arm/mps2-tz.c), the core's and
 * SysTick's clock: 31.25 instructions per tick under -icount shift=0.
 */
#define MN_BOARD_CPU_HZ 32000000u

#include "board_qemu.h"
