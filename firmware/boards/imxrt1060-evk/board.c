/*
 * Board support for the NXP i.MX RT1060 EVK (MIMXRT1062DVL6A, Cortex-M7),
 * register by register (NXP IMXRT1060RM), no vendor code. The boot header the
 * ROM needs is boot_header.c.
 *
 * Watchdogs: the ROM may leave RTWDOG (WDOG3) running and WDOG1/WDOG2's power-down
 * counters armed (they reset the chip after 16 s): board_init() disables them
 * first, because one inference plus printing can take longer.
 *
 * Clock (board_init, mn_board_clock_init): 600 MHz, the part's rated
 * frequency. The DCDC output goes to 1.275 V first; the core clock moves to
 * the 24 MHz oscillator (periph_clk2), ARM_PLL is set to 24 MHz x 100 / 2 =
 * 1200 MHz, ARM_PODF /2 = 600 MHz, AHB /1 (600 MHz), IPG /4 (150 MHz), then the
 * core clock moves back to the PLL path (pre_periph_clk = PLL1 / ARM_PODF).
 * The FlexSPI clock the ROM set up from the FCB is not touched.
 *
 * Console: LPUART1 on GPIO_AD_B0_12 (TX) / GPIO_AD_B0_13 (RX), ALT2: the
 * OpenSDA/MCU-Link virtual COM port, 115200 8N1, clocked from the 24 MHz
 * oscillator (UART_CLK_SEL = osc), oversampling chosen for the smallest error.
 *
 * Time: the DWT cycle counter. Caches: I- and D-cache on (32 KB each).
 */
#include <stdint.h>

#include "cortexm.h"

#define MN_BOARD_CPU_HZ 600000000u
#define MN_BOARD_TIMER_DWT 1
#define MN_BOARD_CACHES 1

#define REG16(address) (*(volatile uint16_t *)(uintptr_t)(address))

#define WDOG1_WCR REG16(0x400B8000u)
#define WDOG1_WMCR REG16(0x400B8008u)
#define WDOG2_WCR REG16(0x400D0000u)
#define WDOG2_WMCR REG16(0x400D0008u)
#define WDOG_WCR_WDE (1u << 2)
#define RTWDOG_CS MN_REG32(0x400BC000u)
#define RTWDOG_CNT MN_REG32(0x400BC004u)
#define RTWDOG_TOVAL MN_REG32(0x400BC008u)
#define RTWDOG_CS_EN (1u << 7)
#define RTWDOG_CS_UPDATE (1u << 5)
#define RTWDOG_CS_CMD32EN (1u << 13)

#define DCDC_REG0 MN_REG32(0x40080000u)
#define DCDC_REG3 MN_REG32(0x4008000Cu)
#define DCDC_STS_DC_OK (1u << 31)
#define DCDC_TRG_1275MV 0x13u /* 0.8 V + 19 x 25 mV */

#define PLL_ARM MN_REG32(0x400D8000u)
#define PLL_ARM_CLR MN_REG32(0x400D8008u)
#define PLL_ARM_ENABLE (1u << 13)
#define PLL_ARM_BYPASS (1u << 16)
#define PLL_ARM_LOCK (1u << 31)

#define CCM 0x400FC000u
#define CCM_CACRR MN_REG32(CCM + 0x10u)
#define CCM_CBCDR MN_REG32(CCM + 0x14u)
#define CCM_CBCMR MN_REG32(CCM + 0x18u)
#define CCM_CSCDR1 MN_REG32(CCM + 0x24u)
#define CCM_CDHIPR MN_REG32(CCM + 0x48u)
#define CCM_CCGR5 MN_REG32(CCM + 0x7Cu)
#define CBCDR_PERIPH_CLK_SEL (1u << 25)
#define CDHIPR_AHB_BUSY (1u << 1)
#define CDHIPR_PERIPH_BUSY (1u << 5)
#define CDHIPR_ARM_BUSY (1u << 16)

#define IOMUXC 0x401F8000u
#define MUX_AD_B0_12 MN_REG32(IOMUXC + 0x0ECu)
#define MUX_AD_B0_13 MN_REG32(IOMUXC + 0x0F0u)
#define PAD_AD_B0_12 MN_REG32(IOMUXC + 0x2DCu)
#define PAD_AD_B0_13 MN_REG32(IOMUXC + 0x2E0u)
#define PAD_UART 0x10B0u /* keeper on, medium speed, drive strength R0/6 */

#define LPUART1 0x40184000u
#define LPUART_GLOBAL MN_REG32(LPUART1 + 0x08u)
#define LPUART_BAUD MN_REG32(LPUART1 + 0x10u)
#define LPUART_STAT MN_REG32(LPUART1 + 0x14u)
#define LPUART_CTRL MN_REG32(LPUART1 + 0x18u)
#define LPUART_DATA MN_REG32(LPUART1 + 0x1Cu)
#define LPUART_STAT_TC (1u << 22)
#define LPUART_STAT_TDRE (1u << 23)
#define LPUART_CTRL_RE (1u << 18)
#define LPUART_CTRL_TE (1u << 19)
#define UART_CLOCK_HZ 24000000u
#define UART_BAUD 115200u

static void disable_watchdogs(void)
{
    WDOG1_WMCR = 0u; /* power-down counters off */
    WDOG2_WMCR = 0u;
    WDOG1_WCR = (uint16_t)(WDOG1_WCR & ~WDOG_WCR_WDE);
    WDOG2_WCR = (uint16_t)(WDOG2_WCR & ~WDOG_WCR_WDE);
    /* RTWDOG: unlock (one 32-bit write, or the two 16-bit halves), then disable. */
    if (RTWDOG_CS & RTWDOG_CS_CMD32EN) {
        RTWDOG_CNT = 0xD928C520u;
    } else {
        RTWDOG_CNT = 0xC520u;
        RTWDOG_CNT = 0xD928u;
    }
    RTWDOG_TOVAL = 0xFFFFu;
    RTWDOG_CS = (RTWDOG_CS & ~RTWDOG_CS_EN) | RTWDOG_CS_UPDATE;
}

static uint32_t mn_board_clock_init(void)
{
    disable_watchdogs();
    DCDC_REG3 = (DCDC_REG3 & ~0x1Fu) | DCDC_TRG_1275MV;
    while (!(DCDC_REG0 & DCDC_STS_DC_OK)) {
    }
    /* Core on the 24 MHz oscillator meanwhile: periph_clk2 = osc, /1. */
    CCM_CBCMR = (CCM_CBCMR & ~(3u << 12)) | (1u << 12);
    CCM_CBCDR &= ~(7u << 27);
    CCM_CBCDR |= CBCDR_PERIPH_CLK_SEL;
    while (CCM_CDHIPR & CDHIPR_PERIPH_BUSY) {
    }
    /* ARM_PLL: 24 MHz x 100 / 2 = 1200 MHz, bypassed until locked. */
    PLL_ARM = PLL_ARM_BYPASS | PLL_ARM_ENABLE | 100u;
    while (!(PLL_ARM & PLL_ARM_LOCK)) {
    }
    PLL_ARM_CLR = PLL_ARM_BYPASS;
    CCM_CACRR = 1u; /* ARM_PODF /2: 600 MHz */
    while (CCM_CDHIPR & CDHIPR_ARM_BUSY) {
    }
    CCM_CBCDR = (CCM_CBCDR & ~((7u << 10) | (3u << 8))) | (0u << 10) | (3u << 8); /* AHB /1, IPG /4 */
    while (CCM_CDHIPR & CDHIPR_AHB_BUSY) {
    }
    CCM_CBCMR = (CCM_CBCMR & ~(3u << 18)) | (3u << 18); /* pre_periph_clk = PLL1 / ARM_PODF */
    CCM_CBCDR &= ~CBCDR_PERIPH_CLK_SEL;
    while (CCM_CDHIPR & CDHIPR_PERIPH_BUSY) {
    }
    return 600000000u;
}

static void mn_board_uart_init(void)
{
    CCM_CSCDR1 = (CCM_CSCDR1 & ~0x7Fu) | (1u << 6); /* UART_CLK_SEL osc 24 MHz, PODF /1 */
    CCM_CCGR5 |= 3u << 24;                          /* LPUART1 clock gate on */
    MUX_AD_B0_12 = 2u;                              /* ALT2: LPUART1_TX */
    MUX_AD_B0_13 = 2u;                              /* ALT2: LPUART1_RX */
    PAD_AD_B0_12 = PAD_UART;
    PAD_AD_B0_13 = PAD_UART;
    LPUART_GLOBAL = 1u << 1; /* software reset */
    LPUART_GLOBAL = 0u;
    /* baud = clock / (OSR x SBR): the oversampling ratio 8..32 with the least error. */
    uint32_t best_osr = 16u, best_sbr = 13u, best_error = UINT32_MAX;
    for (uint32_t osr = 8u; osr <= 32u; osr++) {
        const uint32_t sbr = (UART_CLOCK_HZ + osr * UART_BAUD / 2u) / (osr * UART_BAUD);
        if (sbr == 0u || sbr >= 8192u) {
            continue;
        }
        const uint32_t actual = UART_CLOCK_HZ / (osr * sbr);
        const uint32_t error = actual > UART_BAUD ? actual - UART_BAUD : UART_BAUD - actual;
        if (error < best_error) {
            best_osr = osr;
            best_sbr = sbr;
            best_error = error;
        }
    }
    LPUART_BAUD = ((best_osr - 1u) << 24) | best_sbr; /* 8N1, one stop bit */
    LPUART_CTRL = LPUART_CTRL_TE | LPUART_CTRL_RE;
}

static void mn_board_uart_put(uint32_t byte)
{
    while (!(LPUART_STAT & LPUART_STAT_TDRE)) {
    }
    LPUART_DATA = byte & 0xFFu;
}

static void mn_board_uart_flush(void)
{
    while (!(LPUART_STAT & LPUART_STAT_TC)) {
    }
}

#include "board_real.h"
