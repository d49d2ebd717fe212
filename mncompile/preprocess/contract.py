"""The preprocessing contract: how a 0..255 pixel becomes the model's input, and what it is called.

A model's contract is `Preprocessing` (per channel ``x = pixel * scale[c] + offset[c]``, after
converting the image to `color_mode` and resizing it to `size`) plus its class labels. It is
recorded in the sidecar, the project manifest and ``model_settings.h``, and `resolve` takes it
from the first source that has it:

1. explicit options (`PixelOptions`): ``--input-range LO,HI`` (0..255 maps linearly onto
   [LO, HI]) or ``--mean R,G,B --std R,G,B`` (x = (pixel - mean) / std; torch's convention, on
   pixel / 255, when every mean and std is at most 1, caffe's, on 0..255, otherwise), and
   ``--labels FILE`` (one label a line);
2. the model's sidecar;
3. for a model with an int8 input, the real range its input quantization covers: pixel p becomes
   exactly the int8 level p - 128 (MLPerf's VWW model, scale 1/255 and zero point -128, gives
   [0, 1]);
4. only then `DEFAULT_RANGE`, with a warning.

`check_agreement` refuses a contract that contradicts the model's input quantization (e.g.
[-1, 1] data for a model quantized on [0, 1]), naming both ranges. `lookup_table` turns the
contract and the input quantization into the per-channel 256-entry table the firmware's
camera path (``firmware/preprocess``) and the host's reference (`mncompile.preprocess.camera`)
both use: calibration, evaluation, golden vectors and the C constants all come from `apply`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mncompile.errors import InvalidOptionError

DEFAULT_RANGE = (-1.0, 1.0)
RESAMPLE = "bilinear"
COLOR_MODES = ("L", "RGB")
# ranges pixels are commonly scaled to; an inferred range far from all of them gets a warning
CONVENTIONAL_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0), (-128.0, 127.0), (-0.5, 0.5))
# check_agreement: the two ranges must overlap over at least this share of the wider one
AGREEMENT = 0.75


def _floats(value) -> tuple[float, ...]:
    if isinstance(value, (int, float, np.floating, np.integer)):
        return (float(value),)
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become the model's float input: ``x = pixel * scale[c] + offset[c]``.

    Images are first converted to `color_mode` ("L" or "RGB") and resized to `size` x `size`
    with `resample`. `scale` and `offset` hold one value for every channel, or one for all. The
    default maps 0..255 to [-1, 1].
    """

    size: int
    color_mode: str
    scale: tuple[float, ...] | float = 1.0 / 127.5
    offset: tuple[float, ...] | float = -1.0
    resample: str = RESAMPLE

    def __post_init__(self):
        object.__setattr__(self, "scale", _floats(self.scale))
        object.__setattr__(self, "offset", _floats(self.offset))
        if len(self.scale) != len(self.offset):
            raise ValueError(f"{len(self.scale)} scales and {len(self.offset)} offsets")
        if self.color_mode not in COLOR_MODES:
            raise ValueError(f"color mode {self.color_mode!r} is not one of {', '.join(COLOR_MODES)}")
        if len(self.scale) not in (1, self.channels):
            raise ValueError(f"{len(self.scale)} scales for a {self.channels}-channel ({self.color_mode}) input")
        if not all(math.isfinite(v) for v in (*self.scale, *self.offset)) or 0.0 in self.scale:
            raise ValueError("scales and offsets must be finite and every scale non-zero")

    @property
    def channels(self) -> int:
        return 1 if self.color_mode == "L" else 3

    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.scale, np.float32), np.asarray(self.offset, np.float32)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (..., channels) to the model's float32 input, in float32 arithmetic."""
        scale, offset = self._columns()
        return pixels.astype(np.float32) * scale + offset

    def ranges(self) -> tuple[tuple[float, float], ...]:
        """[x(0), x(255)] of each channel (ordered low, high)."""
        out = []
        for s, o in zip(self.scale, self.offset, strict=True):
            ends = sorted((float(np.float32(o)), float(np.float32(255.0) * np.float32(s) + np.float32(o))))
            out.append((ends[0], ends[1]))
        return tuple(out)

    def span(self) -> tuple[float, float]:
        """The lowest and highest value any channel takes."""
        r = self.ranges()
        return min(lo for lo, _ in r), max(hi for _, hi in r)

    def describe(self) -> str:
        r = self.ranges()
        if len(set(r)) == 1:
            return f"{_affine(self.scale[0], self.offset[0])} (0..255 -> [{_g(r[0][0])}, {_g(r[0][1])}])"
        return "per channel " + "; ".join(_affine(s, o) for s, o in zip(self.scale, self.offset, strict=True))

    def to_json(self) -> dict:
        one = len(self.scale) == 1
        return {"size": [self.size, self.size], "color_mode": self.color_mode,
                "resample": self.resample,
                "scale": self.scale[0] if one else list(self.scale),
                "offset": self.offset[0] if one else list(self.offset),
                "range": [list(r) for r in self.ranges()],
                "formula": "x = pixel * scale + offset" if one else "x = pixel * scale[c] + offset[c]"}

    @classmethod
    def for_input(cls, size: int, channels: int) -> Preprocessing:
        """The default mapping (0..255 to [-1, 1]) for a size x size x channels input."""
        return cls(size=size, color_mode=color_mode(channels))

    @classmethod
    def from_json(cls, data: dict) -> Preprocessing:
        return cls(size=int(data["size"][0]), color_mode=str(data["color_mode"]),
                   scale=_floats(data["scale"]), offset=_floats(data["offset"]),
                   resample=str(data.get("resample", RESAMPLE)))


def _g(v: float) -> str:
    return f"{v:.6g}"


def _affine(scale: float, offset: float) -> str:
    if offset == 0:
        return f"x = pixel * {scale:.6g}"
    return f"x = pixel * {scale:.6g} {'-' if offset < 0 else '+'} {abs(offset):.6g}"


def color_mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


# ---------------------------------------------------------------------------------------------
# explicit options


@dataclass(frozen=True)
class PixelOptions:
    """What the user typed: ``--input-range``, ``--mean``/``--std`` and ``--labels`` (all optional)."""

    input_range: str | None = None
    mean: str | None = None
    std: str | None = None
    labels: Path | None = None
    _checked: bool = field(default=False, repr=False, compare=False)

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.input_range, self.mean, self.std))

    def check(self) -> PixelOptions:
        """Parse every value now (before slow work); InvalidOptionError on the first bad one."""
        if self.input_range is not None and (self.mean is not None or self.std is not None):
            raise InvalidOptionError("--input-range and --mean/--std both say how pixels map to the input",
                                     hint="give one of them")
        if (self.mean is None) != (self.std is None):
            raise InvalidOptionError("--mean and --std go together", hint="give both, e.g. --mean 0.485,0.456,0.406 "
                                                                          "--std 0.229,0.224,0.225")
        if self.input_range is not None:
            parse_range(self.input_range)
        if self.mean is not None:
            _numbers(self.mean, "--mean")
            std = _numbers(self.std, "--std")
            if any(s <= 0 for s in std):
                raise InvalidOptionError(f"--std {self.std} has a value that is not positive",
                                         hint="standard deviations are positive, e.g. 0.229,0.224,0.225")
        if self.labels is not None:
            _read_label_lines(self.labels)
        return self

    def preprocessing(self, size: int, channels: int) -> Preprocessing | None:
        """The mapping these options give for a size x size x channels input (None: none given)."""
        mode = color_mode(channels)
        if self.input_range is not None:
            lo, hi = parse_range(self.input_range)
            return Preprocessing(size, mode, scale=(hi - lo) / 255.0, offset=lo)
        if self.mean is not None:
            mean, std = _numbers(self.mean, "--mean"), _numbers(self.std, "--std")
            for name, values in (("--mean", mean), ("--std", std)):
                if len(values) not in (1, channels):
                    raise InvalidOptionError(
                        f"{name} has {len(values)} values and the model's input {channels} channel"
                        f"{'s' if channels > 1 else ''}",
                        hint=f"give {channels} comma-separated values (or one for every channel)")
            width = max(len(mean), len(std))
            mean = mean * width if len(mean) == 1 else mean
            std = std * width if len(std) == 1 else std
            torch = all(abs(m) <= 1.0 for m in mean) and all(s <= 1.0 for s in std)
            unit = 255.0 if torch else 1.0  # torch: x = (pixel / 255 - mean) / std
            return Preprocessing(size, mode, scale=tuple(1.0 / (unit * s) for s in std),
                                 offset=tuple(-m / s for m, s in zip(mean, std, strict=True)))
        return None

    def class_names(self, classes: int) -> tuple[str, ...] | None:
        """The labels of --labels, checked against the model's `classes` outputs (None: not given)."""
        if self.labels is None:
            return None
        names = _read_label_lines(self.labels)
        if len(names) != classes:
            raise InvalidOptionError(f"{self.labels} has {len(names)} label{'s' if len(names) != 1 else ''} and "
                                     f"the model {classes} output classes",
                                     hint=f"write one label a line, {classes} lines, in the order of the outputs")
        return names


def parse_range(text: str) -> tuple[float, float]:
    values = _numbers(text, "--input-range")
    if len(values) != 2 or not values[0] < values[1]:
        raise InvalidOptionError(f"--input-range {text!r} is not LO,HI with LO < HI",
                                 hint="e.g. --input-range 0,1 (pixels / 255) or --input-range -1,1")
    return values[0], values[1]


def _numbers(text: str | None, name: str) -> tuple[float, ...]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        example = {"--input-range": "0,1", "--mean": "0.485,0.456,0.406", "--std": "0.229,0.224,0.225"}.get(name, "")
        raise InvalidOptionError(f"{name} {text!r} is not a comma-separated list of numbers",
                                 hint=f"e.g. {name} {example}") from None
    if not all(math.isfinite(v) for v in values):
        raise InvalidOptionError(f"{name} {text!r} has a value that is not finite", hint="give finite numbers")
    return values


def _read_label_lines(path: Path) -> tuple[str, ...]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first label
    except FileNotFoundError:
        raise InvalidOptionError(f"labels file {path} does not exist", hint="one label a line") from None
    except IsADirectoryError:
        raise InvalidOptionError(f"labels file {path} is a folder", hint="pass a text file, one label a line") from None
    except UnicodeDecodeError:
        raise InvalidOptionError(f"labels file {path} is not UTF-8 text", hint="save it as UTF-8") from None
    except OSError as exc:
        raise InvalidOptionError(f"cannot read labels file {path}: {exc.strerror}") from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    empty = [k + 1 for k, line in enumerate(lines) if not line]
    if not lines or empty:
        raise InvalidOptionError(f"labels file {path} has {'no labels' if not lines else f'empty line {empty[0]}'}",
                                 hint="one label a line, no blank lines between them")
    twice = sorted({line for line in lines if lines.count(line) > 1})
    if twice:
        raise InvalidOptionError(f"labels file {path} names {', '.join(map(repr, twice))} more than once",
                                 hint="every output class needs its own label")
    return tuple(lines)


# ---------------------------------------------------------------------------------------------
# resolution and agreement


def from_quantization(scale: float, zero_point: int, size: int, channels: int) -> Preprocessing:
    """The mapping that sends pixel p to exactly the int8 level p - 128 of this quantization."""
    low = float(scale) * (-128 - int(zero_point))
    return Preprocessing(size, color_mode(channels), scale=float(scale), offset=low)


def quant_range(scale: float, zero_point: int) -> tuple[float, float]:
    """The real values int8 levels -128..127 stand for."""
    return float(scale) * (-128 - int(zero_point)), float(scale) * (127 - int(zero_point))


def resolve(options: PixelOptions, sidecar: Preprocessing | None, input_quant, size: int, channels: int,
            reporter=None) -> tuple[Preprocessing, str]:
    """The contract's preprocessing and where it came from (see the module docstring).
    `input_quant`: the (scale, zero_point) of the model's int8 input, or None (a float model)."""
    explicit = options.preprocessing(size, channels)
    if explicit is not None:
        source = "--input-range" if options.input_range is not None else "--mean/--std"
        prep, where = explicit, f"the {source} option"
    elif sidecar is not None:
        prep, where = sidecar, "the model's sidecar"
    elif input_quant is not None:
        prep = from_quantization(*input_quant, size, channels)
        lo, hi = prep.span()
        if reporter is not None and not any(abs(lo - a) <= 0.02 * (b - a) and abs(hi - b) <= 0.02 * (b - a)
                                            for a, b in CONVENTIONAL_RANGES):
            reporter.info(f"warning: nothing says how this model's pixels are scaled: taking the range its int8 input "
                          f"quantization covers, {prep.describe()}, which is no conventional range (it may be a "
                          "calibration's min/max); pass --input-range LO,HI or --mean/--std if it was trained "
                          "otherwise")
        return prep, "the range the model's int8 input quantization covers"
    else:
        prep = Preprocessing.for_input(size, channels)
        if reporter is not None:
            reporter.info(f"warning: nothing says how this model's pixels are scaled: assuming mncompile's default "
                          f"{prep.describe()}; pass --input-range LO,HI or --mean/--std if it was trained otherwise")
        where = "mncompile's default (nothing said otherwise)"
    if input_quant is not None:
        check_agreement(prep, input_quant, where)
    return prep, where


def check_agreement(prep: Preprocessing, input_quant, where: str) -> None:
    """InvalidOptionError when the pixel range of `prep` and the range the int8 input quantization
    covers overlap over less than `AGREEMENT` of the wider one: the data and the model disagree."""
    lo, hi = prep.span()
    qlo, qhi = quant_range(*input_quant)
    overlap = min(hi, qhi) - max(lo, qlo)
    wider = max(hi - lo, qhi - qlo)
    if overlap < AGREEMENT * wider:
        raise InvalidOptionError(
            f"the preprocessing from {where} maps pixels onto [{_g(lo)}, {_g(hi)}], and the model's int8 input "
            f"quantization (scale {input_quant[0]:.6g}, zero point {input_quant[1]}) covers [{_g(qlo)}, {_g(qhi)}]: "
            "the pixels would not match what the model expects",
            hint="state the range the model was trained on with --input-range LO,HI (or --mean/--std)")


def lookup_table(prep: Preprocessing, input_quant=None) -> np.ndarray:
    """(channels, 256): the model input for every pixel value of every channel. int8 with
    `input_quant` (scale, zero point; rounding half away from zero, saturated, as the host's
    `quantize_array`), else float32 (a model whose own QUANTIZE op reads a float input)."""
    pixels = np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None], (256, prep.channels))
    x = prep.apply(pixels).T  # (channels, 256) float32
    if input_quant is None:
        return np.ascontiguousarray(x, dtype=np.float32)
    return quantize_levels(x, *input_quant)


def quantize_levels(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """TFLite QUANTIZE semantics, the one implementation the host uses everywhere (calibration
    checks, evaluation, golden vectors, the camera path's table): round(x / scale) half away from
    zero in float32, plus the zero point, saturated to `dtype`."""
    info = np.iinfo(dtype)
    v = x.astype(np.float32) / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(r + zero_point, info.min, info.max).astype(dtype)
