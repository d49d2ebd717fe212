"""Building and running generated firmware: `mncompile.run.build` (CMake, arm-none-eabi-gcc),
`mncompile.run.qemu` (QEMU's Arm system emulator) and `mncompile.run.validate`
(`mncompile run`: build an emitted project, run it on QEMU, check it against its manifest)."""
