"""Host emulator throughput on an int8 .tflite, and agreement with TFLM.

    .venv/bin/python bench/emulators.py [MODEL.tflite] [N]

Defaults: ../shared/data/vww_96_int8.tflite and 64 random images. Prints one
row per emulator: images per second, and how many outputs are bit-identical
to TFLM's. Target: TFLM fast enough that `eval` on a few hundred images takes
seconds (about 50 images/s or more for V1 0.25 at 96x96 on 2 cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from mncompile.graph.verified import read_model
from mncompile.validate.emulate import EMULATOR_NAMES, agreement, emulate


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "vww_96_int8.tflite"
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    verified = read_model(model)
    graph = verified.graph
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    x = np.random.default_rng(0).integers(-128, 128, (n, *shape)).astype(np.int8)
    print(f"{model.name}: {n} random images {tuple(shape)}")
    print(f"{'emulator':<12}{'images/s':>10}{'seconds':>10}{'bit-identical to tflm':>24}{'max LSB':>9}")
    reference = None
    for name in EMULATOR_NAMES:
        start = time.perf_counter()
        y = emulate(verified, x, name)
        seconds = time.perf_counter() - start
        if reference is None:
            reference = y
        a = agreement(reference, y)
        print(f"{name:<12}{n / seconds:>10.1f}{seconds:>10.2f}{f'{a.identical}/{a.samples}':>24}{a.max_abs_lsb:>9}")


if __name__ == "__main__":
    main()
