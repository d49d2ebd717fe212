/*
 * Board support for Arm Corstone-300 with an Ethos-U65 NPU (Cortex-M55, Secure
 * state), as Arm's FVP_Corstone_SSE-300_Ethos-U65 models it: console on UART0
 * (or semihosting), time from the DWT cycle counter, exit through an EOT on
 * UART0 (or semihosting). The code is common/board_corstone300.h, shared by
 * both Corstone-300 boards; only the clock is this board's own.
 *
 * The NPU itself is driven by the generated project (src/ethosu_npu.c, with
 * Arm's Ethos-U core driver); its interrupt handler NPU_IRQHandler is device
 * interrupt 56 of the vector table in startup.c. QEMU has no Ethos-U model.
 *
 * Clock: 32 MHz, as the Corstone-300 MPS3 image runs its Cortex-M55. The FVP
 * is not cycle accurate: its cycle counts only approximate the silicon's.
 */
#define MN_BOARD_CPU_HZ 32000000u

#include "board_corstone300.h"
