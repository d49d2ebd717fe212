/*
 * Board support for the ST Nucleo-H743ZI (STM32H743ZI, Cortex-M7). No QEMU
 * model exists: build, then flash with ST-LINK (STM32CubeProgrammer, OpenOCD
 * or pyOCD).
 *
 * Console: board_uart_write() below, a weak hook that does nothing. Plug the
 * board's UART in by defining your own board_uart_write() in any source file
 * of the project; on the Nucleo-H743ZI the ST-LINK virtual COM port is USART3
 * on PD8 (TX) and PD9 (RX), alternate function 7. Alternatively build with
 * -DMNCOMPILE_CONSOLE_SEMIHOSTING to print through a debugger (OpenOCD with
 * `arm semihosting enable`, or pyOCD's semihosting) while one is attached;
 * without a debugger the output then goes to board_uart_write().
 *
 * Clock: the core runs from the 64 MHz HSI as the boot ROM leaves it; nothing
 * here touches clocks, voltage scaling or flash wait states. If your code
 * raises the clock (up to 480 MHz), define MNCOMPILE_CPU_HZ to the new
 * frequency so that board_cpu_hz() reports it.
 *
 * Time: the DWT cycle counter, extended to 64 bits (common/timer_dwt.c: exact
 * while board_ticks() is read at least once per 2^32 cycles).
 *
 * Caches: board_init() enables the Cortex-M7 instruction and data caches
 * (without them code runs from flash with wait states on every fetch); the
 * firmware uses no DMA, so no cache maintenance is needed afterwards. Build
 * with -DMNCOMPILE_NO_CACHES to leave them off.
 */
#include "board.h"
#include "board_support.h"
#include "cortexm.h"
#include "semihosting.h"

#ifndef MNCOMPILE_CPU_HZ
#define MNCOMPILE_CPU_HZ 64000000u /* HSI, the reset clock */
#endif

void board_uart_write(const char *data, size_t len);

/* The console hook: replace it (a strong definition anywhere wins) with a
 * blocking write to USART3, for example:
 *
 *   void board_uart_write(const char *data, size_t len) {
 *       for (size_t i = 0; i < len; i++) {
 *           while (!(USART3->ISR & USART_ISR_TXE_TXFNF)) {}
 *           USART3->TDR = (uint8_t)data[i];
 *       }
 *   }
 *
 * after enabling the GPIOD and USART3 clocks, putting PD8/PD9 in alternate
 * function 7 and setting the baud rate (BRR = kernel clock / baud) and
 * CR1 = UE | TE. */
__attribute__((weak)) void board_uart_write(const char *data, size_t len)
{
    (void)data;
    (void)len;
}

static int debugger_attached(void)
{
    return (MN_DHCSR & MN_DHCSR_C_DEBUGEN) != 0u;
}

static void enable_caches(void)
{
#ifndef MNCOMPILE_NO_CACHES
    if (!(MN_SCB_CCR & MN_SCB_CCR_IC)) {
        mn_dsb();
        mn_isb();
        MN_SCB_ICIALLU = 0u; /* invalidate the whole instruction cache */
        mn_dsb();
        mn_isb();
        MN_SCB_CCR |= MN_SCB_CCR_IC;
        mn_dsb();
        mn_isb();
    }
    if (!(MN_SCB_CCR & MN_SCB_CCR_DC)) {
        /* Invalidate the level 1 data cache line by line (set/way), then
         * enable it. Its geometry comes from CCSIDR: line length, ways, sets. */
        MN_SCB_CSSELR = 0u;
        mn_dsb();
        const uint32_t ccsidr = MN_SCB_CCSIDR;
        const uint32_t line_shift = (ccsidr & 0x7u) + 4u;       /* log2(line bytes) */
        const uint32_t max_way = (ccsidr >> 3) & 0x3FFu;        /* ways - 1 */
        const uint32_t max_set = (ccsidr >> 13) & 0x7FFFu;      /* sets - 1 */
        const uint32_t way_shift = max_way ? (uint32_t)__builtin_clz(max_way) : 0u;
        for (uint32_t set = 0; set <= max_set; set++) {
            for (uint32_t way = 0; way <= max_way; way++) {
                MN_SCB_DCISW = (way << way_shift) | (set << line_shift);
            }
        }
        mn_dsb();
        MN_SCB_CCR |= MN_SCB_CCR_DC;
        mn_dsb();
        mn_isb();
    }
#endif
}

void board_init(void)
{
    enable_caches();
    (void)mn_dwt_start(); /* the Cortex-M7 always has CYCCNT */
}

void board_console_write(const char *data, size_t len)
{
#ifdef MNCOMPILE_CONSOLE_SEMIHOSTING
    /* Without a debugger the semihosting bkpt would fault: use the UART then. */
    if (debugger_attached()) {
        semihosting_write(data, len);
        return;
    }
#endif
    board_uart_write(data, len);
}

uint64_t board_ticks(void)
{
    return mn_dwt_cycles();
}

const char *board_ticks_unit(void)
{
    return "DWT cycles";
}

uint32_t board_cpu_hz(void)
{
    return MNCOMPILE_CPU_HZ;
}

/* There is nothing to exit to: report the status, then stop. With a debugger
 * attached, halt in it (semihosting exit when built for semihosting, else a
 * bkpt with the status in r0); without one, loop forever. */
void board_exit(int status)
{
    mn_console_puts("\nmncompile: exit status ");
    mn_console_put_int(status);
    mn_console_puts("\n");
    if (debugger_attached()) {
#ifdef MNCOMPILE_CONSOLE_SEMIHOSTING
        semihosting_exit(status);
#else
        register int r0 __asm__("r0") = status;
        __asm__ volatile("bkpt #0" ::"r"(r0));
#endif
    }
    for (;;) {
    }
}
