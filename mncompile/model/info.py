"""The JSON sidecar that travels with every model mncompile writes.

It records what a `.keras`/`.tflite` file does not: class names, the exact
pixel preprocessing, the architecture and where the model came from. The
sidecar of ``model.keras`` is ``model.keras.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mncompile.errors import ModelError
from mncompile.files import write_text_atomic
from mncompile.model.datasets import Preprocessing

SIDECAR_FORMAT = "mncompile-model/1"


def sidecar_path(model_path: Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


@dataclass(frozen=True)
class ModelInfo:
    arch: str | None
    alpha: float | None
    resolution: int | None  # None: the input is not an image (e.g. a (1, 1960) audio feature vector)
    channels: int | None
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
        """Raises ValueError, KeyError or TypeError when `data` is not a sidecar document."""
        if not isinstance(data, dict):
            raise TypeError(f"the document is a JSON {type(data).__name__}, not an object")
        classes = data["classes"]
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise TypeError("'classes' is not a list of strings")
        for k, name in enumerate(classes):
            check_label(name, f"class {k}")
        return cls(arch=data.get("arch"), alpha=data.get("alpha"),
                   resolution=_int_or_none(data["resolution"]), channels=_int_or_none(data["channels"]),
                   class_names=tuple(classes),
                   preprocessing=(Preprocessing.from_json(data["preprocessing"])
                                  if data.get("preprocessing") is not None else None),
                   dataset=dict(data.get("dataset") or {}), metrics=dict(data.get("metrics") or {}),
                   quantization=dict(data.get("quantization") or {}))


def check_label(name: str, what: str = "label") -> str:
    """A class label must be text that UTF-8 can write (no lone surrogates, such as a JSON
    "\\ud800" or a file name that is not UTF-8). ValueError otherwise."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} {name!r} is not valid Unicode text (character {exc.start} is a lone "
                         "surrogate)") from None
    return name


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
    except OSError as exc:
        raise ModelError(f"cannot read sidecar {path}: {exc.strerror}",
                         hint=f"make {path.name} readable or delete it") from None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ModelError(f"sidecar {path} is not a valid mncompile model description: {exc}",
                         hint=f"delete {path.name} or restore it from the run that wrote it") from None


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)
