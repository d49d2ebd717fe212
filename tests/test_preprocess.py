"""The preprocessing contract (mncompile.preprocess.contract): options, sources, agreement, the table.

References are independent of the code: the MLPerf VWW model's published input quantization
(scale 1/255, zero point -128: pixels / 255), torch's documented ImageNet normalisation worked
by hand, and the int8 level a pixel must land on by the definition of the mapping.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mncompile.errors import InvalidOptionError
from mncompile.preprocess.camera import CameraOptions
from mncompile.preprocess.contract import (
    PixelOptions,
    Preprocessing,
    check_agreement,
    lookup_table,
    resolve,
)

VWW_QUANT = (1.0 / 255.0, -128)  # MLPerf Tiny VWW int8 input


class Recorder:
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(message)


def test_vww_input_quantization_gives_zero_one_and_the_identity_table():
    prep, where = resolve(PixelOptions(), None, VWW_QUANT, 96, 3)
    assert "quantization" in where
    assert prep.ranges() == ((0.0, 1.0),) * 1
    lut = lookup_table(prep, VWW_QUANT)
    assert lut.shape == (3, 256) and lut.dtype == np.int8
    np.testing.assert_array_equal(lut, np.broadcast_to(np.arange(256) - 128, (3, 256)))


@pytest.mark.parametrize("scale,zero_point", [(2.0 / 255, -1), (0.0078125, 0), (0.0235, 30), (1.0, -128)])
def test_any_int8_input_quantization_maps_pixel_p_to_level_p_minus_128(scale, zero_point):
    prep, _ = resolve(PixelOptions(), None, (scale, zero_point), 8, 1)
    np.testing.assert_array_equal(lookup_table(prep, (scale, zero_point))[0], np.arange(256) - 128)


def test_sources_in_order_options_sidecar_quantization_default():
    sidecar = Preprocessing(32, "RGB", scale=1 / 255.0, offset=0.0)
    prep, where = resolve(PixelOptions(input_range="0,1"), Preprocessing(32, "RGB"), VWW_QUANT, 32, 3)
    assert where == "the --input-range option"  # options beat a sidecar, agreeing with the quantization
    prep, where = resolve(PixelOptions(input_range="0,1"), Preprocessing(32, "RGB"), None, 32, 3)
    assert where == "the --input-range option" and prep.ranges()[0] == (0.0, 1.0)
    prep, where = resolve(PixelOptions(), sidecar, None, 32, 3)
    assert where == "the model's sidecar" and prep is sidecar
    rec = Recorder()
    prep, where = resolve(PixelOptions(), None, None, 32, 3, rec)
    assert prep.ranges()[0] == (-1.0, 1.0) and "default" in where
    assert len(rec.lines) == 1 and rec.lines[0].startswith("warning:") and "--input-range" in rec.lines[0]


def test_contradiction_names_both_ranges():
    with pytest.raises(InvalidOptionError) as info:
        resolve(PixelOptions(input_range="-1,1"), None, VWW_QUANT, 96, 3)
    assert "[-1, 1]" in info.value.message and "[0, 1]" in info.value.message
    with pytest.raises(InvalidOptionError):
        check_agreement(Preprocessing(96, "RGB", scale=1.0, offset=0.0), VWW_QUANT, "x")  # 0..255 vs [0, 1]
    # a calibration that covered a little less than the full range still agrees
    check_agreement(Preprocessing(96, "RGB", scale=1 / 255.0, offset=0.0), (0.9 / 255, -128), "x")


def test_torch_mean_std_worked_by_hand():
    opts = PixelOptions(mean="0.485,0.456,0.406", std="0.229,0.224,0.225").check()
    prep = opts.preprocessing(224, 3)
    x = prep.apply(np.array([[0, 255, 128]], np.uint8))[0]
    want = [(0 - 0.485) / 0.229, (1 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    np.testing.assert_allclose(x, want, rtol=1e-6)


def test_caffe_mean_on_0_255():
    prep = PixelOptions(mean="123.68,116.78,103.94", std="1,1,1").preprocessing(224, 3)
    np.testing.assert_allclose(prep.apply(np.array([[0, 255, 100]], np.uint8))[0],
                               [-123.68, 255 - 116.78, 100 - 103.94], rtol=1e-6)


def test_input_range_json_round_trip_per_channel():
    prep = PixelOptions(mean="0.5,0.4,0.3", std="0.2,0.25,0.3").preprocessing(64, 3)
    back = Preprocessing.from_json(json.loads(json.dumps(prep.to_json())))
    assert back == prep and len(back.scale) == 3
    one = Preprocessing.from_json(json.loads(json.dumps(Preprocessing(8, "L").to_json())))
    assert one.to_json()["scale"] == 1 / 127.5  # one value stays a number: older sidecars read the same


@pytest.mark.parametrize("text", ["1", "a,b", "1,0", "0,0", "0,1,2", "nan,1", ""])
def test_bad_range_strings(text):
    with pytest.raises(InvalidOptionError, match="--input-range"):
        PixelOptions(input_range=text).check()


def test_mean_std_errors():
    with pytest.raises(InvalidOptionError, match="go together"):
        PixelOptions(mean="0.5").check()
    with pytest.raises(InvalidOptionError, match="both"):
        PixelOptions(input_range="0,1", mean="0.5", std="0.5").check()
    with pytest.raises(InvalidOptionError, match="not positive"):
        PixelOptions(mean="0.5", std="0").check()
    with pytest.raises(InvalidOptionError, match="2 values and the model's input 3 channels"):
        PixelOptions(mean="0.5,0.5", std="0.2").check().preprocessing(96, 3)
    with pytest.raises(InvalidOptionError, match="3 values and the model's input 1 channel"):
        PixelOptions(mean="0.5,0.5,0.5", std="0.2").check().preprocessing(96, 1)


def test_labels_file(tmp_path):
    good = tmp_path / "labels.txt"
    good.write_text("no person\nperson\n\n", encoding="utf-8")
    assert PixelOptions(labels=good).check().class_names(2) == ("no person", "person")
    with pytest.raises(InvalidOptionError, match="2 labels and the model 3 output classes"):
        PixelOptions(labels=good).class_names(3)
    gap = tmp_path / "gap.txt"
    gap.write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(InvalidOptionError, match="empty line 2"):
        PixelOptions(labels=gap).check()
    with pytest.raises(InvalidOptionError, match="does not exist"):
        PixelOptions(labels=tmp_path / "missing.txt").check()
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\nthe\n")
    with pytest.raises(InvalidOptionError, match="UTF-8"):
        PixelOptions(labels=latin).check()


def test_camera_options():
    prep = Preprocessing(96, "RGB")
    cam = CameraOptions("rgb565,yuv422", "160x120", "nearest").check().camera(96, 3, prep)
    assert cam.formats == ("rgb565", "yuv422") and (cam.width, cam.height, cam.resize) == (160, 120, "nearest")
    default = CameraOptions().camera(96, 1, Preprocessing(96, "L"))
    assert default.formats == ("gray8",) and (default.width, default.height, default.resize) == (96, 96, "bilinear")
    for bad, match in ((CameraOptions("bgr"), "unknown camera format"), (CameraOptions(size="160"), "WIDTHxHEIGHT"),
                       (CameraOptions(size="0x10"), "outside"), (CameraOptions(resize="cubic"), "resize mode")):
        with pytest.raises(InvalidOptionError, match=match):
            bad.check()
    with pytest.raises(InvalidOptionError, match="even width"):
        CameraOptions("yuv422", "95x96").camera(96, 3, prep)


def test_labels_bom_is_dropped_and_duplicates_refused(tmp_path):
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffno_person\nperson\n".encode())
    assert PixelOptions(labels=bom).class_names(2) == ("no_person", "person")
    twice = tmp_path / "twice.txt"
    twice.write_text("a\na\n", encoding="utf-8")
    with pytest.raises(InvalidOptionError, match="more than once"):
        PixelOptions(labels=twice).check()


def test_an_unconventional_inferred_range_warns():
    rec = Recorder()
    resolve(PixelOptions(), None, (0.0186584, -14), 96, 3, rec)  # a calibration's min/max, not a convention
    assert len(rec.lines) == 1 and "no conventional range" in rec.lines[0]
    rec = Recorder()
    resolve(PixelOptions(), None, VWW_QUANT, 96, 3, rec)
    assert rec.lines == []
