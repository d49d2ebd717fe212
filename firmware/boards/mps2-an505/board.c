/*
 * Board support for QEMU mps2-an505 (Cortex-M33, Secure state): console over semihosting,
 * time from SysTick, exit through semihosting. The code is common/board_qemu.h,
 * shared by the QEMU boards; only the clock is this board's own.
 *
 * The 20 MHz SYSCLK of QEMU's AN505 (hw/arm/mps2-tz.c), the core's and
 * SysTick's clock: 50 instructions per tick under -icount shift=0.
 */
#define MN_BOARD_CPU_HZ 20000000u

#include "board_qemu.h"
