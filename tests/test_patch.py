"""Patch-based execution (`mncompile.aot.patch`, `patch_search`, `patch_check`).

- the receptive-field arithmetic against brute force (every tap of every output of a tile);
- generated C with patch stages, compiled for the host (portable kernels and the DSP paths
  emulated) and compared with the TFLM host interpreter bit for bit: stages at the start (the
  input read in place from the caller's buffer, strips and square tiles, copied in and out) and
  in the middle of V2 (an inverted residual block's ADD inside the stage);
- the search: speed is layer by layer, min lowers the RAM, balanced fits the room with fewer extra
  MACs than min, and every single-stage candidate the search could pick is checked by brute force;
- the invariant check: mutated plans (a patch buffer moved onto a live one, a lifetime cut
  short) fail it.

QEMU runs of `min` schedules are in tests/test_aot.py (test_min_schedules_are_bit_exact_on_qemu).
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import REPO, verified

from mncompile.aot.codegen import generate
from mncompile.aot.lower import find_folds, lower_graph
from mncompile.aot.patch import Window, candidates, make_schedule, spans, stage_runs
from mncompile.plan.verify import PlanInvariantError

KERNELS = REPO / "firmware" / "kernels"


# ---------------------------------------------------------------------------------------------
# receptive fields


@pytest.mark.parametrize("k,s,d", [(1, 1, 1), (3, 1, 1), (3, 2, 1), (5, 2, 1), (3, 1, 2), (7, 3, 1)])
def test_window_need_is_exactly_the_taps_outputs_read(k, s, d):
    """For every padding, map size and output interval: `Window.need` is the hull of every tap of
    the outputs, clamped to the map (brute force over every tap), so it holds every tap inside the
    map; without dilation (taps contiguous) it is exactly the rows those taps touch."""
    for pad in range(0, (k - 1) * d + 1):
        for size in range(1, 20):
            out = (size + 2 * pad - (k - 1) * d - 1) // s + 1
            for o0 in range(out):
                for o1 in range(o0 + 1, out + 1):
                    taps = [o * s - pad + j * d for o in range(o0, o1) for j in range(k)]
                    inside = [t for t in taps if 0 <= t < size]
                    if not inside:
                        continue
                    need = Window(k, s, d, pad).need(o0, o1, size)
                    assert need == (max(0, min(taps)), min(size, max(taps) + 1))
                    assert need[0] <= min(inside) and max(inside) < need[1]
                    if d == 1:
                        assert need == (min(inside), max(inside) + 1)


# ---------------------------------------------------------------------------------------------
# generated C on the host against TFLM


@pytest.fixture(scope="session")
def kernel_objects(tmp_path_factory):
    """The kernel library compiled once for the host: portable, and with the DSP paths emulated."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    root = tmp_path_factory.mktemp("patch-kernels")
    built = {}
    for variant, defines in (("portable", []), ("dsp", ["-DMN_KERNELS_EMULATE_DSP"])):
        objects = []
        for src in sorted(KERNELS.glob("*.c")):
            obj = root / f"{variant}_{src.stem}.o"
            proc = subprocess.run(["gcc", "-std=c99", "-O1", "-fPIC", "-c", *defines, f"-I{KERNELS}", str(src),
                                   "-o", str(obj)], capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            objects.append(str(obj))
        built[variant] = (defines, objects)
    return built


def _run_host(program, x: np.ndarray, work, kernel_objects) -> dict[str, np.ndarray]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "model.c").write_text(program.model_c)
    (work / "model.h").write_text(program.model_h)
    outputs = {}
    for variant, (defines, objects) in kernel_objects.items():
        lib = work / f"model_{variant}.so"
        proc = subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC",
                               "-shared", *defines, f"-I{KERNELS}", f"-I{work}", str(work / "model.c"), *objects,
                               "-o", str(lib)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        so = ctypes.CDLL(str(lib))
        rows = []
        for v in range(len(x)):
            xin = np.ascontiguousarray(x[v])
            out = np.zeros(program.output_bytes, np.int8)
            assert so.model_invoke(xin.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p)) == 0
            rows.append(out)
        outputs[variant] = np.stack(rows)
    return outputs


@pytest.fixture(scope="session")
def resnet_block(tmp_path_factory):
    """A ResNet-style block (MLPerf Tiny's ResNet8 has three): one tensor read by a 3x3 stride-2
    convolution and by a 1x1 stride-2 shortcut, whose windows cover different columns, added after.
    Keras, random weights, int8 with random calibration (a few seconds, built once)."""
    from conftest import shared_once

    def make(folder):
        import numpy as np

        from mncompile.model.loader import LoadedModel
        from mncompile.quantize.convert import to_int8_tflite
        from mncompile.tfenv import keras_module

        keras = keras_module()
        keras.utils.set_random_seed(4)
        layers = keras.layers
        x = inp = keras.Input((20, 20, 3), batch_size=1)
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
        a = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
        a = layers.Conv2D(16, 3, padding="same")(a)
        b = layers.Conv2D(16, 1, strides=2, padding="same")(x)
        x = layers.Activation("relu")(layers.Add()([a, b]))
        x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
        x = layers.Dense(4)(layers.GlobalAveragePooling2D()(x))
        model = keras.Model(inp, x)
        calib = np.random.default_rng(1).uniform(-1, 1, (8, 20, 20, 3)).astype(np.float32)
        path = folder / "resnet_block.tflite"
        path.write_bytes(to_int8_tflite(LoadedModel(path, "keras", model, (20, 20, 3), 4, None), calib))
        return {"path": str(path)}
    from pathlib import Path

    return Path(shared_once(tmp_path_factory, "patch_resnet_block", make)["path"])


def _model(name: str, request):
    if name == "resnet_block":
        return verified(request.getfixturevalue("resnet_block"))
    return verified(request.getfixturevalue("tflite_zoo")[name])


def _lowered(model):
    graph = model.graph
    folds = find_folds(graph)
    return graph, folds, lower_graph(graph, folds)


def _schedule(model, first: int, last: int, grid):
    """The stage of graph nodes first..last on `grid` (the span must be one the search could take)."""
    graph, folds, calls = _lowered(model)
    for run in stage_runs(graph, folds, calls):
        for i, n, out in spans(graph, run):
            if run[i].node == first and run[n - 1].node == last:
                schedule = make_schedule(graph, run[i:n], out, grid)
                assert schedule is not None, (first, last, grid)
                return schedule
    raise AssertionError(f"nodes {first}..{last} are not a stage")


def _inputs(model, n: int, seed: int) -> np.ndarray:
    graph = model.graph
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n, *shape)).astype(np.int8)


@pytest.mark.parametrize("name,stages", [
    ("v1_0.25_96", [(0, 8, (4, 4))]),  # square tiles: input copied in, output copied out
    ("v1_0.25_96", [(0, 4, (5, 1))]),  # strips: input read and output written in place
    ("v1_0.25_96", [(0, 1, (3, 2)), (2, 5, (2, 2))]),  # two stages, the second reading an arena tensor
    ("v2_0.35_96", [(0, 12, (6, 6))]),  # through two inverted residual blocks and their ADD
    ("v2_0.35_96", [(0, 4, (2, 2)), (13, 23, (3, 3))]),  # a stage in the middle, ADDs inside
    ("resnet_block", [(1, 4, (5, 1))]),  # a 3x3 and a 1x1 shortcut reading other columns of one tensor
    ("resnet_block", [(0, 5, (4, 1))]),
])
def test_patch_stages_match_tflm_on_the_host(name, stages, request, kernel_objects, tmp_path):
    """Every stage kind, compiled for the host with the portable and the (emulated) DSP kernels:
    outputs identical to the TFLM host interpreter's."""
    from mncompile.validate.emulate import emulate

    model = _model(name, request)
    schedules = tuple(_schedule(model, *s) for s in stages)
    program = generate(model, schedules=schedules)
    assert len(program.memory.schedules) == len(stages)
    x = _inputs(model, 2, 7)
    want = emulate(model, x, "tflm").reshape(len(x), -1)
    for variant, got in _run_host(program, x, tmp_path, kernel_objects).items():
        assert np.array_equal(got, want), variant
    layerwise = generate(model, memory="speed")
    assert program.arena_bytes < layerwise.arena_bytes


ASAN_MAIN = r"""
#include <stdio.h>
#include <stdint.h>
#include "model.h"
int main(void)
{
    static int8_t in[MODEL_INPUT_BYTES], out[MODEL_OUTPUT_BYTES];
    while (fread(in, 1, sizeof in, stdin) == sizeof in) {
        if (model_invoke(in, out) != 0) {
            return 2;
        }
        fwrite(out, 1, sizeof out, stdout);
    }
    return 0;
}
"""


@pytest.mark.parametrize("name,stages", [
    ("v1_0.25_96", [(0, 4, (5, 1))]),  # the output written in place, strip by strip, at the arena's end
    ("v2_0.35_96", [(0, 4, (2, 2)), (13, 23, (3, 3))]),
])
def test_patch_stages_stay_in_their_buffers_under_asan(name, stages, tflite_zoo, tmp_path):
    """The generated code built for the host with AddressSanitizer, the arena an ordinary global (so
    a write past it is caught), the output arranged to be the arena's last buffer: no kernel call of
    a stage writes past its buffer, and the outputs are TFLM's."""
    from mncompile.validate.emulate import emulate

    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    model = verified(tflite_zoo[name])
    program = generate(model, schedules=tuple(_schedule(model, *s) for s in stages))
    source = program.model_c.replace('__attribute__((aligned(16), section(".tensor_arena")))',
                                     "__attribute__((aligned(16)))")
    assert source != program.model_c
    (tmp_path / "model.c").write_text(source)
    (tmp_path / "model.h").write_text(program.model_h)
    (tmp_path / "main.c").write_text(ASAN_MAIN)
    exe = tmp_path / "model"
    proc = subprocess.run(["gcc", "-std=c99", "-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer",
                           f"-I{KERNELS}", f"-I{tmp_path}", str(tmp_path / "model.c"), str(tmp_path / "main.c"),
                           *map(str, sorted(KERNELS.glob("*.c"))), "-o", str(exe)], capture_output=True, text=True)
    if proc.returncode != 0 and "asan" in proc.stderr.lower():
        pytest.skip(f"no AddressSanitizer runtime: {proc.stderr.splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    x = _inputs(model, 2, 11)
    run = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    got = np.frombuffer(run.stdout, np.int8).reshape(len(x), -1)
    assert np.array_equal(got, emulate(model, x, "tflm").reshape(len(x), -1))


def _tables(source: str, k: int) -> tuple[list[list[int]], list[list[int]]]:
    """The interval tables of stage k as the generated C holds them."""
    out = []
    for axis in ("rows", "cols"):
        body = re.search(rf"mn_patch_{axis}_{k}\[\d+\]\[\d+\] MN_CONST = \{{(.*?)\n\}};", source, re.S).group(1)
        out.append([[int(v) for v in row.split(",") if v.strip()] for row in re.findall(r"\{([^{}]*)\}", body)])
    return out[0], out[1]


def _evaluate(text: str, r: list[int], c: list[int], y: int = 0) -> int:
    """The generated C's integer arithmetic (MN_T(n), (size_t) casts, r[i], c[j], y, +, *) for one tile."""
    text = re.sub(r"MN_T\((\d+)\)", r"\1", text).replace("(size_t)", "")
    text = re.sub(r"([rc])\[(\d+)\]", lambda m: str((r if m.group(1) == "r" else c)[int(m.group(2))]), text)
    assert re.fullmatch(r"[\d\s+*()y]+", text), text
    return eval(text, {"__builtins__": {}}, {"y": y})


def _written(block: str, r: list[int], c: list[int], channels: int) -> tuple[int, int]:
    """(first byte, end) that one node's block of generated C writes in the arena for one tile (r, c:
    the tile's rows of the tables): its output pointer, and the sizes it sets."""
    if "mn_add_s8" in block:  # row by row: y < rows, p.size bytes a row
        rows = _evaluate(re.search(r"y < ([rc]\[\d+\])", block).group(1), r, c)
        size = _evaluate(re.search(r"p\.size = ([^;]+);", block).group(1), r, c)
        dst = re.search(r"mn_add_s8\(&p, .*, (MN_T\(\d+\)[^,]*?)\) != MN_OK", block).group(1)
        return _evaluate(dst, r, c), _evaluate(dst, r, c, rows - 1) + size
    h = _evaluate(re.search(r"p\.out_h = ([rc]\[\d+\])", block).group(1), r, c)
    w = _evaluate(re.search(r"p\.out_w = ([rc]\[\d+\])", block).group(1), r, c)
    dst = _evaluate(re.search(r"_s8\(&p, [^,]+, (MN_T\(\d+\).*?)(?:, NULL)?\) != MN_OK", block).group(1), r, c)
    return dst, dst + h * w * channels


@pytest.mark.parametrize("name,stages", [
    ("v1_0.25_96", [(0, 8, (4, 4))]),
    ("v1_0.25_96", [(0, 4, (5, 1))]),
    ("v1_0.25_96", [(0, 1, (3, 2)), (2, 5, (2, 2))]),
    ("v2_0.35_96", [(0, 12, (6, 6))]),
    ("v2_0.35_96", [(0, 4, (2, 2)), (13, 23, (3, 3))]),
    ("resnet_block", [(1, 4, (5, 1))]),
])
def test_every_call_of_a_stage_writes_inside_its_buffer(name, stages, request):
    """Read from the generated C: for every tile, the bytes each node's call writes (its output
    pointer and the sizes it sets, evaluated with the tile's table rows) lie inside that node's
    destination: its patch buffer, or, for the stage's output written in place, the tile's rows of
    the whole tensor. A kernel told to write more rows than the tile has is caught here even when the
    extra bytes land on memory nobody reads."""
    model = _model(name, request)
    program = generate(model, schedules=tuple(_schedule(model, *s) for s in stages))
    memory, source = program.memory, program.model_c
    for k, schedule in enumerate(memory.schedules):
        rows, cols = _tables(source, k)
        blocks = {int(m.group(1)): m.group(0) for m in re.finditer(r"\{ /\* node (\d+): .*?\n {12}\}", source, re.S)}
        for n in schedule.nodes:
            channels = schedule.shapes[n.writes][2]
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    if n.rows is not None:  # a convolution's map width is its input buffer's row stride
                        t = n.reads[0]
                        whole = t == schedule.input and schedule.direct_input
                        a, b = (0, schedule.shapes[t][1]) if whole else schedule.region[1][t][j]
                        in_w = re.search(r"p\.in_w = ([rc]\[\d+\])", blocks[n.node]).group(1)
                        assert _evaluate(in_w, r, c) == b - a, (name, n.node, (i, j))
                    first, end = _written(blocks[n.node], r, c, channels)
                    if n.writes == schedule.output and schedule.direct_output:
                        h, w, _ = schedule.shapes[n.writes]
                        a, b = schedule.region[0][n.writes][i]
                        lo = memory.offset(n.writes) + a * w * channels
                        hi = memory.offset(n.writes) + b * w * channels
                    else:
                        lo = memory.patch_offset(k, n.writes)
                        hi = lo + schedule.patch_bytes(n.writes)
                    assert lo <= first and end <= hi, (name, n.node, (i, j), (first, end), (lo, hi))


def test_stage_input_is_the_callers_buffer(tflite_zoo, kernel_objects, tmp_path):
    """A stage that reads the int8 graph input reads it in place: not in the arena, model_input()
    is a buffer of its own, and passing any buffer works."""
    model = verified(tflite_zoo["v1_0.25_96"])
    program = generate(model, schedules=(_schedule(model, 0, 8, (4, 4)),))
    assert program.memory.external_input and program.input_offset is None
    assert program.outside_arena_bytes == program.input_bytes == 96 * 96 * 3
    assert "static int8_t model_input_buffer[MODEL_INPUT_BYTES]" in program.model_c
    assert "memcpy(MN_T(MODEL_INPUT_OFFSET)" not in program.model_c
    assert program.input_bytes + program.arena_bytes < generate(model, memory="speed").arena_bytes


# ---------------------------------------------------------------------------------------------
# the search


@pytest.fixture(scope="session")
def searched(tflite_zoo):
    """Each mode of the search on V1 a0.25@96 and V2 a0.35@96 (a few seconds each, done once)."""
    result = {}
    for name in ("v1_0.25_96", "v2_0.35_96"):
        model = verified(tflite_zoo[name])
        result[name] = {mode: generate(model, memory=mode) for mode in ("speed", "min")}
    return result


@pytest.mark.parametrize("name", ["v1_0.25_96", "v2_0.35_96"])
def test_speed_is_layer_by_layer_and_min_lowers_the_ram(name, searched):
    speed, least = searched[name]["speed"], searched[name]["min"]
    assert not speed.memory.schedules and speed.choice.extra_macs == 0
    assert least.memory.schedules
    assert least.choice.ram < speed.choice.ram == speed.arena_bytes
    assert least.choice.smallest_ram == least.choice.ram
    assert least.choice.ram == least.arena_bytes + least.outside_arena_bytes


def test_balanced_fits_the_room_with_the_fewest_extra_macs_of_one_stage(tflite_zoo):
    """A room between min's RAM and the layer-wise RAM: balanced fits it, and no single stage with
    fewer extra MACs fits it (brute force: every candidate planned)."""
    from mncompile.aot.memory import plan_aot
    from mncompile.aot.patch_search import ram_bytes

    model = verified(tflite_zoo["v1_0.25_96"])
    speed = generate(model, memory="speed")
    room = speed.arena_bytes * 9 // 10
    balanced = generate(model, memory="balanced", room=room)
    assert balanced.choice.ram <= room and balanced.memory.schedules
    graph, folds, calls = _lowered(model)
    from mncompile.aot.lower import inplace_candidates

    ok = inplace_candidates(graph, folds)
    for s in candidates(graph, folds, calls):
        extra = s.macs[0] - s.macs[1]
        if extra < balanced.choice.extra_macs:
            memory = plan_aot(graph, inplace_ok=ok, folds=folds, schedules=(s,))
            assert ram_bytes(memory, 0) > room, (s.nodes[0].node, s.last_node, s.grid)
    assert generate(model, memory="balanced", room=speed.arena_bytes).memory.schedules == ()
    assert generate(model, memory="balanced").memory.schedules == ()  # no limit known: layer by layer


# ---------------------------------------------------------------------------------------------
# the invariant check


def test_replay_catches_a_patch_moved_onto_a_live_buffer(tflite_zoo):
    from mncompile.aot.patch_check import check_schedule

    model = verified(tflite_zoo["v1_0.25_96"])
    program = generate(model, schedules=(_schedule(model, 0, 8, (4, 4)),))
    memory = program.memory
    schedule = memory.schedules[0]
    check_schedule(model.graph, memory, 0)  # the real plan passes
    patches = list(memory.patches)
    # the patch node 1 reads, moved onto the patch node 1 writes: the node would overwrite its input
    src, dst = schedule.nodes[1].reads[0], schedule.nodes[1].writes
    offset = memory.patch_offset(0, dst)
    mutated = [(k, t, offset if t == src else o, n) for k, t, o, n in patches]
    with pytest.raises(PlanInvariantError, match="still reads"):
        check_schedule(model.graph, dataclasses.replace(memory, patches=tuple(mutated)), 0)
    # a patch moved onto the stage's whole output, which every later tile must keep
    out = memory.offset(schedule.output)
    mutated = [(k, t, out if t == src else o, n) for k, t, o, n in patches]
    with pytest.raises(PlanInvariantError, match="still reads"):
        check_schedule(model.graph, dataclasses.replace(memory, patches=tuple(mutated)), 0)


def test_replay_catches_a_lifetime_cut_short(tflite_zoo, monkeypatch):
    """The planner is told a patch dies one node early: its plan passes the planner's own check
    (the lifetimes it was given) and the tile replay catches the overlap."""
    import mncompile.aot.memory as memory_module

    model = verified(tflite_zoo["v1_0.25_96"])
    schedule = _schedule(model, 0, 8, (4, 4))
    real = memory_module._patch_buffers

    def short(s, start):
        return [dataclasses.replace(b, last=b.first) for b in real(s, start)]

    monkeypatch.setattr(memory_module, "_patch_buffers", short)
    with pytest.raises(PlanInvariantError, match="patch stage"):
        generate(model, schedules=(schedule,))


# ---------------------------------------------------------------------------------------------
# through the CLI


def test_plan_reports_the_patch_stages_next_to_layer_by_layer(tflite_zoo, tmp_path):
    """`plan --memory min --json`: the AOT figures next to TFLM's, the schedule in plan.json (stages,
    tiles, patch buffers, extra MACs), the picture written; over a RAM limit the TFLM project does
    not fit and the error names the AOT schedule that does."""
    import json

    from conftest import run_cli

    model = tflite_zoo["v2_0.35_96"]
    proc = run_cli("plan", str(model), "-o", str(tmp_path / "p"), "--memory", "min", "--json", check=True)
    doc = json.loads(proc.stdout)
    mode, plan = doc["aot"]["memory_mode"], doc["aot"]["plan"]
    assert mode["mode"] == "min" and mode["chosen_ram_bytes"] < mode["layerwise_ram_bytes"]
    assert plan["patch_stages"] and plan["patch_stages"][0]["tiles"][0] > 1
    stage = plan["patch_stages"][0]
    assert stage["extra_macs"] == stage["stage_macs_patched"] - stage["stage_macs_once"] > 0
    assert {b["tensor"] for b in stage["buffers"]} == {b["tensor"] for b in stage["patch_buffers"]}
    assert mode["extra_macs"] == sum(s["extra_macs"] for s in plan["patch_stages"])
    assert json.loads((tmp_path / "p" / "plan.json").read_text())["aot"] == doc["aot"]
    assert (tmp_path / "p" / "memory.png").stat().st_size > 0

    proc = run_cli("plan", str(model), "-o", str(tmp_path / "q"), "--target", "cortex-m7", "--ram", "64KB", "--json")
    assert proc.returncode == 8
    doc = json.loads(proc.stdout)  # one document: the plan with the error added
    assert doc["error"] == "budget" and doc["exit_code"] == 8
    assert "the AOT backend fits: --backend aot --memory balanced" in doc["message"]
    assert doc["aot"]["memory_mode"]["chosen_ram_bytes"] <= 64 * 1024


def test_emit_min_and_the_errors(tflite_zoo, tmp_path):
    """emit --memory: a bad mode is a usage error (exit 2); when nothing fits, exit 8 names the least
    RAM patching reaches and its extra MACs, and nothing is written."""
    from conftest import run_cli

    model = tflite_zoo["v2_0.35_96"]
    proc = run_cli("emit", str(model), "-t", "cortex-m7", "--backend", "aot", "-o", str(tmp_path / "a"),
                   "--memory", "fast")
    assert proc.returncode == 2 and "unknown --memory mode 'fast'" in proc.stderr
    proc = run_cli("emit", str(model), "-t", "cortex-m7", "--backend", "aot", "-o", str(tmp_path / "b"),
                   "--ram", "8KB")
    assert proc.returncode == 8, proc.stderr
    assert "the smallest schedule (patch stages, --memory min) needs" in proc.stderr
    assert "extra MACs" in proc.stderr and not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------------
# fit: the same figures from the layer list alone


@pytest.mark.parametrize("name,arch,alpha,share", [("v1_0.25_96", "v1", 0.25, 0.9), ("v2_0.35_96", "v2", 0.35, 0.5)])
def test_layer_list_gives_the_converted_models_schedule(name, arch, alpha, share, tflite_zoo):
    """`aot.analytic` (no TensorFlow) against the converted model: the same RAM layer by layer, and
    the same patch stages, RAM and extra MACs under a room between."""
    from mncompile.aot.analytic import aot_choice
    from mncompile.model.spec import MobileNetSpec

    model = verified(tflite_zoo[name])
    spec = MobileNetSpec(arch, alpha, 96, 3, 4)
    real = generate(model, memory="speed").choice
    assert aot_choice(spec, "speed", None).ram == real.ram == real.layerwise_ram
    room = int(real.layerwise_ram * share)
    real = generate(model, memory="balanced", room=room).choice
    estimate = aot_choice(spec, "balanced", room)
    assert (estimate.ram, estimate.extra_macs, estimate.total_macs) == (real.ram, real.extra_macs, real.total_macs)
    def shape(schedules):  # the tensors' numbering differs; nodes, tiles, buffers and MACs must not
        docs = [s.to_json() for s in schedules]
        for d in docs:
            del d["input_tensor"], d["output_tensor"]
            for b in d["patch_buffers"]:
                del b["tensor"]
        return docs

    assert shape(estimate.memory.schedules) == shape(real.memory.schedules)
    assert real.ram <= room and real.memory.schedules


def test_fit_admits_a_larger_model_with_patch_stages():
    """128 KB of RAM (cortex-m4): no V2 fits TFLM's figures; with the AOT backend and --memory
    balanced one does, at 224 px; with --memory speed (layer by layer) only a smaller one; in 16 KB
    nothing does (exit 8, saying the AOT backend was tried)."""
    import json

    from conftest import run_cli

    proc = run_cli("fit", "--target", "cortex-m4", "--arch", "v2", "--classes", "10", "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["winner"] is None and doc["memory"] == "balanced"
    aot = doc["aot"]
    assert aot["ram_bytes"] <= aot["room_bytes"] == 128 * 1024 < aot["tflm_ram_bytes"]
    assert aot["patch_stages"] and aot["extra_macs"] > 0 and aot["ram_bytes"] < aot["layerwise_ram_bytes"]
    speed = json.loads(run_cli("fit", "--target", "cortex-m4", "--arch", "v2", "--classes", "10", "--memory",
                               "speed", "--json", check=True).stdout)["aot"]
    assert not speed["patch_stages"] and speed["ram_bytes"] == speed["layerwise_ram_bytes"] <= 128 * 1024
    assert speed["resolution"] * speed["alpha"] < aot["resolution"] * aot["alpha"]
    proc = run_cli("fit", "--target", "cortex-m4", "--arch", "v2", "--ram", "16KB")
    assert proc.returncode == 8 and "nor does any with the AOT backend (--memory balanced)" in proc.stderr


def test_build_backend_aot_checks_the_aot_schedule_before_training(tmp_path):
    """`build --backend aot` checks the AOT schedule --memory picks before any training: over the
    limit (here layer by layer, --memory speed), exit 8 with what patching would reach, nothing trained."""
    from conftest import run_cli

    out = tmp_path / "b"
    proc = run_cli("build", "--arch", "v2", "--alpha", "0.35", "--resolution", "96", "--backend", "aot",
                   "--target", "cortex-m4", "--ram", "16KB", "-o", str(out), "--memory", "speed")
    assert proc.returncode == 8, proc.stderr
    assert "the smallest schedule (patch stages, --memory min) needs" in proc.stderr
    assert not (out / "model.keras").exists()


def test_windowed_estimate_equals_assembling_the_buffers_again(tflite_zoo):
    """The search's estimate of a candidate (`with_stage`: the kept buffers edited in the stage's
    window) equals `plan_aot`'s own assembly of every buffer, with and without another stage kept."""
    from mncompile.aot.lower import inplace_candidates
    from mncompile.aot.memory import plan_aot
    from mncompile.aot.patch_search import with_stage

    for name in ("v1_0.25_96", "v2_0.35_96"):
        graph, folds, calls = _lowered(verified(tflite_zoo[name]))
        ok = inplace_candidates(graph, folds)
        every = list(candidates(graph, folds, calls))
        first = next(s for s in every if s.nodes[0].node == 0 and s.grid == (2, 2))
        for s in every[::23]:
            for kept in ((), (first,)):
                if kept and s.nodes[0].node <= first.last_node:
                    continue
                base = plan_aot(graph, inplace="all", inplace_ok=ok, folds=folds, schedules=kept, bound_only=True)
                both = tuple(sorted((*kept, s), key=lambda x: x.nodes[0].node))
                exact = plan_aot(graph, inplace="all", inplace_ok=ok, folds=folds, schedules=both, bound_only=True)
                assert with_stage(base, s) == exact.live, (name, s.nodes[0].node, s.last_node, s.grid)


def test_a_mac_budget_bounds_the_search(tflite_zoo):
    model = verified(tflite_zoo["v1_0.25_96"])
    free = generate(model, memory="min").choice
    capped = generate(model, memory="min", max_extra=0.15).choice
    assert capped.extra_macs <= 0.15 * capped.total_macs < free.extra_macs
    assert free.ram <= capped.ram < capped.layerwise_ram
