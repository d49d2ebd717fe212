/*
 * A minimal Arm semihosting client (M-profile: `bkpt 0xAB`).
 *
 * Semihosting asks the host (QEMU with -semihosting-config enable=on, or a
 * debugger such as OpenOCD or pyOCD) to do I/O on the target's behalf. Without
 * a host the bkpt instruction faults (HardFault, or lockup), so only boards
 * that always run under a semihosting host call these functions: the QEMU
 * boards, and a real board built with -DMNCOMPILE_CONSOLE_SEMIHOSTING.
 * Compiling this file is harmless everywhere: nothing runs unless called.
 */
#ifndef MNCOMPILE_SEMIHOSTING_H
#define MNCOMPILE_SEMIHOSTING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Operation numbers (Arm "Semihosting for AArch32 and AArch64", v2.0). */
#define SEMIHOSTING_SYS_OPEN 0x01u
#define SEMIHOSTING_SYS_WRITE0 0x04u
#define SEMIHOSTING_SYS_WRITE 0x05u
#define SEMIHOSTING_SYS_EXIT 0x18u
#define SEMIHOSTING_SYS_EXIT_EXTENDED 0x20u

/* Reason codes of SYS_EXIT / SYS_EXIT_EXTENDED. */
#define SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define SEMIHOSTING_ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u

/* One semihosting call: r0 = op, r1 = arg; returns the host's r0. */
uint32_t semihosting_call(uint32_t op, uintptr_t arg);

/* Write len bytes to the host console (":tt"), binary-safe. */
void semihosting_write(const char *data, size_t len);

/* End the program: the host exits with `status` (QEMU: its process exit code,
 * which the host OS truncates to 0..255). Uses SYS_EXIT_EXTENDED, and falls
 * back to SYS_EXIT (success or failure only) on a host that lacks it. */
void semihosting_exit(int status) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* MNCOMPILE_SEMIHOSTING_H */
