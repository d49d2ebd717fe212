/*
 * The board API (board.h) of the Arm Corstone-300 boards with an Ethos-U NPU
 * (boards/corstone-300-ethos-u55, boards/corstone-300-ethos-u65): the Cortex-M55
 * of the SSE-300 as Arm's Corstone-300 FVPs (FVP_Corstone_SSE-300_Ethos-U55 /
 * -U65) and the MPS3 FPGA image AN552 model it. QEMU has no Ethos-U model, so
 * these boards have no QEMU machine. A Corstone-300 board's board.c defines its
 * clock and includes this file, once:
 *
 *   #define MN_BOARD_CPU_HZ 32000000u
 *   #include "board_corstone300.h"
 *
 * Like board_qemu.h it holds definitions: only such a board.c may include it.
 *
 * Console: UART0 of the MPS3 peripheral map, a CMSDK APB UART at 0x49303000
 * (Arm ML Embedded Evaluation Kit, scripts/cmake/platforms/mps3/sse-300:
 * CMSDK_UART0_BASE; the same address as TFLM's corstone_300 target). On the
 * FVP, -C mps3_board.uart0.out_file=- sends it to the FVP's stdout; on the MPS3
 * board it is the first USB serial port. Build with
 * -DMNCOMPILE_CONSOLE_SEMIHOSTING to print through semihosting instead (the
 * FVP: -C cpu0.semihosting-enable=1; the board: only with a debugger
 * attached, a semihosting bkpt faults without one).
 *
 * Exit: board_exit() prints "mncompile: exit status N" on the console; then,
 * with semihosting, SYS_EXIT_EXTENDED ends the FVP; without, it sends EOT
 * (0x04) on UART0, which ends the FVP when run with
 * -C mps3_board.uart0.shutdown_on_eot=1, and waits forever (the board).
 *
 * Time: the DWT cycle counter (real Cortex-M55); where the core reports no
 * CYCCNT, SysTick at the processor clock instead. The FVP is not cycle
 * accurate: its counts are no measure of the silicon's speed.
 */
#ifndef MNCOMPILE_BOARD_CORSTONE300_H
#define MNCOMPILE_BOARD_CORSTONE300_H

#ifndef MN_BOARD_CPU_HZ
#error "define MN_BOARD_CPU_HZ (the core's clock in Hz) before including board_corstone300.h"
#endif

#include "board.h"
#include "board_support.h"
#include "cortexm.h"
#include "semihosting.h"

/* CMSDK APB UART (Arm CoreLink SDK, DDI 0479): data, state (bit 0: TX buffer
 * full), control (bit 0: TX enable), baud divider (at least 16). */
#define MN_UART0_BASE 0x49303000u
#define MN_UART_DATA MN_REG32(MN_UART0_BASE + 0x000u)
#define MN_UART_STATE MN_REG32(MN_UART0_BASE + 0x004u)
#define MN_UART_CTRL MN_REG32(MN_UART0_BASE + 0x008u)
#define MN_UART_BAUDDIV MN_REG32(MN_UART0_BASE + 0x010u)
#define MN_UART_STATE_TX_FULL (1u << 0)
#define MN_UART_CTRL_TX_ENABLE (1u << 0)
#define MN_UART_BAUD 115200u
#define MN_UART_EOT 0x04u /* ends the FVP with -C mps3_board.uart0.shutdown_on_eot=1 */

void SysTick_Handler(void);

static int mn_use_dwt; /* 1: DWT CYCCNT, 0: SysTick */

static void mn_uart_init(void)
{
    uint32_t divider = MN_BOARD_CPU_HZ / MN_UART_BAUD;
    MN_UART_BAUDDIV = divider < 16u ? 16u : divider;
    MN_UART_CTRL = MN_UART_CTRL_TX_ENABLE;
}

static inline void mn_uart_put(uint32_t byte)
{
    while (MN_UART_STATE & MN_UART_STATE_TX_FULL) {
    }
    MN_UART_DATA = byte & 0xFFu;
}

void SysTick_Handler(void)
{
    mn_systick_isr();
}

void board_init(void)
{
    mn_uart_init();
    if (!mn_use_dwt) {
        mn_use_dwt = mn_dwt_start();
        if (!mn_use_dwt) {
            mn_systick_start();
        }
    }
}

void board_console_write(const char *data, size_t len)
{
#ifdef MNCOMPILE_CONSOLE_SEMIHOSTING
    semihosting_write(data, len);
#else
    for (size_t i = 0; i < len; i++) {
        mn_uart_put((uint32_t)(unsigned char)data[i]);
    }
#endif
}

uint64_t board_ticks(void)
{
    return mn_use_dwt ? mn_dwt_cycles() : mn_systick_ticks();
}

const char *board_ticks_unit(void)
{
    return mn_use_dwt ? "DWT cycles" : "SysTick ticks";
}

uint32_t board_cpu_hz(void)
{
    return MN_BOARD_CPU_HZ;
}

void board_exit(int status)
{
    mn_console_puts("\nmncompile: exit status ");
    mn_console_put_int(status);
    mn_console_puts("\n");
#ifdef MNCOMPILE_CONSOLE_SEMIHOSTING
    semihosting_exit(status);
#else
    mn_uart_put(MN_UART_EOT);
    for (;;) {
        __asm__ volatile("wfi");
    }
#endif
}

#endif /* MNCOMPILE_BOARD_CORSTONE300_H */
