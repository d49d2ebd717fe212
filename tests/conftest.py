"""Shared fixtures. Slow work (training, conversions) happens once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(*args: str, cwd: Path | None = None, check: bool = False,
            timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real `mncompile` command line in a subprocess."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "mncompile", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mncompile {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it is not part of a clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory) -> dict:
    """`mncompile train --dataset digits` with every default, run once through the CLI."""
    out = tmp_path_factory.mktemp("trained") / "digits_v1.keras"
    proc = run_cli("train", "--dataset", "digits", "-o", str(out), "--json", check=True)
    result = json.loads(proc.stdout)
    result["stderr"] = proc.stderr
    result["path"] = out
    return result
