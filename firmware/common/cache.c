/*
 * Enable the level 1 caches (cache.h). The registers are the architecture's
 * (Armv7-M / Armv8-M System Control Space: CCR.IC/DC, CSSELR, CCSIDR, ICIALLU,
 * DCISW); the geometry is read from CCSIDR, so one routine serves the
 * Cortex-M7 (16 KB + 16 KB on the STM32H7, 4 KB + 4 KB on the STM32F7, 32 KB +
 * 32 KB on the i.MX RT1060) and the Cortex-M85.
 */
#include "cache.h"
#include "cortexm.h"

void mn_cache_enable(void)
{
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
        /* Invalidate the data cache line by line (set/way), then enable it:
         * its contents after reset are undefined. */
        MN_SCB_CSSELR = 0u; /* level 1 data cache */
        mn_dsb();
        const uint32_t ccsidr = MN_SCB_CCSIDR;
        const uint32_t line_shift = (ccsidr & 0x7u) + 4u;  /* log2(line bytes) */
        const uint32_t max_way = (ccsidr >> 3) & 0x3FFu;   /* ways - 1 */
        const uint32_t max_set = (ccsidr >> 13) & 0x7FFFu; /* sets - 1 */
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
}
