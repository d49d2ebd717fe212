/*
 * The board API (board.h) of the QEMU boards: console over semihosting, time
 * from SysTick, exit through semihosting. A QEMU board's board.c defines its
 * clock and includes this file, once:
 *
 *   #define MN_BOARD_CPU_HZ 25000000u
 *   #include "board_qemu.h"
 *
 * It holds definitions, not just declarations: only a board's board.c may
 * include it (a source in common/ is compiled for every board, so the code
 * lives here, in a header the QEMU boards opt into). QEMU runs such a board
 * with
 *
 *   qemu-system-arm -machine <board> -nographic -monitor none -serial null
 *       -semihosting-config enable=on,target=native -icount shift=0 -kernel firmware.elf
 *
 * (mncompile.run.qemu builds this command line). Under -icount shift=0 QEMU
 * runs one instruction per virtual nanosecond, so SysTick ticks, and the
 * printed timings, are deterministic: 10^9 / MN_BOARD_CPU_HZ ns of virtual
 * time per tick, i.e. that many instructions per tick (40 at 25 MHz). They
 * count instructions, not the cycles of a real core.
 */
#ifndef MNCOMPILE_BOARD_QEMU_H
#define MNCOMPILE_BOARD_QEMU_H

#ifndef MN_BOARD_CPU_HZ
#error "define MN_BOARD_CPU_HZ (the core's and SysTick's clock in Hz) before including board_qemu.h"
#endif

#include "board.h"
#include "board_support.h"
#include "semihosting.h"

void SysTick_Handler(void);

void SysTick_Handler(void)
{
    mn_systick_isr();
}

void board_init(void)
{
    mn_systick_start();
}

void board_console_write(const char *data, size_t len)
{
    semihosting_write(data, len);
}

uint64_t board_ticks(void)
{
    return mn_systick_ticks();
}

const char *board_ticks_unit(void)
{
    return "SysTick ticks";
}

uint32_t board_cpu_hz(void)
{
    return MN_BOARD_CPU_HZ;
}

void board_exit(int status)
{
    semihosting_exit(status);
}

#endif /* MNCOMPILE_BOARD_QEMU_H */
