/*
 * The STM32 peripherals the ST boards' board.c share (static inline, header
 * only, included by those board.c files): GPIO alternate functions and the
 * "new" USART/LPUART (STM32F7, STM32H7, STM32L4+: ISR/TDR registers). Register
 * offsets from ST's reference manuals RM0385 (F7), RM0433 (H7) and RM0432
 * (L4+), where the GPIO and U(S)ART blocks have the same layout.
 */
#ifndef MNCOMPILE_STM32_H
#define MNCOMPILE_STM32_H

#include <stdint.h>

#include "cortexm.h"

/* GPIO port */
#define MN_GPIO_MODER(port) MN_REG32((port) + 0x00u)
#define MN_GPIO_OSPEEDR(port) MN_REG32((port) + 0x08u)
#define MN_GPIO_AFR(port, pin) MN_REG32((port) + 0x20u + 4u * ((pin) >> 3)) /* AFRL pins 0-7, AFRH 8-15 */

/* USART / LPUART */
#define MN_USART_CR1(uart) MN_REG32((uart) + 0x00u)
#define MN_USART_BRR(uart) MN_REG32((uart) + 0x0Cu)
#define MN_USART_ISR(uart) MN_REG32((uart) + 0x1Cu)
#define MN_USART_TDR(uart) MN_REG32((uart) + 0x28u)
#define MN_USART_CR1_UE (1u << 0)
#define MN_USART_CR1_RE (1u << 2)
#define MN_USART_CR1_TE (1u << 3)
#define MN_USART_ISR_TC (1u << 6)
#define MN_USART_ISR_TXE (1u << 7) /* TXE, or TXFNF with the FIFO (H7) */

/* Put `pin` of the GPIO port at `port` into alternate function `af`, at high speed. */
static inline void mn_stm32_gpio_af(uint32_t port, uint32_t pin, uint32_t af)
{
    const uint32_t shift2 = 2u * pin, shift4 = 4u * (pin & 7u);
    MN_GPIO_AFR(port, pin) = (MN_GPIO_AFR(port, pin) & ~(0xFu << shift4)) | (af << shift4);
    MN_GPIO_OSPEEDR(port) = (MN_GPIO_OSPEEDR(port) & ~(3u << shift2)) | (2u << shift2);
    MN_GPIO_MODER(port) = (MN_GPIO_MODER(port) & ~(3u << shift2)) | (2u << shift2); /* 10: alternate */
}

/* 8N1, transmitter and receiver on. A USART's BRR is kernel clock / baud (16x
 * oversampling); an LPUART's is 256 * kernel clock / baud. Rounded to nearest. */
static inline void mn_stm32_usart_init(uint32_t uart, uint32_t kernel_hz, uint32_t baud, int lpuart)
{
    MN_USART_CR1(uart) = 0u;
    if (lpuart) {
        MN_USART_BRR(uart) = (uint32_t)((256ull * kernel_hz + baud / 2u) / baud);
    } else {
        MN_USART_BRR(uart) = (kernel_hz + baud / 2u) / baud;
    }
    MN_USART_CR1(uart) = MN_USART_CR1_TE | MN_USART_CR1_RE | MN_USART_CR1_UE;
}

static inline void mn_stm32_usart_put(uint32_t uart, uint32_t byte)
{
    while (!(MN_USART_ISR(uart) & MN_USART_ISR_TXE)) {
    }
    MN_USART_TDR(uart) = byte & 0xFFu;
}

static inline void mn_stm32_usart_flush(uint32_t uart)
{
    while (!(MN_USART_ISR(uart) & MN_USART_ISR_TC)) {
    }
}

/* Wait until (register & mask) == value, at most `tries` reads; 1 when it came. */
static inline int mn_wait_bits(volatile uint32_t *reg, uint32_t mask, uint32_t value, uint32_t tries)
{
    while (tries-- != 0u) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

#endif /* MNCOMPILE_STM32_H */
