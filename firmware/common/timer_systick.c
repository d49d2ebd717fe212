/*
 * A 64-bit tick counter from SysTick, for boards where the DWT cycle counter
 * is absent or reads 0 (QEMU models no DWT).
 *
 * SysTick counts down from 0xFFFFFF at the processor clock; each wrap to the
 * reload value raises the SysTick exception, whose handler (the board's
 * SysTick_Handler, calling mn_systick_isr) counts the wraps. Under QEMU's
 * -icount the count is a deterministic function of the instructions executed.
 */
#include "board_support.h"
#include "cortexm.h"

#define RELOAD 0xFFFFFFu

static volatile uint32_t wraps; /* SysTick wraps since mn_systick_start() */
static volatile uint32_t started;

void mn_systick_start(void)
{
    if (started) {
        return; /* board_init() called again: keep counting */
    }
    MN_SYST_CSR = 0u;
    MN_SYST_RVR = RELOAD;
    MN_SYST_CVR = 0u; /* any write clears the counter (and COUNTFLAG) */
    wraps = 0u;
    started = 1u;
    MN_SYST_CSR = MN_SYST_CSR_CLKSOURCE | MN_SYST_CSR_TICKINT | MN_SYST_CSR_ENABLE;
}

void mn_systick_isr(void)
{
    wraps = wraps + 1u;
}

uint64_t mn_systick_ticks(void)
{
    if (!started) {
        return 0u;
    }
    /* Race-free: with interrupts masked, read the wrap count and the counter.
     * A wrap that happened but whose exception is still pending (ICSR
     * PENDSTSET) is not yet in `wraps`: count it here, and re-read the counter,
     * which then certainly holds a value from after that wrap. The handler
     * counts it later; this function never sees it twice, because the pending
     * bit clears when the handler runs. (Masked for more than 2^24 ticks, two
     * wraps would collapse into one; nothing in the firmware masks that long.) */
    uint32_t primask = mn_irq_save();
    uint32_t high = wraps;
    uint32_t value = MN_SYST_CVR;
    if (MN_SCB_ICSR & MN_SCB_ICSR_PENDSTSET) {
        value = MN_SYST_CVR;
        high += 1u;
    }
    mn_irq_restore(primask);
    /* t ticks after the start the counter reads (-t) mod 2^24: 0, then 0xFFFFFF
     * down to 0, which it reaches (and raises the exception) at t = n * 2^24. */
    return ((uint64_t)high << 24) + ((0u - value) & RELOAD);
}
