/*
 * Board self-test for tests/test_boards.py: checks the startup code and the
 * board API from inside the firmware and prints one line per check.
 *
 *   HELLO_BOARD  the board's name (a string), printed back
 *   HELLO_EXIT   main's return value (default 0): QEMU must exit with it
 *   HELLO_CRASH  crash with an undefined instruction instead of returning
 *   HELLO_HANG   loop forever instead of returning (for run_qemu's timeout)
 *   HELLO_STACK_OVERFLOW  recurse until the stack runs out (MSPLIM must catch it on Armv8-M)
 *   HELLO_WRAP   read board_ticks() across two SysTick wraps (every 2^24 ticks), the
 *                second with interrupts masked, checking that it never goes back
 *   HELLO_ARENA_BYTES  the size of .tensor_arena (default 4096)
 *
 * .bss is zero in a freshly started QEMU anyway, so the program also tests a
 * restart: it dirties .data and .bss, leaves a marker in the lowest stack word
 * (which the startup code never touches) and jumps to Reset_Handler again;
 * the second run must see .data and .bss restored.
 */
#include <stdint.h>
#include <stdio.h>

#include "board.h"

#ifndef HELLO_BOARD
#define HELLO_BOARD "unknown"
#endif
#ifndef HELLO_EXIT
#define HELLO_EXIT 0
#endif
#ifndef HELLO_ARENA_BYTES
#define HELLO_ARENA_BYTES 4096
#endif

#define RESTART_MAGIC 0x5EB007EDu
#define DATA_VALUE 0xC0FFEE42u

/* hello_cpp.cc: a value its static constructor sets; board_cpu_hz() from C++. */
uint32_t hello_cpp_value(void);
uint32_t hello_cpp_cpu_hz(void);

/* What generated code does with the model and the arena. */
_Alignas(16) const unsigned char g_model[32] __attribute__((section(".model"))) = "mncompile board test model";
_Alignas(16) static uint8_t tensor_arena[HELLO_ARENA_BYTES] __attribute__((section(".tensor_arena")));

static volatile uint32_t data_word = DATA_VALUE; /* .data */
static volatile uint32_t bss_words[16];          /* .bss */

extern uint32_t __stack_limit[];   /* linker script: the lowest stack word */
extern void Reset_Handler(void); /* common/reset.c */

#ifdef HELLO_STACK_OVERFLOW
static volatile uint32_t overflow_limit = UINT32_MAX; /* never reached: the stack ends first */

/* 256 bytes of stack per call, not a tail call: each level stays on the stack. */
static uint32_t overflow(uint32_t depth)
{
    volatile uint8_t frame[256];
    frame[0] = (uint8_t)depth;
    if (depth >= overflow_limit) {
        return frame[0];
    }
    return overflow(depth + 1u) + frame[0];
}
#endif

static const char *u64_text(uint64_t value, char text[21])
{
    char *at = text + 20;
    *at = '\0';
    do {
        *--at = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    return at;
}

static int bss_is_zero(void)
{
    for (unsigned i = 0; i < sizeof bss_words / sizeof bss_words[0]; i++) {
        if (bss_words[i] != 0u) {
            return 0;
        }
    }
    return 1;
}

int main(void)
{
    board_init();
    volatile uint32_t *marker = __stack_limit;
    const int restarted = *marker == RESTART_MAGIC;

    printf("hello from %s (%s)\n", HELLO_BOARD, restarted ? "restarted" : "first run");
    printf("data: %s\n", data_word == DATA_VALUE ? "ok" : "BAD");
    printf("bss: %s\n", bss_is_zero() ? "ok" : "BAD");
    printf("constructor: %s\n", hello_cpp_value() == 0xC0DEu ? "ok" : "BAD");
    if (!restarted) {
        data_word = 0xBADBADu;
        for (unsigned i = 0; i < sizeof bss_words / sizeof bss_words[0]; i++) {
            bss_words[i] = 0xFFFFFFFFu;
        }
        *marker = RESTART_MAGIC;
        printf("restarting\n");
        fflush(stdout);
        Reset_Handler();
    }
    *marker = 0u;

    unsigned model_sum = 0;
    for (unsigned i = 0; i < sizeof g_model; i++) {
        model_sum += g_model[i];
    }
    printf("model: at 0x%08lx, sum %u\n", (unsigned long)(uintptr_t)g_model, model_sum);

    int arena_ok = 1;
    for (unsigned i = 0; i < sizeof tensor_arena; i++) {
        tensor_arena[i] = (uint8_t)(i * 7u);
    }
    for (unsigned i = 0; i < sizeof tensor_arena; i++) {
        arena_ok &= tensor_arena[i] == (uint8_t)(i * 7u);
    }
    printf("arena: at 0x%08lx, %s\n", (unsigned long)(uintptr_t)tensor_arena, arena_ok ? "ok" : "BAD");

    char text[21];
    const uint64_t start = board_ticks();
    for (volatile uint32_t i = 0; i < 100000u; i++) {
    }
    const uint64_t ticks = board_ticks() - start;
    printf("ticks: %s %s\n", u64_text(ticks, text), board_ticks_unit());
    printf("cpu_hz: %lu (from C++: %lu)\n", (unsigned long)board_cpu_hz(), (unsigned long)hello_cpp_cpu_hz());

#ifdef HELLO_WRAP
    /* Wrap 1 with interrupts enabled: the SysTick handler counts it. Wrap 2 with
     * interrupts masked: it stays pending, and board_ticks() must count it by
     * itself. Then unmasked again: the handler runs late and the count must
     * neither go back nor jump. */
    uint64_t previous = board_ticks();
    unsigned long reads = 0, backwards = 0, jumps = 0;
    for (int phase = 0; phase < 3 && !backwards; phase++) {
        const uint64_t until = phase == 0 ? (1ull << 24) + (1ull << 20)
                             : phase == 1 ? (2ull << 24) + (1ull << 19)
                                          : (2ull << 24) + (1ull << 20);
        if (phase == 1) {
            __asm__ volatile("cpsid i" ::: "memory");
        }
        if (phase == 2) {
            __asm__ volatile("cpsie i" ::: "memory");
        }
        while (previous < until) {
            const uint64_t now = board_ticks();
            reads++;
            if (now < previous) {
                backwards++;
                break;
            }
            jumps += now - previous > (1u << 16);
            previous = now;
        }
    }
    __asm__ volatile("cpsie i" ::: "memory");
    printf("wrap: %s after %lu reads (%lu back, %lu jumps), at %s\n", backwards || jumps ? "BAD" : "ok",
           reads, backwards, jumps, u64_text(previous, text));
#endif

#ifdef HELLO_HANG
    printf("hanging\n");
    for (;;) {
    }
#endif
#ifdef HELLO_STACK_OVERFLOW
    printf("overflowing the stack\n");
    fflush(stdout);
    printf("overflow returned %lu\n", (unsigned long)overflow(0u));
#endif
#ifdef HELLO_CRASH
    printf("crashing\n");
    fflush(stdout);
    __asm__ volatile("udf #0");
#endif
    /* No newline: only the stdio flush of exit() (main's return) prints it. */
    printf("exiting with %d", HELLO_EXIT);
    return HELLO_EXIT;
}
