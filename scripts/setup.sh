#!/usr/bin/env bash
# Install everything mncompile needs, only what is missing, from nothing:
#   - Debian packages (bare-metal Arm toolchain, QEMU, CMake) with apt-get;
#   - a virtualenv at $VENV (default .venv) with mncompile and its dev extras.
# Safe to run again: it checks before installing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
# chromium + chromium-driver: the report is checked in a real headless browser (tests, `report --screenshot`)
DEB_PACKAGES="gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm cmake ninja-build g++ chromium chromium-driver"

log() { echo "[setup] $*" >&2; }

missing=""
for pkg in $DEB_PACKAGES python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  log "installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.mncompile-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing Python packages into $VENV (TensorFlow is large: this takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e ".[dev]" >&2
  # tf-keras depends on the `tensorflow` distribution, which lands on top of
  # tensorflow-cpu (same module). Put the CPU build's files back in place: no CUDA probing.
  tf_cpu=$(grep -o '"tensorflow-cpu[^"]*"' pyproject.toml | tr -d '"')
  "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$tf_cpu" >&2
  touch "$stamp"
fi
log "ready: $("$VENV/bin/mncompile" --version)"
