/*
 * Board support for the ST Nucleo-L4R5ZI (STM32L4R5ZI, Cortex-M4F), the MLPerf
 * Tiny reference board, register by register (ST RM0432), no vendor code.
 *
 * Clock (board_init, mn_board_clock_init): 120 MHz, the part's maximum, in
 * voltage range 1 boost mode (PWR_CR5.R1MODE = 0), following RM0432's
 * sequence for going above 80 MHz: AHB /2 first, 5 flash wait states
 * (prefetch, instruction and data caches on), PLL from HSI16 / 2 = 8 MHz,
 * x30 = 240 MHz VCO, R = 2: 120 MHz; switch, wait over 1 us, then AHB /1.
 * APB1 and APB2 /1 (120 MHz). HSI16 needs no crystal (the Nucleo's HSE is not
 * fitted), and its 1 % accuracy is ample for 115200 baud.
 *
 * Console: LPUART1 on PG7 (TX) / PG8 (RX), alternate function 8: the ST-LINK
 * virtual COM port, 115200 8N1, kernel clock PCLK1. Port G pins 2-15 are
 * powered from VDDIO2, which must be declared valid (PWR_CR2.IOSV) first.
 *
 * Time: the DWT cycle counter (core cycles).
 */
#include <stdint.h>

#include "stm32.h"

#define MN_BOARD_CPU_HZ 120000000u
#define MN_BOARD_TIMER_DWT 1

#define RCC 0x40021000u
#define RCC_CR MN_REG32(RCC + 0x00u)
#define RCC_CFGR MN_REG32(RCC + 0x08u)
#define RCC_PLLCFGR MN_REG32(RCC + 0x0Cu)
#define RCC_AHB2ENR MN_REG32(RCC + 0x4Cu)
#define RCC_APB1ENR1 MN_REG32(RCC + 0x58u)
#define RCC_APB1ENR2 MN_REG32(RCC + 0x5Cu)
#define RCC_CCIPR MN_REG32(RCC + 0x88u)
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)

#define PWR 0x40007000u
#define PWR_CR1 MN_REG32(PWR + 0x00u)
#define PWR_CR2 MN_REG32(PWR + 0x04u)
#define PWR_SR2 MN_REG32(PWR + 0x14u)
#define PWR_CR5 MN_REG32(PWR + 0x80u)
#define PWR_CR2_IOSV (1u << 9)
#define PWR_SR2_VOSF (1u << 10)
#define PWR_CR5_R1MODE (1u << 8)

#define FLASH_ACR MN_REG32(0x40022000u)
#define FLASH_ACR_BITS ((1u << 8) | (1u << 9) | (1u << 10) | 5u) /* PRFTEN ICEN DCEN, 5 WS */

#define GPIOG 0x48001800u
#define LPUART1 0x40008000u
#define UART_BAUD 115200u

static uint32_t pclk1_hz = 4000000u; /* MSI 4 MHz after reset */

static uint32_t mn_board_clock_init(void)
{
    RCC_APB1ENR1 |= 1u << 28; /* PWREN */
    (void)RCC_APB1ENR1;
    PWR_CR1 = (PWR_CR1 & ~(3u << 9)) | (1u << 9); /* VOS range 1 (the reset value) */
    while (PWR_SR2 & PWR_SR2_VOSF) {
    }
    RCC_CFGR = (RCC_CFGR & ~(0xFu << 4)) | (8u << 4); /* HPRE /2 during the transition */
    PWR_CR5 &= ~PWR_CR5_R1MODE;                        /* range 1 boost: up to 120 MHz */
    FLASH_ACR = (FLASH_ACR & ~0xFu) | FLASH_ACR_BITS;
    while ((FLASH_ACR & 0xFu) != 5u) {
    }

    RCC_CR |= RCC_CR_HSION;
    while (!(RCC_CR & RCC_CR_HSIRDY)) {
    }
    RCC_CR &= ~RCC_CR_PLLON;
    while (RCC_CR & RCC_CR_PLLRDY) {
    }
    /* PLLSRC HSI16, M = 2 (field M-1), N = 30, R = 2 (field 0), PLLREN. */
    RCC_PLLCFGR = 2u | ((2u - 1u) << 4) | (30u << 8) | (1u << 24);
    RCC_CR |= RCC_CR_PLLON;
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }
    RCC_CFGR = (RCC_CFGR & ~((7u << 8) | (7u << 11) | 3u)) | 3u; /* APB1, APB2 /1; SW = PLL */
    while (((RCC_CFGR >> 2) & 3u) != 3u) {
    }
    for (volatile uint32_t i = 0; i < 200u; i++) { /* > 1 us at 60 MHz */
    }
    RCC_CFGR &= ~(0xFu << 4); /* HPRE /1: 120 MHz */
    pclk1_hz = 120000000u;
    return 120000000u;
}

static void mn_board_uart_init(void)
{
    RCC_APB1ENR1 |= 1u << 28; /* PWREN: PWR_CR2 needs it */
    (void)RCC_APB1ENR1;
    PWR_CR2 |= PWR_CR2_IOSV;  /* VDDIO2 valid: port G 2-15 usable */
    RCC_AHB2ENR |= 1u << 6;   /* GPIOGEN */
    RCC_APB1ENR2 |= 1u << 0;  /* LPUART1EN */
    RCC_CCIPR &= ~(3u << 10); /* LPUART1SEL = PCLK1 */
    (void)RCC_APB1ENR2;
    mn_stm32_gpio_af(GPIOG, 7u, 8u);
    mn_stm32_gpio_af(GPIOG, 8u, 8u);
    mn_stm32_usart_init(LPUART1, pclk1_hz, UART_BAUD, 1);
}

static void mn_board_uart_put(uint32_t byte)
{
    mn_stm32_usart_put(LPUART1, byte);
}

static void mn_board_uart_flush(void)
{
    mn_stm32_usart_flush(LPUART1);
}

#include "board_real.h"
