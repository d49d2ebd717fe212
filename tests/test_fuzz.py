"""A derandomized slice of the fuzzer (bench/fuzz.py) on the tiny model.

300 mutants of tests/data/tiny_int8.tflite (seed 0, cases 0..299), each through `plan` and one `emit`
(TFLM for even cases, AOT for odd ones), two cases at a time. The project's goal: 0 internal errors
and 0 projects written from invalid models (as an independent oracle judges them), and neither hangs
nor crashes. Replay a failing case with the command the assertion message prints (`--only K`).
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_int8.tflite"
CASES = 300


def _load(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before exec: dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def report():
    fuzz = _load("fuzz")
    return fuzz.run_cases([TINY], CASES, seed=0, backends=("tflm", "aot"), jobs=2, alternate=True,
                          timeout=60, progress=False)


def test_mutants_are_reproducible():
    mutations = _load("fuzz_mutations")
    source = mutations.Source(TINY)
    for k in range(40):
        first = mutations.mutate(source, random.Random(f"0:{k}"))
        assert first == mutations.mutate(source, random.Random(f"0:{k}")), k


def test_the_harness_sees_crashes_hangs_and_internal_errors(tmp_path):
    fuzz = _load("fuzz")
    crash = fuzz._fork(lambda: os.kill(os.getpid(), signal.SIGSEGV), tmp_path, "crash")
    assert fuzz._wait(crash, time.monotonic() + 30) == -signal.SIGSEGV
    started = time.monotonic()
    hang = fuzz._fork(lambda: subprocess.call(["sleep", "60"]), tmp_path, "hang")
    assert fuzz._wait(hang, time.monotonic() + 0.5) is None
    assert time.monotonic() - started < 10
    stderr = ('internal error: IndexError: list index out of range\nTraceback (most recent call last):\n'
              '  File "/x/mncompile/cli/app.py", line 75, in wrapper\n'
              '  File "/x/mncompile/graph/reader.py", line 39, in op_kind\n'
              '  File "/x/numpy/core.py", line 9, in take\nIndexError: list index out of range\n')
    group, tail = fuzz._internal_group(stderr)
    assert group == "IndexError at mncompile/graph/reader.py:39 in op_kind"
    assert tail[-1] == "IndexError: list index out of range"


def test_the_oracle_flags_what_it_should(tmp_path):
    fuzz, mutations = _load("fuzz"), _load("fuzz_mutations")
    model = mutations.s.ModelT.InitFromPackedBuf(TINY.read_bytes(), 0)
    model.version = 4
    ops = model.subgraphs[0].operators
    ops[0], ops[1] = ops[1], ops[0]
    flags = fuzz.oracle(mutations.pack(model), tmp_path)
    assert any(f.startswith("litert: rejected") for f in flags), flags
    assert "version: schema version 4, not 3" in flags
    assert any(f.startswith("dataflow: op 0 input 9") for f in flags), flags


def test_the_harness_ran_every_case(report):
    assert len(report.cases) == CASES
    assert report.harness_errors == 0, report.to_json()["harness_error_cases"]
    assert report.baseline == {str(TINY): []}, "the oracle must accept the unmutated model"


def test_no_internal_errors(report):
    internal = report.internal_errors
    assert internal == 0, report.text(limit=10)


def test_no_hangs_or_crashes(report):
    hangs, crashes = report.hangs, report.crashes
    assert hangs == crashes == 0, report.text(limit=10)


def test_no_projects_from_invalid_models(report):
    invalid = len(report.invalid_projects())
    assert invalid == 0, report.text(limit=10)
