"""`mncompile run`: build an emitted project, run it on QEMU and check what the firmware printed.

    run_project(OUT) -> RunResult

1. Reads OUT/mncompile.json, the manifest `mncompile emit` writes: the target the
   project is compiled for, the golden vectors' expected outputs and the arena
   prediction.
2. Builds OUT with CMake (`build_project`, in OUT/build unless told otherwise).
   A TFLM project (one with cmake/tflm.cmake) needs a tflite-micro checkout:
   `tflm_root`, else the TFLM_ROOT environment variable, else a TFLM the build
   folder was already configured with. With none of these, CMake's FetchContent
   would download tflite-micro from the internet in the middle of a run, so
   `run_project` refuses (FirmwareBuildError) and says how to get a TFLM.
3. Runs build/firmware.elf on the target's QEMU machine under ``-icount shift=0``
   (`run_qemu`): deterministic, one instruction per virtual nanosecond. A target
   without a QEMU machine is an EmulatorError that says to flash the board.
4. Reads what the firmware printed (`parse_firmware_output`) and checks it: the
   firmware compares each output with its golden copy on the device; here every
   golden vector of the manifest must be reported, PASS, and the project's
   src/golden_data.cc must still hold the manifest's expected outputs (so a PASS
   means "equal to the TFLM host interpreter", not "equal to an edited file").
   `RunResult.raise_if_failed` turns a failure into FirmwareValidationError.
5. Converts SysTick ticks to instructions with the board's
   `instructions_per_tick` (firmware/boards/<board>/board.toml, measured by
   tests/test_run.py) and divides by the model's mult-adds (`graph_costs`).
6. A project emitted with --profile (options.profile in the manifest) prints each node's ticks:
   `mncompile.run.profile.layer_profile` maps them onto the model's operators (RunResult.profile,
   the per-layer table); a profile missing or disagreeing with the model fails validation.

Nothing here is specific to the TFLM backend except the TFLM check in step 2: any
folder with a CMakeLists.txt that builds BUILD/firmware.elf, an mncompile.json and
firmware printing the lines of templates/tflm/src/main.cc.j2 can be run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mncompile.emit.manifest import MANIFEST_FORMAT, MANIFEST_NAME, TFLM_COMMIT
from mncompile.errors import (
    EmulatorError,
    FirmwareBuildError,
    FirmwareValidationError,
    InvalidOptionError,
    MncompileError,
)
from mncompile.graph.metrics import graph_costs
from mncompile.progress import NullReporter, Reporter
from mncompile.resources import firmware_dir
from mncompile.run.build import FirmwareBuild, FirmwareReport, build_project, configured_tflm, parse_firmware_output
from mncompile.run.profile import LayerProfile, profile_of_run
from mncompile.run.qemu import INSTALL_HINT, QEMU, QemuResult, run_qemu
from mncompile.targets import Target, get_target

DEFAULT_TIMEOUT = 600.0  # seconds QEMU may run
ICOUNT_SHIFT = 0  # one instruction per virtual ns: the factor in board.toml is measured at this shift
TFLM_MARKER = Path("tensorflow") / "lite" / "micro" / "micro_interpreter.cc"
# The firmware's exit statuses (templates/tflm/src/main.cc.j2, firmware/common/board_support.h).
FIRMWARE_STATUS = {
    1: "a golden vector FAILed",
    2: "AllocateTensors() failed (the tensor arena is too small for this TFLM)",
    3: "the model or the op resolver is unusable",
    70: "the firmware crashed (a fault; its line above names the exception and the pc)",
}


@dataclass(frozen=True)
class Project:
    path: Path
    manifest: dict
    target: Target
    board: str
    golden: tuple[tuple[int, ...], ...]  # the expected int8 outputs, one row per golden vector
    classes: tuple[str, ...]

    @property
    def needs_tflm(self) -> bool:
        """A TFLM project builds TFLM from source (cmake/tflm.cmake); other backends need none."""
        return (self.path / "cmake" / "tflm.cmake").is_file()


def load_project(path: str | Path) -> Project:
    """The project folder and its manifest; InvalidOptionError when it is not one emit wrote."""
    path = Path(path)
    hint = "pass the folder written by `mncompile emit MODEL.tflite --target T -o DIR` (or OUT/firmware of build)"
    if not path.is_dir():
        raise InvalidOptionError(f"{path} is not a folder: not a project written by mncompile emit", hint=hint)
    manifest = path / MANIFEST_NAME
    if not manifest.is_file():
        raise InvalidOptionError(f"{path} has no {MANIFEST_NAME}: not a project written by mncompile emit",
                                 hint=hint)
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidOptionError(f"{manifest} is not valid JSON ({exc})", hint="emit the project again") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise InvalidOptionError(f"{manifest} has format {found!r}; this mncompile reads {MANIFEST_FORMAT!r}",
                                 hint="emit the project again with this mncompile")
    try:
        target_name = doc["options"]["target"]
        board = doc["options"].get("board") or doc["target"]["board"]
        golden = tuple(tuple(int(v) for v in row) for row in doc["golden"]["expected_outputs"])
        classes = tuple(str(c) for c in doc.get("model", {}).get("classes", ()))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidOptionError(f"{manifest} lacks {exc} (options.target, golden.expected_outputs)",
                                 hint="emit the project again") from None
    if not (path / "CMakeLists.txt").is_file():
        raise InvalidOptionError(f"{path} has an {MANIFEST_NAME} but no CMakeLists.txt",
                                 hint="emit the project again (emit --force replaces it)")
    return Project(path.resolve(), doc, get_target(target_name), board, golden, classes)


def check_target(project: Project, target: str | None) -> Target:
    """The target to run as: the manifest's. Another --target is an error: the project is
    compiled for one CPU and linked for one board."""
    if target is None:
        return project.target
    asked = get_target(target)  # an unknown name is its own error (exit 2, with the known names)
    if asked.name != project.target.name:
        raise InvalidOptionError(
            f"{project.path} was emitted for {project.target.name} ({project.target.cpu}, board {project.board}), "
            f"not {asked.name} ({asked.cpu}): a project is compiled for one CPU and linked for one board",
            hint=f"drop --target to run it as {project.target.name}, or emit the model again for {asked.name}: "
                 f"mncompile emit MODEL.tflite --target {asked.name} -o DIR")
    return asked


def check_runnable(target: Target, project: Path | None = None) -> str:
    """The QEMU machine `target` runs on; EmulatorError when it has none or QEMU is missing."""
    if not target.qemu_machine:
        where = f"{project}/README.md" if project else "the project's README.md"
        raise EmulatorError(
            f"target {target.name} (board {target.board}) has no QEMU machine: its firmware runs on the real "
            "board only",
            hint=f"build it and flash the board as {where} describes ('On the board': pyOCD, OpenOCD or "
                 "STM32CubeProgrammer); the firmware prints the same PASS/FAIL lines on the board's console")
    if shutil.which(QEMU) is None:
        raise EmulatorError(f"{QEMU} was not found on PATH: it is needed to run firmware for {target.name} "
                            f"(QEMU {target.qemu_machine})", hint=INSTALL_HINT)
    return target.qemu_machine


def resolve_tflm(tflm_root: str | Path | None, build_dir: Path, project: Path, needs_tflm: bool = True
                 ) -> Path | None:
    """The tflite-micro checkout to build with: `tflm_root`, else $TFLM_ROOT, else None when the build
    folder already has one (or the project needs none). Refuses rather than let FetchContent download."""
    if not needs_tflm:
        return None
    source = "--tflm-root"
    if tflm_root is None and os.environ.get("TFLM_ROOT"):
        tflm_root, source = os.environ["TFLM_ROOT"], "TFLM_ROOT (environment)"
    if tflm_root is not None:
        root = Path(tflm_root).expanduser()
        if not (root / TFLM_MARKER).is_file():
            raise InvalidOptionError(f"{source} {root} is not a tflite-micro checkout (it has no {TFLM_MARKER})",
                                     hint="lay out the pinned sources with scripts/tflm_sources.py (offline), or "
                                          "clone tflite-micro and run its third_party_downloads (README: Testing "
                                          "against real TFLM)")
        return root.resolve()
    if configured_tflm(build_dir) is not None:
        return None  # configured before: CMake's cache keeps that TFLM, nothing is downloaded
    raise FirmwareBuildError(
        f"{project} builds TensorFlow Lite Micro from source, and no TFLM was given: without --tflm-root (or "
        f"the TFLM_ROOT environment variable) CMake's FetchContent would download tflite-micro "
        f"{TFLM_COMMIT[:12]} and its third-party sources from the internet",
        hint=f"pass --tflm-root /path/to/tflite-micro, a checkout with its third-party downloads (README: "
             f"Testing against real TFLM). To let CMake download it instead, configure once yourself: "
             f"cmake -S {project} -B {build_dir} -G Ninja; later runs reuse that download")


def board_instructions_per_tick(project: Path, board: str) -> float | int | None:
    """Instructions per SysTick tick under -icount shift=0, from board.toml: the project's copy,
    else the installed board support (projects emitted before the key existed)."""
    for toml in (project / "firmware" / "boards" / board / "board.toml",
                 firmware_dir() / "boards" / board / "board.toml"):
        if toml.is_file():
            with toml.open("rb") as f:
                value = tomllib.load(f).get("instructions_per_tick")
            if value is not None:
                return value
    return None


def kernel_set(name: str) -> str:
    """The manifest's key for a kernel set the firmware or the build names ("CMSIS-NN" -> "cmsis-nn")."""
    return name.strip().lower()


def tflm_commit_of(firmware: FirmwareBuild) -> str | None:
    """The tflite-micro commit the build used, as cmake/tflm.cmake records it (None: not recorded,
    e.g. a TFLM_ROOT that is no git checkout: held to the prediction as the pinned commit)."""
    marker = Path(firmware.build_dir) / "mncompile-tflm-commit.txt"
    return (marker.read_text().strip() or None) if marker.is_file() else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def firmware_graph(project: Project):
    """The graph of the model the firmware carries (OUT/model/*.tflite), None when it cannot tell which."""
    from mncompile.graph.verified import read_model

    files = sorted((project.path / "model").glob("*.tflite"))
    want = project.manifest.get("model", {}).get("firmware_sha256")
    chosen = next((f for f in files if _sha256(f) == want), None) or (files[0] if len(files) == 1 else None)
    return read_model(chosen).graph if chosen is not None else None


def model_macs(project: Project) -> int | None:
    """Total mult-adds of the model the firmware carries (OUT/model/*.tflite), as graph_costs counts them."""
    from mncompile.graph.metrics import graph_costs

    graph = firmware_graph(project)
    return sum(cost.macs for cost in graph_costs(graph)) if graph is not None else None


def modified_files(project: Project) -> tuple[str, ...]:
    """Files of the manifest whose sha256 changed (or that vanished) since emit."""
    listed = project.manifest.get("files", {})
    return tuple(rel for rel, digest in sorted(listed.items())
                 if not (project.path / rel).is_file() or _sha256(project.path / rel) != digest)


def project_expected_outputs(project: Path) -> tuple[tuple[int, ...], ...] | None:
    """The expected outputs compiled into the firmware (g_golden_outputs in src/golden_data.cc of a
    TFLM project, src/golden_data.c of an AOT one); None when there is no such file or it has
    another shape."""
    path = next((p for p in (project / "src" / "golden_data.cc", project / "src" / "golden_data.c") if p.is_file()),
                None)
    if path is None:
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"g_golden_outputs\[(\d+)\]\[(\d+)\](?:\s*GOLDEN_SECTION)?\s*=\s*\{(.*?)\n\};", text, re.S)
    if not m:
        return None
    body = re.sub(r"//[^\n]*", "", m.group(3))
    rows = tuple(tuple(int(v) for v in re.findall(r"-?\d+", row)) for row in re.findall(r"\{([^{}]*)\}", body))
    if len(rows) != int(m.group(1)) or any(len(r) != int(m.group(2)) for r in rows):
        return None
    return rows


@dataclass(frozen=True)
class VectorCheck:
    index: int
    status: str  # "PASS", "FAIL" or "MISSING" (never reported)
    ticks: int | None
    instructions: int | None
    predicted: int | None
    label: str | None
    detail: str

    def to_json(self) -> dict:
        return {"index": self.index, "status": self.status, "ticks": self.ticks, "instructions": self.instructions,
                "class": self.predicted, "label": self.label, "detail": self.detail}


@dataclass(frozen=True)
class RunResult:
    project: Path
    target: Target
    board: str
    machine: str
    firmware: FirmwareBuild
    qemu: QemuResult
    kernels: str  # what the firmware says it runs ("reference", "cmsis-nn"), else what the build folder says
    report: FirmwareReport
    golden_count: int
    vectors: tuple[VectorCheck, ...]
    instructions_per_tick: float | int | None
    macs: int | None
    arena_predicted: int | None  # the manifest's prediction for the kernels built
    arena_reserved: int | None
    reference_checked: bool  # src/golden_data.cc was compared with the manifest
    modified: tuple[str, ...]
    problems: tuple[str, ...]  # why validation failed; empty when it passed
    notes: tuple[str, ...]  # worth knowing, not failures
    profile: LayerProfile | None = None  # emit --profile: the per-layer table

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def vectors_passed(self) -> int:
        return sum(v.status == "PASS" for v in self.vectors)

    @property
    def ticks_per_inference(self) -> float | None:
        ticks = [v.ticks for v in self.vectors if v.ticks is not None]
        return sum(ticks) / len(ticks) if ticks else None

    @property
    def instructions_per_inference(self) -> int | None:
        t, f = self.ticks_per_inference, self.instructions_per_tick
        return round(t * f) if t is not None and f is not None else None

    @property
    def instructions_per_mac(self) -> float | None:
        i = self.instructions_per_inference
        return i / self.macs if i is not None and self.macs else None

    @property
    def arena_matches(self) -> bool | None:
        used, predicted = self.report.arena_used, self.arena_predicted
        return used == predicted if used is not None and predicted is not None else None

    def to_json(self) -> dict:
        ticks = [v.ticks for v in self.vectors if v.ticks is not None]
        return {
            "project": str(self.project), "target": self.target.name, "board": self.board,
            "qemu_machine": self.machine, "kernels": self.kernels,
            "status": "PASS" if self.passed else "FAIL", "passed": self.passed, "problems": list(self.problems),
            "notes": list(self.notes),
            "elf": str(self.firmware.elf), "build_dir": str(self.firmware.build_dir),
            "sizes": {"text": self.firmware.text, "data": self.firmware.data, "bss": self.firmware.bss},
            "qemu": {"command": list(self.qemu.command), "exit_status": self.qemu.exit_code},
            "golden": {"expected": self.golden_count, "reported": len(self.report.vectors),
                       "passed": self.vectors_passed, "reference_checked": self.reference_checked},
            "vectors": [v.to_json() for v in self.vectors],
            "ticks": {"unit": self.report.ticks_unit, "per_inference": self.ticks_per_inference,
                      "min": min(ticks) if ticks else None, "max": max(ticks) if ticks else None,
                      "total": sum(ticks) if ticks else None},
            "stack": ({"used": self.report.stack_used, "size": self.report.stack_size}
                      if self.report.stack_used is not None else None),
            "instructions_per_tick": self.instructions_per_tick,
            "instructions_per_inference": self.instructions_per_inference,
            "macs": self.macs,
            "instructions_per_mac": self.instructions_per_mac,
            "arena": {"reserved": (self.report.arena_reserved if self.report.arena_reserved is not None
                                   else self.arena_reserved), "used": self.report.arena_used,
                      "predicted": self.arena_predicted, "matches_prediction": self.arena_matches},
            "camera_path": ({"frames": self.report.camera_frames, "ticks": self.report.camera_ticks,
                             "instructions": (round(self.report.camera_ticks * self.instructions_per_tick)
                                              if self.instructions_per_tick else None)}
                            if self.report.camera_frames is not None else None),
            "modified_files": list(self.modified),
            "profile": self.profile.to_json() if self.profile is not None else None,
            "output": self.qemu.output,
        }

    def raise_if_failed(self, document: dict | None = None) -> None:
        """FirmwareValidationError (exit 10) unless every check passed. Its JSON form is `document`
        (default: this result's) with the error's fields added."""
        if self.passed:
            return
        more = len(self.problems) - 1
        first = self.problems[0] + (f" ({more} more problem{'s' if more > 1 else ''} in the report)" if more else "")
        raise FirmwareValidationError(
            f"firmware validation failed on QEMU {self.machine}: {first}",
            hint=f"the firmware's output is in {self.firmware.build_dir / 'qemu-output.txt'}; "
                 "emit the project again if it was edited",
            document=self.to_json() if document is None else document)


def _vector_checks(project: Project, report: FirmwareReport, factor: float | int | None,
                   source: tuple[tuple[int, ...], ...] | None) -> tuple[tuple[VectorCheck, ...], list[str]]:
    problems = []
    seen = {}
    for v in report.vectors:
        if v.index in seen:
            problems.append(f"vector {v.index} is reported twice")
        seen[v.index] = v
    extra = sorted(i for i in seen if not 0 <= i < len(project.golden))
    if extra:
        problems.append(f"the firmware reported vectors {extra} that mncompile.json does not have")
    checks = []
    for index, expected in enumerate(project.golden):
        v = seen.get(index)
        if v is None:
            checks.append(VectorCheck(index, "MISSING", None, None, None, None, "never reported"))
            continue
        # A PASS line says only the class and the ticks, shown in their own columns.
        status = "PASS" if v.passed else "FAIL"
        detail = "" if v.passed else re.sub(r",?\s*\(\d+ [A-Za-z ]+\)$", "", v.detail)
        if v.mismatch is not None:
            at, got, want = v.mismatch
            if at < len(expected) and expected[at] != want:
                detail += (f"; mncompile.json expects {expected[at]} there"
                           + (", which the device computed" if got == expected[at] else ""))
        if source is not None and index < len(source) and source[index] != expected:
            at = next((i for i, (a, b) in enumerate(zip(source[index], expected, strict=False)) if a != b), None)
            status = "FAIL"
            where = (f" at output {at} ({source[index][at]} vs {expected[at]})" if at is not None
                     else f" in length ({len(source[index])} vs {len(expected)})")
            edited = f"src/golden_data.cc differs from mncompile.json{where}: the firmware checked an edited reference"
            detail = f"{detail}; {edited}" if detail else edited
        label = project.classes[v.predicted] if v.predicted is not None and v.predicted < len(project.classes) \
            else None
        instructions = round(v.ticks * factor) if v.ticks is not None and factor is not None else None
        checks.append(VectorCheck(index, status, v.ticks, instructions, v.predicted, label, detail))
    failed = [c.index for c in checks if c.status == "FAIL"]
    missing = [c.index for c in checks if c.status == "MISSING"]
    if failed:
        problems.insert(0, f"vector{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))} FAILed")
    if missing:
        problems.append(f"the firmware reported {len(report.vectors)} of the {len(project.golden)} golden vectors "
                        f"of mncompile.json (missing: {', '.join(map(str, missing))})")
    return tuple(checks), problems


def run_project(project: str | Path, *, target: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                tflm_root: str | Path | None = None, cmsis_nn_root: str | Path | None = None,
                build_dir: str | Path | None = None, reporter: Reporter = NullReporter()) -> RunResult:
    """Build the emitted project `project`, run it on its target's QEMU machine and check the output.

    Raises InvalidOptionError (not a project, another target, a bad path), FirmwareBuildError
    (no TFLM, CMake or the compiler failed), EmulatorError (no QEMU machine or QEMU, timeout,
    QEMU aborted). A firmware that runs but fails validation is a RunResult with `problems`:
    call `raise_if_failed()`."""
    if not timeout > 0:
        raise InvalidOptionError(f"--timeout must be a positive number of seconds, not {timeout:g}")
    proj = load_project(project)
    tgt = check_target(proj, target)
    machine = check_runnable(tgt, proj.path)
    build = Path(build_dir).resolve() if build_dir is not None else proj.path / "build"
    root = resolve_tflm(tflm_root, build, proj.path, proj.needs_tflm)
    nn_root = None
    if cmsis_nn_root is not None:
        nn_root = Path(cmsis_nn_root).expanduser()
        if not nn_root.is_dir():
            raise InvalidOptionError(f"--cmsis-nn-root {nn_root} is not a folder",
                                     hint="git clone https://github.com/ARM-software/CMSIS-NN")
        nn_root = nn_root.resolve()

    firmware = build_project(proj.path, build, tflm_root=root, cmsis_nn_root=nn_root, reporter=reporter)
    reporter.info(f"{firmware.elf}: text {firmware.text:,} B, data {firmware.data:,} B, bss {firmware.bss:,} B"
                  + (f" ({firmware.kernels} kernels)" if firmware.kernels != "unknown" else ""))

    reporter.stage("qemu", f"{firmware.elf.name} on {machine} (-icount shift={ICOUNT_SHIFT}, timeout {timeout:g} s)")
    qemu = run_qemu(firmware.elf, machine, timeout=timeout, icount=True, icount_shift=ICOUNT_SHIFT)
    (firmware.build_dir / "qemu-output.txt").write_text(qemu.output, encoding="utf-8")
    if qemu.exit_code < 0:
        tail = "\n".join(qemu.output.splitlines()[-20:])
        raise EmulatorError(f"QEMU {machine} was killed by signal {-qemu.exit_code} while running {firmware.elf}"
                            + (f"; its last output:\n{tail}" if tail else ""),
                            hint="QEMU 7.2 aborts when the core locks up (a fault it cannot take); "
                                 f"command: {' '.join(qemu.command)}")

    result = assess(proj, tgt, machine, firmware, qemu)
    reporter.info(f"{result.vectors_passed}/{result.golden_count} golden vectors PASS; "
                  + ("validation passed" if result.passed else f"validation FAILED: {'; '.join(result.problems)}"))
    return result


def assess(proj: Project, tgt: Target, machine: str, firmware: FirmwareBuild, qemu: QemuResult) -> RunResult:
    """Check a finished run (what `qemu` printed and its exit status) against the project's manifest."""
    report = parse_firmware_output(qemu.output)
    factor = board_instructions_per_tick(proj.path, proj.board) if report.ticks_unit == "SysTick ticks" else None
    source = project_expected_outputs(proj.path)
    vectors, problems = _vector_checks(proj, report, factor, source)
    if qemu.exit_code != 0 and not (qemu.exit_code == 1 and any(v.status == "FAIL" for v in vectors)):
        meaning = FIRMWARE_STATUS.get(qemu.exit_code, "an unexpected status")
        errors = "; ".join(report.errors)
        problems.append(f"the firmware exited with status {qemu.exit_code}: {meaning}" + (f" ({errors})" if errors
                                                                                           else ""))
    camera = proj.manifest.get("golden", {}).get("camera")
    if camera and report.total is not None and report.camera_frames != report.total:
        problems.append("mncompile.json has camera frames, and the firmware did not report converting them "
                        "(no \"camera path:\" line): its inputs did not come through the camera path")
    if report.total is None and qemu.exit_code == 0:
        problems.append("the firmware printed no summary line")
    elif report.total is not None and report.total != len(proj.golden):
        problems.append(f"the firmware holds {report.total} golden vectors, mncompile.json {len(proj.golden)}")

    notes = []
    banner = re.search(r"^mncompile firmware: .*, (?:TFLM (\S+)|mncompile (AOT)) kernels$", qemu.output, re.M)
    kernels = kernel_set(banner.group(1) or banner.group(2)) if banner else kernel_set(firmware.kernels)
    arena = proj.manifest.get("arena", {})
    predicted = arena.get("predicted_bytes", {}).get(kernels)
    reserved = arena.get("reserved_bytes", {}).get(kernels)
    exact = kernels not in arena.get("bounds", ())  # an upper bound (a measured/derived arena) is no prediction
    # a manifest from an mncompile that did not model CMSIS-NN's Helium (MVE) buffers says so
    unpredicted = arena.get("not_predicted", {}).get(kernels)
    if report.arena_used is not None and unpredicted is not None:
        of = f" of the {reserved:,} B reserved" if reserved is not None else ""
        notes.append(f"arena_used_bytes() is {report.arena_used:,} B{of}; {kernels}: {unpredicted}")
        predicted = None  # what the manifest holds for these kernels is not a prediction
    elif report.arena_used is not None and predicted is None:
        problems.append(f"mncompile.json has no arena prediction for the {kernels} kernels the firmware runs")
    elif report.arena_used is not None and report.arena_used != predicted:
        what = (f"arena_used_bytes() is {report.arena_used:,} B, mncompile predicted {predicted:,} B for {kernels} "
                f"kernels ({report.arena_used - predicted:+,} B)")
        if exact and tflm_commit_of(firmware) in (None, TFLM_COMMIT):
            problems.append(what + f"; the prediction models tflite-micro {TFLM_COMMIT[:12]} exactly")
        elif not exact and report.arena_used <= predicted:
            notes.append(what + ": within the upper bound mncompile derived from the host interpreter")
        elif not exact:
            problems.append(what + ": beyond the upper bound mncompile derived from the host interpreter")
        else:
            notes.append(what + f"; the prediction models tflite-micro {TFLM_COMMIT[:12]}, another TFLM may differ")
    modified = modified_files(proj)
    if modified:
        notes.append(f"changed since emit: {', '.join(modified)}")
    if factor is None and report.ticks_unit == "SysTick ticks":
        notes.append(f"board {proj.board} has no instructions_per_tick in board.toml: ticks only")
    try:
        graph = firmware_graph(proj)
    except MncompileError as exc:  # an unreadable model costs the per-MAC figure, not the verdict
        graph = None
        notes.append(f"no MAC count: {exc.message}")
    macs = sum(cost.macs for cost in graph_costs(graph)) if graph is not None else None
    profile, profile_problems, profile_notes = profile_of_run(proj.manifest, report, graph, factor,
                                                              [v.ticks for v in vectors])
    problems.extend(profile_problems)
    notes.extend(profile_notes)
    return RunResult(proj.path, tgt, proj.board, machine, firmware, qemu, kernels, report, len(proj.golden), vectors,
                     factor, macs, predicted, reserved, source is not None, modified, tuple(problems), tuple(notes),
                     profile)

