/*
 * The board API (board.h) of the real boards with a UART console: the Nucleos,
 * the STM32F746G-DISCO, the Arduino Nano 33 BLE Sense, the Raspberry Pi Pico,
 * the i.MX RT1060 EVK and the EK-RA8D1. What differs between them (clock tree,
 * UART registers, pins) is their board.c's; what they share is here. A board.c
 * defines, then includes this file once:
 *
 *   #define MN_BOARD_CPU_HZ 480000000u    nominal core clock (board.toml cpu_hz)
 *   #define MN_BOARD_TIMER_DWT 1          or MN_BOARD_TIMER_SYSTICK 1 (cores without CYCCNT)
 *   #define MN_BOARD_CACHES 1             optional: Cortex-M7/M85 L1 caches on
 *   static uint32_t mn_board_clock_init(void);        sets the clock tree, returns the core clock in Hz
 *   static void mn_board_uart_init(void);              clocks, pins, baud rate, transmitter on
 *   static void mn_board_uart_put(uint32_t byte);      blocking write of one byte
 *   static void mn_board_uart_flush(void);             waits until the last byte has left the pin
 *   #include "board_real.h"
 *
 * Like board_qemu.h it holds definitions: only such a board.c may include it.
 *
 * Console: the board's UART at 115200 8N1, "\n" sent as "\r\n" for terminals.
 * Build with -DMNCOMPILE_CONSOLE_SEMIHOSTING to print through an attached
 * debugger instead (OpenOCD `arm semihosting enable`, pyOCD
 * `--semihosting`); on Armv7-M/Armv8-M the firmware then still uses the UART
 * when no debugger is attached (DHCSR.C_DEBUGEN clear: a semihosting bkpt
 * would fault). Armv6-M software cannot read DHCSR, so there the semihosting
 * build always uses semihosting.
 *
 * Clock: board_init() runs mn_board_clock_init() first, unless built with
 * -DMNCOMPILE_NO_CLOCK_SETUP (an application that sets its own clocks); the
 * UART's baud rate is derived from the clock the board set up.
 *
 * Exit: board_exit() prints "mncompile: exit status N" and waits for the UART
 * to drain; then, with a debugger attached, halts in it (semihosting exit in a
 * semihosting build, else bkpt with the status in r0); otherwise it sleeps.
 */
#ifndef MNCOMPILE_BOARD_REAL_H
#define MNCOMPILE_BOARD_REAL_H

#ifndef MN_BOARD_CPU_HZ
#error "define MN_BOARD_CPU_HZ (the core clock board_init() sets up, in Hz) before including board_real.h"
#endif
#if !defined(MN_BOARD_TIMER_DWT) && !defined(MN_BOARD_TIMER_SYSTICK)
#error "define MN_BOARD_TIMER_DWT or MN_BOARD_TIMER_SYSTICK before including board_real.h"
#endif

#include "board.h"
#include "board_support.h"
#include "cache.h"
#include "cortexm.h"
#include "semihosting.h"

#if defined(__ARM_ARCH_6M__)
#define MN_DEBUGGER_READABLE 0 /* DHCSR is not accessible to Armv6-M software */
#else
#define MN_DEBUGGER_READABLE 1
#endif

static uint32_t mn_board_hz = MN_BOARD_CPU_HZ;
static int mn_board_started;

__attribute__((unused)) static int mn_debugger_attached(void)
{
#if MN_DEBUGGER_READABLE
    return (MN_DHCSR & MN_DHCSR_C_DEBUGEN) != 0u;
#else
    return 1;
#endif
}

static int mn_use_semihosting(void)
{
#ifdef MNCOMPILE_CONSOLE_SEMIHOSTING
    return mn_debugger_attached();
#else
    return 0;
#endif
}

#ifdef MN_BOARD_TIMER_SYSTICK
void SysTick_Handler(void);

void SysTick_Handler(void)
{
    mn_systick_isr();
}
#endif

void board_init(void)
{
    if (mn_board_started) {
        return;
    }
#ifndef MNCOMPILE_NO_CLOCK_SETUP
    mn_board_hz = mn_board_clock_init();
#else
    (void)mn_board_clock_init; /* the application set the clocks (to the board's tree, the UART assumes) */
#endif
#if defined(MN_BOARD_CACHES) && !defined(MNCOMPILE_NO_CACHES)
    mn_cache_enable();
#endif
    mn_board_uart_init();
#ifdef MN_BOARD_TIMER_DWT
    (void)mn_dwt_start();
#else
    mn_systick_start();
#endif
    mn_board_started = 1;
}

void board_console_write(const char *data, size_t len)
{
    if (mn_use_semihosting()) {
        semihosting_write(data, len);
        return;
    }
    if (!mn_board_started) {
        return; /* the UART is not set up yet */
    }
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            mn_board_uart_put('\r');
        }
        mn_board_uart_put((uint32_t)(unsigned char)data[i]);
    }
}

uint64_t board_ticks(void)
{
#ifdef MN_BOARD_TIMER_DWT
    return mn_dwt_cycles();
#else
    return mn_systick_ticks();
#endif
}

const char *board_ticks_unit(void)
{
#ifdef MN_BOARD_TIMER_DWT
    return "DWT cycles";
#else
    return "SysTick ticks";
#endif
}

uint32_t board_cpu_hz(void)
{
    return mn_board_hz;
}

void board_exit(int status)
{
    mn_console_puts("\nmncompile: exit status ");
    mn_console_put_int(status);
    mn_console_puts("\n");
    if (mn_board_started) {
        mn_board_uart_flush();
    }
#if MN_DEBUGGER_READABLE
    if (mn_debugger_attached()) {
#ifdef MNCOMPILE_CONSOLE_SEMIHOSTING
        semihosting_exit(status);
#else
        register int r0 __asm__("r0") = status;
        __asm__ volatile("bkpt #0" ::"r"(r0));
#endif
    }
#elif defined(MNCOMPILE_CONSOLE_SEMIHOSTING)
    semihosting_exit(status);
#endif
    for (;;) {
        __asm__ volatile("wfi");
    }
}

#endif /* MNCOMPILE_BOARD_REAL_H */
