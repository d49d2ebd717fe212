/*
 * Helpers in firmware/common/ that the boards' board.c and startup.c pick
 * from. Generated code does not use them: its interface is board.h.
 *
 * Every helper is plain code behind a function; nothing here claims an
 * exception vector or a hardware resource by merely being linked, so
 * compiling every common/ source is fine for every board (--gc-sections drops
 * what a board does not call).
 */
#ifndef MNCOMPILE_BOARD_SUPPORT_H
#define MNCOMPILE_BOARD_SUPPORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The exit status of a crash (fault or unexpected exception): EX_SOFTWARE of
 * BSD's sysexits.h, "internal software error"; distinct from the small
 * statuses generated firmware returns. */
#define MN_FAULT_EXIT_STATUS 70

/* SysTick timer (timer_systick.c): processor clock, reload 0xFFFFFF, one
 * interrupt per wrap extends the 24-bit down-counter to 64 bits. The board's
 * SysTick_Handler must call mn_systick_isr(). */
void mn_systick_start(void);
void mn_systick_isr(void);
uint64_t mn_systick_ticks(void);

/* DWT cycle counter (timer_dwt.c), extended to 64 bits in software: see the
 * file for the wrap rule. Returns 0 from mn_dwt_start when the core has no
 * cycle counter. */
int mn_dwt_start(void);
uint64_t mn_dwt_cycles(void);

/* Fault handling (fault.c). mn_fault_handler is an exception handler: the
 * boards' HardFault and default vectors branch to it. It prints the exception
 * and the faulting PC on the console, then board_exit(MN_FAULT_EXIT_STATUS). */
void mn_fault_handler(void);

/* Console output without stdio (console.c), safe in fault handlers: a
 * NUL-terminated string, a number in hex (0x%08lx) or in decimal. */
void mn_console_puts(const char *text);
void mn_console_put_hex(uint32_t value);
void mn_console_put_int(int value);

#ifdef __cplusplus
}
#endif

#endif /* MNCOMPILE_BOARD_SUPPORT_H */
