"""Host emulation: run an int8 (or float) .tflite on the host and get its outputs.

Two emulators, looked up by name in `EMULATORS`:

- ``tflm``: the TFLM host interpreter (the ``tflite-micro`` package), the
  reference the firmware must match bit for bit. It runs in a worker process
  (`tflm_worker`): TFLM aborts the process on some invalid models, and that
  abort becomes an `EmulatorError` here instead of killing mncompile.
- ``litert``: LiteRT (``ai-edge-litert``) in process, with its default XNNPACK
  delegate: fast, for sweeps, but not bit-exact with TFLM (see `agreement`).
- ``litert-ref``: LiteRT with its reference kernels (``BUILTIN_REF``): slower,
  and bit-exact with TFLM on every model we measured (the tests check it), so
  it is an independent second opinion on the TFLM numbers.

`emulate(model, inputs)` takes a batch ``(N, H, W, C)`` already in the model's
input dtype and returns ``(N, classes)`` outputs; `emulate_tensors` also
returns chosen intermediate tensors.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mncompile.errors import EmulatorError, InvalidOptionError
from mncompile.graph.ir import Graph
from mncompile.graph.verified import VerifiedModel
from mncompile.progress import NullReporter, Reporter
from mncompile.validate.tflm_worker import stack_samples

EMULATOR_NAMES = ("tflm", "litert", "litert-ref")
ARENA_HEADROOM = 512 * 1024  # persistent allocations (quant params, eval tensors) and scratch


def host_arena_bytes(graph: Graph) -> int:
    """An arena the host interpreter surely fits in: every run-time tensor twice,
    plus headroom. (The exact arena is the plan stage's business, not this one's.)"""
    activations = sum(t.nbytes for t in graph.tensors if not t.is_constant)
    return 2 * activations + ARENA_HEADROOM


@dataclass(frozen=True)
class Job:
    model: VerifiedModel
    inputs: tuple[np.ndarray, ...]  # one (N, ...) array per model input
    tensors: tuple[int, ...] = ()  # intermediate tensors to return


def _check_inputs(graph: Graph, inputs: tuple[np.ndarray, ...], model: str) -> None:
    if len(inputs) != len(graph.inputs):
        raise InvalidOptionError(f"{model} has {len(graph.inputs)} input(s), got {len(inputs)}")
    for x, i in zip(inputs, graph.inputs, strict=True):
        t = graph.tensors[i]
        want = np.dtype(t.dtype.lower())
        if x.dtype != want or tuple(x.shape[1:]) != tuple(t.shape[1:]):
            raise InvalidOptionError(f"{model} input {t.name} wants (N, {', '.join(map(str, t.shape[1:]))}) "
                                     f"{want}, got {x.shape} {x.dtype}",
                                     hint="quantize float inputs with the model's input scale and zero point")


def run_tflm(jobs: list[Job], reporter: Reporter = NullReporter(),
             description: str = "TFLM host interpreter") -> list[dict[str, np.ndarray]]:
    """Run jobs on the TFLM host interpreter in one worker process."""
    if not jobs:
        return []
    total = sum(len(job.inputs[0]) for job in jobs)
    with tempfile.TemporaryDirectory(prefix="mncompile-tflm-") as tmp:
        root = Path(tmp)
        request = {"arena": 0, "jobs": []}
        for j, job in enumerate(jobs):
            graph = job.model.graph
            _check_inputs(graph, job.inputs, job.model.source)
            request["arena"] = max(request["arena"], host_arena_bytes(graph))
            names = []
            for i, x in enumerate(job.inputs):
                names.append(f"job{j}_in{i}.npy")
                np.save(root / names[-1], np.ascontiguousarray(x))
            model_file = root / f"job{j}.tflite"  # the verified bytes, not the user's file again
            model_file.write_bytes(job.model.data)
            request["jobs"].append({"model": str(model_file), "name": job.model.source, "inputs": names,
                                    "tensors": list(job.tensors) or None,
                                    "num_outputs": len(graph.outputs), "out": f"job{j}_out.npz"})
        (root / "request.json").write_text(json.dumps(request))
        stderr_path = root / "stderr.txt"
        with open(stderr_path, "wb") as stderr, reporter.task(description, total) as task:
            proc = subprocess.Popen([sys.executable, "-m", "mncompile.validate.tflm_worker", str(root)],
                                    stdout=subprocess.PIPE, stderr=stderr, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("done "):
                    task.advance(int(line.split()[1]))
            code = proc.wait()
        log = stderr_path.read_text(errors="replace").strip()
        if code != 0:
            raise _worker_error(code, root, log, jobs)
        return [dict(np.load(root / f"job{j}_out.npz")) for j in range(len(jobs))]


def _worker_error(code: int, root: Path, log: str, jobs: list[Job]) -> EmulatorError:
    tail = "\n".join(log.splitlines()[-8:])
    models = ", ".join(sorted({j.model.source for j in jobs}))
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return EmulatorError(f"the TFLM host interpreter aborted ({name}) on {models}"
                             + (f":\n{tail}" if tail else ""),
                             hint="the model holds parameters TFLM kernels reject; run "
                                  "`mncompile quantize` on it to find out which layer")
    error = root / "error.json"
    if error.exists():
        detail = json.loads(error.read_text())
        return EmulatorError(f"the TFLM host interpreter rejected {detail.get('name', detail['model'])}: "
                             f"{detail['error']}"
                             + (f"\n{tail}" if tail else ""),
                             hint="check the model with `mncompile quantize`")
    return EmulatorError(f"the TFLM worker failed (exit code {code}) on {models}" + (f":\n{tail}" if tail else ""))


def run_litert(jobs: list[Job], reporter: Reporter = NullReporter(),
               description: str = "LiteRT", reference: bool = False) -> list[dict[str, np.ndarray]]:
    """Run jobs on LiteRT in process: XNNPACK, or the reference kernels when `reference`."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO

    results = []
    total = sum(len(job.inputs[0]) for job in jobs)
    with reporter.task(description, total) as task:
        for job in jobs:
            graph = job.model.graph
            _check_inputs(graph, job.inputs, job.model.source)
            try:
                with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": it is
                    warnings.simplefilter("ignore")
                    it = Interpreter(model_content=job.model.data, num_threads=1,
                                     experimental_op_resolver_type=resolver,
                                     experimental_preserve_all_tensors=bool(job.tensors))
                it.allocate_tensors()
            except (RuntimeError, ValueError) as exc:
                raise EmulatorError(f"LiteRT rejected {job.model.source}: {exc}") from None
            ins = [d["index"] for d in it.get_input_details()]
            outs = [d["index"] for d in it.get_output_details()]
            collected: dict[str, list[np.ndarray]] = {}
            for k in range(len(job.inputs[0])):
                for index, x in zip(ins, job.inputs, strict=True):
                    it.set_tensor(index, x[k:k + 1])
                try:
                    it.invoke()
                except RuntimeError as exc:
                    raise EmulatorError(f"LiteRT failed on {job.model.source}: {exc}") from None
                for i, index in enumerate(outs):
                    collected.setdefault(f"output_{i}", []).append(it.get_tensor(index).copy())
                for t in job.tensors:
                    collected.setdefault(f"tensor_{t}", []).append(it.get_tensor(t).copy())
                task.advance(1)
            results.append({k: stack_samples(v) for k, v in collected.items()})
    return results


def run_litert_reference(jobs: list[Job], reporter: Reporter = NullReporter(),
                         description: str = "LiteRT reference kernels") -> list[dict[str, np.ndarray]]:
    return run_litert(jobs, reporter, description, reference=True)


EMULATORS = {"tflm": run_tflm, "litert": run_litert, "litert-ref": run_litert_reference}


def _runner(emulator: str):
    try:
        return EMULATORS[emulator]
    except KeyError:
        raise InvalidOptionError(f"unknown emulator {emulator!r}",
                                 hint=f"choose one of {', '.join(EMULATOR_NAMES)}") from None


def emulate(model: VerifiedModel, inputs: np.ndarray, emulator: str = "tflm",
            reporter: Reporter = NullReporter()) -> np.ndarray:
    """Outputs ``(N, ...)`` of `model` for a batch `inputs` ``(N, H, W, C)``."""
    run = _runner(emulator)
    return run([Job(model, (np.asarray(inputs),))], reporter)[0]["output_0"]


def emulate_tensors(model: VerifiedModel, inputs: np.ndarray, tensors: tuple[int, ...],
                    emulator: str = "tflm", reporter: Reporter = NullReporter()) -> dict[int, np.ndarray]:
    """The chosen tensors (by index) and the output (key -1) for every input of the batch."""
    run = _runner(emulator)
    result = run([Job(model, (np.asarray(inputs),), tuple(tensors))], reporter)[0]
    found = {t: result[f"tensor_{t}"] for t in tensors}
    found[-1] = result["output_0"]
    return found


@dataclass(frozen=True)
class Agreement:
    """How two emulators' int8 outputs compare, sample by sample."""

    samples: int
    identical: int  # samples whose whole output vector is equal
    max_abs_lsb: int  # largest difference in any output element, in int8 steps
    top1_agree: int

    @property
    def identical_fraction(self) -> float:
        return self.identical / self.samples if self.samples else math.nan

    def to_json(self) -> dict:
        return {"samples": self.samples, "bit_identical": self.identical,
                "max_abs_lsb": self.max_abs_lsb, "top1_agree": self.top1_agree}


def agreement(a: np.ndarray, b: np.ndarray) -> Agreement:
    a32, b32 = a.astype(np.int32).reshape(len(a), -1), b.astype(np.int32).reshape(len(b), -1)
    diff = np.abs(a32 - b32)
    return Agreement(len(a), int(np.sum(np.all(diff == 0, axis=1))), int(diff.max(initial=0)),
                     int(np.sum(np.argmax(a32, axis=1) == np.argmax(b32, axis=1))))
