"""The camera-pixel path on the host: the NumPy reference of ``firmware/preprocess/mn_preprocess.c``.

The firmware receives a raw 8-bit camera frame and turns it into the model's input tensor with
mncompile's own C functions; the golden vectors the device is checked against are computed here,
with the same integer arithmetic, so the two agree bit for bit (tests/test_camera.py compiles the C
for the host and compares). The stages, per output pixel:

1. conversion of a source pixel to the model's channels (`decode_frame`):
   rgb888 (R, G, B bytes); rgb565 / rgb565be (a little- / big-endian uint16 rrrrrggggggbbbbb,
   expanded by bit replication); gray8; yuv422 (YUYV: Y0 U Y1 V per pixel pair, full-range BT.601
   as in JFIF). One channel is luma ``(19595 R + 38470 G + 7471 B + 32768) >> 16`` (Pillow's
   ``convert("L")``), or Y for yuv422; three channels replicate gray and convert YUV to RGB with
   ``d = U - 128``, ``e = V - 128`` and ``R = Y + floor((91881 e + 32768) / 65536)``,
   ``G = Y + floor((-22554 d - 46802 e + 32768) / 65536)``, ``B = Y + floor((116130 d + 32768) / 65536)``,
   each clamped to 0..255;
2. resize (`resize`): per axis (source size S, destination D, index d) nearest takes
   ``floor((2d + 1) S / 2D)``; bilinear uses half-pixel centres with two taps and Q11 weights:
   ``pos = floor((2d + 1) S 2048 / 2D) - 1024`` (at least 0), ``i0 = pos >> 11``, ``f = pos & 2047``
   (``i0 = S - 1, f = 0`` at the far edge), ``i1 = min(i0 + 1, S - 1)``, and the output is
   ``(top (2048 - fy) + bottom fy + 2^21) >> 22``. Both are the identity when S == D;
3. a per-channel 256-entry table (int8 or float32, made from the preprocessing contract by
   `mncompile.preprocess.contract.lookup_table`) gives the model input (`preprocess`).

`encode_frame` goes the other way, for the golden frames: what a camera would deliver for an 8-bit
image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mncompile.errors import InvalidOptionError

FORMATS = ("rgb888", "rgb565", "rgb565be", "gray8", "yuv422")
FORMAT_IDS = {name: i for i, name in enumerate(FORMATS)}  # = the mn_pixel_format enum of mn_preprocess.h
RESIZES = ("nearest", "bilinear")
RESIZE_IDS = {name: i for i, name in enumerate(RESIZES)}  # = the mn_resize_mode enum
_BYTES_PER_PIXEL = {"rgb888": 3, "rgb565": 2, "rgb565be": 2, "gray8": 1, "yuv422": 2}

Q_BITS = 11  # bilinear weights: 2048 = 1.0
_ONE = 1 << Q_BITS


class OddWidthError(InvalidOptionError, ValueError):
    """A yuv422 frame holds pixel pairs, and its width is odd. Both an `InvalidOptionError` (the
    CLI's exit code) and a `ValueError`."""


def _check_format(fmt: str) -> str:
    if fmt not in _BYTES_PER_PIXEL:
        raise InvalidOptionError(f"unknown camera pixel format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    return fmt


def _check_size(fmt: str, width: int, height: int) -> None:
    if int(width) <= 0 or int(height) <= 0:
        raise InvalidOptionError(f"a camera frame of {width}x{height} pixels is empty",
                                 hint="give a positive width and height")
    if fmt == "yuv422" and int(width) % 2:
        raise OddWidthError(f"a yuv422 frame holds pixel pairs, and the frame is {width} pixels wide",
                            hint="use an even width")


def _check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise InvalidOptionError(f"the camera path makes 1 or 3 channels, not {channels}",
                                 hint="a model input of 1 (grayscale) or 3 (RGB) channels")
    return int(channels)


def bytes_per_pixel(fmt: str) -> int:
    """Bytes a pixel of `fmt` takes in a frame (yuv422: 4 bytes per pixel pair)."""
    return _BYTES_PER_PIXEL[_check_format(fmt)]


def frame_bytes(fmt: str, width: int, height: int) -> int:
    """The packed size of a width x height frame of `fmt` (`mn_frame_bytes`)."""
    bpp = bytes_per_pixel(fmt)
    _check_size(fmt, width, height)
    return int(width) * int(height) * bpp


# ---------------------------------------------------------------------------------------------
# pixel arithmetic (int64 throughout: no overflow, and // floors negative numbers)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of (..., 3) RGB in 16-bit fixed point, as uint8 (Pillow's convert("L"))."""
    c = rgb.astype(np.int64)
    return ((19595 * c[..., 0] + 38470 * c[..., 1] + 7471 * c[..., 2] + 32768) >> 16).astype(np.uint8)


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Full-range BT.601 (JFIF) YCbCr to (..., 3) uint8 RGB, in the C's fixed point."""
    y, d, e = y.astype(np.int64), u.astype(np.int64) - 128, v.astype(np.int64) - 128
    r = y + (91881 * e + 32768) // 65536
    g = y + (-22554 * d - 46802 * e + 32768) // 65536
    b = y + (116130 * d + 32768) // 65536
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def rgb_to_yuv422(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB, W even, to (H, W // 2, 4) YUYV bytes: Y of every pixel by `luma`; U and V
    of each pair from the pair's summed RGB (the exact average, rounded once):
    ``U = 128 + floor((-11059 Rs - 21709 Gs + 32768 Bs + 65536) / 131072)``,
    ``V = 128 + floor((32768 Rs - 27439 Gs - 5329 Bs + 65536) / 131072)``, clamped to 0..255, where
    Rs = R0 + R1 etc. (JFIF's -0.168736, -0.331264, 0.5 and 0.5, -0.418688, -0.081312 in Q16; each
    row sums to 0, so gray gives U = V = 128)."""
    y = luma(rgb)
    c = rgb.astype(np.int64)
    s = c[:, 0::2] + c[:, 1::2]
    u = 128 + (-11059 * s[..., 0] - 21709 * s[..., 1] + 32768 * s[..., 2] + 65536) // 131072
    v = 128 + (32768 * s[..., 0] - 27439 * s[..., 1] - 5329 * s[..., 2] + 65536) // 131072
    u, v = (np.clip(a, 0, 255).astype(np.uint8) for a in (u, v))
    return np.stack([y[:, 0::2], u, y[:, 1::2], v], axis=-1)


# ---------------------------------------------------------------------------------------------
# frames


def encode_frame(image: np.ndarray, fmt: str) -> bytes:
    """The packed frame a camera would deliver for an 8-bit image: (H, W, 3) RGB, or (H, W) /
    (H, W, 1) gray. rgb888 is the raw bytes; rgb565 / rgb565be keep the top 5, 6, 5 bits (R >> 3,
    G >> 2, B >> 3); gray8 from RGB is `luma`; yuv422 is `rgb_to_yuv422` (width must be even). A gray
    image encodes to the rgb formats by replication and to yuv422 with U = V = 128."""
    _check_format(fmt)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InvalidOptionError(f"encode_frame takes an 8-bit image, not {image.dtype}", hint="convert to uint8")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise InvalidOptionError(f"encode_frame takes (H, W, 3) RGB or (H, W) gray, not shape {image.shape}")
    height, width = image.shape[:2]
    _check_size(fmt, width, height)
    gray = image.ndim == 2
    if fmt == "gray8":
        return (image if gray else luma(image)).tobytes()
    if gray and fmt == "yuv422":
        pairs = image.reshape(height, width // 2, 2)
        neutral = np.full(pairs.shape[:2], 128, np.uint8)
        return np.stack([pairs[..., 0], neutral, pairs[..., 1], neutral], axis=-1).tobytes()
    rgb = np.repeat(image[..., None], 3, axis=2) if gray else image
    if fmt == "rgb888":
        return np.ascontiguousarray(rgb).tobytes()
    if fmt == "yuv422":
        return rgb_to_yuv422(rgb).tobytes()
    c = rgb.astype(np.uint16)
    v = ((c[..., 0] >> 3) << 11) | ((c[..., 1] >> 2) << 5) | (c[..., 2] >> 3)
    return v.astype("<u2" if fmt == "rgb565" else ">u2").tobytes()


def _rows(data, width: int, height: int, fmt: str, stride: int) -> np.ndarray:
    """The frame's pixel bytes as (height, width * bytes per pixel) uint8. A strided frame needs
    ``stride * (height - 1) + width * bytes per pixel`` bytes: the last row need not be padded."""
    row = width * _BYTES_PER_PIXEL[fmt]
    stride = int(stride) or row
    if stride < row:
        raise InvalidOptionError(f"a stride of {stride} bytes is shorter than a {width}-pixel {fmt} row ({row} bytes)",
                                 hint="stride is bytes per row, 0 for packed rows")
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) \
        else np.asarray(data, np.uint8).reshape(-1)
    need = stride * (height - 1) + row
    if buf.size < need:
        raise InvalidOptionError(f"the {width}x{height} {fmt} frame has {buf.size} bytes, it needs {need}",
                                 hint="the frame is truncated, or its size, format or stride is wrong")
    if buf.size < stride * height:
        buf = np.concatenate([buf[:need], np.zeros(stride * height - need, np.uint8)])
    return buf[:stride * height].reshape(height, stride)[:, :row]


def decode_frame(data, width: int, height: int, fmt: str, channels: int, stride: int = 0) -> np.ndarray:
    """A raw frame converted to the model's channels, (height, width, channels) uint8: the C's
    per-pixel conversion (see the module docstring)."""
    _check_format(fmt)
    _check_size(fmt, width, height)
    channels = _check_channels(channels)
    width, height = int(width), int(height)
    rows = _rows(data, width, height, fmt, stride)
    if fmt == "gray8":
        return np.repeat(rows[..., None], channels, axis=2)
    if fmt == "yuv422":
        y = rows[:, 0::2]
        if channels == 1:
            return np.ascontiguousarray(y[..., None])
        pairs = rows.reshape(height, width // 2, 4)
        u, v = (np.repeat(pairs[..., k], 2, axis=1) for k in (1, 3))
        return yuv_to_rgb(y, u, v)
    if fmt == "rgb888":
        rgb = rows.reshape(height, width, 3)
    else:
        lo, hi = (rows[:, 0::2], rows[:, 1::2]) if fmt == "rgb565" else (rows[:, 1::2], rows[:, 0::2])
        v = lo.astype(np.uint32) | (hi.astype(np.uint32) << 8)
        r5, g6, b5 = v >> 11, (v >> 5) & 63, v & 31
        rgb = np.stack([(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)], axis=-1)
        rgb = rgb.astype(np.uint8)
    return luma(rgb)[..., None] if channels == 1 else np.ascontiguousarray(rgb)


# ---------------------------------------------------------------------------------------------
# resize


def axis_taps(src: int, dst: int, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every destination index of one axis: source indices i0, i1 and the Q11 weight f of i1
    (int64 arrays; nearest gives i1 = i0 and f = 0)."""
    if mode not in RESIZE_IDS:
        raise InvalidOptionError(f"unknown resize mode {mode!r}", hint=f"use {' or '.join(RESIZES)}")
    d = np.arange(dst, dtype=np.int64)
    if mode == "nearest":
        i0 = np.minimum((2 * d + 1) * src // (2 * dst), src - 1)
        return i0, i0, np.zeros_like(i0)
    pos = np.maximum((2 * d + 1) * src * _ONE // (2 * dst) - _ONE // 2, 0)
    i0, f = pos >> Q_BITS, pos & (_ONE - 1)
    edge = i0 >= src - 1
    i0, f = np.where(edge, src - 1, i0), np.where(edge, 0, f)
    return i0, np.minimum(i0 + 1, src - 1), f


def resize(image: np.ndarray, out_h: int, out_w: int, mode: str) -> np.ndarray:
    """(H, W, C) (or (H, W)) uint8 resized to (out_h, out_w, C) uint8 exactly as the C does."""
    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    if int(out_h) <= 0 or int(out_w) <= 0:
        raise InvalidOptionError(f"cannot resize to {out_w}x{out_h} pixels", hint="give a positive size")
    y0, y1, fy = axis_taps(image.shape[0], int(out_h), mode)
    x0, x1, fx = axis_taps(image.shape[1], int(out_w), mode)
    if mode == "nearest":
        return np.ascontiguousarray(image[y0][:, x0])
    p = image.astype(np.int64)
    wx, fx = (_ONE - fx)[None, :, None], fx[None, :, None]
    top = p[y0][:, x0] * wx + p[y0][:, x1] * fx
    bot = p[y1][:, x0] * wx + p[y1][:, x1] * fx
    v = top * (_ONE - fy)[:, None, None] + bot * fy[:, None, None]
    return ((v + (1 << (2 * Q_BITS - 1))) >> (2 * Q_BITS)).astype(np.uint8)


def preprocess(data, width: int, height: int, fmt: str, mode: str, out_h: int, out_w: int, channels: int,
               lut: np.ndarray, stride: int = 0) -> np.ndarray:
    """A raw frame to the model's (out_h, out_w, channels) input: `decode_frame`, `resize`, then
    ``lut[c, pixel]``. `lut` is (channels, 256) int8 or float32; the result has its dtype. Exactly
    what mn_preprocess_s8 / mn_preprocess_f32 compute on the device."""
    channels = _check_channels(channels)
    lut = np.asarray(lut)
    if lut.shape != (channels, 256) or lut.dtype not in (np.int8, np.float32):
        raise InvalidOptionError(f"the lookup table is {lut.dtype} {lut.shape}, it must be int8 or float32 "
                                 f"({channels}, 256)", hint="make it with mncompile.preprocess.contract.lookup_table")
    if mode not in RESIZE_IDS:
        raise InvalidOptionError(f"unknown resize mode {mode!r}", hint=f"use {' or '.join(RESIZES)}")
    pixels = resize(decode_frame(data, width, height, fmt, channels, stride), out_h, out_w, mode)
    return lut[np.arange(channels)[None, None, :], pixels]


# ---------------------------------------------------------------------------------------------
# the camera: the raw frames the golden vectors carry (and the device converts)

MAX_CAMERA_SIDE = 4096


@dataclass(frozen=True)
class Camera:
    """How golden frames arrive: pixel formats (every golden image is carried in each), frame
    size, and how the device resizes a frame to the model's side."""

    formats: tuple[str, ...]
    width: int
    height: int
    resize: str

    def to_json(self) -> dict:
        return {"formats": list(self.formats), "width": self.width, "height": self.height, "resize": self.resize}


@dataclass(frozen=True)
class CameraOptions:
    """What the user typed: ``--camera-format F[,F...]``, ``--camera-size WxH``, ``--resize MODE``."""

    formats: str | None = None
    size: str | None = None
    resize: str | None = None

    def check(self) -> CameraOptions:
        self._formats()
        self._size()
        self._resize()
        return self

    def _formats(self) -> tuple[str, ...] | None:
        if self.formats is None:
            return None
        names = tuple(f.strip().lower() for f in self.formats.split(","))
        bad = [f for f in names if f not in FORMATS]
        if bad or not names:
            raise InvalidOptionError(f"unknown camera format {', '.join(bad) or repr(self.formats)}",
                                     hint=f"use one or more of: {', '.join(FORMATS)} (comma-separated)")
        return tuple(dict.fromkeys(names))

    def _size(self) -> tuple[int, int] | None:
        if self.size is None:
            return None
        parts = self.size.lower().split("x")
        try:
            w, h = (int(p) for p in parts)
        except ValueError:
            raise InvalidOptionError(f"--camera-size {self.size!r} is not WIDTHxHEIGHT",
                                     hint="e.g. --camera-size 160x120") from None
        if not (1 <= w <= MAX_CAMERA_SIDE and 1 <= h <= MAX_CAMERA_SIDE):
            raise InvalidOptionError(f"--camera-size {self.size} is outside 1..{MAX_CAMERA_SIDE} pixels a side")
        return w, h

    def _resize(self) -> str | None:
        if self.resize is not None and self.resize.lower() not in RESIZES:
            raise InvalidOptionError(f"unknown resize mode {self.resize!r}", hint=f"use {' or '.join(RESIZES)}")
        return self.resize.lower() if self.resize is not None else None

    def camera(self, side: int, channels: int, prep) -> Camera:
        """The camera for a side x side x channels model (`prep`: its `Preprocessing`): by default
        frames of the model's own size in rgb888 (gray8 for a 1-channel model), resized as the
        preprocessing says."""
        formats = self._formats() or (("gray8",) if channels == 1 else ("rgb888",))
        w, h = self._size() or (side, side)
        if "yuv422" in formats and w % 2:
            raise InvalidOptionError(f"a yuv422 frame holds pixel pairs, and the frame is {w} pixels wide",
                                     hint="give an even width with --camera-size WxH")
        resize = self._resize() or (prep.resample if prep.resample in RESIZES else "bilinear")
        return Camera(formats, w, h, resize)
