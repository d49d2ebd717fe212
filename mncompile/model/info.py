"""The JSON sidecar that travels with every model mncompile writes.

It records what a `.keras`/`.tflite` file does not: class names, the exact
pixel preprocessing, the architecture and where the model came from. The
sidecar of ``model.keras`` is ``model.keras.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mncompile.errors import ModelError
from mncompile.model.datasets import Preprocessing

SIDECAR_FORMAT = "mncompile-model/1"


def sidecar_path(model_path: Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


@dataclass(frozen=True)
class ModelInfo:
    arch: str | None
    alpha: float | None
    resolution: int
    channels: int
    class_names: tuple[str, ...]
    preprocessing: Preprocessing | None  # None: unknown (an int8 .tflite from elsewhere)
    dataset: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    quantization: dict = field(default_factory=dict)  # int8 models: input/output scale, zero point

    def to_json(self) -> dict:
        return {"format": SIDECAR_FORMAT, "arch": self.arch, "alpha": self.alpha,
                "resolution": self.resolution, "channels": self.channels,
                "classes": list(self.class_names),
                "preprocessing": self.preprocessing.to_json() if self.preprocessing else None,
                "dataset": self.dataset, "metrics": self.metrics, "quantization": self.quantization}

    @classmethod
    def from_json(cls, data: dict) -> ModelInfo:
        return cls(arch=data.get("arch"), alpha=data.get("alpha"),
                   resolution=int(data["resolution"]), channels=int(data["channels"]),
                   class_names=tuple(str(c) for c in data["classes"]),
                   preprocessing=(Preprocessing.from_json(data["preprocessing"])
                                  if data.get("preprocessing") is not None else None),
                   dataset=dict(data.get("dataset") or {}), metrics=dict(data.get("metrics") or {}),
                   quantization=dict(data.get("quantization") or {}))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name and rename: readers never see a partial file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_new_output(path: Path, suffix: str, force: bool, example: str) -> Path:
    """Refuse an output path with the wrong suffix, an existing file without `force`, or a
    missing folder, before any work starts."""
    from mncompile.errors import InvalidOptionError, OutputExistsError

    path = Path(path)
    if path.suffix != suffix:
        raise InvalidOptionError(f"output {path} must end in {suffix}", hint=f"e.g. -o {example}")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists", hint="pass --force to replace it")
    if not path.parent.exists():
        raise InvalidOptionError(f"folder {path.parent} does not exist",
                                 hint="create it first or choose another -o path")
    return path


def write_info(model_path: Path, info: ModelInfo) -> Path:
    path = sidecar_path(model_path)
    write_text_atomic(path, json.dumps(info.to_json(), indent=2, sort_keys=True) + "\n")
    return path


def read_info(model_path: Path) -> ModelInfo | None:
    """The sidecar of `model_path`, or None when there is none."""
    path = sidecar_path(model_path)
    if not path.exists():
        return None
    try:
        return ModelInfo.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelError(f"sidecar {path} is not a valid mncompile model description: {exc}",
                         hint=f"delete {path.name} or restore it from the run that wrote it") from None
