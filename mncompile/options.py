"""Options, resolved in one place before any work starts.

`resolve` turns what a user typed (a target name, sizes such as "6MB", a backend, Vela options,
the number of golden vectors) into checked values, and refuses every inconsistent combination
with an `InvalidOptionError` (exit 2) that says how to fix it. `mncompile plan`, `emit` and
`build` all go through it, so an option means the same thing, and fails the same way, everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mncompile.aot.memory import INPLACE_MODES
from mncompile.emit import BACKENDS, LAYOUTS
from mncompile.errors import InvalidOptionError
from mncompile.model.train import TrainConfig
from mncompile.npu import VelaOptions
from mncompile.preprocess.camera import CameraOptions
from mncompile.preprocess.contract import PixelOptions
from mncompile.quantize.calibrate import DEFAULT_CALIB_SAMPLES
from mncompile.quantize.qat import QatConfig
from mncompile.targets import Target, get_target
from mncompile.units import parse_size
from mncompile.validate.accuracy import DEFAULT_LAYER_SAMPLES
from mncompile.validate.golden import DEFAULT_GOLDEN, MAX_GOLDEN

__all__ = ["DEFAULT_GOLDEN", "BuildOptions", "Limits", "Resolved", "VelaOptions", "check_layout", "resolve"]


@dataclass(frozen=True)
class BuildOptions:
    """What `mncompile build` was asked to do (checked by `resolve` when the build starts)."""

    arch: str = "v1"
    alpha: float = 0.25
    resolution: int = 96
    channels: int | None = None  # None: the dataset's own (digits: 1, shapes: 3)
    dataset: str | None = None  # None: digits for training, the model's sidecar with --model
    model: Path | None = None  # an existing model instead of training one
    budget: str | None = None
    ram: str | None = None  # overrides the target's RAM
    flash: str | None = None  # overrides the target's flash
    target: str = "cortex-m7"
    out: Path = Path("mncompile-build")
    train: TrainConfig = field(default_factory=TrainConfig)
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    qat: QatConfig | None = None  # --qat: quantization-aware training instead of calibration
    layer_samples: int = DEFAULT_LAYER_SAMPLES
    golden: int = DEFAULT_GOLDEN
    run: bool = False  # validate: build OUT/firmware (TFLM_ROOT from the environment) and run it on QEMU
    backend: str = "tflm"  # emit's backend: "tflm" (TFLM project) or "aot" (C calling mncompile's kernels)
    vela: VelaOptions = field(default_factory=VelaOptions)  # Ethos-U targets: how Vela compiles
    pixels: PixelOptions = field(default_factory=PixelOptions)  # --input-range/--mean/--std/--labels
    camera: CameraOptions = field(default_factory=CameraOptions)  # --camera-format/--camera-size/--resize
    golden_images: Path | None = None  # --golden-images: the user's pictures for the golden vectors
    max_drop: float | None = None  # --max-drop: the accuracy gate after eval (exit 12)
    profile: bool = False  # --profile: the firmware times every layer (`mncompile.run.profile`)
    memory: str = "balanced"  # --memory (AOT backend): speed, balanced or min (`mncompile.aot.patch_search`)


@dataclass(frozen=True)
class Limits:
    """Memory limits in bytes; None: the target's own (ram, flash) or none (budget)."""

    budget: int | None = None
    ram: int | None = None
    flash: int | None = None

    def to_json(self) -> dict:
        return {"budget": self.budget, "ram": self.ram, "flash": self.flash}


@dataclass(frozen=True)
class Resolved:
    target: Target
    limits: Limits
    backend: str
    vela: VelaOptions | None  # an Ethos-U target: Vela's options with the target's defaults filled in
    golden: int
    inplace: str
    profile: bool = False  # --profile: per-layer timing in the firmware (CPU targets)
    layout: str = "firmware"  # emit: "firmware" (a project with main) or "library" (mncompile.emit.library)
    memory: str = "balanced"  # --memory: the AOT backend's schedule (`mncompile.aot.patch_search`)
    max_extra: float | None = None  # the schedule's extra MACs at most this fraction of the model's (API)

    @property
    def npu(self) -> bool:
        return self.target.npu is not None


def _size(value: int | str | None) -> int | None:
    return parse_size(value) if isinstance(value, str) else value


def check_memory_mode(memory: str) -> str:
    """`memory` if it is a --memory mode (speed, balanced, min), else InvalidOptionError."""
    from mncompile.aot.patch_search import MEMORY_MODES

    if memory not in MEMORY_MODES:
        raise InvalidOptionError(f"unknown --memory mode {memory!r}", hint=f"use one of: {', '.join(MEMORY_MODES)}")
    return memory


def check_layout(layout: str) -> str:
    """`layout` if emit knows it (firmware, library), else InvalidOptionError."""
    if layout not in LAYOUTS:
        raise InvalidOptionError(f"unknown layout {layout!r}", hint=f"use one of: {', '.join(LAYOUTS)}")
    return layout


def resolve(target: str | Target, *, budget: int | str | None = None, ram: int | str | None = None,
            flash: int | str | None = None, backend: str = "tflm", vela: VelaOptions | None = None,
            run: bool = False, golden: int = DEFAULT_GOLDEN, inplace: str = "auto", profile: bool = False,
            layout: str = "firmware", memory: str = "balanced", max_extra: float | None = None,
            run_hint: str = "run the project on Arm's Corstone-300 FVP or the board (see its README)") -> Resolved:
    """Check every option against the others and the target; raise InvalidOptionError on the first
    that does not fit."""
    tgt = target if isinstance(target, Target) else get_target(target)
    limits = Limits(_size(budget), _size(ram), _size(flash))
    if backend not in BACKENDS:
        raise InvalidOptionError(f"unknown backend {backend!r}", hint=f"use one of: {', '.join(BACKENDS)}")
    check_layout(layout)
    # A firmware project's main checks its golden vectors; a library (emit --layout library) may
    # carry none: its self-test is optional.
    if golden == 0 and layout != "library":
        raise InvalidOptionError("--golden 0 (no golden vectors) is allowed only with --layout library",
                                 hint="a firmware project's main checks the golden vectors: give --golden 1 or "
                                      "more, or emit a library to link into your application (--layout library)")
    least = 0 if layout == "library" else 1
    if not least <= golden <= MAX_GOLDEN:
        raise InvalidOptionError(f"--golden must be between {least} and {MAX_GOLDEN}, not {golden}")
    if layout == "library" and backend != "aot":
        raise InvalidOptionError(f"--layout library is built on the AOT backend, not --backend {backend}",
                                 hint="use --backend aot (the default with --layout library); for TFLM, emit the "
                                      "firmware project and take its src/model_data.cc into your TFLM application")
    if inplace not in INPLACE_MODES:
        raise InvalidOptionError(f"unknown in-place mode {inplace!r}", hint=f"use one of: {', '.join(INPLACE_MODES)}")
    check_memory_mode(memory)
    resolved_vela = None
    if tgt.npu is not None:
        resolved_vela = (vela or VelaOptions()).resolved(tgt)  # a bad Vela option fails now, not after training
        if backend != "tflm":
            raise InvalidOptionError(f"--backend {backend} cannot drive the {tgt.npu.name} of {tgt.name}",
                                     hint="NPU targets use the TFLM project (--backend tflm): TFLM's ethos-u "
                                          "operator runs Vela's command stream on the NPU")
        if run:
            raise InvalidOptionError(f"--run needs a QEMU machine, and QEMU has no {tgt.npu.name} model",
                                     hint=f"drop --run; {run_hint}")
        if profile:
            raise InvalidOptionError(f"--profile times the CPU's operators, and on {tgt.name} the {tgt.npu.name} "
                                     "runs Vela's command stream as ethos-u operators, which cannot be timed layer by "
                                     "layer",
                                     hint="Vela's per-layer estimate is in the project's vela/ summary; drop "
                                          "--profile, or profile the model on a CPU target")
    elif vela is not None and vela != VelaOptions():
        raise InvalidOptionError(f"--vela-* options apply to Ethos-U targets, and {tgt.name} has no NPU",
                                 hint="see `mncompile targets` for the ethos-u* targets")
    return Resolved(tgt, limits, backend, resolved_vela, golden, inplace, profile, layout=layout, memory=memory,
                    max_extra=max_extra)
