"""bench/firmware.py's static measurements of a built firmware: the stack bound (from GCC's .su and .ci
files), the flash sections and the golden vectors' bytes (from arm-none-eabi-size and -nm). How each is
obtained is described in bench/firmware.py's docstring."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".init_array", ".fini_array", ".model", ".data")
STACK_FLAGS = "-fstack-usage -fcallgraph-info=su"
EXCEPTION_FRAME_FP = 104  # bytes an exception pushes with the FP context (all four targets have an FPU)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- static stack bound -----------------------------------------------------------------

# FILE:LINE:COLUMN:NAME<TAB>BYTES<TAB>KIND; a C++ NAME is a signature with spaces
# ("TfLiteStatus tflite::MicroInterpreter::Invoke()"), so NAME runs to the tab
_SU = re.compile(r"^(.*?):\d+:\d+:([^\t]+)\t(\d+)\t(\S+)$")
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
# a function the file defines: its title is the name edges use (C++: the mangled name), the label's last
# line its frame ("48 bytes (static)"); a callee defined elsewhere has a node without one
_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?\\n(\d+) bytes \(([^)]*)\)"')
# GCC defines a C++ constructor/destructor once (C2/D2, "base object") and calls it as C1/D1 (its alias)
_CTOR_ALIAS = re.compile(r"(?<=[0-9A-Za-z_])([CD])1(?=E)")


def read_stack_info(build_dir: Path) -> tuple[dict[str, tuple[int, bool]], dict[str, set[str]]]:
    """Frames (name -> (bytes, fixed size)) and call edges from the build's .su and .ci files. The .ci
    nodes give each frame under the name the call edges use (for C++ the mangled name, where .su files
    print a demangled signature); .su lines add the frames of files without a .ci. A name defined in
    several files (static functions, inline C++ functions) keeps its largest frame: conservative."""
    frames: dict[str, tuple[int, bool]] = {}
    calls: dict[str, set[str]] = {}

    def add(name: str, size: int, kind: str) -> None:
        old = frames.get(name, (0, True))
        frames[name] = (max(old[0], size), old[1] and kind == "static")

    for su in build_dir.rglob("*.su"):
        for line in su.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _SU.match(line)
            if m:
                add(m.group(2), int(m.group(3)), m.group(4))
    for ci in build_dir.rglob("*.ci"):
        text = ci.read_text(encoding="utf-8", errors="replace")
        for m in _NODE.finditer(text):
            add(m.group(1), int(m.group(2)), m.group(3))
        for m in _EDGE.finditer(text):
            calls.setdefault(m.group(1), set()).add(m.group(2))
    return frames, calls


def frame_key(name: str, frames) -> str | None:
    """The frames entry for a call edge's `name`: itself, a static function's NAME (edges may say
    FILE:NAME), or the C2/D2 body a C1/D1 constructor/destructor call runs."""
    for key in (name, name.rsplit(":", 1)[-1], _CTOR_ALIAS.sub(r"\g<1>2", name.rsplit(":", 1)[-1])):
        if key in frames:
            return key
    return None


def deepest(name: str, frames, calls, unknown: set[str], memo: dict | None = None,
            active: set[str] | None = None) -> tuple[int, bool]:
    """Bytes of the deepest call chain from `name`, and whether the bound is exact (False: an indirect
    call, recursion or a dynamic frame on the way)."""
    memo = {} if memo is None else memo
    active = set() if active is None else active
    if name in memo:
        return memo[name]
    if name in active:
        return 0, False  # recursion: unbounded
    key = frame_key(name, frames)
    if key is None:
        if "indirect" in name:
            return 0, False
        unknown.add(name)
        return 0, True
    size, exact = frames[key]
    active.add(name)
    best = 0
    for callee in calls.get(name, ()):
        depth, ok = deepest(callee, frames, calls, unknown, memo, active)
        exact = exact and ok
        best = max(best, depth)
    active.discard(name)
    memo[name] = (size + best, exact)
    return memo[name]


def stack_bound(build_dir: Path, backend: str) -> tuple[int | None, bool]:
    frames, calls = read_stack_info(build_dir)
    if "main" not in frames:
        log(f"no .su for main in {build_dir}: no stack figure")
        return None, False
    unknown: set[str] = set()
    if backend == "aot" and "model_invoke" in frames:
        inference, exact = deepest("model_invoke", frames, calls, unknown)
    else:  # the deepest call main makes (includes setup calls: conservative within what is known)
        depths = [deepest(c, frames, calls, unknown, active={"main"}) for c in calls.get("main", ())]
        inference = max((d for d, _ in depths), default=0)
        exact = all(ok for _, ok in depths)
    isr, isr_exact = deepest("SysTick_Handler", frames, calls, unknown)
    total = frames.get("Reset_Handler", (0, True))[0] + frames["main"][0] + inference + EXCEPTION_FRAME_FP + isr
    if unknown:
        log(f"  stack: no frame size for {', '.join(sorted(unknown))} (not compiled by the project; counted 0 B)")
    return total, exact and isr_exact and frames["main"][1]


# --- flash ------------------------------------------------------------------------------

def flash_bytes(elf: Path) -> int:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sum(sizes.get(s, 0) for s in FLASH_SECTIONS)


GOLDEN_SYMBOLS = ("g_golden_inputs", "g_golden_outputs", "g_golden_labels", "g_golden_frames")
GOLDEN_PREFIXES = ("golden_frame_",)  # the camera frames (static arrays, one per vector)


def golden_bytes(elf: Path) -> int:
    """Bytes of the golden-vector arrays in the ELF, camera frames included (arm-none-eabi-nm -S; each
    symbol counted once)."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    seen = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and (parts[3] in GOLDEN_SYMBOLS or parts[3].startswith(GOLDEN_PREFIXES)):
            seen[(parts[3], parts[0])] = int(parts[1], 16)
    return sum(seen.values())


