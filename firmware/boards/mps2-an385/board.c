/*
 * Board support for QEMU mps2-an385 (Cortex-M3) running code built for the
 * Cortex-M0+ (-mcpu=cortex-m0plus: Armv6-M, no DSP extension, no FPU, no
 * CYCCNT). QEMU has no Cortex-M0+ board with enough memory for a model (the
 * micro:bit's Cortex-M0 has 16 KB of RAM), and Armv6-M is a subset of Armv7-M,
 * so this board checks the Raspberry Pi Pico's code path on QEMU: the portable
 * kernels, soft-float, the Armv6-M fault entry (common/fault.c). Console over
 * semihosting, time from SysTick, exit through semihosting. The code is common/board_qemu.h,
 * shared by the QEMU boards; only the clock is this board's own.
 *
 * The 25 MHz SYSCLK QEMU's MPS2 boards feed the core and SysTick
 * (hw/arm/mps2.c): 40 instructions per tick under -icount shift=0.
 */
#define MN_BOARD_CPU_HZ 25000000u

#include "board_qemu.h"
