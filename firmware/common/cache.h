/*
 * Level 1 instruction and data caches of the Cortex-M7 and Cortex-M85 (cache.c).
 * Real boards with such a core call mn_cache_enable() from board_init(): code
 * and the model then run from flash without a wait state on every fetch. The
 * firmware uses no DMA, so no cache maintenance is needed afterwards.
 */
#ifndef MNCOMPILE_CACHE_H
#define MNCOMPILE_CACHE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Invalidate, then enable, the I- and D-cache (each only if still off, so a
 * second call is harmless). Only for cores with the Armv7-M/Armv8-M cache
 * maintenance registers (Cortex-M7, M55, M85). */
void mn_cache_enable(void);

#ifdef __cplusplus
}
#endif

#endif /* MNCOMPILE_CACHE_H */
