"""Tool versions and the `mncompile.json` manifest of an emitted project.

Everything in the manifest is a function of the inputs and the installed tools:
no timestamps, no absolute paths of temporary files, keys sorted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
from importlib import metadata

from mncompile import __version__

MANIFEST_NAME = "mncompile.json"
MANIFEST_FORMAT = "mncompile-project/1"
# The tflite-micro commit the arena prediction models and the generated CMake fetches when
# no TFLM_ROOT is given (the commit graph/tflm_ops.json and plan/arena.py were read at).
TFLM_COMMIT = "90b983c2b3f1480642e040bbd2ddb37b998f3424"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _distribution(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


@functools.cache
def compiler_version(program: str = "arm-none-eabi-gcc") -> str | None:
    """The first line of `program --version`, or None when it is not installed."""
    path = shutil.which(program)
    if path is None:
        return None
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = proc.stdout.splitlines()[0].strip() if proc.stdout else ""
    return line or None


def tool_versions() -> dict:
    return {"mncompile": __version__,
            "tensorflow": _distribution("tensorflow-cpu", "tensorflow"),
            "tflite-micro": _distribution("tflite-micro"),
            "tflite-micro-commit": TFLM_COMMIT,
            "arm-none-eabi-gcc": compiler_version()}


def manifest_text(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def project_manifest(inputs, firmware: bytes, files: dict[str, bytes], *, classes: tuple[str, ...],
                     options: dict, sections: dict, firmware_file: str | None = None, versions: dict | None = None,
                     golden: dict | None = None) -> tuple[tuple[tuple[str, str], ...], dict]:
    """The manifest of a project (every backend): the model and the firmware's copy of it, the
    options, the target, tool versions, the backend's `sections` (plan, arena, aot, npu), the
    budget, the golden vectors and the sha256 of every file. Returns (file digests, document)."""
    model = inputs.model
    digests = tuple((rel, sha256(files[rel])) for rel in sorted(files))
    document = {
        "format": MANIFEST_FORMAT,
        "model": {"file": model.name, "sha256": model.sha256, "bytes": model.size,
                  **({"firmware_file": firmware_file} if firmware_file else {}),
                  "firmware_sha256": sha256(firmware), "firmware_bytes": len(firmware), "classes": list(classes)},
        "options": {"target": inputs.target.name, "board": inputs.board.name, **inputs.options, **options},
        "target": inputs.target.to_json(),
        "versions": versions or tool_versions(),
        **sections,
        "memory": inputs.memory.to_json(),
        "preprocessing": ({**inputs.preprocessing.to_json(), "source": inputs.preprocessing_source}
                          if inputs.preprocessing is not None else None),
        "golden": {**inputs.golden.to_json(), **(golden or {})},
        "files": dict(digests),
    }
    return digests, document
