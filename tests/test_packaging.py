"""`pip install .` gives a working `mncompile` outside the repository, with templates/ and firmware/.

The fresh virtualenv sees the already-installed dependencies (TensorFlow is
1+ GB) through a .pth line, so pip resolves every declared dependency against
them without downloading; mncompile itself comes only from the built wheel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


def _run(*cmd, cwd=None):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", out, REPO)
    (whl,) = out.glob("mncompile-*.whl")
    return whl


def test_wheel_carries_templates_firmware_and_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for tree in ("templates", "firmware"):
        shipped = {n for n in names if n.startswith(f"mncompile/{tree}/")}
        in_repo = {f"mncompile/{tree}/{p.relative_to(REPO / tree).as_posix()}"
                   for p in (REPO / tree).rglob("*") if p.is_file()}
        assert in_repo and shipped == in_repo
    assert "mncompile/targets/targets.toml" in names
    assert "mncompile/model/published.toml" in names
    assert "mncompile/graph/tflm_ops.json" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mncompile = mncompile.cli.app:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_fresh_venv_install_works_outside_the_repo(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(_run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # every declared dependency must resolve (against the visible ones), nothing downloads
    _run(py, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", wheel)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exe = env_dir / "bin" / "mncompile"
    assert _run(exe, "--version", cwd=elsewhere).stdout.startswith("mncompile ")
    doc = json.loads(_run(exe, "inspect", "--json", cwd=elsewhere).stdout)
    assert doc["totals"]["macs"] == 568_740_352
    where = _run(py, "-c", "import mncompile, mncompile.resources as r; "
                           "print(mncompile.__file__); print(r.templates_dir()); print(r.firmware_dir())",
                 cwd=elsewhere).stdout.split()
    for path in where:
        assert Path(path).resolve().is_relative_to(env_dir.resolve()), where
    assert (Path(where[1]) / "README.md").is_file() and (Path(where[2]) / "README.md").is_file()
