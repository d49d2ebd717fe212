"""Training time and validation accuracy of `mncompile train` defaults on digits.

    .venv/bin/python bench/train_digits.py [seed ...]

Prints one row per seed. Target: >= 90 % validation accuracy in <= 5 minutes
on 2 CPU cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    seeds = [int(s) for s in sys.argv[1:]] or [0]
    print(f"{'seed':>4}{'val accuracy':>14}{'train s':>10}{'wall s':>10}")
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "mncompile", "train", "--dataset", "digits",
                                   "--seed", str(seed), "-o", str(Path(tmp) / "m.keras"), "--json"],
                                  check=True, capture_output=True, text=True)
            wall = time.perf_counter() - start
        result = json.loads(proc.stdout)
        print(f"{seed:>4}{result['val_accuracy']:>14.2%}{result['seconds']:>10.1f}{wall:>10.1f}")


if __name__ == "__main__":
    main()
