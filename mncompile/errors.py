"""One error hierarchy for the whole library.

The library raises these; only the CLI turns them into exit codes (see
`mncompile.cli.app`). Every error carries a message that says what was wrong
and, where one exists, a hint that says how to fix it.
"""

from __future__ import annotations


class MncompileError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"

    def to_json(self) -> dict:
        return {"error": self.kind, "message": self.message, "hint": self.hint,
                "exit_code": self.exit_code}


class InvalidOptionError(MncompileError):
    """An option value is out of range or inconsistent with another option."""

    exit_code = 2
    kind = "invalid-option"


class DatasetError(MncompileError):
    """The dataset is missing, empty, corrupt or unusable for training."""

    exit_code = 3
    kind = "dataset"


class ModelError(MncompileError):
    """A model file cannot be read, or a model cannot be built or trained."""

    exit_code = 4
    kind = "model"


class UnsupportedOpError(ModelError):
    """The AOT backend cannot compile an operator (or a configuration of one) of the model."""

    kind = "unsupported-op"


class OutputExistsError(MncompileError):
    """An output path exists and `--force` was not given."""

    exit_code = 5
    kind = "output-exists"


class QuantizationError(MncompileError):
    """Quantization produced parameters that TFLM kernels cannot run, or ops it lacks."""

    exit_code = 6
    kind = "quantization"


class EmulatorError(MncompileError):
    """A host emulator (TFLM host interpreter, LiteRT) rejected or crashed on a model."""

    exit_code = 7
    kind = "emulator"


class FirmwareBuildError(MncompileError):
    """CMake or arm-none-eabi-gcc failed to configure, compile or link a generated project."""

    exit_code = 9
    kind = "firmware-build"


class _ReportError(MncompileError):
    """An error that carries the report it came from (`document`): its JSON form is that report
    with the error's fields added, so --json still prints one document."""

    def __init__(self, message: str, hint: str | None = None, document: dict | None = None):
        super().__init__(message, hint)
        self.document = document

    def to_json(self) -> dict:
        return {**(self.document or {}), **super().to_json()}


class BudgetError(_ReportError):
    """The model does not fit the memory budget, the target's RAM or its flash. `document`: the
    report it came from (`plan --json`), when there is one."""

    exit_code = 8
    kind = "budget"


class FirmwareValidationError(_ReportError):
    """The firmware ran on QEMU but did not reproduce the host: a golden vector FAILed or was never
    reported, the firmware stopped early (AllocateTensors() failed, a fault), or the project's
    reference outputs differ from its manifest. `document` is the run report; the JSON form of
    the error is that report with the error's fields added, so --json still prints one document."""

    exit_code = 10
    kind = "firmware-validation"


class NpuCompilerError(MncompileError):
    """Vela (the Ethos-U compiler) is missing, failed on the model, or wrote no summary."""

    exit_code = 11
    kind = "npu-compiler"


class AccuracyError(_ReportError):
    """The int8 model loses more accuracy than ``--max-drop`` allows. `document` is the evaluation
    report; the JSON form of the error is that report with the error's fields added."""

    exit_code = 12
    kind = "accuracy-gate"


class FlashError(_ReportError):
    """A board cannot be flashed or watched: the project is for a QEMU board, pyOCD lacks the target
    (a CMSIS-Pack to install), the probe failed to program or reset it, or its console port is missing.
    `document` holds what `mncompile flash --json` knows by then (what was searched, the OpenOCD and
    probe-rs alternatives); the JSON form is that with the error's fields added."""

    exit_code = 13
    kind = "flash"


class NoProbeError(FlashError):
    """No debug probe (or none with the --probe id) is attached: the message says what pyOCD looked for."""

    kind = "no-probe"


class BrowserError(MncompileError):
    """The report could not be checked in a browser: selenium, Chromium or chromedriver is missing, or
    Chromium failed on the page (`mncompile report --screenshot`)."""

    exit_code = 14
    kind = "browser"


# Exit codes in one table: the CLI's --help epilogue and the README print it.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "internal error (a bug: please report it with the traceback from --debug)"),
    (InvalidOptionError.exit_code, "invalid option or option value"),
    (DatasetError.exit_code, "dataset error (missing, empty, one class, corrupt image, mixed modes)"),
    (ModelError.exit_code, "model error (unreadable file, unsupported format, training failure)"),
    (OutputExistsError.exit_code, "output exists; pass --force to replace it"),
    (QuantizationError.exit_code, "quantization error (degenerate scales, e.g. an untrained model; "
                                  "ops or shapes TFLM cannot run)"),
    (EmulatorError.exit_code, "host emulator error (the TFLM interpreter rejected or aborted on the model)"),
    (BudgetError.exit_code, "budget error (the model needs more memory than --budget, the target's RAM "
                            "or flash allow)"),
    (FirmwareBuildError.exit_code, "firmware build error (CMake or arm-none-eabi-gcc failed on the generated "
                                   "project; the log names the step)"),
    (FirmwareValidationError.exit_code, "firmware validation failed (on QEMU a golden vector FAILed or was not "
                                        "reported, or the firmware stopped early)"),
    (NpuCompilerError.exit_code, "NPU compiler error (Vela, the Ethos-U compiler, is missing or failed on the "
                                 "model)"),
    (AccuracyError.exit_code, "accuracy gate: the int8 model loses more top-1 accuracy than --max-drop allows "
                              "(the message names the likely culprit and the remedies)"),
    (FlashError.exit_code, "flash error (no debug probe attached, a CMSIS-Pack to install, a QEMU project, "
                           "programming or the board's console failed; the message says what was looked for)"),
    (BrowserError.exit_code, "browser error (report --screenshot: selenium, Chromium or chromedriver is missing, "
                             "or Chromium failed on the page)"),
    (130, "interrupted (Ctrl-C)"),
)
