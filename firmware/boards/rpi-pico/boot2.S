/*
 * The Raspberry Pi Pico's second-stage boot loader ("boot2"), our own, in
 * Armv6-M assembly. The source of the bytes in boot2.c: a generated project
 * compiles boot2.c (its CMake takes *.c only); tests/test_board_builds.py
 * assembles this file and checks that boot2.c holds exactly its bytes plus
 * the right CRC.
 *
 * The RP2040's boot ROM copies the first 256 bytes of the QSPI flash to SRAM at
 * 0x20041f00, checks that the CRC-32 of the first 252 bytes (polynomial
 * 0x04c11db7, initial value 0xffffffff, no reflection, no final XOR) equals
 * the last 4, and branches to 0x20041f00 in Thumb state. The code therefore
 * runs from SRAM and must be position-independent.
 *
 * What it does: set up execute-in-place through the boot ROM's own flash
 * routines, looked up by their two-letter codes in the ROM's function table
 * (RP2040 datasheet 2.8.3): connect_internal_flash ('IF'), flash_exit_xip
 * ('EX'), flash_flush_cache ('FC'), flash_enter_cmd_xip ('CX'). The last one
 * configures the SSI for plain 03h serial reads, which every QSPI flash
 * supports: slower than a chip-specific quad-I/O boot2, but with no
 * assumption about the flash part. It sets the SSI clock divider to 4
 * (31.25 MHz at the firmware's 125 MHz clk_sys). Then it points VTOR at the application's
 * vector table right after boot2 (0x10000100), loads its stack pointer and
 * jumps to its reset handler.
 */
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .boot2, "ax"

boot2_entry:
    movs r4, #0x18
    ldrh r4, [r4]          /* r4 = rom_table_lookup(table, code), at 0x18 */
    movs r5, #0x14
    ldrh r5, [r5]          /* r5 = the ROM's function table, at 0x14 */
    adr r6, codes
    movs r7, #4            /* four routines to call, in order */
1:
    mov r0, r5
    ldrh r1, [r6]
    blx r4                 /* r0 = the routine's address */
    blx r0                 /* call it (no arguments) */
    adds r6, r6, #2
    subs r7, r7, #1
    bne 1b

    /* SSI clock divider 4: clk_sys / 4, 31.25 MHz once board_init() runs clk_sys at
     * 125 MHz, within every QSPI flash's limit for 03h reads (the W25Q16JV's: 50 MHz).
     * BAUDR can only change while the SSI is disabled (SSIENR = 0). */
    ldr r1, =0x18000000    /* XIP_SSI */
    movs r0, #0
    str r0, [r1, #0x08]    /* SSIENR = 0 */
    movs r0, #4
    str r0, [r1, #0x14]    /* BAUDR = 4 */
    movs r0, #1
    str r0, [r1, #0x08]    /* SSIENR = 1 */

    ldr r0, =0x10000100    /* the application's vector table */
    ldr r1, =0xE000ED08    /* VTOR */
    str r0, [r1]
    ldmia r0!, {r1, r2}    /* r1 = initial SP, r2 = reset handler */
    msr msp, r1
    bx r2

    .align 2
codes:
    .hword 0x4649          /* 'I' | 'F' << 8: connect_internal_flash */
    .hword 0x5845          /* 'E' | 'X' << 8: flash_exit_xip */
    .hword 0x4346          /* 'F' | 'C' << 8: flash_flush_cache */
    .hword 0x5843          /* 'C' | 'X' << 8: flash_enter_cmd_xip */
    .ltorg
