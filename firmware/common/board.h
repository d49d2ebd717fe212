/*
 * The board interface of mncompile's generated firmware.
 *
 * Every board in firmware/boards/<board>/ implements these six functions
 * (board.c there, usually with helpers from firmware/common/). Generated code
 * uses nothing else from the board: main() calls board_init() first, prints
 * with printf (newlib's _write in common/syscalls.c ends in
 * board_console_write), times inference with board_ticks(), and returns its
 * exit status, which the startup code hands to board_exit().
 */
#ifndef MNCOMPILE_BOARD_H
#define MNCOMPILE_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start the console and the tick counter. main() calls it first; calling it
 * again is harmless. */
void board_init(void);

/* Write len bytes to the console (semihosting on QEMU boards, the UART hook
 * on real boards). Blocking; never fails visibly. */
void board_console_write(const char *data, size_t len);

/* A monotonic 64-bit tick counter: SysTick ticks on QEMU boards (deterministic
 * under -icount), DWT cycles on real Cortex-M7 boards. 0 before board_init(). */
uint64_t board_ticks(void);

/* What one tick of board_ticks() is, for printing, e.g. "SysTick ticks". */
const char *board_ticks_unit(void);

/* The nominal core clock in Hz, 0 when unknown. */
uint32_t board_cpu_hz(void);

/* Stop with an exit status. On QEMU the emulator process exits with this
 * status (semihosting SYS_EXIT_EXTENDED); a real board reports it on the
 * console, then breaks into an attached debugger or loops forever. */
void board_exit(int status) __attribute__((noreturn));

/* The main stack: its size in the linker script, and the deepest it has been
 * so far (common/reset.c paints it at reset; the first word that no longer
 * holds the paint marks the deepest use). */
unsigned long board_stack_size_bytes(void);
unsigned long board_stack_used_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* MNCOMPILE_BOARD_H */
