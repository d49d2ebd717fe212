/*
 * Build-time sizes of the kernels. This is the library's default; a generated project carries its
 * own copy, written by mncompile for its model (mncompile.aot.render.kernels_config_h).
 */
#ifndef MN_KERNELS_CONFIG_H
#define MN_KERNELS_CONFIG_H

/* Largest GEMM depth (k_h * k_w * in_c of a CONV_2D) the DSP path widens to int16 on the stack:
 * 8 bytes per step (four output pixels), plus 2 bytes per step of int8 patches. Deeper convolutions
 * widen in the loop instead. */
#ifndef MN_CONV_GEMM_MAX
#define MN_CONV_GEMM_MAX 256
#endif

/* 0: every CONV_2D and DEPTHWISE_CONV_2D of the model requantizes the fast way (one 64-bit
 * multiply-accumulate, the whole int8 range): the DSP paths are then compiled for it alone, and a
 * call that needs the general requantization takes the portable loops (correct, slower). */
#ifndef MN_KERNELS_REQUANT_ANY
#define MN_KERNELS_REQUANT_ANY 1
#endif

/* The DSP paths for shallow convolutions (the code generator sets 0 where the model has none, to keep
 * their code out of flash): 1x1 layers of depth 8 or 16, and other convolutions of depth up to 32. */
#ifndef MN_CONV_SHALLOW_1X1
#define MN_CONV_SHALLOW_1X1 1
#endif
#ifndef MN_CONV_SHALLOW_GENERIC
#define MN_CONV_SHALLOW_GENERIC 1
#endif
/* Words of their per-output-channel table on the stack: out_c * (4 + depth / 2), depth rounded up to
 * a multiple of 4; a layer needing more takes the general paths. */
#ifndef MN_SMALL_TABLE_WORDS
#define MN_SMALL_TABLE_WORDS 768
#endif

#endif /* MN_KERNELS_CONFIG_H */
