"""The emit stage: what earlier stages produced becomes a firmware project on disk.

emit computes nothing about the model. `mncompile.pipeline` runs the stages (verify, plan, npu
or the AOT code generator, budget, golden vectors) and hands their results to `render_project`
as one frozen `ProjectInputs`; emit renders the Jinja templates of the backend, copies the board
support, builds the manifest (`manifest.project_manifest`, one place for every backend) and
writes the tree atomically (`mncompile.files.write_tree`):

- ``"tflm"``, a CPU target (`tflm.render_tflm`): a TensorFlow Lite Micro project carrying the
  planned model (our memory plan embedded) as a C array;
- ``"tflm"``, an Arm Ethos-U target (`tflm.render_npu`): the TFLM project with Vela's model, the
  ethos-u operator and the NPU driver glue (`templates/tflm/npu/`), Vela's outputs in ``vela/``;
- ``"aot"`` (`aot.render_aot`): interpreter-free C calling mncompile's own int8 kernels.
- ``layout="library"`` (`library.render_library`, AOT only): the model, kernels and preprocessing
  as a static library with one header, to link into the user's application (also a Zephyr module
  and an Arduino library).

The same inputs give a byte-identical tree: every list is sorted, nothing depends on the time
or on temporary paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mncompile.budget import BudgetReport
from mncompile.emit.boards import Board
from mncompile.graph.verified import VerifiedModel
from mncompile.model.info import ModelInfo
from mncompile.plan import ARENA_MARGIN_BYTES, FirmwareArena, PlanResult
from mncompile.plan.arena import ArenaPrediction
from mncompile.preprocess.contract import Preprocessing
from mncompile.progress import NullReporter, Reporter
from mncompile.targets import Target
from mncompile.validate.golden import Golden

BACKENDS = ("tflm", "aot")
# firmware: a project with a golden-vector main and board support; library: a static library with one
# header to link into the user's application (`mncompile.emit.library`, AOT backend only).
LAYOUTS = ("firmware", "library")

__all__ = ["ARENA_MARGIN_BYTES", "BACKENDS", "LAYOUTS", "EmitResult", "ProjectInputs", "render_project"]


@dataclass(frozen=True, eq=False)
class ProjectInputs:
    """Everything a project is rendered from; each field is an earlier stage's result."""

    model: VerifiedModel  # the int8 model
    info: ModelInfo | None  # its sidecar: labels, preprocessing
    target: Target
    board: Board
    backend: str
    plan: PlanResult
    golden: Golden
    memory: BudgetReport  # the project's own figures, checked against the budget
    options: dict  # what the manifest records of the options (golden, dataset, budget, ram, flash, ...)
    arena: FirmwareArena | None = None  # TFLM on a CPU target: predicted and reserved arena
    aot: object | None = None  # the AOT backend: `mncompile.aot.codegen.AotProgram`
    npu: object | None = None  # an Ethos-U target: `mncompile.npu.NpuResult`
    npu_arena: ArenaPrediction | None = None  # the TFLM arena of Vela's model
    fast_memory: int = 0  # the NPU fast memory Vela's memory mode needs
    preprocessing: Preprocessing | None = None  # the contract (None: the input is not an image)
    preprocessing_source: str = ""  # where it came from (`mncompile.preprocess.contract.resolve`)
    labels: tuple[str, ...] = ()  # the class labels (--labels, else the sidecar's)


@dataclass(frozen=True)
class EmitResult:
    out: Path
    target: Target
    board: Board
    model: Path
    model_sha256: str
    firmware_model_bytes: int  # the flatbuffer the firmware carries (plan embedded)
    arena_bytes: dict  # kernels -> reserved arena (prediction + margin, 16-aligned)
    arena_predicted: dict  # kernels -> predicted arena_used_bytes()
    golden: Golden
    plan: PlanResult | None  # the input model's plan
    memory: BudgetReport
    files: tuple[tuple[str, str], ...]  # (relative path, sha256), sorted
    manifest: dict
    backend: str = "tflm"
    aot: dict | None = None  # the AOT backend's figures (arena, constants, in-place layers)
    npu: object | None = None  # Ethos-U targets: what Vela made of the model (`NpuResult`)
    layout: str = "firmware"  # or "library" (`mncompile.emit.library`)

    def to_json(self) -> dict:
        doc = {"out": str(self.out), "target": self.target.name, "board": self.board.name,
               "backend": self.backend, "model": str(self.model), "model_sha256": self.model_sha256,
               "firmware_model_bytes": self.firmware_model_bytes, "arena_bytes": self.arena_bytes,
               "arena_predicted_bytes": self.arena_predicted, "golden": self.golden.to_json(),
               "memory": self.memory.to_json(), "files": [p for p, _ in self.files]}
        if self.layout == "library":  # a firmware project's document stays as it was
            doc["layout"], doc["library"] = "library", self.manifest["library"]
        if self.aot is not None:
            doc["aot"] = self.aot
        if self.npu is not None:
            doc["npu"] = self.manifest["npu"]  # NpuResult.to_json() with the project's vela/ paths
        return doc

    def summary_lines(self) -> list[str]:
        """What the CLI prints about an AOT project (the TFLM one: `mncompile.cli.render.emit_lines`,
        plus `npu_lines()` for an Ethos-U target)."""
        if self.layout == "library":
            from mncompile.emit.library import summary_lines as library_lines

            return library_lines(self)
        if self.backend == "tflm":
            return self.npu_lines()
        from mncompile.emit.aot import summary_lines

        return summary_lines(self)

    def npu_lines(self) -> list[str]:
        """Two lines about an NPU project (none for another): Vela's model and estimate, and where
        it runs (no QEMU: the Corstone-300 FVP or silicon)."""
        if self.npu is None:
            return []
        n, doc = self.npu, self.manifest["npu"]
        return [f"NPU {n.npu} ({n.accelerator_config}): Vela {n.vela_version} model {n.model_bytes:,} B in "
                f"{doc['model']}, {n.npu_input_ops} of {n.input_ops} operators on the NPU; Vela's estimate "
                f"{n.cycles_total:,} cycles ({n.inference_time_s * 1e3:.3f} ms at {n.clock_hz / 1e6:g} MHz)",
                f"no QEMU model of the {n.npu}: build with -DTFLM_ROOT=... -DETHOSU_DRIVER_ROOT=... and run on "
                f"{doc['fvp']} or silicon (README.md); golden vectors are the CPU reference numerics"]


def render_project(inputs: ProjectInputs, out: Path, reporter: Reporter = NullReporter(),
                   layout: str = "firmware") -> EmitResult:
    """Write the project of `inputs` to the folder `out` (checked by the caller: `files.check_destination`);
    `layout` "library": the static library of `mncompile.emit.library` instead (AOT inputs only)."""
    if layout == "library":
        from mncompile.emit.library import render_library

        return render_library(inputs, Path(out), reporter)
    if inputs.backend == "aot":
        from mncompile.emit.aot import render_aot

        return render_aot(inputs, Path(out), reporter)
    from mncompile.emit.tflm import render_npu, render_tflm

    if inputs.npu is not None:
        return render_npu(inputs, Path(out), reporter)
    return render_tflm(inputs, Path(out), reporter)
