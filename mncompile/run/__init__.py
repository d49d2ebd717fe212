"""Building and running generated firmware: `mncompile.run.build` (CMake, arm-none-eabi-gcc)
and `mncompile.run.qemu` (QEMU's Arm system emulator)."""
