"""bench/firmware.py: its static stack reader (the .su lines GCC writes for C and for C++), the kernel
variants it builds (CFLAGS, which run where), the model de-duplication and the summary table (fake rows: no
firmware is built here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import firmware as bench  # noqa: E402
from bench import firmware_stack  # noqa: E402
from bench.firmware_stack import read_stack_info  # noqa: E402

VARIANTS, Row, compile_flags, skip_reason = bench.VARIANTS, bench.Row, bench.compile_flags, bench.skip_reason
main, render_summary, unique_models = bench.main, bench.render_summary, bench.unique_models


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


def test_variants_compile_flags_keep_the_stack_flags_and_add_their_define():
    stack = "-fstack-usage -fcallgraph-info=su"
    assert compile_flags(VARIANTS["aot"]) == stack
    assert compile_flags(VARIANTS["aot-portable"]) == stack + " -DMN_KERNELS_PORTABLE"
    assert compile_flags(VARIANTS["aot-dsp"]) == stack + " -DMN_KERNELS_NO_MVE"
    assert compile_flags(VARIANTS["tflm"]) == compile_flags(VARIANTS["tflm-cmsis"]) == stack
    assert [(v.backend, v.cmsis_nn) for v in VARIANTS.values()] == [
        ("aot", False), ("aot", False), ("aot", False), ("tflm", False), ("tflm", True)]


def test_which_variant_runs_where():
    both = {"TFLM_ROOT": "/t", "CMSIS_NN_ROOT": "/n"}
    assert skip_reason(VARIANTS["aot-dsp"], "cortex-m55", {}) is None
    assert "Helium" in skip_reason(VARIANTS["aot-dsp"], "cortex-m7", both)
    assert skip_reason(VARIANTS["aot-portable"], "cortex-m4", {}) is None
    assert "TFLM_ROOT" in skip_reason(VARIANTS["tflm"], "cortex-m7", {"CMSIS_NN_ROOT": "/n"})
    assert skip_reason(VARIANTS["tflm"], "cortex-m7", {"TFLM_ROOT": "/t"}) is None
    assert "CMSIS_NN_ROOT" in skip_reason(VARIANTS["tflm-cmsis"], "cortex-m55", {"TFLM_ROOT": "/t"})
    assert skip_reason(VARIANTS["tflm-cmsis"], "cortex-m55", both) is None


def test_models_are_deduplicated_by_content(tmp_path):
    a, b, c = tmp_path / "a.tflite", tmp_path / "b.tflite", tmp_path / "c.tflite"
    a.write_bytes(b"model one")
    b.write_bytes(b"model one")
    c.write_bytes(b"model two")
    assert unique_models([a, tmp_path / "missing.tflite", b, c, a]) == [a, c]


def test_unknown_backend_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--backends", "aot,cmsis"])
    assert "unknown backend(s) cmsis" in capsys.readouterr().err


def fake(model, backend, target, per_mac, flash=None, arena=None, check="PASS"):
    return Row(model, backend, target, macs=1000, per_mac=per_mac, flash_no_golden=flash, arena=arena, check=check)


def test_summary_has_one_line_per_model_and_target():
    rows = [fake("vww", "aot-portable", "cortex-m7", 9.5),
            fake("vww", "aot", "cortex-m7", 2.91, flash=270_000, arena=55_296),
            fake("vww", "tflm", "cortex-m7", 13.78, flash=400_000, arena=82_228),
            fake("vww", "tflm-cmsis", "cortex-m7", None, check="error: CMake configure failed"),
            fake("vww", "aot-dsp", "cortex-m55", 3.18),
            fake("vww", "aot", "cortex-m55", 0.5, check="FAIL: vector 1 FAILed"),
            fake("vww", "tflm-cmsis", "cortex-m55", 0.87)]
    text = render_summary(rows, markdown=True, helium=lambda t: t == "cortex-m55")
    lines = text.splitlines()
    assert lines[0] == ("| model | target | MACs | portable | DSP | MVE | TFLM ref | TFLM+CMSIS-NN "
                        "| flash w/o golden AOT/TFLM | arena AOT B | arena TFLM B |")
    assert len(lines) == 4
    # on M7 `aot` is the DSP build and there is no MVE figure; AOT flash / TFLM flash = 0.675
    assert lines[2] == "| vww | cortex-m7 | 1,000 | 9.50 | 2.91 | - | 13.78 | FAIL | 0.675 | 55,296 | 82,228 |"
    # on M55 `aot-dsp` is the DSP build and `aot` the MVE one; a failed check is marked
    assert lines[3] == "| vww | cortex-m55 | 1,000 | - | 3.18 | 0.50 (FAIL) | - | 0.87 | - | - | - |"
    plain = render_summary(rows, markdown=False, helium=lambda t: t == "cortex-m55").splitlines()
    assert plain[0].split()[:3] == ["model", "target", "MACs"] and len(plain) == 3


def test_tflm_projects_share_a_build_folder_without_the_previous_application(tmp_path, monkeypatch):
    """TFLM's objects stay for the next model; the application's (and their .su/.ci) go."""
    from types import SimpleNamespace

    seen = []

    def fake_emit(model, target, project, backend, force, profile=False):
        seen.append(("emit", project, backend))
        return SimpleNamespace(board=SimpleNamespace(name="mps2-an500"))

    def fake_run(project, build_dir, timeout, cmsis_nn_root):
        if build_dir.parent.name.startswith("tflm"):
            assert not (build_dir / "CMakeFiles" / "firmware.dir").exists()
            assert (build_dir / "CMakeFiles" / "tflm.dir" / "a.cc.su").is_file()
        seen.append(("run", build_dir, cmsis_nn_root, bench.os.environ["CFLAGS"]))
        return SimpleNamespace(passed=True, problems=(), kernels="cmsis-nn", arena_reserved=100, report=None,
                               firmware=SimpleNamespace(build_dir=build_dir, elf=build_dir / "firmware.elf"),
                               ticks_per_inference=10.0, instructions_per_inference=250, macs=100,
                               instructions_per_mac=2.5)

    monkeypatch.setattr(bench, "emit", fake_emit)
    monkeypatch.setattr(bench, "run_project", fake_run)
    monkeypatch.setattr(bench, "stack_bound", lambda build, backend: (500, True))
    monkeypatch.setattr(bench, "flash_bytes", lambda elf: 1000)
    monkeypatch.setattr(bench, "golden_bytes", lambda elf: 100)
    monkeypatch.setenv("CMSIS_NN_ROOT", "/nn")
    monkeypatch.setenv("CFLAGS", "-Dmine")
    build = tmp_path / "tflm-cmsis-cortex-m7" / "build" / "CMakeFiles"
    for name in ("tflm.dir/a.cc.su", "firmware.dir/main.cc.su", "firmware.dir/main.cc.obj"):
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        (build / name).write_text("x")
    row = bench.bench_one(Path("/m/kws.tflite"), "tflm-cmsis", "cortex-m7", tmp_path, 60)
    assert (row.model, row.backend, row.check, row.flash_no_golden, row.per_mac) == (
        "kws", "tflm-cmsis", "PASS", 900, 2.5)
    assert seen == [("emit", tmp_path / "tflm-cmsis-cortex-m7" / "project", "tflm"),
                    ("run", build.parent, "/nn", "-fstack-usage -fcallgraph-info=su")]
    assert bench.os.environ["CFLAGS"] == "-Dmine"  # restored
    # the AOT backend keeps one folder per model; TFLM reference kernels in a cmsis-nn folder fail the row
    def reference_run(project, build_dir, timeout, cmsis_nn_root):
        return SimpleNamespace(**{**vars(fake_run(project, build_dir, timeout, cmsis_nn_root)), "kernels": "reference"})

    monkeypatch.setattr(bench, "run_project", reference_run)
    assert bench.bench_one(Path("/m/kws.tflite"), "tflm-cmsis", "cortex-m7", tmp_path, 60).check.startswith(
        "FAIL: the firmware runs TFLM's reference kernels")
    bench.bench_one(Path("/m/kws.tflite"), "aot", "cortex-m7", tmp_path, 60)
    assert seen[-2] == ("emit", tmp_path / "kws-aot-cortex-m7" / "project", "aot")


def test_cpp_frames_are_found_under_the_mangled_names_call_edges_use(tmp_path):
    # as arm-none-eabi-g++ -fcallgraph-info=su writes them: nodes titled with the mangled name (inline
    # functions FILE:NAME) and a label ending in the frame; the .su file prints the demangled signature
    (tmp_path / "main.cc.ci").write_text(
        'graph: { title: "main.cc"\n'
        'node: { title: "main" label: "int main()\\nmain.cc:90:5\\n120 bytes (static)" }\n'
        'node: { title: "_ZN6tflite16MicroInterpreterC1Ev" label: "tflite::MicroInterpreter::MicroInterpreter()'
        '\\nmicro_interpreter.h:40:3" shape : ellipse }\n'
        'node: { title: "_ZN6tflite16MicroInterpreter6InvokeEv" label: "TfLiteStatus tflite::MicroInterpreter::'
        'Invoke()\\nmicro_interpreter.h:80:16" shape : ellipse }\n'
        'edge: { sourcename: "main" targetname: "_ZN6tflite16MicroInterpreterC1Ev" label: "main.cc:91:3" }\n'
        'edge: { sourcename: "main" targetname: "_ZN6tflite16MicroInterpreter6InvokeEv" label: "main.cc:95:3" }\n'
        '}\n')
    (tmp_path / "main.cc.su").write_text("main.cc:90:5:int main()\t120\tstatic\n")
    (tmp_path / "micro_interpreter.cc.ci").write_text(
        'node: { title: "_ZN6tflite16MicroInterpreterC2Ev" label: "tflite::MicroInterpreter::MicroInterpreter()'
        '\\nmicro_interpreter.cc:60:1\\n24 bytes (static)" }\n'
        'node: { title: "_ZN6tflite16MicroInterpreter6InvokeEv" label: "TfLiteStatus tflite::MicroInterpreter::'
        'Invoke()\\nmicro_interpreter.cc:283:14\\n8 bytes (static)" }\n'
        'node: { title: "micro_interpreter.cc:_ZN6tflite5GraphEv" label: "void tflite::Graph()'
        '\\nmicro_graph.h:10:6\\n40 bytes (dynamic,bounded)" }\n'
        'edge: { sourcename: "_ZN6tflite16MicroInterpreter6InvokeEv" targetname: '
        '"micro_interpreter.cc:_ZN6tflite5GraphEv" label: "x" }\n'
        'edge: { sourcename: "micro_interpreter.cc:_ZN6tflite5GraphEv" targetname: "__indirect_call" label: "y" }\n')
    frames, calls = read_stack_info(tmp_path)
    assert frames["_ZN6tflite16MicroInterpreter6InvokeEv"] == (8, True)
    assert frames["micro_interpreter.cc:_ZN6tflite5GraphEv"] == (40, False)
    unknown = set()
    # main -> Invoke (8) -> Graph (40, dynamic) -> an indirect call: 48 B and not exact; the C1 call runs C2 (24)
    assert firmware_stack.deepest("_ZN6tflite16MicroInterpreter6InvokeEv", frames, calls, unknown) == (48, False)
    assert firmware_stack.deepest("_ZN6tflite16MicroInterpreterC1Ev", frames, calls, unknown) == (24, True)
    assert not unknown


def test_layers_table_lists_each_profiled_rows_slowest_layers():
    slow = Row("vww", "aot", "cortex-m7", per_mac=1.96, check="PASS",
               layers=((0, "CONV_2D", 497664, 3.34, 0.113), (27, "AVERAGE_POOL_2D", 0, None, 0.002)))
    text = bench.render_layers([slow, Row("vww", "tflm", "cortex-m7", per_mac=13.8, check="PASS")], markdown=True)
    lines = text.splitlines()
    assert len(lines) == 3  # header, rule, the one profiled row
    assert lines[2] == "| vww | aot | cortex-m7 | 1.96 | 0 CONV_2D (3.34/MAC, 11%); 27 AVERAGE_POOL_2D (no MACs, 0%) |"
