"""The camera-pixel path: firmware/preprocess/mn_preprocess.c against mncompile.preprocess.camera.

1. The C compiled for the host (gcc -std=c99 -pedantic, every warning an error) and called through
   ctypes equals the NumPy reference bit for bit: seeded random frames, every pixel format x both
   resize modes x 1 and 3 channels x sizes that upscale, downscale, keep the size, are odd, have
   1-pixel sides or non-packed rows; u8 output, s8 with a random table, f32 with a random float
   table (bit patterns compared). Exhaustive frames hold every rgb565 value and every (U, V) pair.
2. Independent references: luma equals Pillow's convert("L"); yuv422 decodes within 1 level of the
   float BT.601 formula; bilinear resize within 0.75 of TensorFlow's; nearest exactly a float
   formula; rgb565 and rgb888 round trips; S == D is the identity.
3. The C builds for arm-none-eabi (Cortex-M0 and M7) warning-free and the header compiles as C++17.
4. Errors: the NumPy side raises InvalidOptionError, the C returns its negative codes.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
from conftest import REPO

from mncompile.errors import InvalidOptionError
from mncompile.preprocess import camera

SRC = REPO / "firmware" / "preprocess"
WARNINGS = ("-Wall", "-Wextra", "-Werror", "-Wconversion")


class Frame(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("width", ctypes.c_int32), ("height", ctypes.c_int32),
                ("stride", ctypes.c_int32), ("format", ctypes.c_int)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """mn_preprocess.c built as a host shared library."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    so_path = tmp_path_factory.mktemp("camera") / "libmnpreprocess.so"
    proc = subprocess.run(["gcc", "-std=c99", *WARNINGS, "-pedantic", "-O2", "-fPIC", "-shared",
                           str(SRC / "mn_preprocess.c"), "-o", str(so_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    so = ctypes.CDLL(str(so_path))
    i32 = ctypes.c_int32
    so.mn_frame_bytes.argtypes = (ctypes.c_int, i32, i32)
    for name, extra in (("mn_preprocess_u8", ()), ("mn_preprocess_s8", (ctypes.c_void_p,)),
                        ("mn_preprocess_f32", (ctypes.c_void_p,))):
        fn = getattr(so, name)
        fn.restype = i32
        fn.argtypes = (ctypes.c_void_p, ctypes.c_int, i32, i32, i32, *extra, ctypes.c_void_p)
    so.mn_frame_bytes.restype = i32
    return so


def run_c(so, data: bytes, width, height, fmt, mode, out_h, out_w, channels, lut=None, stride=0,
          fmt_id=None, mode_id=None):
    """(status, output) of mn_preprocess_u8 (no lut), _s8 (int8 lut) or _f32 (float32 lut)."""
    buf = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
    frame = Frame(ctypes.addressof(buf), width, height, stride,
                  camera.FORMAT_IDS[fmt] if fmt_id is None else fmt_id)
    mode = camera.RESIZE_IDS[mode] if mode_id is None else mode_id
    dtype = np.uint8 if lut is None else lut.dtype
    sentinel = 0x5A
    out = np.full(max(out_h * out_w * max(channels, 1), 1), sentinel, dtype)
    args = (ctypes.byref(frame), mode, out_w, out_h, channels)
    if lut is None:
        status = so.mn_preprocess_u8(*args, out.ctypes.data)
    else:
        fn = so.mn_preprocess_s8 if lut.dtype == np.int8 else so.mn_preprocess_f32
        lut = np.ascontiguousarray(lut)
        status = fn(*args, lut.ctypes.data, out.ctypes.data)
    if status != 0:
        assert (out == sentinel).all(), "an error must leave the output untouched"
        return status, None
    return status, out.reshape(out_h, out_w, channels)


# (width, height, out_w, out_h, stride padding): identity, down, up, odd, 1-pixel sides, strided rows
SIZES = [(8, 6, 8, 6, 0), (16, 12, 5, 7, 0), (6, 4, 13, 11, 0), (1, 1, 3, 2, 0), (7, 9, 1, 1, 0),
         (2, 1, 1, 5, 0), (1, 8, 4, 3, 0), (33, 17, 10, 10, 5), (12, 30, 31, 2, 3), (20, 20, 96, 96, 0),
         (96, 96, 96, 96, 1), (160, 120, 96, 96, 0), (5, 3, 5, 3, 7)]


@pytest.mark.parametrize("fmt", camera.FORMATS)
def test_c_equals_numpy(lib, fmt):
    rng = np.random.default_rng(camera.FORMAT_IDS[fmt])
    for width, height, out_w, out_h, pad in SIZES:
        if fmt == "yuv422" and width % 2:
            width += 1
        row = width * camera.bytes_per_pixel(fmt)
        stride = row + pad if pad else 0
        # the last row unpadded: the frame is exactly as long as it must be
        data = rng.integers(0, 256, (stride or row) * (height - 1) + row, dtype=np.uint8).tobytes()
        for mode in camera.RESIZES:
            for channels in (1, 3):
                where = f"{fmt} {width}x{height} stride {stride} -> {out_w}x{out_h} {mode} C={channels}"
                s8 = rng.integers(-128, 128, (channels, 256), dtype=np.int8)
                f32 = rng.normal(0, 10, (channels, 256)).astype(np.float32)
                f32[0, :3] = (np.nan, -0.0, np.inf)
                expect_u8 = camera.resize(camera.decode_frame(data, width, height, fmt, channels, stride),
                                          out_h, out_w, mode)
                status, got = run_c(lib, data, width, height, fmt, mode, out_h, out_w, channels, stride=stride)
                assert status == 0, where
                np.testing.assert_array_equal(got, expect_u8, err_msg=where)
                for lut in (s8, f32):
                    expect = camera.preprocess(data, width, height, fmt, mode, out_h, out_w, channels, lut, stride)
                    assert expect.dtype == lut.dtype and expect.shape == (out_h, out_w, channels)
                    np.testing.assert_array_equal(expect, lut[np.arange(channels), expect_u8])
                    status, got = run_c(lib, data, width, height, fmt, mode, out_h, out_w, channels, lut, stride)
                    assert status == 0, where
                    np.testing.assert_array_equal(got.view(f"u{lut.itemsize}"), expect.view(f"u{lut.itemsize}"),
                                                  err_msg=where)


def test_exhaustive_pixels(lib):
    """Every rgb565 value in both byte orders, every (U, V) pair with Y = 0, 255 and random Y."""
    rng = np.random.default_rng(5)
    v565 = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    frames = [(v565.astype("<u2").tobytes(), 256, 256, "rgb565"), (v565.astype(">u2").tobytes(), 256, 256, "rgb565be")]
    u, v = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    for y0, y1 in ((0, 255), (255, 0), tuple(rng.integers(0, 256, (2, 256, 256), dtype=np.uint8))):
        pairs = np.stack(np.broadcast_arrays(np.uint8(0) + y0, u, np.uint8(0) + y1, v), axis=-1).astype(np.uint8)
        frames.append((pairs.tobytes(), 512, 256, "yuv422"))
    for data, width, height, fmt in frames:
        for channels in (1, 3):
            status, got = run_c(lib, data, width, height, fmt, "nearest", height, width, channels)
            assert status == 0
            np.testing.assert_array_equal(got, camera.decode_frame(data, width, height, fmt, channels))


def test_identity_when_sizes_match(lib):
    # S == D: nearest floor((2d + 1) S / 2S) = d; bilinear pos = (2d + 1) 1024 - 1024 = 2048 d, f = 0
    rng = np.random.default_rng(1)
    for h, w in ((1, 1), (3, 7), (48, 33)):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for mode in camera.RESIZES:
            np.testing.assert_array_equal(camera.resize(image, h, w, mode), image)
            for channels, fmt in ((3, "rgb888"), (1, "gray8")):
                pixels = image if channels == 3 else image[..., :1]
                data = camera.encode_frame(pixels, fmt)
                np.testing.assert_array_equal(run_c(lib, data, w, h, fmt, mode, h, w, channels)[1], pixels)


# ---------------------------------------------------------------------------------------------
# independent references


def test_luma_is_pillows(lib):
    from PIL import Image

    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb[0, :8] = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (1, 2, 3), (254, 1, 128),
                  (128, 128, 128)]
    pillow = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    data = camera.encode_frame(rgb, "rgb888")
    np.testing.assert_array_equal(camera.decode_frame(data, 64, 64, "rgb888", 1)[..., 0], pillow)
    np.testing.assert_array_equal(run_c(lib, data, 64, 64, "rgb888", "nearest", 64, 64, 1)[1][..., 0], pillow)
    np.testing.assert_array_equal(np.frombuffer(camera.encode_frame(rgb, "gray8"), np.uint8).reshape(64, 64), pillow)


def test_yuv422_decode_matches_float_bt601():
    # The fixed-point coefficients are JFIF's 1.402, 0.344136, 0.714136, 1.772 times 65536 rounded
    # to integers (each off by < 1/131072, so < 0.002 levels over |U - 128|, |V - 128| <= 128); the
    # fixed point then rounds once like the float formula, so the two can differ only where the
    # float value sits within that 0.002 of a .5: at most 1 level, and rarely.
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 4 * 128 * 64, dtype=np.uint8).tobytes()
    got = camera.decode_frame(data, 256, 64, "yuv422", 3).astype(np.int64)
    q = np.frombuffer(data, np.uint8).reshape(64, 128, 4).astype(np.float64)
    y = np.stack([q[..., 0], q[..., 2]], axis=-1).reshape(64, 256)
    d, e = (np.repeat(q[..., k] - 128, 2, axis=1) for k in (1, 3))
    ref = np.stack([y + 1.402 * e, y - 0.344136 * d - 0.714136 * e, y + 1.772 * d], axis=-1)
    ref = np.clip(np.floor(ref + 0.5), 0, 255)
    diff = np.abs(got - ref)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    # 1 channel is Y itself, no RGB round trip
    np.testing.assert_array_equal(camera.decode_frame(data, 256, 64, "yuv422", 1)[..., 0], y.astype(np.uint8))


def test_yuv422_encode_matches_float_bt601():
    # Y is the luma (Pillow's, tested above); U, V of a pair are JFIF's float formula on the pair's
    # average RGB, within 1 level (Q16 coefficients, one rounding); gray gives U = V = 128 exactly.
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (16, 32, 3), dtype=np.uint8)
    q = np.frombuffer(camera.encode_frame(rgb, "yuv422"), np.uint8).reshape(16, 16, 4).astype(np.float64)
    np.testing.assert_array_equal(q[..., [0, 2]].reshape(16, 32), camera.luma(rgb))
    avg = (rgb[:, 0::2].astype(np.float64) + rgb[:, 1::2]) / 2
    r, g, b = avg[..., 0], avg[..., 1], avg[..., 2]
    u = np.clip(np.floor(128 - 0.168736 * r - 0.331264 * g + 0.5 * b + 0.5), 0, 255)
    v = np.clip(np.floor(128 + 0.5 * r - 0.418688 * g - 0.081312 * b + 0.5), 0, 255)
    assert np.abs(q[..., 1] - u).max() <= 1 and np.abs(q[..., 3] - v).max() <= 1
    gray = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    for image in (gray, np.repeat(gray[..., None], 3, axis=2)):
        data = camera.encode_frame(image, "yuv422")
        assert data[1::2] == bytes([128]) * 24
        np.testing.assert_array_equal(camera.decode_frame(data, 6, 4, "yuv422", 3), np.repeat(gray[..., None], 3, 2))


def test_bilinear_matches_tensorflow():
    # TF's bilinear (half-pixel centres, no antialiasing) in float: ours rounds to an integer (0.5)
    # after positions truncated to Q11 (each weight off by < 1/2048 per axis: < 2 * 255 / 2048
    # = 0.25 levels), so within 0.75.
    from mncompile.tfenv import tf_module

    tf = tf_module()
    rng = np.random.default_rng(6)
    for (h, w), (oh, ow) in (((13, 17), (40, 31)), ((96, 80), (23, 37)), ((5, 1), (9, 4)), ((24, 24), (96, 96)),
                             ((64, 48), (64, 10))):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ref = tf.image.resize(image[None].astype(np.float32), (oh, ow), method="bilinear", antialias=False)
        ref = ref.numpy()[0]
        got = camera.resize(image, oh, ow, "bilinear")
        assert np.abs(got - ref.astype(np.float64)).max() <= 0.75, ((h, w), (oh, ow))


def test_nearest_matches_float_formula(lib):
    rng = np.random.default_rng(7)
    for (h, w), (oh, ow) in (((13, 17), (40, 31)), ((96, 80), (23, 37)), ((1, 9), (3, 2)), ((10, 10), (3, 3))):
        image = rng.integers(0, 256, (h, w), dtype=np.uint8)
        iy = np.floor((np.arange(oh) + 0.5) * h / oh).astype(int)
        ix = np.floor((np.arange(ow) + 0.5) * w / ow).astype(int)
        ref = image[iy][:, ix]
        np.testing.assert_array_equal(camera.resize(image, oh, ow, "nearest")[..., 0], ref)
        got = run_c(lib, image.tobytes(), w, h, "gray8", "nearest", oh, ow, 1)[1]
        np.testing.assert_array_equal(got[..., 0], ref)


def test_rgb565_and_rgb888_round_trips():
    v = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    for fmt, order in (("rgb565", "<u2"), ("rgb565be", ">u2")):
        data = v.astype(order).tobytes()
        rgb = camera.decode_frame(data, 256, 256, fmt, 3)
        assert camera.encode_frame(rgb, fmt) == data  # every 565-representable colour survives
        # bit replication stays within 1 level of the ideal scaling c * 255 / (2^bits - 1)
        for c, bits, shift in ((0, 5, 11), (1, 6, 5), (2, 5, 0)):
            top = (v.astype(np.int64) >> shift) & ((1 << bits) - 1)
            assert np.abs(rgb[..., c] - top * 255 / ((1 << bits) - 1)).max() <= 1
    assert camera.decode_frame(bytes([0xFF, 0xFF, 0, 0]), 2, 1, "rgb565", 3).tolist() == [[[255] * 3, [0] * 3]]
    assert camera.decode_frame(bytes([0x84, 0x10]), 1, 1, "rgb565be", 3).tolist() == [[[132, 130, 132]]]
    rng = np.random.default_rng(8)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(camera.decode_frame(camera.encode_frame(rgb, "rgb888"), 5, 7, "rgb888", 3), rgb)
    gray = rgb[..., 0]
    for fmt in camera.FORMATS[:3]:  # a gray image encodes by replication
        assert camera.encode_frame(gray, fmt) == camera.encode_frame(np.repeat(gray[..., None], 3, 2), fmt)


def test_numpy_is_fast_enough():
    rng = np.random.default_rng(9)
    lut = rng.integers(-128, 128, (3, 256), dtype=np.int8)
    for fmt in ("rgb565", "yuv422"):
        data = rng.integers(0, 256, camera.frame_bytes(fmt, 640, 480), dtype=np.uint8).tobytes()
        start = time.perf_counter()
        camera.preprocess(data, 640, 480, fmt, "bilinear", 224, 224, 3, lut)
        assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------------------------------------
# the C builds for the devices; enums agree


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m7"])
def test_builds_for_cortex_m(tmp_path, cpu):
    proc = subprocess.run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-std=c11", *WARNINGS, "-O2", "-c",
                           str(SRC / "mn_preprocess.c"), "-o", str(tmp_path / "p.o")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_header_is_cxx17(tmp_path):
    (tmp_path / "use.cc").write_text('#include "mn_preprocess.h"\n'
                                     "int use(const mn_frame *f, int8_t *lut, int8_t *out)\n{\n"
                                     "    return mn_preprocess_s8(f, MN_RESIZE_BILINEAR, 96, 96, 3, lut, out);\n}\n")
    proc = subprocess.run(["g++", "-std=c++17", *WARNINGS, "-fsyntax-only", f"-I{SRC}", str(tmp_path / "use.cc")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_enums_agree():
    from mncompile.emit.context import C_FORMATS, C_RESIZE

    header = (SRC / "mn_preprocess.h").read_text()
    pixel = {m[0].lower(): int(m[1]) for m in re.findall(r"MN_PIXEL_(\w+) = (\d+)", header)}
    resize = {m[0].lower(): int(m[1]) for m in re.findall(r"MN_RESIZE_(\w+) = (\d+)", header)}
    assert pixel == camera.FORMAT_IDS and resize == camera.RESIZE_IDS
    # the names the project templates write (mncompile.emit.context) are the header's
    assert {f: f"MN_PIXEL_{f.upper()}" for f in camera.FORMATS} == C_FORMATS
    assert {m: f"MN_RESIZE_{m.upper()}" for m in camera.RESIZES} == C_RESIZE


# ---------------------------------------------------------------------------------------------
# errors


def test_numpy_errors():
    data = bytes(100)
    lut = np.zeros((3, 256), np.int8)
    with pytest.raises(InvalidOptionError, match="unknown camera pixel format"):
        camera.decode_frame(data, 4, 4, "bgr", 3)
    with pytest.raises(InvalidOptionError, match="unknown resize mode"):
        camera.preprocess(data, 4, 4, "gray8", "bicubic", 2, 2, 3, lut)
    with pytest.raises(InvalidOptionError, match="pixel pairs"):
        camera.decode_frame(data, 5, 4, "yuv422", 3)
    with pytest.raises(ValueError, match="pixel pairs"):
        camera.encode_frame(np.zeros((2, 3, 3), np.uint8), "yuv422")
    with pytest.raises(InvalidOptionError, match="needs 48"):
        camera.decode_frame(bytes(47), 4, 4, "rgb888", 3)
    with pytest.raises(InvalidOptionError, match="needs 52"):  # strided: rows of 20 bytes, the last one 12
        camera.decode_frame(bytes(51), 4, 3, "rgb888", 3, stride=20)
    np.testing.assert_array_equal(camera.decode_frame(bytes(range(52)), 4, 3, "rgb888", 3, stride=20)[2],
                                  np.arange(40, 52).reshape(4, 3))
    with pytest.raises(InvalidOptionError, match="stride"):
        camera.decode_frame(data, 4, 4, "rgb888", 3, stride=11)
    with pytest.raises(InvalidOptionError, match="1 or 3 channels"):
        camera.decode_frame(data, 4, 4, "gray8", 2)
    with pytest.raises(InvalidOptionError, match="lookup table"):
        camera.preprocess(data, 4, 4, "gray8", "nearest", 2, 2, 1, lut)
    with pytest.raises(InvalidOptionError, match="lookup table"):
        camera.preprocess(data, 4, 4, "gray8", "nearest", 2, 2, 3, lut.astype(np.int16))
    with pytest.raises(InvalidOptionError, match="empty"):
        camera.frame_bytes("gray8", 0, 4)
    assert camera.frame_bytes("yuv422", 4, 3) == 24 and camera.frame_bytes("rgb888", 5, 3) == 45


def test_c_errors(lib):
    ok = (bytes(64), 4, 4, "gray8", "nearest", 2, 2, 1)
    assert run_c(lib, *ok)[0] == 0
    assert run_c(lib, *ok, fmt_id=9)[0] == -2
    assert run_c(lib, *ok, mode_id=5)[0] == -2
    assert run_c(lib, bytes(64), 4, 4, "gray8", "nearest", 2, 2, 2)[0] == -1  # channels
    assert run_c(lib, bytes(64), 4, 4, "gray8", "nearest", 0, 2, 1)[0] == -1  # out_h
    assert run_c(lib, bytes(64), 0, 4, "gray8", "nearest", 2, 2, 1)[0] == -1  # width
    assert run_c(lib, bytes(64), 4, 4, "gray8", "nearest", 2, 2, 1, stride=3)[0] == -1
    assert run_c(lib, bytes(64), 4, 4, "gray8", "nearest", 2, 2, 1, stride=-4)[0] == -1
    assert run_c(lib, bytes(64), 3, 2, "yuv422", "bilinear", 2, 2, 3)[0] == -3
    assert run_c(lib, bytes(64), 4, 4, "gray8", "nearest", 2, 2, 1, lut=np.zeros((1, 256), np.int8))[0] == 0
    i32 = ctypes.c_int32
    assert lib.mn_preprocess_u8(None, 0, 2, 2, 1, ctypes.c_void_p(1)) == -1
    frame = Frame(None, 4, 4, 0, 3)
    assert lib.mn_preprocess_u8(ctypes.byref(frame), 0, 2, 2, 1, ctypes.c_void_p(1)) == -1  # null data
    buf = ctypes.create_string_buffer(64)
    frame = Frame(ctypes.addressof(buf), 4, 4, 0, 3)
    assert lib.mn_preprocess_u8(ctypes.byref(frame), 0, 2, 2, 1, None) == -1  # null output
    assert lib.mn_preprocess_s8(ctypes.byref(frame), 0, 2, 2, 1, None, ctypes.addressof(buf)) == -1  # null table
    for fmt in camera.FORMATS:
        assert lib.mn_frame_bytes(camera.FORMAT_IDS[fmt], i32(6), i32(5)) == camera.frame_bytes(fmt, 6, 5)
    assert lib.mn_frame_bytes(4, 5, 2) == -3 and lib.mn_frame_bytes(7, 4, 4) == -2
    assert lib.mn_frame_bytes(0, 0, 4) == -1 and lib.mn_frame_bytes(0, 65536, 65536) == -1
