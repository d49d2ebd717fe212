/* A minimal Arm semihosting client: see semihosting.h. */
#include "semihosting.h"

uint32_t semihosting_call(uint32_t op, uintptr_t arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register uintptr_t r1 __asm__("r1") = arg;
    /* The host reads and may write memory through r1: "memory" keeps the
     * compiler from caching or reordering accesses to the argument blocks. */
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* The host's handle of ":tt" (its console) plus one; 0 until opened. In .bss,
 * so it is 0 from reset until the startup code has zeroed .bss too. */
static uint32_t tt_handle_plus_one;

static uint32_t open_console(void)
{
    if (tt_handle_plus_one == 0u) {
        static const char name[] = ":tt";
        /* SYS_OPEN block: name, mode (4 = "w"), length of the name. */
        uintptr_t block[3] = {(uintptr_t)name, 4u, sizeof name - 1u};
        uint32_t handle = semihosting_call(SEMIHOSTING_SYS_OPEN, (uintptr_t)block);
        if (handle != UINT32_MAX) {
            tt_handle_plus_one = handle + 1u;
        }
    }
    return tt_handle_plus_one;
}

/* SYS_WRITE0 prints a NUL-terminated string: the fallback when the host has no
 * ":tt" (or refuses a write); NUL bytes in the data are skipped. */
static void write0(const char *data, size_t len)
{
    char chunk[64];
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\0') {
            chunk[used++] = data[i];
        }
        if (used == sizeof chunk - 1u || (i + 1u == len && used > 0u)) {
            chunk[used] = '\0';
            semihosting_call(SEMIHOSTING_SYS_WRITE0, (uintptr_t)chunk);
            used = 0;
        }
    }
}

void semihosting_write(const char *data, size_t len)
{
    if (len == 0u) {
        return;
    }
    uint32_t handle_plus_one = open_console();
    if (handle_plus_one != 0u) {
        /* SYS_WRITE block: handle, buffer, length; returns the bytes NOT written. */
        uintptr_t block[3] = {handle_plus_one - 1u, (uintptr_t)data, len};
        uint32_t left = semihosting_call(SEMIHOSTING_SYS_WRITE, (uintptr_t)block);
        if (left == 0u) {
            return;
        }
        if (left < len) {
            data += len - left;
            len = left;
        }
    }
    write0(data, len);
}

void semihosting_exit(int status)
{
    /* SYS_EXIT_EXTENDED: block {reason, subcode}; QEMU exits with the subcode
     * when the reason is ApplicationExit. */
    uintptr_t block[2] = {SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)(uint32_t)status};
    semihosting_call(SEMIHOSTING_SYS_EXIT_EXTENDED, (uintptr_t)block);
    /* Still here: the host lacks SYS_EXIT_EXTENDED. The AArch32 SYS_EXIT takes
     * the reason itself in r1 and can only tell success from failure. */
    semihosting_call(SEMIHOSTING_SYS_EXIT,
                     status == 0 ? SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT
                                 : SEMIHOSTING_ADP_STOPPED_RUNTIME_ERROR_UNKNOWN);
    for (;;) {
        __asm__ volatile("wfi");
    }
}
