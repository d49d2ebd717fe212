/*
 * Board support for the Raspberry Pi Pico (RP2040: two Cortex-M0+ cores; the
 * firmware runs on core 0), register by register (RP2040 datasheet), no
 * vendor code.
 *
 * Boot: the boot ROM runs boot2 (boot2.S / boot2.c, the first 256 bytes of
 * flash), which sets up execute-in-place and enters the vector table at
 * 0x10000100 (startup.c). Everything after that is common/reset.c.
 *
 * Clock (board_init, mn_board_clock_init): 125 MHz, the RP2040's rated
 * frequency. The 12 MHz crystal oscillator (XOSC) starts; clk_sys moves to
 * clk_ref, clk_ref to XOSC; PLL_SYS: REFDIV 1, FBDIV 125 (VCO 1500 MHz),
 * POSTDIV1 6, POSTDIV2 2 = 125 MHz; clk_sys then takes the PLL (glitchless
 * aux mux) and clk_peri, the UART's clock, follows clk_sys.
 *
 * Console: UART0 on GP0 (TX, pin 1) / GP1 (RX, pin 2), 115200 8N1, 3.3 V. The
 * Pico has no debugger on board: wire a USB-serial adapter, or use a Raspberry
 * Pi Debug Probe (its UART port) or a second Pico running picoprobe.
 *
 * Time: SysTick at the processor clock (the Cortex-M0+ has no DWT cycle
 * counter), 24-bit wraps counted into 64 bits.
 */
#include <stdint.h>

#include "cortexm.h"

#define MN_BOARD_CPU_HZ 125000000u
#define MN_BOARD_TIMER_SYSTICK 1

#define SET(addr) MN_REG32((addr) + 0x2000u) /* atomic bit set alias */
#define CLR(addr) MN_REG32((addr) + 0x3000u) /* atomic bit clear alias */

#define RESETS 0x4000C000u
#define RESETS_RESET (RESETS + 0x0u)
#define RESETS_DONE MN_REG32(RESETS + 0x8u)
#define RESET_IO_BANK0 (1u << 5)
#define RESET_PADS_BANK0 (1u << 8)
#define RESET_PLL_SYS (1u << 12)
#define RESET_UART0 (1u << 22)

#define XOSC 0x40024000u
#define XOSC_CTRL MN_REG32(XOSC + 0x00u)
#define XOSC_STATUS MN_REG32(XOSC + 0x04u)
#define XOSC_STARTUP MN_REG32(XOSC + 0x0Cu)
#define XOSC_FREQ_1_15MHZ 0xAA0u
#define XOSC_ENABLE (0xFABu << 12)
#define XOSC_STABLE (1u << 31)

#define CLOCKS 0x40008000u
#define CLK_REF_CTRL (CLOCKS + 0x30u)
#define CLK_REF_SELECTED MN_REG32(CLOCKS + 0x38u)
#define CLK_SYS_CTRL (CLOCKS + 0x3Cu)
#define CLK_SYS_SELECTED MN_REG32(CLOCKS + 0x44u)
#define CLK_PERI_CTRL (CLOCKS + 0x48u)
#define CLK_PERI_ENABLE (1u << 11)

#define PLL_SYS 0x40028000u
#define PLL_CS MN_REG32(PLL_SYS + 0x0u)
#define PLL_PWR (PLL_SYS + 0x4u)
#define PLL_FBDIV_INT MN_REG32(PLL_SYS + 0x8u)
#define PLL_PRIM MN_REG32(PLL_SYS + 0xCu)
#define PLL_CS_LOCK (1u << 31)
#define PLL_PWR_PD (1u << 0)
#define PLL_PWR_POSTDIVPD (1u << 3)
#define PLL_PWR_VCOPD (1u << 5)

#define IO_BANK0_GPIO_CTRL(n) MN_REG32(0x40014000u + 0x04u + 8u * (n))
#define FUNCSEL_UART 2u

#define UART0 0x40034000u /* Arm PL011 */
#define UART_DR MN_REG32(UART0 + 0x00u)
#define UART_FR MN_REG32(UART0 + 0x18u)
#define UART_IBRD MN_REG32(UART0 + 0x24u)
#define UART_FBRD MN_REG32(UART0 + 0x28u)
#define UART_LCR_H MN_REG32(UART0 + 0x2Cu)
#define UART_CR MN_REG32(UART0 + 0x30u)
#define UART_FR_BUSY (1u << 3)
#define UART_FR_TXFF (1u << 5)
#define UART_BAUD 115200u

static uint32_t peri_hz = 6500000u; /* ROSC, roughly, after reset */

static void unreset(uint32_t bits)
{
    CLR(RESETS_RESET) = bits;
    while ((RESETS_DONE & bits) != bits) {
    }
}

static uint32_t mn_board_clock_init(void)
{
    XOSC_STARTUP = 47u; /* 1 ms: 12 MHz x 1 ms / 256 */
    XOSC_CTRL = XOSC_FREQ_1_15MHZ | XOSC_ENABLE;
    while (!(XOSC_STATUS & XOSC_STABLE)) {
    }
    CLR(CLK_SYS_CTRL) = 1u; /* clk_sys from clk_ref (glitchless) */
    while (CLK_SYS_SELECTED != 1u) {
    }
    MN_REG32(CLK_REF_CTRL) = (MN_REG32(CLK_REF_CTRL) & ~3u) | 2u; /* clk_ref from XOSC */
    while (CLK_REF_SELECTED != (1u << 2)) {
    }

    SET(RESETS_RESET) = RESET_PLL_SYS;
    unreset(RESET_PLL_SYS);
    PLL_CS = 1u; /* REFDIV */
    PLL_FBDIV_INT = 125u;
    CLR(PLL_PWR) = PLL_PWR_PD | PLL_PWR_VCOPD;
    while (!(PLL_CS & PLL_CS_LOCK)) {
    }
    PLL_PRIM = (6u << 16) | (2u << 12);
    CLR(PLL_PWR) = PLL_PWR_POSTDIVPD;

    MN_REG32(CLK_SYS_CTRL) &= ~(7u << 5); /* aux source: PLL_SYS (while on clk_ref) */
    SET(CLK_SYS_CTRL) = 1u;               /* clk_sys from the aux mux */
    while (CLK_SYS_SELECTED != 2u) {
    }
    MN_REG32(CLK_PERI_CTRL) = 0u; /* off, aux source clk_sys, then on */
    MN_REG32(CLK_PERI_CTRL) = CLK_PERI_ENABLE;
    peri_hz = 125000000u;
    return 125000000u;
}

static void mn_board_uart_init(void)
{
    unreset(RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0);
    /* PL011 divisor in 1/64ths: 4 x clk_peri / baud, rounded. */
    const uint32_t div64 = (4u * peri_hz + UART_BAUD / 2u) / UART_BAUD;
    UART_IBRD = div64 >> 6;
    UART_FBRD = div64 & 0x3Fu;
    UART_LCR_H = (3u << 5) | (1u << 4); /* 8 bits, FIFOs on (also latches the divisor) */
    UART_CR = (1u << 0) | (1u << 8) | (1u << 9); /* UARTEN, TXE, RXE */
    IO_BANK0_GPIO_CTRL(0u) = FUNCSEL_UART;
    IO_BANK0_GPIO_CTRL(1u) = FUNCSEL_UART;
}

static void mn_board_uart_put(uint32_t byte)
{
    while (UART_FR & UART_FR_TXFF) {
    }
    UART_DR = byte & 0xFFu;
}

static void mn_board_uart_flush(void)
{
    while (UART_FR & UART_FR_BUSY) {
    }
}

#include "board_real.h"
