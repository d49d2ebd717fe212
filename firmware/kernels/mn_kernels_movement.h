/*
 * mn_kernels_movement.h - part of mncompile's int8 kernel library (see mn_kernels.h, which includes
 * this file after its own declarations; include mn_kernels.h, not this file).
 *
 * Data movement, each bit-exact with the int8 path TFLM's micro kernel takes: TRANSPOSE
 * (mn_transpose.c), CONCATENATION (mn_concat.c), STRIDED_SLICE (mn_slice.c) and PAD / PADV2 of rank 5
 * (mn_pad5.c; up to rank 4 mn_pad_s8 in mn_kernels.h serves PAD and PADV2 alike: pad_value is the raw
 * int8 pad byte). These kernels move bytes and never requantize: TFLM's TRANSPOSE, STRIDED_SLICE and
 * PAD do not look at quantization, its int8 CONCATENATION requires every input to share the output's
 * scale and zero point. Parameters come from mncompile.aot.quantmath_movement, which reproduces TFLM's
 * Prepare checks and folds dimensions (size-1 dimensions dropped, neighbours that stay contiguous
 * merged) so that the kernels copy the longest contiguous runs (memcpy) they can. Every field is an
 * int32_t; shapes are row-major (last dimension contiguous), padded on the left to five dimensions
 * with size 1 (and pad / start 0, stop 1, step 1, identity permutation entries).
 * SQUEEZE and EXPAND_DIMS have no kernel: like RESHAPE they are views of the same bytes
 * (quantmath_movement.squeeze_view / expand_dims_view check it).
 * `out` must not overlap `in` (except mn_concat_s8's exact in-place case). No kernel needs scratch.
 * MN_EINVAL (nothing written) for a NULL pointer or a parameter outside the documented ranges.
 */
#ifndef MN_KERNELS_MOVEMENT_H
#define MN_KERNELS_MOVEMENT_H

#ifdef __cplusplus
extern "C" {
#endif

#define MN_MOVEMENT_MAX_DIMS 5

/* TRANSPOSE int8 (TFLM reference_ops::Transpose): out[i0][i1][i2][i3][i4] = in[j] with
 * j[perm[d]] = i[d], i.e. output dimension d is input dimension perm[d] (out_dims[d] =
 * in_dims[perm[d]]). perm: a permutation of 0..4; in_dims >= 1, at most 2^31 - 1 elements.
 * Paths: output rows contiguous in the input (in_dims[4] stays last) are copied with memcpy; when the
 * input's last dimension becomes output dimension 3 (after folding: NHWC <-> NCHW and every 2-D
 * transpose) 4x4 byte blocks are transposed in registers (word loads and stores on little-endian
 * targets); anything else walks the input with strides. */
typedef struct {
    int32_t in_dims[MN_MOVEMENT_MAX_DIMS];
    int32_t perm[MN_MOVEMENT_MAX_DIMS];
} mn_transpose_params;

int mn_transpose_s8(const mn_transpose_params *p, const int8_t *in, int8_t *out);

/* CONCATENATION int8 (TFLM reference_ops::Concatenation), one call per input: the output is `outer`
 * rows of out_stride bytes, and input k fills bytes [out_offset, out_offset + size) of every row:
 *     for r < outer: out[r * out_stride + out_offset + i] = in[r * size + i], i < size.
 * For a concatenation along `axis`: outer = product of the dimensions before the axis,
 * size = in_dims[axis] * inner, out_stride = out_dims[axis] * inner, out_offset = (sum of the axis
 * sizes of the inputs before this one) * inner, inner = product of the dimensions after the axis
 * (quantmath_movement.concat_params gives one struct per input). Inputs may be called in any order;
 * each writes only its own columns. The bytes are copied as they are (TFLM's int8 concatenation
 * requires equal scales and zero points). With outer == 1 (axis 0, or leading dimensions of 1) the
 * input is one contiguous block of the output: a memory planner may place the input there and skip
 * the call (in == out + out_offset with outer == 1 is accepted and copies nothing).
 * MN_EINVAL unless outer >= 1, size >= 0, out_offset >= 0, out_offset + size <= out_stride and
 * outer * out_stride <= 2^31 - 1. */
typedef struct {
    int32_t outer;
    int32_t size;
    int32_t out_stride;
    int32_t out_offset;
} mn_concat_params;

int mn_concat_s8(const mn_concat_params *p, const int8_t *in, int8_t *out);

/* STRIDED_SLICE int8 (TFLM reference_ops::StridedSlice), with start/stop/step already resolved per
 * dimension the way TFLM's strided_slice_logic resolves begin, end, strides, the masks and negative
 * indices (quantmath_movement.strided_slice_params): along dimension d the indices start,
 * start + step, ... while < stop (step > 0) or > stop (step < 0); the output is the row-major
 * product of those index lists, written in order. Requires in_dims >= 1, step != 0,
 * -1 <= stop <= in_dims, and 0 <= start < in_dims wherever the index list is not empty; at most
 * 2^31 - 1 input elements. An empty index list gives an empty output (nothing written, MN_OK).
 * Unit steps in the last dimension are copied with memcpy. */
typedef struct {
    int32_t in_dims[MN_MOVEMENT_MAX_DIMS];
    int32_t start[MN_MOVEMENT_MAX_DIMS];
    int32_t stop[MN_MOVEMENT_MAX_DIMS];
    int32_t step[MN_MOVEMENT_MAX_DIMS];
} mn_strided_slice_params;

int mn_strided_slice_s8(const mn_strided_slice_params *p, const int8_t *in, int8_t *out);

/* PAD / PADV2 int8 of up to five dimensions (TFLM reference_ops::Pad): output dimension d has
 * pad_before[d] + in_dims[d] + pad_after[d] entries; entries inside the input box are copied, the
 * others are pad_value (the output zero point for PAD, the raw int8 constant_values byte for PADV2).
 * quantmath_movement.pad_params folds a pad into mn_pad_params (mn_pad_s8) whenever at most four
 * dimensions remain and gives this struct otherwise. MN_EINVAL unless in_dims >= 1, paddings >= 0,
 * pad_value in [-128, 127] and the output has at most 2^31 - 1 elements. */
typedef struct {
    int32_t in_dims[MN_MOVEMENT_MAX_DIMS];
    int32_t pad_before[MN_MOVEMENT_MAX_DIMS];
    int32_t pad_after[MN_MOVEMENT_MAX_DIMS];
    int32_t pad_value;
} mn_pad5_params;

int mn_pad5_s8(const mn_pad5_params *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* MN_KERNELS_MOVEMENT_H */
