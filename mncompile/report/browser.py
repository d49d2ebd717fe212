"""Open a report in headless Chromium and say what the browser saw.

Selenium drives the Chromium and chromedriver the system has (Debian: packages `chromium` and
`chromium-driver`); nothing downloads a browser. `check_page` loads the file from ``file://``
with the network left closed and returns the console messages, whether every image decoded
(and its size), the text of every key figure (``data-key`` elements), and, when asked, a
full-page screenshot. The tests use it, and `mncompile report OUT --screenshot PNG` too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import BrowserError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = ("install Chromium and its driver (Debian/Ubuntu: `apt-get install chromium chromium-driver`) and "
                "selenium (`pip install 'mncompile[browser]'`), or set MNCOMPILE_CHROMIUM / MNCOMPILE_CHROMEDRIVER")
WIDTH = 1280
MAX_HEIGHT = 16000  # a screenshot taller than this is cut (Chromium refuses huge surfaces)

# Chromium's own network traffic (updates, sync, safe browsing) is off: the page needs none.
_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")

_IMAGES_JS = """
const done = arguments[arguments.length - 1];
Promise.all([...document.images].map(img => img.decode().then(
    () => ({alt: img.alt, ok: true, width: img.naturalWidth, height: img.naturalHeight, error: ""}),
    e => ({alt: img.alt, ok: false, width: img.naturalWidth, height: img.naturalHeight, error: String(e)}))))
  .then(done);
"""
_FIGURES_JS = """
return [...document.querySelectorAll('[data-key]')].map(e => [e.dataset.key, e.dataset.format, e.textContent]);
"""


@dataclass(frozen=True)
class ImageCheck:
    alt: str
    ok: bool
    width: int
    height: int
    error: str


@dataclass(frozen=True)
class PageCheck:
    url: str
    title: str
    console: tuple[dict, ...]  # every browser log entry: level, message
    images: tuple[ImageCheck, ...]
    figures: tuple[tuple[str, str, str], ...]  # (data-key, data-format, text as shown)
    height: int  # the page's height in CSS pixels at WIDTH
    screenshot: Path | None

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(e["message"] for e in self.console if e.get("level") == "SEVERE")

    @property
    def broken_images(self) -> tuple[ImageCheck, ...]:
        return tuple(i for i in self.images if not i.ok or i.width == 0 or i.height == 0)

    def to_json(self) -> dict:
        return {"url": self.url, "title": self.title, "console_errors": list(self.errors),
                "images": [vars(i) for i in self.images], "figures": len(self.figures),
                "height": self.height, "screenshot": str(self.screenshot) if self.screenshot else None}


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths; BrowserError naming what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise BrowserError("selenium is not installed: it drives Chromium to check the report", hint=INSTALL_HINT) \
            from None
    chromium = os.environ.get("MNCOMPILE_CHROMIUM") or next(
        (p for p in (shutil.which(n) for n in CHROMIUM_NAMES) if p), None)
    driver = os.environ.get("MNCOMPILE_CHROMEDRIVER") or shutil.which("chromedriver")
    missing = [name for name, path in (("Chromium", chromium), ("chromedriver", driver)) if not path]
    if missing:
        raise BrowserError(f"{' and '.join(missing)} not found on PATH", hint=INSTALL_HINT)
    return chromium, driver


def check_page(html: Path, screenshot: Path | None = None, width: int = WIDTH) -> PageCheck:
    """Load `html` in headless Chromium; with `screenshot`, write a full-page PNG there (atomically)."""
    chromium, driver_path = find_browser()
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    html = Path(html).resolve()
    if not html.is_file():
        raise BrowserError(f"{html} does not exist", hint="make it first with `mncompile report OUT`")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for drivers online
    with tempfile.TemporaryDirectory(prefix="mncompile-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            browser = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        except WebDriverException as exc:
            raise BrowserError(f"Chromium ({chromium}) did not start under {driver_path}: {_first_line(exc)}",
                               hint="check that chromium and chromedriver are the same version") from None
        try:
            browser.set_script_timeout(60)
            browser.get(html.as_uri())
            images = tuple(ImageCheck(**i) for i in browser.execute_async_script(_IMAGES_JS))
            figures = tuple(tuple(f) for f in browser.execute_script(_FIGURES_JS))
            height = int(browser.execute_script("return document.documentElement.scrollHeight"))
            shot = None
            if screenshot is not None:
                shot = _full_page_png(browser, Path(screenshot), width, min(height, MAX_HEIGHT))
            console = tuple({"level": e.get("level"), "message": e.get("message")} for e in browser.get_log("browser"))
            return PageCheck(html.as_uri(), browser.title, console, images, figures, height, shot)
        except WebDriverException as exc:
            raise BrowserError(f"Chromium failed on {html}: {_first_line(exc)}") from None
        finally:
            browser.quit()


def _full_page_png(browser, shot: Path, width: int, height: int) -> Path:
    """The whole page as one PNG (DevTools: the viewport set to the page's size, then a capture)."""
    import base64

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    data = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                              "clip": {"x": 0, "y": 0, "width": width,
                                                                       "height": height, "scale": 1}})["data"]
    shot.parent.mkdir(parents=True, exist_ok=True)
    tmp = shot.with_name(f".{shot.name}.tmp-{os.getpid()}.png")
    try:
        tmp.write_bytes(base64.b64decode(data))
        os.replace(tmp, shot)
    finally:
        tmp.unlink(missing_ok=True)
    return shot


def require_clean(page: PageCheck) -> PageCheck:
    """BrowserError when Chromium logged an error or an image did not decode."""
    problems = [f"console: {m}" for m in page.errors]
    problems += [f"image {i.alt!r} did not decode ({i.error or 'no size'})" for i in page.broken_images]
    if problems:
        raise BrowserError(f"Chromium found problems in {page.url}: " + "; ".join(problems),
                           hint="report it with the page: the report must open cleanly")
    return page


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "msg", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
