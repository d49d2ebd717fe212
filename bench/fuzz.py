"""Fuzz `mncompile plan` and `mncompile emit` with mutated int8 .tflite models.

    .venv/bin/python bench/fuzz.py --cases 10000 --seed 0 [--models a.tflite ...] [--backends tflm aot]
        [--alternate-backends] [--jobs 2] [--timeout 60] [--json] [--keep DIR]
    .venv/bin/python bench/fuzz.py --seed 0 --only 1234 [--backends aot] [--keep DIR]    # replay a case

Case k is determined by --seed, k and the model list: a model and a mutation (bench/fuzz_mutations.py).
Its commands (`plan`, `emit --target cortex-m7 --backend B`) run the real CLI in process, with --debug,
each in a child forked from a parent that has already imported and warmed up mncompile. Outcomes:
success, typed error (by exit code), internal error (exit 1; grouped by exception type and innermost
mncompile frame), hang (the case ran past --timeout), crash (a signal). A project that `emit` wrote is
judged by an oracle that does not use mncompile (see `oracle`): a flagged mutant with a project is a
"project from an invalid model". Goal: 0 internal errors, 0 projects from invalid models. The oracle also
judges refused mutants: a typed error on a mutant it accepts is counted as "refused_valid", for information
(a verifier that refused everything would meet the goal). --keep DIR keeps each notable case's folder:
mutant.tflite (+ the sidecar), every command's stdout/stderr, case.json; `mncompile --debug plan
DIR/case-K/mutant.tflite` reproduces a case without the harness.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import fuzz_mutations as fm  # noqa: E402
from fuzz_report import FuzzReport, render  # noqa: E402,F401  (render: for callers of this module)

DEFAULT_MODELS = (ROOT / "tests/data/tiny_int8.tflite", ROOT.parent / "shared/data/vww_96_int8.tflite")
TARGET = "cortex-m7"
MEM_LIMIT = 4 << 30  # address space a command may add to what it inherits (a 2**31-1 dim must not eat the host)
ORACLE_TIMEOUT = 30.0
FRAME = re.compile(r'File "(.+)", line (\d+), in (.+)')


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


def _fork(fn, folder: Path, stem: str, limit: bool = True) -> int:
    """Run fn() in a forked child, in its own process group, stdio in folder/stem.{out,err}; returns the pid.
    The child exits with fn()'s return value (1 with a traceback if it raises). With `limit`, its address
    space may grow by MEM_LIMIT at most."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here, so that a kill right after the fork reaches the group
        return pid
    code = 1
    try:
        os.setpgid(0, 0)
        for fd, name in ((1, "out"), (2, "err")):
            f = os.open(folder / f"{stem}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 (pytest swaps sys.stdout)
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        faulthandler.enable(sys.stderr)  # a crash's Python stack goes to the case folder
        if limit:
            vm = int(re.search(r"VmSize:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024
            resource.setrlimit(resource.RLIMIT_AS, (vm + MEM_LIMIT, vm + MEM_LIMIT))
        code = fn()
    except BaseException:  # noqa: B036 (the child must always reach os._exit)
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, deadline: float) -> int | None:
    """The child's exit code (negative: killed by that signal), or None when it ran past the deadline
    (its process group is then killed)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)


def _cli(argv: list[str]) -> int:
    """The real CLI, in process: its exit code."""
    from mncompile.cli.app import app

    try:
        app(args=argv, prog_name="mncompile", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _argv(command: str, mutant: Path, out: Path) -> list[str]:
    if command == "plan":
        return ["--debug", "plan", str(mutant), "-o", str(out), "--json"]
    return ["--debug", "emit", str(mutant), "--target", TARGET, "-o", str(out), "--backend",
            command.split(":")[1], "--json"]


def _internal_group(stderr: str) -> tuple[str, list[str]]:
    """(exception type at the innermost mncompile frame, the traceback's last lines) from --debug stderr."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return "exit 1 without a traceback", lines[-4:]
    block = lines[starts[-1]:]
    frames = [m.groups() for m in map(FRAME.search, block) if m]
    ours = [f for f in frames if "mncompile/" in f[0]]
    inner = [f for f in ours if not f[0].endswith("cli/app.py")] or ours or frames
    last = next((line for line in reversed(block) if line.strip() and not line.startswith(" ")), "?")
    path = inner[-1][0] if inner else "?"
    where = f"{path[max(0, path.rfind('mncompile/')):]}:{inner[-1][1]} in {inner[-1][2]}" if inner else "?"
    return f"{last.split(':')[0]} at {where}", block[-6:]


def _outcome(code: int | None, folder: Path, command: str, seconds: float) -> dict:
    out = {"seconds": round(seconds, 3)}
    if code is None:
        return {**out, "status": "hang"}
    if code < 0:
        return {**out, "status": "crash", "signal": signal.Signals(-code).name}
    out["exit"] = code
    if code == 0:
        project = command.startswith("emit") and (folder / command.replace(":", "-") / "mncompile.json").exists()
        return {**out, "status": "ok", "project": project}
    if code == 1:
        group, tail = _internal_group((folder / f"{command.replace(':', '-')}.err").read_text(errors="replace"))
        return {**out, "status": "internal", "group": group, "traceback": tail}
    err = (folder / f"{command.replace(':', '-')}.err").read_text(errors="replace").splitlines()
    message = next((line[7:].strip() for line in err if line.startswith("error: ")), err[-1] if err else "")
    message = message.replace(str(folder / "mutant.tflite"), "MUTANT")
    return {**out, "status": "typed" if 2 <= code <= 11 else "other", "message": message[:300]}


def _litert(data: bytes, folder: Path) -> int:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    stage = folder / "litert.stage"
    stage.write_text("load")
    it = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    stage.write_text("allocate_tensors")
    it.allocate_tensors()
    stage.write_text("set_tensor (zero input)")
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    stage.write_text("invoke")
    it.invoke()
    return 0


def _bias_quantization_only(flag: str, m) -> bool:
    """LiteRT rejected the model only for the quantized_dimension of a constant INT32 tensor (a bias).
    TFLM, which the firmware runs, never reads a bias's quantization, and TFLM's own person_detect.tflite
    gives its rank-1 biases dimension 3: for this oracle that model is valid."""
    found = re.search(r"quantized_dimension must be in range.*Tensor (\d+) has invalid quantization", flag)
    if found is None:
        return False
    tensors = m.subgraphs[0].tensors if m.subgraphs else []
    k = int(found.group(1))
    if k >= len(tensors):
        return False
    t = tensors[k]
    constant = 0 < t.buffer < len(m.buffers) and m.buffers[t.buffer].data is not None
    return t.type == fm.s.TensorType.INT32 and constant


def oracle(data: bytes, folder: Path) -> list[str]:
    """Why the mutant is an invalid model ([] = valid), decided without mncompile: (a) LiteRT, reference
    kernels, in a forked child, must load it, allocate its tensors and invoke it on a zero input (a
    rejection only for a bias's quantized_dimension does not count: `_bias_quantization_only`); (b) the
    dataflow check `fuzz_mutations.dataflow_problems`; (c) the schema version must be 3."""
    flags = []
    code = _wait(_fork(lambda: _litert(data, folder), folder, "litert"), time.monotonic() + ORACLE_TIMEOUT)
    stage = (folder / "litert.stage").read_text() if (folder / "litert.stage").exists() else "fork"
    if code is None:
        flags.append(f"litert: hang at {stage}")
    elif code < 0:
        flags.append(f"litert: crash ({signal.Signals(-code).name}) at {stage}")
    elif code:
        err = (folder / "litert.err").read_text(errors="replace").strip().splitlines()
        flags.append(f"litert: rejected at {stage}: {err[-1][:200] if err else code}")
    try:
        m = fm.s.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:
        return flags + [f"dataflow: the object API cannot parse it ({type(exc).__name__})"]
    flags = [f for f in flags if not _bias_quantization_only(f, m)]
    flags += [f"dataflow: {p}" for p in fm.dataflow_problems(m)]
    if m.version != 3:
        flags.append(f"version: schema version {m.version}, not 3")
    return flags


def _case(k: int, seed: int, sources: list, commands: list[str], folder: Path, deadline: float) -> int:
    """One case, in a forked child: mutate, run each command in its own child, the oracle; folder/case.json."""
    rng = random.Random(f"{seed}:{k}")
    src = sources[rng.randrange(len(sources))]
    record = {"case": k, "model": str(src.path), "commands": {}, "oracle": None}
    data, record["kind"], record["mutation"] = fm.mutate(src, rng)
    mutant = folder / "mutant.tflite"
    mutant.write_bytes(data)
    if src.path.with_name(src.path.name + ".json").exists():  # the sidecar (classes, preprocessing)
        shutil.copy(src.path.with_name(src.path.name + ".json"), folder / "mutant.tflite.json")
    for command in commands:
        stem = command.replace(":", "-")
        started = time.monotonic()
        pid = _fork(lambda: _cli(_argv(command, mutant, folder / stem)), folder, stem)  # noqa: B023
        record.update(stage=command, pgid=pid)
        _write_json(folder / "case.json", record)
        result = _outcome(_wait(pid, deadline), folder, command, time.monotonic() - started)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # what the command left behind (a TFLM worker of a crashed emit)
        record["commands"][command] = result
        if result["status"] == "hang":
            break
    record.update(stage="oracle", pgid=None)  # on every case: projects from invalid models, refusals of valid ones
    _write_json(folder / "case.json", record)
    record["oracle"] = oracle(data, folder)
    record.update(stage="done", pgid=None)
    _write_json(folder / "case.json", record)
    return 0


def _warm_up(path: Path) -> None:
    """Run plan and emit once in the parent, so that forked children find everything imported and cached."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401 (imported once, for the oracle)

    from mncompile.cli import app as cli

    debug = dict(cli.DEBUG)
    with tempfile.TemporaryDirectory(prefix="mncompile-fuzz-warm-") as tmp:
        (Path(tmp) / "m.tflite").write_bytes(path.read_bytes())
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for command in ("plan", "emit:tflm", "emit:aot"):
                with contextlib.suppress(Exception):
                    _cli(_argv(command, Path(tmp) / "m.tflite", Path(tmp) / command.replace(":", "-"))[1:])
    cli.DEBUG.update(debug)


def _finish(code: int | None, k: int, folder: Path) -> dict:
    """The case's record, once its process exited with `code` or was killed by the backstop (None)."""
    path = folder / "case.json"
    record = json.loads(path.read_text()) if path.exists() else {"case": k, "model": "?", "kind": "?",
                                                                 "mutation": "?", "commands": {}}
    if code is None:  # the case process outlived its own deadline: a harness bug
        record["harness_error"] = f"case process killed at stage {record.get('stage')}"
    elif code != 0 or record.get("stage") != "done":
        err = (folder / "case.err").read_text(errors="replace").strip().splitlines()
        record["harness_error"] = f"case process exit {code}: {' | '.join(err[-3:])}"
    return record


def _kill_case(pid: int, folder: Path) -> None:
    with contextlib.suppress(Exception):
        os.killpg(json.loads((folder / "case.json").read_text())["pgid"], signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _worth_keeping(record: dict) -> bool:
    results = record["commands"].values()
    return bool(record.get("harness_error") or any(r["status"] in ("internal", "hang", "crash", "other")
                                                   for r in results)
                or (record.get("oracle") and any(r.get("project") for r in results)))


def run_cases(models, cases, seed: int = 0, backends=("tflm", "aot"), jobs: int = 1, *, timeout: float = 60.0,
              alternate: bool = False, keep: str | Path | None = None, progress: bool = True) -> FuzzReport:
    """Run cases range(cases) (or the case numbers given) over `models`: the report.

    Each case runs `plan` and one `emit` per backend, or with `alternate` only backend k mod len(backends)."""
    setup, models = time.monotonic(), [Path(m).resolve() for m in models]
    sources, numbers = [fm.Source(m) for m in models], list(range(cases) if isinstance(cases, int) else cases)
    _warm_up(min(models, key=lambda m: m.stat().st_size))
    root, keep = Path(tempfile.mkdtemp(prefix="mncompile-fuzz-")), Path(keep) if keep else None
    report = FuzzReport(seed, [str(m) for m in models], list(backends), alternate, jobs, [], 0.0,
                        tensorflow_in_parent="tensorflow" in sys.modules)
    for m in models:  # the oracle must accept the unmutated models, or its verdicts mean nothing
        (root / m.name).mkdir()
        report.baseline[str(m)] = oracle(m.read_bytes(), root / m.name)
    running, pending, started = {}, list(reversed(numbers)), time.monotonic()
    report.setup_seconds = started - setup  # the warm-up and the oracle's baseline, before the first case
    every = max(1, min(100, len(numbers) // 20))
    try:
        while pending or running:
            while pending and len(running) < max(1, jobs):
                k = pending.pop()
                folder = root / f"case-{k:05d}"
                folder.mkdir()
                commands = ["plan"] + [f"emit:{b}" for b in ([backends[k % len(backends)]] if alternate else backends)]
                deadline = time.monotonic() + timeout
                pid = _fork(lambda: _case(k, seed, sources, commands, folder, deadline),  # noqa: B023
                            folder, "case", limit=False)
                running[pid] = (k, folder, deadline + ORACLE_TIMEOUT + 30)
            for pid, (k, folder, backstop) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                if not done and time.monotonic() < backstop:
                    continue
                if not done:
                    _kill_case(pid, folder)
                del running[pid]
                report.cases.append(_finish(os.waitstatus_to_exitcode(status) if done else None, k, folder))
                if keep and _worth_keeping(report.cases[-1]):
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.rmtree(keep / folder.name, ignore_errors=True)
                    shutil.move(str(folder), keep / folder.name)
                shutil.rmtree(folder, ignore_errors=True)
                report.wall_seconds = time.monotonic() - started
                if progress and len(report.cases) % every == 0:
                    print(f"fuzz: {len(report.cases)}/{len(numbers)} cases, "
                          f"{len(report.cases) / report.wall_seconds:.2f} cases/s; "
                          f"{report.summary().split(': ', 1)[1]}", file=sys.stderr, flush=True)
            time.sleep(0.01)
    finally:
        for pid, (_, folder, _) in running.items():
            _kill_case(pid, folder)
        shutil.rmtree(root, ignore_errors=True)
    report.cases.sort(key=lambda r: r["case"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000, help="cases 0..N-1 (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", type=int, nargs="+", help="run only these case numbers (replay)")
    parser.add_argument("--models", nargs="+", help="default: tests/data/tiny_int8.tflite and, when present, "
                                                    "../shared/data/vww_96_int8.tflite")
    parser.add_argument("--backends", nargs="+", default=["tflm", "aot"], choices=["tflm", "aot"])
    parser.add_argument("--alternate-backends", action="store_true", help="case k emits with backend k mod n only")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case before it is a hang")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--keep", help="keep the folders of cases with internal errors, hangs, crashes or "
                                       "projects from invalid models here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that run_cases kills its cases and cleans up
    models = args.models or [str(m) for m in DEFAULT_MODELS if m.exists()]
    report = run_cases(models, args.only or args.cases, args.seed, args.backends, args.jobs, timeout=args.timeout,
                       alternate=args.alternate_backends, keep=args.keep)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.text(limit=10**9 if args.only else 20))
    if args.only and not args.json:
        for case in report.cases:
            print(f"\ncase {case['case']}: {case['model']}: {case['mutation']}; oracle: {case['oracle']}")
            for command, r in case["commands"].items():
                print(f"  {command}: {r['status']} (exit {r.get('exit', r.get('signal', '-'))})",
                      *(f"      {line}" for line in r.get("traceback", [])), sep="\n")
    return 0 if report.to_json()["goal_met"] and not (report.hangs or report.crashes) else 1


if __name__ == "__main__":
    sys.exit(main())
