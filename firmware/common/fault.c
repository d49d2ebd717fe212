/*
 * Crash reporting: a fault or an unexpected exception prints one line on the
 * console and ends the program with MN_FAULT_EXIT_STATUS, so a crash under
 * QEMU ends the emulator with a nonzero status instead of hanging CI.
 *
 *   *** HardFault (exception 3): pc=0x00000412 lr=0x000003c1 cfsr=0x00010000 hfsr=0x40000000 ***
 *
 * No stdio here: the C library may be what broke.
 */
#include "board.h"
#include "board_support.h"
#include "cortexm.h"

/* Armv6-M (Cortex-M0/M0+) has no configurable fault status registers: reading
 * their addresses there is itself a fault. */
#if defined(__ARM_ARCH_6M__)
#define MN_HAS_FAULT_STATUS 0
#else
#define MN_HAS_FAULT_STATUS 1
#endif

static const char *exception_name(uint32_t number)
{
    switch (number) {
    case 2: return "NMI";
    case 3: return "HardFault";
    case 4: return "MemManage fault";
    case 5: return "BusFault";
    case 6: return "UsageFault";
    case 7: return "SecureFault";
    case 11: return "SVCall";
    case 12: return "DebugMonitor";
    case 14: return "PendSV";
    case 15: return "SysTick";
    default: return number >= 16u ? "unexpected interrupt" : "reserved exception";
    }
}

/* Called by mn_fault_handler with the stacked exception frame (r0-r3, r12,
 * lr, pc, xpsr) and EXC_RETURN. */
void mn_fault_report(const uint32_t *frame, uint32_t exc_return) __attribute__((noreturn, used));

void mn_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    (void)exc_return;
    uint32_t number = mn_ipsr() & 0x1FFu;
#if MN_HAS_FAULT_STATUS
    uint32_t cfsr = MN_SCB_CFSR;
#endif
    mn_console_puts("\n*** ");
    mn_console_puts(exception_name(number));
    if (number >= 16u) {
        mn_console_puts(" IRQ ");
        mn_console_put_int((int)(number - 16u));
    }
    mn_console_puts(" (exception ");
    mn_console_put_int((int)number);
    mn_console_puts("): pc=");
    mn_console_put_hex(frame[6]);
    mn_console_puts(" lr=");
    mn_console_put_hex(frame[5]);
#if MN_HAS_FAULT_STATUS
    mn_console_puts(" cfsr=");
    mn_console_put_hex(cfsr);
    mn_console_puts(" hfsr=");
    mn_console_put_hex(MN_SCB_HFSR);
    if (cfsr & (1u << 15)) { /* BFARVALID */
        mn_console_puts(" bfar=");
        mn_console_put_hex(MN_SCB_BFAR);
    }
    if (cfsr & (1u << 7)) { /* MMARVALID */
        mn_console_puts(" mmfar=");
        mn_console_put_hex(MN_SCB_MMFAR);
    }
#endif
    mn_console_puts(" ***\n");
    board_exit(MN_FAULT_EXIT_STATUS);
}

/* The exception entry: find the frame on the stack the exception used
 * (EXC_RETURN bit 2: 0 = MSP, 1 = PSP) and report. On Armv8-M the main stack
 * limit is lifted first, so that a stack overflow caught by MSPLIM can still
 * be reported from the (already exhausted) stack. */
__attribute__((naked)) void mn_fault_handler(void)
{
    __asm__ volatile(
#if MN_ARMV8M_MAIN
        "movs r0, #0\n\t"
        "msr msplim, r0\n\t"
#endif
#if defined(__ARM_ARCH_6M__)
        /* Thumb-1: no IT blocks, no tst with an immediate, short branches */
        "movs r0, #4\n\t"
        "mov r1, lr\n\t"
        "tst r0, r1\n\t"
        "bne 1f\n\t"
        "mrs r0, msp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, psp\n"
        "2:\n\t"
        "ldr r2, =mn_fault_report\n\t"
        "bx r2\n\t"
        ".ltorg\n\t");
#else
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "b mn_fault_report\n\t");
#endif
}
