/*
 * mn_preprocess.c - the camera-pixel path (see mn_preprocess.h for the arithmetic).
 *
 * The host's reference is mncompile/preprocess/camera.py; tests/test_camera.py compiles this file
 * for the host and checks every output against it bit for bit. Integer arithmetic only (the float
 * table of mn_preprocess_f32 is copied, never computed on); no heap and no frame-sized buffer.
 *
 * Resize coordinates are floor(num / den) with num growing by a fixed step per destination index,
 * so each axis walks with a quotient and a remainder (a DDA): the divisions happen once per frame,
 * none per pixel.
 */
#include "mn_preprocess.h"

#include <stddef.h>

#define MN_Q_BITS 11                     /* bilinear weights in Q11 */
#define MN_Q_ONE (1 << MN_Q_BITS)        /* 1.0 */
#define MN_Q_HALF (1 << (MN_Q_BITS - 1)) /* the half-pixel offset, 0.5 */

typedef enum { MN_OUT_U8, MN_OUT_S8, MN_OUT_F32 } mn_output;

/* The source: row `y` starts at data + y * stride. */
typedef struct {
    const uint8_t *data;
    size_t stride;
    mn_pixel_format format;
    int32_t channels;
} mn_source;

/* One axis: q = floor(num / den) for the current destination index, num growing by `step`. */
typedef struct {
    int64_t q;
    int64_t r;
    int64_t q_step;
    int64_t r_step;
    int64_t den;
} mn_axis;

/* The source taps of one destination index: index i0 with weight 1 - f, i1 with weight f (Q11). */
typedef struct {
    int32_t i0;
    int32_t i1;
    uint32_t f;
} mn_taps;

static int32_t bytes_per_pixel(mn_pixel_format format)
{
    switch (format) {
    case MN_PIXEL_RGB888:
        return 3;
    case MN_PIXEL_RGB565:
    case MN_PIXEL_RGB565BE:
    case MN_PIXEL_YUV422:
        return 2;
    case MN_PIXEL_GRAY8:
        return 1;
    default:
        return 0;
    }
}

int32_t mn_frame_bytes(mn_pixel_format format, int32_t width, int32_t height)
{
    int64_t size;
    int32_t bpp = bytes_per_pixel(format);
    if (bpp == 0) {
        return MN_PREPROCESS_BAD_FORMAT;
    }
    if (width <= 0 || height <= 0) {
        return MN_PREPROCESS_BAD_ARGUMENT;
    }
    if (format == MN_PIXEL_YUV422 && (width & 1) != 0) {
        return MN_PREPROCESS_ODD_WIDTH;
    }
    size = (int64_t)width * (int64_t)height * (int64_t)bpp;
    return size > (int64_t)INT32_MAX ? MN_PREPROCESS_BAD_ARGUMENT : (int32_t)size;
}

/* ---------------------------------------------------------------------------------------------
 * pixel conversion */

/* ITU-R 601-2 luma in 16-bit fixed point (the coefficients sum to 65536: 255 stays 255). */
static uint32_t luma(uint32_t r, uint32_t g, uint32_t b)
{
    return (19595u * r + 38470u * g + 7471u * b + 32768u) >> 16;
}

/* floor((x + 32768) / 65536) for |x| < 2^24 - 2^15, without shifting a negative number: the bias
 * 256 << 16 makes the sum non-negative (the YUV terms stay within +-116130 * 128 < 2^24). */
static int32_t round_q16(int32_t x)
{
    return ((x + 32768 + (256 << 16)) >> 16) - 256;
}

static uint32_t clamp255(int32_t v)
{
    return v < 0 ? 0u : v > 255 ? 255u : (uint32_t)v;
}

/* Full-range BT.601 (JFIF) YCbCr to RGB. */
static void yuv_to_rgb(int32_t y, int32_t u, int32_t v, uint32_t *out)
{
    int32_t d = u - 128;
    int32_t e = v - 128;
    out[0] = clamp255(y + round_q16(91881 * e));
    out[1] = clamp255(y + round_q16(-22554 * d - 46802 * e));
    out[2] = clamp255(y + round_q16(116130 * d));
}

/* Source pixel (x, y) converted to the model's channels: out[0] (1 channel) or out[0..2] (3). */
static void fetch(const mn_source *src, int32_t x, int32_t y, uint32_t *out)
{
    const uint8_t *row = src->data + (size_t)y * src->stride;
    const uint8_t *p;
    uint32_t rgb[3];
    uint32_t v;
    switch (src->format) {
    case MN_PIXEL_RGB888:
        p = row + (size_t)x * 3u;
        rgb[0] = p[0];
        rgb[1] = p[1];
        rgb[2] = p[2];
        break;
    case MN_PIXEL_RGB565:
    case MN_PIXEL_RGB565BE:
        p = row + (size_t)x * 2u;
        v = src->format == MN_PIXEL_RGB565 ? ((uint32_t)p[0] | ((uint32_t)p[1] << 8))
                                           : (((uint32_t)p[0] << 8) | (uint32_t)p[1]);
        rgb[0] = ((v >> 11) << 3) | (v >> 13);
        rgb[1] = (((v >> 5) & 63u) << 2) | ((v >> 9) & 3u);
        rgb[2] = ((v & 31u) << 3) | ((v >> 2) & 7u);
        break;
    case MN_PIXEL_YUV422:
        /* the pair Y0 U Y1 V holding pixel x; x's own Y, the pair's U and V */
        p = row + (size_t)(x >> 1) * 4u;
        v = p[(x & 1) * 2];
        if (src->channels == 1) {
            out[0] = v;
            return;
        }
        yuv_to_rgb((int32_t)v, (int32_t)p[1], (int32_t)p[3], out);
        return;
    case MN_PIXEL_GRAY8:
    default: /* formats are checked before any fetch */
        v = row[x];
        out[0] = v;
        if (src->channels == 3) {
            out[1] = v;
            out[2] = v;
        }
        return;
    }
    if (src->channels == 1) {
        out[0] = luma(rgb[0], rgb[1], rgb[2]);
    } else {
        out[0] = rgb[0];
        out[1] = rgb[1];
        out[2] = rgb[2];
    }
}

/* ---------------------------------------------------------------------------------------------
 * resize */

/* Source size s to destination size d: nearest walks floor((2i + 1) s / 2d), bilinear the
 * position floor((2i + 1) s 2048 / 2d) (Q11, before subtracting the half pixel). */
static mn_axis axis_start(mn_resize_mode mode, int32_t s, int32_t d)
{
    mn_axis a;
    int64_t unit = mode == MN_RESIZE_BILINEAR ? MN_Q_ONE : 1;
    int64_t first = (int64_t)s * unit;
    int64_t step = 2 * first;
    a.den = 2 * (int64_t)d;
    a.q = first / a.den;
    a.r = first % a.den;
    a.q_step = step / a.den;
    a.r_step = step % a.den;
    return a;
}

static void axis_next(mn_axis *a)
{
    a->q += a->q_step;
    a->r += a->r_step;
    if (a->r >= a->den) {
        a->r -= a->den;
        a->q += 1;
    }
}

static mn_taps axis_taps(const mn_axis *a, mn_resize_mode mode, int32_t s)
{
    mn_taps t;
    int64_t pos;
    if (mode == MN_RESIZE_NEAREST) {
        t.i0 = a->q > (int64_t)(s - 1) ? s - 1 : (int32_t)a->q;
        t.i1 = t.i0;
        t.f = 0;
        return t;
    }
    pos = a->q - MN_Q_HALF;
    if (pos < 0) {
        pos = 0;
    }
    t.i0 = (int32_t)(pos >> MN_Q_BITS);
    t.f = (uint32_t)(pos & (MN_Q_ONE - 1));
    if (t.i0 >= s - 1) {
        t.i0 = s - 1;
        t.f = 0;
    }
    t.i1 = t.i0 + 1 < s ? t.i0 + 1 : s - 1;
    return t;
}

/* The output pixel at taps (tx, ty): one fetch when both weights are 0 (always for nearest; the
 * bilinear formula then gives that pixel exactly), else the Q11 x Q11 blend of four, rounded. */
static void sample(const mn_source *src, const mn_taps *tx, const mn_taps *ty, uint32_t *out)
{
    uint32_t p00[3], p01[3], p10[3], p11[3];
    uint32_t wx = (uint32_t)MN_Q_ONE - tx->f;
    uint32_t wy = (uint32_t)MN_Q_ONE - ty->f;
    int32_t c;
    fetch(src, tx->i0, ty->i0, out);
    if (tx->f == 0 && ty->f == 0) {
        return;
    }
    for (c = 0; c < src->channels; c++) {
        p00[c] = out[c];
    }
    fetch(src, tx->i1, ty->i0, p01);
    fetch(src, tx->i0, ty->i1, p10);
    fetch(src, tx->i1, ty->i1, p11);
    for (c = 0; c < src->channels; c++) {
        uint32_t top = p00[c] * wx + p01[c] * tx->f;
        uint32_t bot = p10[c] * wx + p11[c] * tx->f;
        uint32_t v = top * wy + bot * ty->f; /* at most 255 * 2^22: fits */
        out[c] = (v + (1u << (2 * MN_Q_BITS - 1))) >> (2 * MN_Q_BITS);
    }
}

/* ---------------------------------------------------------------------------------------------
 * the three entry points share one loop */

static int32_t check(const mn_frame *frame, mn_resize_mode mode, int32_t out_w, int32_t out_h, int32_t channels)
{
    int32_t bpp;
    if (frame == NULL || frame->data == NULL) {
        return MN_PREPROCESS_BAD_ARGUMENT;
    }
    bpp = bytes_per_pixel(frame->format);
    if (bpp == 0 || (mode != MN_RESIZE_NEAREST && mode != MN_RESIZE_BILINEAR)) {
        return MN_PREPROCESS_BAD_FORMAT;
    }
    if (frame->width <= 0 || frame->height <= 0 || out_w <= 0 || out_h <= 0 || (channels != 1 && channels != 3)) {
        return MN_PREPROCESS_BAD_ARGUMENT;
    }
    if (frame->format == MN_PIXEL_YUV422 && (frame->width & 1) != 0) {
        return MN_PREPROCESS_ODD_WIDTH;
    }
    if (frame->stride < 0 || (frame->stride != 0 && (int64_t)frame->stride < (int64_t)frame->width * bpp)) {
        return MN_PREPROCESS_BAD_ARGUMENT;
    }
    return MN_PREPROCESS_OK;
}

static int32_t run(const mn_frame *frame, mn_resize_mode mode, int32_t out_w, int32_t out_h, int32_t channels,
                   mn_output kind, const void *lut, void *out)
{
    mn_source src;
    mn_axis ay, ax0;
    size_t o = 0;
    int32_t x, y, c;
    int32_t status = check(frame, mode, out_w, out_h, channels);
    if (status != MN_PREPROCESS_OK) {
        return status;
    }
    if (out == NULL || (kind != MN_OUT_U8 && lut == NULL)) {
        return MN_PREPROCESS_BAD_ARGUMENT;
    }
    src.data = frame->data;
    src.format = frame->format;
    src.channels = channels;
    src.stride = frame->stride != 0 ? (size_t)frame->stride
                                    : (size_t)frame->width * (size_t)bytes_per_pixel(frame->format);
    ay = axis_start(mode, frame->height, out_h);
    ax0 = axis_start(mode, frame->width, out_w);
    for (y = 0; y < out_h; y++) {
        mn_taps ty = axis_taps(&ay, mode, frame->height);
        mn_axis ax = ax0;
        for (x = 0; x < out_w; x++) {
            mn_taps tx = axis_taps(&ax, mode, frame->width);
            uint32_t v[3];
            sample(&src, &tx, &ty, v);
            for (c = 0; c < channels; c++, o++) {
                size_t at = (size_t)c * 256u + v[c];
                switch (kind) {
                case MN_OUT_U8:
                    ((uint8_t *)out)[o] = (uint8_t)v[c];
                    break;
                case MN_OUT_S8:
                    ((int8_t *)out)[o] = ((const int8_t *)lut)[at];
                    break;
                case MN_OUT_F32:
                default:
                    ((float *)out)[o] = ((const float *)lut)[at];
                    break;
                }
            }
            axis_next(&ax);
        }
        axis_next(&ay);
    }
    return MN_PREPROCESS_OK;
}

int32_t mn_preprocess_u8(const mn_frame *frame, mn_resize_mode mode, int32_t out_w, int32_t out_h,
                         int32_t channels, uint8_t *out)
{
    return run(frame, mode, out_w, out_h, channels, MN_OUT_U8, NULL, out);
}

int32_t mn_preprocess_s8(const mn_frame *frame, mn_resize_mode mode, int32_t out_w, int32_t out_h,
                         int32_t channels, const int8_t *lut, int8_t *out)
{
    return run(frame, mode, out_w, out_h, channels, MN_OUT_S8, lut, out);
}

int32_t mn_preprocess_f32(const mn_frame *frame, mn_resize_mode mode, int32_t out_w, int32_t out_h,
                          int32_t channels, const float *lut, float *out)
{
    return run(frame, mode, out_w, out_h, channels, MN_OUT_F32, lut, out);
}
