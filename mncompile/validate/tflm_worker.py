"""Worker process that runs models on the TFLM host interpreter.

It runs apart from mncompile because TFLM aborts the whole process on some
invalid models (`TFLITE_CHECK`). The parent (`mncompile.validate.emulate`)
writes a request folder and reads back results; an abort becomes a typed error
there. Protocol:

- ``request.json``: ``{"arena": bytes, "jobs": [{"model": path, "inputs": [npy...],
  "tensors": [tensor indices] or null, "out": npz}]}``;
- each job's inputs are ``(N, ...)`` arrays, one per model input;
- stdout gets one ``done <k>`` line per ``k`` finished invocations (progress);
- results: ``output_<i>`` and ``tensor_<t>`` arrays of shape ``(N, ...)`` per job npz;
- failures that TFLM reports (rather than aborts on) go to ``error.json``, exit code 3.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

PROGRESS_EVERY = 8


def stack_samples(arrays: list[np.ndarray]) -> np.ndarray:
    """Per-invocation arrays as one (N, ...) array: batch-1 tensors are concatenated along
    their batch axis, anything else is stacked."""
    if arrays[0].ndim and arrays[0].shape[0] == 1:
        return np.concatenate(arrays)
    return np.stack(arrays)


def main(folder: str) -> int:
    from tflite_micro.python.tflite_micro import runtime

    root = Path(folder)
    request = json.loads((root / "request.json").read_text())
    pending = 0
    for job in request["jobs"]:
        inputs = [np.load(root / name) for name in job["inputs"]]
        tensors = job.get("tensors")
        config = (runtime.InterpreterConfig.kPreserveAllTensors if tensors
                  else runtime.InterpreterConfig.kAllocationRecording)
        try:
            interpreter = runtime.Interpreter.from_file(job["model"], arena_size=int(request["arena"]),
                                                        intrepreter_config=config)
            n = len(inputs[0])
            outputs: dict[str, list[np.ndarray]] = {}
            for k in range(n):
                for i, x in enumerate(inputs):
                    interpreter.set_input(x[k:k + 1], i)
                interpreter.invoke()
                for i in range(job["num_outputs"]):
                    outputs.setdefault(f"output_{i}", []).append(np.array(interpreter.get_output(i)))
                for t in tensors or ():
                    found = interpreter.GetTensor(t, 0)  # {"dtype", "shape", "tensor_data"}
                    outputs.setdefault(f"tensor_{t}", []).append(np.array(found["tensor_data"]))
                pending += 1
                if pending >= PROGRESS_EVERY:
                    print(f"done {pending}", flush=True)
                    pending = 0
        except (RuntimeError, ValueError) as exc:
            (root / "error.json").write_text(json.dumps({"model": job["model"], "name": job.get("name", job["model"]),
                                                         "error": str(exc)}))
            return 3
        np.savez(root / job["out"], **{k: stack_samples(v) for k, v in outputs.items()})
    if pending:
        print(f"done {pending}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
