"""Checking a build's report.html in a real browser (Debian's headless Chromium, through selenium).

`check_report(out, shot)` opens OUT/report.html, and asserts: no console error, every image decodes
with a size, every key figure's text equals the JSON value it names (read here from OUT/build.json
and the manifest, parsed back from the page's text by this file's own rules), and the full-page
screenshot is not blank. Used by test_build_firmware.py (the canonical build) and test_aot.py (a
run with a profile).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM_MISSING = (shutil.which("chromedriver") is None
                    or not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")))


def require_browser() -> None:
    """Skip where a user's machine has no Chromium; CI (which sets CI) and `make test` install it, so
    there the test fails instead of skipping."""
    if CHROMIUM_MISSING:
        if os.environ.get("CI"):
            pytest.fail("Chromium or chromedriver is missing in CI: scripts/setup.sh installs chromium and "
                        "chromium-driver")
        pytest.skip("Chromium or chromedriver is not installed (apt-get install chromium chromium-driver; "
                    "`make test` installs them)")


def json_value(out: Path, key: str):
    """The value a data-key names: "build:eval.int8_accuracy" -> OUT/build.json's eval.int8_accuracy."""
    doc_name, path = key.split(":", 1)
    doc = json.loads((out / ("build.json" if doc_name == "build" else "firmware/mncompile.json")).read_text())
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def figure_mismatches(out: Path, figures) -> list[str]:
    """Every key figure whose text does not say its JSON value (empty when all agree)."""
    bad = []
    for key, fmt, text in figures:
        value = json_value(out, key)
        text = text.strip()
        if fmt == "bytes":
            ok = re.fullmatch(r"[\d,]+ B", text) is not None and int(text[:-2].replace(",", "")) == value
        elif fmt == "int":
            ok = re.fullmatch(r"[\d,]+", text) is not None and int(text.replace(",", "")) == value
        elif fmt == "pct":  # two decimals of a percentage: within half a unit of the last digit
            ok = text.endswith(" %") and abs(float(text[:-2]) - 100.0 * value) <= 0.005 + 1e-9
        elif fmt == "pp":
            ok = text.endswith(" pp") and abs(float(text[:-3]) - value) <= 0.005 + 1e-9
        else:
            ok = text == str(value)
        if not ok:
            bad.append(f"{key} ({fmt}): page says {text!r}, JSON {value!r}")
    return bad


def assert_not_blank(png: Path) -> None:
    from PIL import Image, ImageStat

    with Image.open(png) as img:
        rgb = img.convert("RGB")
        assert rgb.width == 1280 and rgb.height > 900, rgb.size
        stddev = ImageStat.Stat(rgb).stddev
        colours = len(rgb.getcolors(maxcolors=1 << 20) or ())
    assert min(stddev) > 10 and colours > 100, (stddev, colours)


def check_report(out: Path, shot: Path, required: set[str]):
    """Open OUT/report.html in Chromium and check it; returns the page (figures, images)."""
    from mncompile.report.browser import check_page

    require_browser()
    page = check_page(out / "report.html", screenshot=shot)
    assert page.errors == (), page.console
    assert page.images and page.broken_images == (), page.images
    assert all(i.width > 100 and i.height > 100 for i in page.images), page.images
    keys = {key for key, _, _ in page.figures}
    assert required <= keys, required - keys
    assert figure_mismatches(out, page.figures) == []
    assert_not_blank(shot)
    return page
