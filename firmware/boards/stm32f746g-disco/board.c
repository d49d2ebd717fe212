/*
 * Board support for the ST STM32F746G-DISCO (STM32F746NG, Cortex-M7), register
 * by register (ST RM0385), no vendor code.
 *
 * Clock (board_init, mn_board_clock_init): 216 MHz, the part's maximum:
 * voltage scale 1 with over-drive (PWR_CR1.ODEN, then ODSWEN), 7 flash wait
 * states (2.7-3.6 V) with ART accelerator and prefetch, PLL from the board's
 * 25 MHz crystal (HSE, X2) / 25 = 1 MHz, x432 = 432 MHz VCO, P = 2: 216 MHz
 * (Q = 9: 48 MHz). When the crystal does not start, the PLL runs from HSI
 * 16 MHz / 16 instead (same multipliers). AHB /1, APB1 /4 (54 MHz), APB2 /2
 * (108 MHz).
 *
 * Console: USART1 on PA9 (TX) / PB7 (RX), alternate function 7: the ST-LINK
 * virtual COM port, 115200 8N1, kernel clock PCLK2 (108 MHz).
 *
 * Time: the DWT cycle counter. Caches: I- and D-cache on (4 KB each).
 */
#include <stdint.h>

#include "stm32.h"

#define MN_BOARD_CPU_HZ 216000000u
#define MN_BOARD_TIMER_DWT 1
#define MN_BOARD_CACHES 1

#define RCC 0x40023800u
#define RCC_CR MN_REG32(RCC + 0x00u)
#define RCC_PLLCFGR MN_REG32(RCC + 0x04u)
#define RCC_CFGR MN_REG32(RCC + 0x08u)
#define RCC_AHB1ENR MN_REG32(RCC + 0x30u)
#define RCC_APB1ENR MN_REG32(RCC + 0x40u)
#define RCC_APB2ENR MN_REG32(RCC + 0x44u)
#define RCC_DCKCFGR2 MN_REG32(RCC + 0x90u)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)

#define PWR 0x40007000u
#define PWR_CR1 MN_REG32(PWR + 0x00u)
#define PWR_CSR1 MN_REG32(PWR + 0x04u)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)

#define FLASH_ACR MN_REG32(0x40023C00u)
#define FLASH_ACR_BITS ((1u << 8) | (1u << 9) | 7u) /* PRFTEN, ARTEN, 7 WS */

#define GPIOA 0x40020000u
#define GPIOB 0x40020400u
#define USART1 0x40011000u
#define UART_BAUD 115200u

static uint32_t pclk2_hz = 16000000u; /* HSI after reset */

static uint32_t mn_board_clock_init(void)
{
    RCC_APB1ENR |= 1u << 28; /* PWREN */
    (void)RCC_APB1ENR;
    PWR_CR1 |= 3u << 14; /* VOS scale 1 (takes effect when the PLL is on) */

    uint32_t source = 0u, divm = 16u; /* HSI 16 MHz / 16 */
    RCC_CR |= RCC_CR_HSEON;
    if (mn_wait_bits(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY, 500000u)) {
        source = 1u << 22; /* PLLSRC = HSE */
        divm = 25u;        /* 25 MHz crystal */
    } else {
        RCC_CR &= ~RCC_CR_HSEON;
        while (!(RCC_CR & RCC_CR_HSIRDY)) {
        }
    }
    RCC_CR &= ~RCC_CR_PLLON;
    while (RCC_CR & RCC_CR_PLLRDY) {
    }
    /* M, N = 432, P = 2 (field 0), Q = 9. */
    RCC_PLLCFGR = divm | (432u << 6) | (0u << 16) | source | (9u << 24);
    RCC_CR |= RCC_CR_PLLON;
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }
    /* Over-drive for 216 MHz (RM0385 5.1.4): enable, then switch. */
    PWR_CR1 |= PWR_CR1_ODEN;
    while (!(PWR_CSR1 & PWR_CSR1_ODRDY)) {
    }
    PWR_CR1 |= PWR_CR1_ODSWEN;
    while (!(PWR_CSR1 & PWR_CSR1_ODSWRDY)) {
    }
    FLASH_ACR = (FLASH_ACR & ~0xFu) | FLASH_ACR_BITS;
    while ((FLASH_ACR & 0xFu) != 7u) {
    }
    /* HPRE /1, PPRE1 /4 (101), PPRE2 /2 (100), SW = PLL. */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13) | 3u)) | (5u << 10) | (4u << 13) | 2u;
    while (((RCC_CFGR >> 2) & 3u) != 2u) {
    }
    pclk2_hz = 108000000u;
    return 216000000u;
}

static void mn_board_uart_init(void)
{
    RCC_AHB1ENR |= (1u << 0) | (1u << 1); /* GPIOAEN, GPIOBEN */
    RCC_APB2ENR |= 1u << 4;               /* USART1EN */
    RCC_DCKCFGR2 &= ~3u;                  /* USART1SEL = PCLK2 */
    (void)RCC_APB2ENR;
    mn_stm32_gpio_af(GPIOA, 9u, 7u);
    mn_stm32_gpio_af(GPIOB, 7u, 7u);
    mn_stm32_usart_init(USART1, pclk2_hz, UART_BAUD, 0);
}

static void mn_board_uart_put(uint32_t byte)
{
    mn_stm32_usart_put(USART1, byte);
}

static void mn_board_uart_flush(void)
{
    mn_stm32_usart_flush(USART1);
}

#include "board_real.h"
