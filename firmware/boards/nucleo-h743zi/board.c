/*
 * Board support for the ST Nucleo-H743ZI / -H743ZI2 (STM32H743ZI, Cortex-M7),
 * register by register (ST RM0433), no vendor code. No QEMU model exists: the
 * tests compile and link it; flash it with the on-board ST-LINK (README.md).
 *
 * Clock (board_init, mn_board_clock_init): 480 MHz on silicon revision V (the
 * Nucleo-H743ZI2), 400 MHz on revision Y (early Nucleo-H743ZI boards; ST rates
 * revision Y at 400 MHz), read from DBGMCU_IDCODE.REV_ID.
 *   - supply: LDO (the Nucleo has no SMPS), written once to PWR_CR3;
 *   - voltage scale VOS1, then VOS0 (SYSCFG_PWRCR.ODEN) on revision V;
 *   - flash: 4 wait states, WRHIGHFREQ 2 (AXI clock 240 MHz, RM0433 table 17);
 *   - PLL1 from HSE in bypass (the ST-LINK's 8 MHz MCO on PH0), or, when it
 *     does not start within the timeout (a board without that solder bridge),
 *     from HSI 64 MHz / 8: 8 MHz reference (PLL1RGE 8-16 MHz), VCO wide range
 *     x120 = 960 MHz (x100 = 800 MHz on revision Y), P = 2: sys_ck 480 MHz;
 *   - D1CPRE /1 (core 480 MHz), HPRE /2 (AXI/AHB 240 MHz), every APB /2 (120 MHz).
 *
 * Console: USART3 on PD8 (TX) / PD9 (RX), alternate function 7: the ST-LINK
 * virtual COM port, 115200 8N1, kernel clock pclk1 (120 MHz). Semihosting
 * instead: -DMNCOMPILE_CONSOLE_SEMIHOSTING (common/board_real.h).
 *
 * Time: the DWT cycle counter (core cycles), extended to 64 bits.
 * Caches: I- and D-cache on (common/cache.c); -DMNCOMPILE_NO_CACHES leaves them off.
 */
#include <stdint.h>

#include "stm32.h"

#define MN_BOARD_CPU_HZ 480000000u
#define MN_BOARD_TIMER_DWT 1
#define MN_BOARD_CACHES 1

#define RCC 0x58024400u
#define RCC_CR MN_REG32(RCC + 0x000u)
#define RCC_CFGR MN_REG32(RCC + 0x010u)
#define RCC_D1CFGR MN_REG32(RCC + 0x018u)
#define RCC_D2CFGR MN_REG32(RCC + 0x01Cu)
#define RCC_D3CFGR MN_REG32(RCC + 0x020u)
#define RCC_PLLCKSELR MN_REG32(RCC + 0x028u)
#define RCC_PLLCFGR MN_REG32(RCC + 0x02Cu)
#define RCC_PLL1DIVR MN_REG32(RCC + 0x030u)
#define RCC_AHB4ENR MN_REG32(RCC + 0x0E0u)
#define RCC_APB1LENR MN_REG32(RCC + 0x0E8u)
#define RCC_APB4ENR MN_REG32(RCC + 0x0F4u)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_HSEBYP (1u << 18)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)

#define PWR 0x58024800u
#define PWR_CSR1 MN_REG32(PWR + 0x04u)
#define PWR_CR3 MN_REG32(PWR + 0x0Cu)
#define PWR_D3CR MN_REG32(PWR + 0x18u)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_CR3_SUPPLY_MASK 0x7u /* SCUEN | LDOEN | BYPASS */
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_D3CR_VOS_MASK (3u << 14)
#define PWR_D3CR_VOS1 (3u << 14)
#define PWR_D3CR_VOSRDY (1u << 13)

#define SYSCFG_PWRCR MN_REG32(0x58000400u + 0x2Cu)
#define SYSCFG_PWRCR_ODEN (1u << 0)
#define FLASH_ACR MN_REG32(0x52002000u)
#define DBGMCU_IDCODE MN_REG32(0x5C001000u)
#define REV_V 0x2003u

#define GPIOD 0x58020C00u
#define USART3 0x40004800u
#define UART_BAUD 115200u

static uint32_t pclk1_hz = 64000000u; /* HSI until the PLL runs */

static uint32_t mn_board_clock_init(void)
{
    const int rev_v = (DBGMCU_IDCODE >> 16) == REV_V;
    /* Supply: LDO. PWR_CR3 may be written once after reset; wait for it to act. */
    PWR_CR3 = (PWR_CR3 & ~PWR_CR3_SUPPLY_MASK) | PWR_CR3_LDOEN;
    (void)mn_wait_bits(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY, 1000000u);
    PWR_D3CR = (PWR_D3CR & ~PWR_D3CR_VOS_MASK) | PWR_D3CR_VOS1;
    (void)mn_wait_bits(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY, 1000000u);
    if (rev_v) { /* VOS0: overdrive on top of VOS1 */
        RCC_APB4ENR |= 1u << 1; /* SYSCFGEN */
        (void)RCC_APB4ENR;
        SYSCFG_PWRCR |= SYSCFG_PWRCR_ODEN;
        (void)mn_wait_bits(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY, 1000000u);
    }
    /* Flash wait states before the clock rises: LATENCY 4, WRHIGHFREQ 2. */
    FLASH_ACR = (FLASH_ACR & ~0x3Fu) | (2u << 4) | 4u;
    while ((FLASH_ACR & 0x3Fu) != ((2u << 4) | 4u)) {
    }

    /* PLL1 reference: HSE bypass 8 MHz (/1), else HSI 64 MHz (/8). */
    uint32_t source = 0u /* HSI */, divm = 8u;
    RCC_CR |= RCC_CR_HSEBYP;
    RCC_CR |= RCC_CR_HSEON;
    if (mn_wait_bits(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY, 200000u)) {
        source = 2u; /* HSE */
        divm = 1u;
    } else {
        RCC_CR &= ~(RCC_CR_HSEON | RCC_CR_HSEBYP);
        while (!(RCC_CR & RCC_CR_HSIRDY)) {
        }
    }
    const uint32_t divn = rev_v ? 120u : 100u; /* 8 MHz x N: VCO 960 or 800 MHz */
    RCC_CR &= ~RCC_CR_PLL1ON;
    while (RCC_CR & RCC_CR_PLL1RDY) {
    }
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~((0x3Fu << 4) | 3u)) | (divm << 4) | source;
    /* PLL1: integer mode, wide VCO, input 8-16 MHz (RGE 3), P/Q/R outputs on. */
    RCC_PLLCFGR = (RCC_PLLCFGR & ~0xFu & ~(7u << 16)) | (3u << 2) | (7u << 16);
    /* N, P = 2 (sys_ck), Q = 4, R = 2 (fields hold the value minus one). */
    RCC_PLL1DIVR = (divn - 1u) | ((2u - 1u) << 9) | ((4u - 1u) << 16) | ((2u - 1u) << 24);
    RCC_CR |= RCC_CR_PLL1ON;
    while (!(RCC_CR & RCC_CR_PLL1RDY)) {
    }

    /* Bus prescalers before the switch: D1CPRE /1, HPRE /2, D1PPRE /2, D2PPRE1/2 /2, D3PPRE /2. */
    RCC_D1CFGR = (8u << 0) | (4u << 4);
    RCC_D2CFGR = (4u << 4) | (4u << 8);
    RCC_D3CFGR = (4u << 4);
    RCC_CFGR = (RCC_CFGR & ~7u) | 3u; /* SW = PLL1 */
    while (((RCC_CFGR >> 3) & 7u) != 3u) {
    }
    const uint32_t sys_hz = 8000000u * divn / 2u;
    pclk1_hz = sys_hz / 4u;
    return sys_hz;
}

static void mn_board_uart_init(void)
{
    RCC_AHB4ENR |= 1u << 3;   /* GPIODEN */
    RCC_APB1LENR |= 1u << 18; /* USART3EN */
    (void)RCC_APB1LENR;       /* the enables take effect before the first access */
    mn_stm32_gpio_af(GPIOD, 8u, 7u);
    mn_stm32_gpio_af(GPIOD, 9u, 7u);
    mn_stm32_usart_init(USART3, pclk1_hz, UART_BAUD, 0);
}

static void mn_board_uart_put(uint32_t byte)
{
    mn_stm32_usart_put(USART3, byte);
}

static void mn_board_uart_flush(void)
{
    mn_stm32_usart_flush(USART3);
}

#include "board_real.h"
