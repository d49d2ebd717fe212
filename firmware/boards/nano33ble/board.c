/*
 * Board support for the Arduino Nano 33 BLE Sense (Nordic nRF52840, Cortex-M4F),
 * register by register (Nordic nRF52840 Product Specification v1.x), no
 * vendor code.
 *
 * Clock: the core always runs at 64 MHz (HCLK64M). board_init() starts the
 * 64 MHz crystal oscillator (HFXO, CLOCK TASKS_HFCLKSTART) so that the UART's
 * baud rate is crystal-accurate (the internal RC oscillator is within about
 * 1.5 %); nothing else to set.
 *
 * Console: the board has no debugger with a virtual COM port (its USB
 * connector is the nRF52840's own USB device, which would need a USB stack).
 * The console is UART0 on the board's TX pin, P1.03 (header pin D1/TX), 115200
 * 8N1, 3.3 V levels; RX is P1.10 (D0/RX), unused. Wire a 3.3 V USB-serial
 * adapter: its RX to TX, GND to GND. Or build with
 * -DMNCOMPILE_CONSOLE_SEMIHOSTING and read the output through the SWD probe.
 *
 * Time: the DWT cycle counter (core cycles at 64 MHz).
 */
#include <stdint.h>

#include "cortexm.h"

#define MN_BOARD_CPU_HZ 64000000u
#define MN_BOARD_TIMER_DWT 1

#define CLOCK 0x40000000u
#define CLOCK_TASKS_HFCLKSTART MN_REG32(CLOCK + 0x000u)
#define CLOCK_EVENTS_HFCLKSTARTED MN_REG32(CLOCK + 0x100u)

#define UART0 0x40002000u
#define UART_TASKS_STARTTX MN_REG32(UART0 + 0x008u)
#define UART_EVENTS_TXDRDY MN_REG32(UART0 + 0x11Cu)
#define UART_ENABLE MN_REG32(UART0 + 0x500u)
#define UART_PSEL_RTS MN_REG32(UART0 + 0x508u)
#define UART_PSEL_TXD MN_REG32(UART0 + 0x50Cu)
#define UART_PSEL_CTS MN_REG32(UART0 + 0x510u)
#define UART_PSEL_RXD MN_REG32(UART0 + 0x514u)
#define UART_TXD MN_REG32(UART0 + 0x51Cu)
#define UART_BAUDRATE MN_REG32(UART0 + 0x524u)
#define UART_CONFIG MN_REG32(UART0 + 0x56Cu)
#define UART_ENABLE_UART 4u
#define UART_BAUD_115200 0x01D7E000u
#define PSEL_DISCONNECTED 0xFFFFFFFFu

#define P1 0x50000300u /* GPIO port 1 */
#define P1_OUTSET MN_REG32(P1 + 0x508u)
#define P1_DIRSET MN_REG32(P1 + 0x518u)
#define TX_PORT 1u
#define TX_PIN 3u /* P1.03: D1/TX */

static int tx_started; /* the first byte has no previous TXDRDY to wait for */

static uint32_t mn_board_clock_init(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0u;
    CLOCK_TASKS_HFCLKSTART = 1u;
    for (uint32_t tries = 0; tries < 2000000u && CLOCK_EVENTS_HFCLKSTARTED == 0u; tries++) {
    }
    return MN_BOARD_CPU_HZ;
}

static void mn_board_uart_init(void)
{
    P1_OUTSET = 1u << TX_PIN; /* idle high before the UART takes the pin */
    P1_DIRSET = 1u << TX_PIN;
    UART_ENABLE = 0u;
    UART_PSEL_TXD = (TX_PORT << 5) | TX_PIN; /* bit 31 clear: connected */
    UART_PSEL_RXD = PSEL_DISCONNECTED;
    UART_PSEL_RTS = PSEL_DISCONNECTED;
    UART_PSEL_CTS = PSEL_DISCONNECTED;
    UART_BAUDRATE = UART_BAUD_115200;
    UART_CONFIG = 0u; /* no parity, one stop bit, no flow control */
    UART_ENABLE = UART_ENABLE_UART;
    UART_EVENTS_TXDRDY = 0u;
    UART_TASKS_STARTTX = 1u;
    tx_started = 0;
}

/* TXDRDY fires when a byte has left TXD: wait for the previous one, then write. */
static void mn_board_uart_put(uint32_t byte)
{
    if (tx_started) {
        while (UART_EVENTS_TXDRDY == 0u) {
        }
    }
    UART_EVENTS_TXDRDY = 0u;
    UART_TXD = byte & 0xFFu;
    tx_started = 1;
}

static void mn_board_uart_flush(void)
{
    if (tx_started) {
        while (UART_EVENTS_TXDRDY == 0u) {
        }
    }
}

#include "board_real.h"
