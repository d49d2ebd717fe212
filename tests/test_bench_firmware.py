"""bench/firmware.py's static stack reader: the .su lines GCC writes for C and for C++."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.firmware import read_stack_info  # noqa: E402


def test_su_lines_with_cpp_signatures_are_read(tmp_path):
    # as arm-none-eabi-g++ -fstack-usage writes them (a C++ name is a signature with spaces)
    (tmp_path / "micro_interpreter.su").write_text(
        "micro_interpreter.cc:291:14:TfLiteStatus tflite::MicroInterpreter::Invoke()\t48\tstatic\n"
        "micro_interpreter.cc:88:6:void tflite::MicroInterpreter::Init(tflite::MicroProfilerInterface*)\t16\tstatic\n"
        "main.c:40:5:main\t120\tdynamic,bounded\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.su").write_text("/a/b:c/kern.c:7:13:mn_conv\t64\tstatic\n")
    frames, _ = read_stack_info(tmp_path)
    assert frames["TfLiteStatus tflite::MicroInterpreter::Invoke()"] == (48, True)
    assert frames["void tflite::MicroInterpreter::Init(tflite::MicroProfilerInterface*)"] == (16, True)
    assert frames["main"] == (120, False)
    assert frames["mn_conv"] == (64, True)  # a path with a colon in it
