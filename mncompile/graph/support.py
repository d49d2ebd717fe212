"""Which builtin operators TFLM can run: a data table derived from TFLM's op resolver."""

from __future__ import annotations

import functools
import json
from pathlib import Path


@functools.cache
def tflm_resolver_methods() -> dict[str, str]:
    """Builtin operator name -> the `MicroMutableOpResolver` method that registers it."""
    data = json.loads((Path(__file__).with_name("tflm_ops.json")).read_text(encoding="utf-8"))
    return dict(data["builtin_to_resolver"])


def tflm_supports(kind: str) -> bool:
    return kind in tflm_resolver_methods()
