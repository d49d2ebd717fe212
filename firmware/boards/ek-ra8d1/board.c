/*
 * Board support for the Renesas EK-RA8D1 (R7FA8D1BH: Cortex-M85 with Helium,
 * Armv8.1-M), register by register (Renesas RA8D1 user's manual; register
 * offsets and bit positions checked against the RA8D1 CMSIS device header),
 * no vendor code. The image runs in the Secure state, as the core leaves reset.
 *
 * Clock (board_init, mn_board_clock_init): CPUCLK 480 MHz, the part's rated
 * frequency. The 20 MHz crystal (main oscillator, drive for 8-24 MHz) starts;
 * code flash gets 4 wait states (ICLK 240 MHz); PLL1 from the crystal / 2 =
 * 10 MHz, x96 = 960 MHz VCO, P /2 = 480 MHz (Q /4, R /4 = 240 MHz); the system
 * clock switches to PLL1P with CPUCLK /2 and ICLK /4 first, then CPUCLK /1
 * (480 MHz), ICLK /2 (240 MHz), PCLKA /4 (120), PCLKB /8 (60), PCLKC /8 (60),
 * PCLKD /4 (120), PCLKE /2 (240), BCLK /4 (120), FCLK /8 (60 MHz).
 *
 * Console: SCI9 on P10_14 (TXD9) / P10_15 (RXD9), the J-Link OB virtual COM
 * port, 115200 8N1. SCICLK = PLL1P / 4 = 120 MHz; asynchronous mode with an
 * 8-cycle base clock (CCR2.ABCS): N = 120 MHz / (16 x 115200) - 1 = 64, +0.16 %.
 *
 * Time: the DWT cycle counter. Caches: I- and D-cache on (common/cache.c).
 */
#include <stdint.h>

#include "cortexm.h"

#define MN_BOARD_CPU_HZ 480000000u
#define MN_BOARD_TIMER_DWT 1
#define MN_BOARD_CACHES 1

#define REG8(address) (*(volatile uint8_t *)(uintptr_t)(address))
#define REG16(address) (*(volatile uint16_t *)(uintptr_t)(address))

#define SYSTEM 0x4001E000u
#define SCKDIVCR MN_REG32(SYSTEM + 0x020u)
#define SCKDIVCR2 REG8(SYSTEM + 0x024u)
#define SCKSCR REG8(SYSTEM + 0x026u)
#define PLLCCR REG16(SYSTEM + 0x028u)
#define PLLCR REG8(SYSTEM + 0x02Au)
#define MOSCCR REG8(SYSTEM + 0x032u)
#define OSCSF REG8(SYSTEM + 0x03Cu)
#define PLLCCR2 REG16(SYSTEM + 0x04Cu)
#define SCICKDIVCR REG8(SYSTEM + 0x054u)
#define SCICKCR REG8(SYSTEM + 0x055u)
#define MOSCWTCR REG8(SYSTEM + 0x0A2u)
#define PRCR REG16(SYSTEM + 0x3FAu) /* the Secure one */
#define MOMCR REG8(SYSTEM + 0xA50u)
#define OSCSF_MOSCSF (1u << 3)
#define OSCSF_PLLSF (1u << 5)
#define PRCR_KEY 0xA500u
#define PRCR_CLOCKS_POWER 0x3u /* PRC0 (clocks), PRC1 (low power, module stop) */
#define CKSREQ (1u << 6)
#define CKSRDY (1u << 7)

/* SCKDIVCR fields: 0 /1, 1 /2, 2 /4, 3 /8. */
#define DIVIDERS(ick) ((3u << 28) | ((ick) << 24) | (1u << 20) | (2u << 16) | (2u << 12) | (3u << 8) | (3u << 4) | 2u)
#define SOURCE_PLL1P 5u

#define FLWT REG8(0x4001C11Cu) /* R_FCACHE FLWT: code flash wait cycles */
#define MSTPCRB MN_REG32(0x40203004u)
#define MSTPCRB_SCI9 (1u << 22)

#define PWPR REG8(0x40400D0Cu)
#define PWPRS REG8(0x40400D14u)
#define PWPR_B0WI (1u << 7)
#define PWPR_PFSWE (1u << 6)
#define PFS(port, pin) MN_REG32(0x40400800u + 0x40u * (port) + 4u * (pin))
#define PFS_PMR (1u << 16)
#define PSEL_SCI_ODD (5u << 24) /* SCI1, 3, 5, 7, 9 */

#define SCI9 0x40358900u /* SCI_B */
#define SCI_TDR MN_REG32(SCI9 + 0x04u)
#define SCI_CCR0 MN_REG32(SCI9 + 0x08u)
#define SCI_CCR1 MN_REG32(SCI9 + 0x0Cu)
#define SCI_CCR2 MN_REG32(SCI9 + 0x10u)
#define SCI_CCR3 MN_REG32(SCI9 + 0x14u)
#define SCI_CCR4 MN_REG32(SCI9 + 0x18u)
#define SCI_CESR REG8(SCI9 + 0x1Cu)
#define SCI_CSR MN_REG32(SCI9 + 0x48u)
#define SCI_CFCLR MN_REG32(SCI9 + 0x68u)
#define SCI_CCR0_RE (1u << 0)
#define SCI_CCR0_TE (1u << 4)
#define SCI_CESR_TIST (1u << 4)
#define SCI_CSR_TDRE (1u << 29)
#define SCI_CSR_TEND (1u << 30)
#define SCI_CLOCK_HZ 120000000u
#define UART_BAUD 115200u

static uint32_t mn_board_clock_init(void)
{
    PRCR = PRCR_KEY | PRCR_CLOCKS_POWER;
    MOMCR = 3u << 1;    /* MODRV0: drive for an 8-24 MHz crystal; MOSEL 0: crystal */
    MOSCWTCR = 9u;      /* stabilisation wait */
    MOSCCR = 0u;        /* start the main oscillator */
    while (!(OSCSF & OSCSF_MOSCSF)) {
    }
    FLWT = 4u; /* ICLK 192-240 MHz: 4 wait cycles */
    /* PLL1: source main oscillator, input /2 (PLIDIV 1), x96 (PLLMUL 95). */
    PLLCCR = (uint16_t)((95u << 8) | 1u);
    PLLCCR2 = (uint16_t)((3u << 8) | (3u << 4) | 1u); /* R /4, Q /4, P /2 (fields: divisor - 1) */
    PLLCR = 0u;
    while (!(OSCSF & OSCSF_PLLSF)) {
    }
    SCKDIVCR = DIVIDERS(2u); /* ICLK /4 */
    SCKDIVCR2 = 1u;          /* CPUCLK /2 */
    SCKSCR = SOURCE_PLL1P;
    SCKDIVCR = DIVIDERS(1u); /* ICLK /2: 240 MHz */
    SCKDIVCR2 = 0u;          /* CPUCLK /1: 480 MHz */
    (void)SCKDIVCR2;

    /* SCICLK: stop it, PLL1P / 4, start it. */
    SCICKCR |= CKSREQ;
    while (!(SCICKCR & CKSRDY)) {
    }
    SCICKDIVCR = 2u; /* /4 */
    SCICKCR = (uint8_t)(SOURCE_PLL1P | CKSREQ | CKSRDY);
    SCICKCR &= (uint8_t)~CKSREQ;
    while (SCICKCR & CKSRDY) {
    }
    PRCR = PRCR_KEY;
    return 480000000u;
}

static void mn_board_uart_init(void)
{
    PRCR = PRCR_KEY | PRCR_CLOCKS_POWER;
    MSTPCRB &= ~MSTPCRB_SCI9;
    PRCR = PRCR_KEY;
    /* Pins: unlock the PFS registers, P10_14/P10_15 to SCI9, lock again. */
    PWPR = 0u;
    PWPR = PWPR_PFSWE;
    PWPRS = 0u;
    PWPRS = PWPR_PFSWE;
    for (uint32_t pin = 14u; pin <= 15u; pin++) {
        PFS(10u, pin) = 0u;
        PFS(10u, pin) = PSEL_SCI_ODD;
        PFS(10u, pin) = PSEL_SCI_ODD | PFS_PMR;
    }
    PWPRS = 0u;
    PWPRS = PWPR_B0WI;
    PWPR = 0u;
    PWPR = PWPR_B0WI;

    SCI_CCR0 = 0u;
    while (SCI_CESR & SCI_CESR_TIST) {
    }
    SCI_CFCLR = 0x9D070010u; /* clear every status flag */
    SCI_CCR3 = (1u << 12) | (2u << 8); /* LSB first, 8 data bits, 1 stop bit, asynchronous */
    const uint32_t n = (SCI_CLOCK_HZ + 8u * UART_BAUD) / (16u * UART_BAUD) - 1u;
    SCI_CCR2 = (0xFFu << 24) | (n << 8) | (1u << 5) | 4u; /* BRR = n, ABCS: 16 clocks per bit */
    SCI_CCR1 = 3u << 4; /* no parity, no flow control, break level high */
    SCI_CCR4 = 0u;
    SCI_CCR0 = SCI_CCR0_TE | SCI_CCR0_RE;
    while (!(SCI_CESR & SCI_CESR_TIST)) {
    }
}

static void mn_board_uart_put(uint32_t byte)
{
    while (!(SCI_CSR & SCI_CSR_TDRE)) {
    }
    SCI_TDR = byte & 0xFFu;
}

static void mn_board_uart_flush(void)
{
    while (!(SCI_CSR & SCI_CSR_TEND)) {
    }
}

#include "board_real.h"
