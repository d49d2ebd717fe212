/*
 * mn_preprocess.h - the camera-pixel path: a raw 8-bit camera frame to the model's input tensor.
 *
 * mncompile's own integer arithmetic, bit-identical to the host's NumPy reference
 * (mncompile/preprocess/camera.py), so the firmware can prove it reproduces the host's golden
 * vectors from the raw pixels onwards. One pass, no heap, no frame-sized buffer: each output pixel
 * fetches the (up to four) source pixels it needs, converts them to the model's channels,
 * interpolates and looks the result up in the host-made quantization table.
 *
 * Pixel formats (`stride` bytes per row, 0 = packed width * bytes per pixel):
 *   MN_PIXEL_RGB888    3 bytes R, G, B
 *   MN_PIXEL_RGB565    2 bytes, little-endian uint16 rrrrrggggggbbbbb, expanded by bit replication
 *   MN_PIXEL_RGB565BE  the same, big-endian (what many camera sensors deliver)
 *   MN_PIXEL_GRAY8     1 byte
 *   MN_PIXEL_YUV422    YUYV: 4 bytes Y0 U Y1 V per pixel pair (even width), full-range BT.601 (JFIF)
 * To 1 channel, RGB becomes luma (19595 R + 38470 G + 7471 B + 32768) >> 16 and YUV its Y; to 3
 * channels, gray is replicated and YUV converted to RGB.
 *
 * Resize (per axis, source size S, destination size D, destination index d):
 *   MN_RESIZE_NEAREST   i = floor((2d + 1) S / 2D)
 *   MN_RESIZE_BILINEAR  half-pixel centres, 2 taps, Q11 weights, no antialiasing
 * Both are the identity when S == D. The output tensor is NHWC (out_h, out_w, channels), row-major.
 *
 * Plain C99 (warning-free with -Wall -Wextra -Wconversion), usable from C++.
 */
#ifndef MN_PREPROCESS_H
#define MN_PREPROCESS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The layout of a raw frame's bytes (the values match camera.FORMAT_IDS on the host). */
typedef enum {
    MN_PIXEL_RGB888 = 0,
    MN_PIXEL_RGB565 = 1,
    MN_PIXEL_RGB565BE = 2,
    MN_PIXEL_GRAY8 = 3,
    MN_PIXEL_YUV422 = 4
} mn_pixel_format;

/* How a frame is resized to the model's input (the values match camera.RESIZE_IDS on the host). */
typedef enum { MN_RESIZE_NEAREST = 0, MN_RESIZE_BILINEAR = 1 } mn_resize_mode;

/* A raw camera frame: `height` rows of `stride` bytes (0 = packed), each `width` pixels of `format`. */
typedef struct {
    const uint8_t *data;
    int32_t width;
    int32_t height;
    int32_t stride; /* bytes from one row to the next; 0 = packed (width * bytes per pixel) */
    mn_pixel_format format;
} mn_frame;

/* Status codes: 0 ok, negative errors. */
#define MN_PREPROCESS_OK 0
#define MN_PREPROCESS_BAD_ARGUMENT (-1) /* null pointer, size <= 0, channels not 1 or 3, stride too small */
#define MN_PREPROCESS_BAD_FORMAT (-2)   /* unknown pixel format or resize mode */
#define MN_PREPROCESS_ODD_WIDTH (-3)    /* yuv422 with an odd width */

/* The packed size in bytes of a width x height frame of `format`, or a negative status (also
 * MN_PREPROCESS_BAD_ARGUMENT when the size does not fit an int32_t). */
int32_t mn_frame_bytes(mn_pixel_format format, int32_t width, int32_t height);

/* The converted and resized pixels, 0..255, without a lookup table: out[(y * out_w + x) * channels + c].
 * `out` holds out_w * out_h * channels bytes. Returns MN_PREPROCESS_OK or a negative status (then
 * nothing is written). */
int32_t mn_preprocess_u8(const mn_frame *frame, mn_resize_mode mode, int32_t out_w, int32_t out_h,
                         int32_t channels, uint8_t *out);

/* As mn_preprocess_u8, then each value p of channel c becomes lut[c * 256 + p]: the int8 input of a
 * quantized model (the table is made on the host from the preprocessing contract). */
int32_t mn_preprocess_s8(const mn_frame *frame, mn_resize_mode mode, int32_t out_w, int32_t out_h,
                         int32_t channels, const int8_t *lut, int8_t *out);

/* As mn_preprocess_s8 with a float table: the input of a model whose input tensor is float32. */
int32_t mn_preprocess_f32(const mn_frame *frame, mn_resize_mode mode, int32_t out_w, int32_t out_h,
                          int32_t channels, const float *lut, float *out);

#ifdef __cplusplus
}
#endif

#endif /* MN_PREPROCESS_H */
