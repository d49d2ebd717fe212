/*
 * The i.MX RT1060 boot header, written from NXP's i.MX RT1060 reference manual
 * (IMXRT1060RM, chapter 9 "System Boot": FlexSPI NOR boot, the FlexSPI
 * configuration block, the image vector table and boot data). No vendor code.
 *
 * The boot ROM reads, from the start of the FlexSPI NOR flash (0x60000000):
 *   0x60000000  FCB: FlexSPI configuration block (512 bytes): how to read the
 *               flash; here the EVK's 8 MB IS25WP064A QSPI NOR (quad I/O fast
 *               read, EBh, 6 dummy cycles, 100 MHz, DQS loopback sampling);
 *   0x60001000  IVT: image vector table (HAB v4 format): the entry point (our
 *               vector table, where the ROM reads SP and PC), the boot data,
 *               its own address; no DCD (the SDRAM is not used), no CSF;
 *   0x60001020  boot data: image start and size, no plug-in.
 * linker.ld places the three objects (sections .boot_hdr.*) at those offsets
 * and the vector table at 0x60002000; code runs in place from the flash.
 */
#include <stdint.h>

#include "startup.h"

/* FlexSPI LUT instruction pairs: opcode[15:10], pads[9:8] (0: 1 pad, 2: 4 pads), operand[7:0]. */
#define LUT(op0, pads0, arg0, op1, pads1, arg1)                                                      \
    ((uint32_t)(((op0) << 10) | ((pads0) << 8) | (arg0)) |                                        \
     ((uint32_t)(((op1) << 10) | ((pads1) << 8) | (arg1)) << 16))
#define CMD_SDR 0x01u
#define RADDR_SDR 0x02u
#define READ_SDR 0x09u
#define DUMMY_SDR 0x0Cu
#define PADS_1 0u
#define PADS_4 2u

#define FLASH_BYTES (8u * 1024u * 1024u)

/* The FCB as 128 words, indexed by byte offset / 4. */
#define W(offset) [(offset) / 4u]
extern const uint32_t mn_flexspi_fcb[128];
__attribute__((section(".boot_hdr.fcb"), used)) const uint32_t mn_flexspi_fcb[128] = {
    W(0x000) = 0x42464346u, /* tag "FCFB" */
    W(0x004) = 0x56010400u, /* version V1.4.0 */
    /* 0x00C readSampleClkSrc 1 (loopback from the DQS pad), 0x00D csHoldTime 3,
     * 0x00E csSetupTime 3, 0x00F columnAddressWidth 0 */
    W(0x00C) = 0x00030301u,
    /* 0x044 deviceType 1 (serial NOR), 0x045 sflashPadType 4 (quad),
     * 0x046 serialClkFreq 6 (100 MHz), 0x047 lutCustomSeqEnable 0 */
    W(0x044) = 0x00060401u,
    W(0x050) = FLASH_BYTES, /* sflashA1Size */
    /* lookupTable, sequence 0 (read): EBh on 1 pad, 24-bit address on 4 pads,
     * 6 dummy cycles, read on 4 pads, STOP */
    W(0x080) = LUT(CMD_SDR, PADS_1, 0xEBu, RADDR_SDR, PADS_4, 0x18u),
    W(0x084) = LUT(DUMMY_SDR, PADS_4, 0x06u, READ_SDR, PADS_4, 0x04u),
    W(0x1C0) = 256u,   /* pageSize */
    W(0x1C4) = 4096u,  /* sectorSize */
    W(0x1D0) = 65536u, /* blockSize */
};

typedef struct {
    const void *start; /* where the image begins: the flash */
    uint32_t size;     /* the whole flash */
    uint32_t plugin;   /* 0: not a plug-in */
    uint32_t placeholder;
} mn_boot_data_t;

typedef struct {
    uint32_t header; /* tag 0xD1, length 0x0020 (big-endian), version 0x41 */
    const void *entry;
    uint32_t reserved1;
    const void *dcd;
    const void *boot_data;
    const void *self;
    const void *csf;
    uint32_t reserved2;
} mn_ivt_t;

extern const mn_boot_data_t mn_boot_data;
extern const mn_ivt_t mn_ivt;

__attribute__((section(".boot_hdr.boot_data"), used)) const mn_boot_data_t mn_boot_data = {
    (const void *)0x60000000u, FLASH_BYTES, 0u, 0xFFFFFFFFu,
};

__attribute__((section(".boot_hdr.ivt"), used)) const mn_ivt_t mn_ivt = {
    0x412000D1u, mn_vector_table, 0u, 0, &mn_boot_data, &mn_ivt, 0, 0u,
};
