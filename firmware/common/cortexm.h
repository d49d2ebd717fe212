/*
 * The few Cortex-M core registers the board support uses (Armv7-M and
 * Armv8-M architecture reference manuals: System Control Space). Our own
 * minimal definitions, so the firmware needs no CMSIS headers.
 */
#ifndef MNCOMPILE_CORTEXM_H
#define MNCOMPILE_CORTEXM_H

#include <stdint.h>

#define MN_REG32(address) (*(volatile uint32_t *)(uintptr_t)(address))

/* Armv8-M Mainline (Cortex-M33, M55, ...): the core has the main stack limit
 * register MSPLIM and, with the Security Extension, the SecureFault exception
 * (vector 7; reserved on Armv7-M). */
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define MN_ARMV8M_MAIN 1
#else
#define MN_ARMV8M_MAIN 0
#endif

/* SysTick */
#define MN_SYST_CSR MN_REG32(0xE000E010u) /* control and status */
#define MN_SYST_RVR MN_REG32(0xE000E014u) /* reload value */
#define MN_SYST_CVR MN_REG32(0xE000E018u) /* current value */
#define MN_SYST_CSR_ENABLE (1u << 0)
#define MN_SYST_CSR_TICKINT (1u << 1)
#define MN_SYST_CSR_CLKSOURCE (1u << 2) /* 1: the processor clock */

/* System control block */
#define MN_SCB_ICSR MN_REG32(0xE000ED04u)
#define MN_SCB_VTOR MN_REG32(0xE000ED08u)
#define MN_SCB_CCR MN_REG32(0xE000ED14u)
#define MN_SCB_SHPR3 MN_REG32(0xE000ED20u)
#define MN_SCB_CFSR MN_REG32(0xE000ED28u)
#define MN_SCB_HFSR MN_REG32(0xE000ED2Cu)
#define MN_SCB_MMFAR MN_REG32(0xE000ED34u)
#define MN_SCB_BFAR MN_REG32(0xE000ED38u)
#define MN_SCB_CPACR MN_REG32(0xE000ED88u)
#define MN_SCB_ICSR_PENDSTSET (1u << 26) /* SysTick exception pending */
#define MN_SCB_CCR_DC (1u << 16)         /* Cortex-M7: data cache enable */
#define MN_SCB_CCR_IC (1u << 17)         /* Cortex-M7: instruction cache enable */
#define MN_SCB_CPACR_CP10_CP11 (0xFu << 20) /* full access to the FPU (and MVE) */

/* Cortex-M7 cache identification and maintenance */
#define MN_SCB_CCSIDR MN_REG32(0xE000ED80u)
#define MN_SCB_CSSELR MN_REG32(0xE000ED84u)
#define MN_SCB_ICIALLU MN_REG32(0xE000EF50u)
#define MN_SCB_DCISW MN_REG32(0xE000EF60u)

/* Nested vectored interrupt controller: set-enable and clear-pending registers,
 * 32 device interrupts per register (interrupt n: register n / 32, bit n % 32). */
#define MN_NVIC_ISER(n) MN_REG32(0xE000E100u + 4u * (uint32_t)(n))
#define MN_NVIC_ICPR(n) MN_REG32(0xE000E280u + 4u * (uint32_t)(n))

/* Debug: halting control, exception and monitor control */
#define MN_DHCSR MN_REG32(0xE000EDF0u)
#define MN_DEMCR MN_REG32(0xE000EDFCu)
#define MN_DHCSR_C_DEBUGEN (1u << 0)   /* a debugger is connected and enabled halting debug */
#define MN_DEMCR_TRCENA (1u << 24)     /* enables the DWT and ITM */

/* Data watchpoint and trace unit */
#define MN_DWT_CTRL MN_REG32(0xE0001000u)
#define MN_DWT_CYCCNT MN_REG32(0xE0001004u)
#define MN_DWT_LAR MN_REG32(0xE0001FB0u) /* lock access register (Cortex-M7) */
#define MN_DWT_CTRL_CYCCNTENA (1u << 0)
#define MN_DWT_CTRL_NOCYCCNT (1u << 25) /* read-only: 1 when there is no cycle counter */
#define MN_DWT_LAR_KEY 0xC5ACCE55u

static inline void mn_dsb(void) { __asm__ volatile("dsb 0xF" ::: "memory"); }
static inline void mn_isb(void) { __asm__ volatile("isb 0xF" ::: "memory"); }

/* PRIMASK: returns the previous state for mn_irq_restore. */
static inline uint32_t mn_irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void mn_irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

static inline uint32_t mn_ipsr(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    return ipsr;
}

/* Grant full access to the FPU (CP10/CP11; on Armv8.1-M also MVE/Helium).
 * Must run before the first floating-point instruction. */
static inline void mn_enable_fpu(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    MN_SCB_CPACR |= MN_SCB_CPACR_CP10_CP11;
    mn_dsb();
    mn_isb();
#endif
}

#endif /* MNCOMPILE_CORTEXM_H */
