"""The model corpus table: the field's model shapes through plan and the AOT backend on QEMU.

    .venv/bin/python bench/corpus.py [--markdown] [--keep DIR] [--target cortex-m7] [--model PATH ...]
    .venv/bin/python bench/corpus.py --only --model a.tflite --model b.tflite   # just those

Models: the corpus of `tests/corpus_models.py` (Keras' MobileNetV3Small and MobileNetV3Large
built with `weights=None`, an MCUNet-shaped model with float32 edges, a keyword-spotting model
with a (1, 1960) input and an autoencoder with (1, 640) in and out), each built here from
nothing, plus /work/shared/data/vww_96_int8.tflite (the MLPerf Tiny VWW model) when present,
plus any --model (e.g. the MCUNet zoo's .tflite files; none is ever committed here).
Progress goes to stderr, the table to stdout.

Columns, and how each is obtained:

- ops: the model's operators (`mncompile.graph.verified.read_model`), by name;
- lower bound B: the layer-wise lower bound of TFLM's graph (`plan_model(...).lower_bound`);
- TFLM arena B: the whole TFLM arena on a 32-bit device with reference kernels and our plan
  embedded (`mncompile.plan.device_arena`); "measured" when an operator's arena is not predicted
  and the host interpreter measured it (`plan` says the same);
- AOT arena B: the AOT backend's static arena (`mncompile.aot.codegen.generate(...).arena_bytes`),
  with its PAD folds and in-place layers;
- AOT stack B: the static stack bound of the AOT firmware (`bench/firmware.py`'s stack column);
- instr/inf, MACs, instr/MAC, check: the AOT project built and run on QEMU for `--target` by
  `bench/firmware.py`'s `bench_one` (instructions from SysTick ticks under -icount shift=0,
  check PASS when every golden vector equals the TFLM host interpreter's output).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from mncompile.errors import MncompileError  # noqa: E402

VWW = Path("/work/shared/data/vww_96_int8.tflite")
HEADER = ("model", "input -> output", "ops", "lower bound B", "TFLM arena B", "AOT arena B", "AOT stack B",
          "instr/inf", "MACs", "instr/MAC", "check")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_corpus(folder: Path) -> list[Path]:
    import corpus_models as cm

    paths = []
    for name in (*cm.KERAS_MODELS, *cm.WRITTEN_MODELS):
        log(f"building {name}")
        data = cm.mobilenet_v3(**cm.KERAS_MODELS[name]) if name in cm.KERAS_MODELS else cm.WRITTEN_MODELS[name]()
        path = folder / f"{name}.tflite"
        path.write_bytes(data)
        paths.append(path)
    if VWW.exists():
        paths.append(VWW)
    return paths


def row(model: Path, target: str, root: Path, timeout: float) -> tuple[str, ...]:
    from firmware import bench_one
    from mncompile.aot.codegen import generate
    from mncompile.graph.verified import read_model
    from mncompile.plan import device_arena, plan_model
    from mncompile.validate.host_arena import measure_host_arena

    verified = read_model(model)
    g = verified.graph
    tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    io = f"{tin.dtype.lower()} {list(tin.shape)} -> {tout.dtype.lower()} {list(tout.shape)}"
    ops = ", ".join(sorted({op.kind for op in g.ops}))
    planned = plan_model(verified, measure_host_arena)
    tflm = device_arena(planned, "reference").total
    measured = "" if planned.exact else " (measured)"
    program = generate(verified)
    aot = f"{program.arena_bytes:,}"
    notes = [f"{n} {what}" for n, what in ((len(program.memory.folded_pads), "PAD folded"),
                                            (len(program.memory.inplace), "in place")) if n]
    if notes:
        aot += f" ({', '.join(notes)})"
    r = bench_one(model, "aot", target, root, timeout)
    stack = "-" if r.stack is None else ("" if r.stack_exact else ">=") + f"{r.stack:,}"
    return (model.stem, io, ops, f"{planned.lower_bound:,}", f"{tflm:,}{measured}", aot, stack,
            f"{r.instructions:,}" if r.instructions else "-", f"{r.macs:,}" if r.macs else "-",
            f"{r.per_mac:.2f}" if r.per_mac else "-", r.check)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="cortex-m7", help="the QEMU target of the AOT runs (default cortex-m7)")
    p.add_argument("--keep", type=Path, help="build the models and projects in DIR and keep them")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds QEMU may run per firmware")
    p.add_argument("--model", action="append", type=Path, default=[], help="another .tflite (repeatable)")
    p.add_argument("--only", action="store_true", help="only the --model files, not the built corpus")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mncompile-corpus-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        models = ([] if args.only else build_corpus(root)) + args.model
        rows = []
        for m in models:
            try:
                rows.append(row(m, args.target, root, args.timeout))
            except MncompileError as exc:  # a model mncompile refuses is a row saying why
                log(f"{m.name}: {exc.message}")
                rows.append((m.stem, "-", "-", "-", "-", "-", "-", "-", "-", "-", f"refused (exit {exc.exit_code}): "
                             + exc.message.split(": ", 1)[-1].replace("|", "/")))
    if args.markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "|".join("---:" if h.endswith(("B", "inf", "MACs", "MAC")) else "---" for h in HEADER) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in (HEADER, *rows):
            print("  ".join(r))
    return 0 if all(r[-1] == "PASS" or r[-1].startswith("refused") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
