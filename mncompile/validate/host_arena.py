"""Measuring the TFLM host interpreter's arena: the RecordingMicroAllocator's own report.

The tflite-micro host interpreter runs the verified model's bytes in a child process (one zero
input, one invoke) and prints its allocations; `measure_host_arena` returns them as numbers. The
plan stage predicts the same figures (`mncompile.plan.arena.predict_arena`); tests compare the
two.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from mncompile.errors import EmulatorError, InvalidOptionError
from mncompile.graph.verified import VerifiedModel

ARENA_ALIGNMENT = 16

DEFAULT_HOST_ARENA = 64 * 1024 * 1024  # a multiple of 16; the memory is only touched where used

_MEASURE = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
path, arena, inputs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
interpreter = runtime.Interpreter.from_file(path, arena_size=arena)
for i in range(inputs):
    d = interpreter.get_input_details(i)
    interpreter.set_input(np.zeros(d["shape"], dtype=d["dtype"]), i)
interpreter.invoke()
sys.stdout.flush()
interpreter.print_allocations()
"""

_TOTAL_LINE = re.compile(r"\[RecordingMicroAllocator\] Arena allocation (total|head|tail) (\d+) bytes")
_CATEGORY_LINE = re.compile(r"\[RecordingMicroAllocator\] '([^']+)' used (\d+) bytes with alignment overhead "
                            r"\(requested (\d+) bytes for (\d+) ")


def parse_allocations(text: str) -> dict:
    """The RecordingMicroAllocator's report (`PrintAllocations`) as numbers."""
    result: dict = {"categories": {}}
    for kind, value in _TOTAL_LINE.findall(text):
        result[kind] = int(value)
    for name, used, requested, count in _CATEGORY_LINE.findall(text):
        result["categories"][name] = {"used": int(used), "requested": int(requested), "count": int(count)}
    return result


def measure_host_arena(model: VerifiedModel, arena_size: int = DEFAULT_HOST_ARENA, timeout: float = 300) -> dict:
    """Run the tflite-micro host interpreter on `model` in a subprocess (one zero input,
    one invoke) and return its RecordingMicroAllocator report:
    ``{"model", "arena_size", "total", "head", "tail", "categories": {name: {"used",
    "requested", "count"}}}``. Raises EmulatorError if the interpreter fails or dies."""
    if arena_size % ARENA_ALIGNMENT:
        raise InvalidOptionError(f"arena size {arena_size} is not a multiple of {ARENA_ALIGNMENT}",
                                 hint="the prediction assumes a 16-byte aligned arena end")
    path = Path(model.name)
    inputs = len(model.graph.inputs)
    with tempfile.TemporaryDirectory(prefix="mncompile-arena-") as tmp:
        try:
            proc = subprocess.run([sys.executable, "-c", _MEASURE, str(model.write_to(Path(tmp))), str(arena_size),
                                   str(inputs)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EmulatorError(f"the TFLM host interpreter did not finish {path.name} in {timeout:g} s") from None
    if proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with code {proc.returncode}")
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise EmulatorError(f"the TFLM host interpreter {how} on {path.name}: {tail}",
                            hint="check the model runs on TFLM (int8 ops TFLM has) and the arena is large enough")
    report = parse_allocations(proc.stderr + "\n" + proc.stdout)
    if not {"total", "head", "tail"} <= report.keys():
        raise EmulatorError(f"the TFLM host interpreter printed no allocation report for {path.name}")
    return {"model": model.source, "arena_size": arena_size, **report}
