/*
 * Startup code of every board (see startup.h): Reset_Handler, Default_Handler
 * and the weak system exception handlers. The board's startup.c supplies the
 * vector table, mn_vector_table, that points here; nothing runs unless a
 * vector table refers to it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "board.h"
#include "cortexm.h"
#include "startup.h"

/* What the unused main stack holds from reset on: board_stack_used_bytes()
 * finds the deepest word that lost it. */
#define MN_STACK_PAINT 0xA5C3A5C3u

/* Linker script symbols (boards/<board>/linker.ld). */
extern uint32_t __stack_limit[];
extern uint32_t __data_load[];
extern uint32_t __data_start[];
extern uint32_t __data_end[];
extern uint32_t __bss_start[];
extern uint32_t __bss_end[];

extern int main(void);
extern void __libc_init_array(void);

#define DEFAULT_HANDLER __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) DEFAULT_HANDLER;
void HardFault_Handler(void) DEFAULT_HANDLER;
void MemManage_Handler(void) DEFAULT_HANDLER;
void BusFault_Handler(void) DEFAULT_HANDLER;
void UsageFault_Handler(void) DEFAULT_HANDLER;
void SecureFault_Handler(void) DEFAULT_HANDLER;
void SVC_Handler(void) DEFAULT_HANDLER;
void DebugMon_Handler(void) DEFAULT_HANDLER;
void PendSV_Handler(void) DEFAULT_HANDLER;
void SysTick_Handler(void) DEFAULT_HANDLER;

/* Every exception without its own handler: report and exit (common/fault.c).
 * Naked, so that the exception frame and EXC_RETURN reach the reporter intact. */
__attribute__((naked)) void Default_Handler(void)
{
    __asm__ volatile("b mn_fault_handler");
}

void Reset_Handler(void)
{
    MN_SCB_VTOR = (uint32_t)(uintptr_t)mn_vector_table;
#if MN_ARMV8M_MAIN
    /* Armv8-M: a stack overflow past the linker script's stack becomes a
     * UsageFault (STKOF), reported like any fault, instead of silently
     * overwriting the heap. */
    __asm__ volatile("msr msplim, %0" ::"r"(__stack_limit));
#endif
    mn_enable_fpu();

    /* Paint the stack below this frame (64 bytes of margin; nothing else runs
     * yet, no interrupt is enabled), for board_stack_used_bytes(). The lowest
     * word is left as it is: a program may keep a value there across a
     * software restart (tests/firmware/hello.c does), and a stack that reaches
     * it has overflowed anyway. */
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_limit + 1; p < sp - 16; ++p) {
        *p = MN_STACK_PAINT;
    }

    /* .data: copy the initial values from FLASH; .bss: zero. */
    const uint32_t *from = __data_load;
    for (uint32_t *to = __data_start; to < __data_end;) {
        *to++ = *from++;
    }
    for (uint32_t *to = __bss_start; to < __bss_end;) {
        *to++ = 0u;
    }

    /* C++ static constructors and __attribute__((constructor)) functions. */
    __libc_init_array();

    /* Returning from main is exit(status), as in hosted C: the stdio buffers
     * are flushed (and atexit handlers run), then _exit (common/syscalls.c)
     * passes main's return value to board_exit(). */
    exit(main());
}

unsigned long board_stack_size_bytes(void)
{
    return (unsigned long)((uintptr_t)__stack_top - (uintptr_t)__stack_limit);
}

unsigned long board_stack_used_bytes(void)
{
    const uint32_t *p = __stack_limit + 1;
    while (p < __stack_top && *p == MN_STACK_PAINT) {
        ++p;
    }
    return (unsigned long)((uintptr_t)__stack_top - (uintptr_t)p);
}
