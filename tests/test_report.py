"""The HTML report's parts that need no build: errors for folders that are not builds, tensor labels,
deterministic charts, and the browser check catching a broken page (so its passes mean something).
The reports of real builds are checked in Chromium by test_build_firmware.py (the canonical build) and
test_aot.py (a firmware run with its profile)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from report_check import require_browser

from mncompile.errors import BrowserError, InvalidOptionError


def test_report_of_a_folder_that_is_not_a_build_says_what_to_run(tmp_path):
    from mncompile.report import write_report

    with pytest.raises(InvalidOptionError, match="build.json is missing") as err:
        write_report(tmp_path)
    assert "mncompile build -o" in err.value.hint
    (tmp_path / "build.json").write_text("{not json")
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "mncompile.json").write_text("{}")
    proc = run_cli("report", str(tmp_path), "--json")
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"] == "invalid-option"
    assert "cannot be read as JSON" in json.loads(proc.stdout)["message"]
    assert not (tmp_path / "report.html").exists()
    missing = run_cli("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_tensor_labels_name_the_keras_layer():
    from mncompile.report.figures import tensor_label

    assert tensor_label("mobilenet_v1_0_25_96_1/conv_pw_1_relu_1/Relu6;mobilenet_v1_0_25_96_1/conv_pw_1_bn_1/"
                        "batchnorm/add_1") == "conv_pw_1_relu_1"
    assert tensor_label("functional_1/global_average_pooling2d_1/Mean") == "global_average_pooling2d_1"
    assert tensor_label("input") == "input"
    assert tensor_label("model/" + "x" * 40) == "x" * 27 + "…"


def test_charts_are_the_same_bytes_every_time_and_label_their_tensors():
    from mncompile.report.figures import timeline_svg

    buffers = [{"id": 0, "name": "input", "bytes": 4096, "first": 0, "last": 1, "offset": 0},
               {"id": 1, "name": "m/conv1_relu/Relu6", "bytes": 8192, "first": 1, "last": 2, "offset": 4096},
               {"id": 2, "name": "m/tiny/add", "bytes": 64, "first": 2, "last": 3, "offset": 0}]
    first, second = timeline_svg(buffers, 12288, 12288), timeline_svg(buffers, 12288, 12288)
    assert first == second and first.startswith("<svg")
    assert "#1 conv1_relu" in first and "#0 input" in first  # tall boxes carry their layer's name
    assert "#2" not in first  # a box under 2 % of the arena has no room for a label (the table names it)
    assert "Date" not in first and "layer-by-layer lower bound 12,288 B" in first


def test_the_browser_check_catches_console_errors_and_images_that_do_not_decode(tmp_path):
    from mncompile.report.browser import check_page, require_clean

    require_browser()
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body><h1>x</h1>'
                    '<img alt="broken" src="data:image/png;base64,iVBORw0KGgoAAAA=">'
                    '<span data-key="build:a" data-format="int">1</span>'
                    '<script>console.error("deliberate failure")</script></body></html>')
    checked = check_page(page)
    assert any("deliberate failure" in e for e in checked.errors)
    assert [i.alt for i in checked.broken_images] == ["broken"]
    assert checked.figures == (("build:a", "int", "1"),) and checked.title == "t"
    with pytest.raises(BrowserError, match="did not decode"):
        require_clean(checked)
