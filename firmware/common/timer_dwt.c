/*
 * A 64-bit cycle counter from the DWT unit's 32-bit CYCCNT (real Armv7-M and
 * Armv8-M cores; QEMU does not model it, CYCCNT reads 0 there).
 *
 * Wrap handling: CYCCNT wraps every 2^32 cycles (8.9 s at 480 MHz, 67 s at
 * the STM32H7's 64 MHz reset clock) and raises no interrupt. mn_dwt_cycles()
 * extends it in software: it remembers the last value it read and counts a
 * wrap whenever the counter reads lower than that. This is exact as long as
 * mn_dwt_cycles() is called at least once per 2^32 cycles; a longer gap
 * between two calls loses whole multiples of 2^32 cycles (the result stays
 * monotonic). Timing one inference per pair of calls, as the generated
 * firmware does, meets the rule for any inference shorter than that period.
 */
#include "board_support.h"
#include "cortexm.h"

static uint32_t last;          /* the last CYCCNT value read */
static uint32_t high;          /* wraps counted so far */
static volatile uint32_t started;

int mn_dwt_start(void)
{
    if (started) {
        return 1; /* board_init() called again: keep counting */
    }
    MN_DEMCR |= MN_DEMCR_TRCENA; /* power the DWT (and ITM) */
    MN_DWT_LAR = MN_DWT_LAR_KEY; /* Cortex-M7: unlock DWT writes; ignored elsewhere */
    mn_dsb();
    if (MN_DWT_CTRL & MN_DWT_CTRL_NOCYCCNT) {
        return 0;
    }
    MN_DWT_CYCCNT = 0u;
    last = 0u;
    high = 0u;
    MN_DWT_CTRL |= MN_DWT_CTRL_CYCCNTENA;
    started = 1u;
    return 1;
}

uint64_t mn_dwt_cycles(void)
{
    if (!started) {
        return 0u;
    }
    /* Masked, so that an interrupt handler calling this between our read and
     * our update cannot count the same wrap twice. */
    uint32_t primask = mn_irq_save();
    uint32_t now = MN_DWT_CYCCNT;
    if (now < last) {
        high += 1u;
    }
    last = now;
    uint64_t cycles = ((uint64_t)high << 32) | now;
    mn_irq_restore(primask);
    return cycles;
}
