"""Which MobileNet fits a memory budget: an analytic search, no TensorFlow.

`mncompile fit` tries every width multiplier alpha and input resolution of the
grid below, estimates each one's memory from the layer list (`model.spec`),
checks it against the budget and the target (`mncompile.budget`), and ranks
the configurations that fit by their published ImageNet top-1 accuracy
(`model/published.toml`). The whole search takes well under a second.

The estimate, per configuration (int8 model as mncompile's converter writes it):

- **constants**: the .tflite flatbuffer. Its tensors are counted exactly:
  int8 weights, int32 biases (batch normalization folded, one per output
  channel, and the classifier's), and the int32 axes of MEAN (8 bytes). On
  top comes the flatbuffer's own overhead, estimated as
  24 B per quantized output channel (float32 scale + int64 zero point, for the
  weights and again for the bias: weights are quantized per channel, the
  classifier's too), 12 B per activation tensor (its scale and zero point), and
  a per-operator part (tensor names, tables, shapes, operator codes, metadata):
  910 B for V1 and 765 B for V2, the largest measured on converted models of
  alpha 0.25 to 1.4 (V1 864-908 B, V2 731-763 B; the names follow the Keras
  layer names of `model.builder`). The estimate is within 0.11 % of the real
  file on those models. The converter also stores byte-identical constant
  buffers once: in the random-weight V2 models of the tests, whose expand
  biases repeat, that makes the file 0.4-1.2 % smaller than the estimate.
- **arena**: the layer-wise lower bound of the int8 activations, i.e. the
  largest sum of tensors alive at one operator in execution order: for V1 the
  input and output of each layer; for V2 also the block input an inverted
  residual block keeps alive until its ADD. mncompile's memory planner reaches
  this bound (TFLM's greedy planner does not: 1.33x on V1 0.25 at 96 px). On
  top comes TFLM's persistent allocations, estimated as 8 B per quantized
  output channel (the int32 multiplier and shift of each channel) plus 270 B
  per operator (TfLiteEvalTensor structs, node and registration structs,
  kernel op data). That reproduces the RecordingMicroAllocator's figures:
  29,856 B measured for V1 0.25 at 96 px, 4 classes (30 ops; estimate 30,020 B),
  71,984 B for V2 0.35 (65 ops; estimate 73,902 B) and 160,080 B for V2 1.0,
  1000 classes (estimate 161,998 B).
- **I/O buffers**: the application's own int8 input image and output scores,
  next to the arena (TFLM's input and output tensors themselves live in the
  arena and are in the lower bound).

`confirm_fit` (``mncompile fit --confirm``) builds the winner, converts it to
int8 exactly as `mncompile quantize` does, and reports the exact figures next
to the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mncompile.budget import BudgetReport, check_budget, describe_excess
from mncompile.errors import BudgetError
from mncompile.model.analytic import layer_biases, layer_weights, summarize
from mncompile.model.spec import Layer, MobileNetSpec, layers
from mncompile.progress import NullReporter, Reporter
from mncompile.targets import Target
from mncompile.units import parse_size

ALPHAS = {"v1": (0.25, 0.35, 0.5, 0.75, 1.0), "v2": (0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4)}
RESOLUTIONS = (96, 128, 160, 192, 224)

# constants of the estimate; the module docstring says where they come from
MEAN_AXES_BYTES = 8  # MEAN's reduction axes, two int32
FLATBUFFER_BYTES_PER_CHANNEL = 24
FLATBUFFER_BYTES_PER_ACTIVATION = 12
FLATBUFFER_BYTES_PER_OP = {"v1": 910, "v2": 765}
TFLM_PERSISTENT_BYTES_PER_CHANNEL = 8
TFLM_PERSISTENT_BYTES_PER_OP = 270

PUBLISHED_FILE = Path(__file__).parent / "model" / "published.toml"


# --- published accuracy (data: model/published.toml) ----------------------------------------

@dataclass(frozen=True)
class Published:
    arch: str
    alpha: float
    resolution: int
    top1: float
    top5: float
    top1_quant: float | None  # V1 only: the 8-bit quantization-aware-trained models
    source: str

    def to_json(self) -> dict:
        return {"top1": self.top1, "top5": self.top5, "top1_quant": self.top1_quant,
                "source": self.source}


@cache
def published_table() -> dict[tuple[str, float, int], Published]:
    import tomllib  # Python 3.11+

    with PUBLISHED_FILE.open("rb") as f:
        data = tomllib.load(f)
    table = {}
    for arch in ("v1", "v2"):
        source = f"{data[arch]['source']} ({data[arch]['url']} at {data[arch]['commit'][:12]})"
        for m in data[arch]["models"]:
            key = (arch, float(m["alpha"]), int(m["resolution"]))
            table[key] = Published(arch, float(m["alpha"]), int(m["resolution"]), float(m["top1"]),
                                   float(m["top5"]), m.get("top1_quant"), source)
    return table


def published(arch: str, alpha: float, resolution: int) -> Published | None:
    """The published ImageNet accuracy of this configuration, or None when unpublished."""
    return published_table().get((arch, float(alpha), int(resolution)))


# --- the analytic estimate ------------------------------------------------------------------

def _tensor_bytes(layer: Layer) -> int:
    return layer.out_hw * layer.out_hw * layer.out_ch  # int8: one byte per element


def live_ranges(spec: MobileNetSpec) -> tuple[tuple[int, int, int], ...]:
    """(bytes, first op, last op) of every activation tensor, in execution order.

    The layer list is the operator list of the converted graph, one to one. The
    input is alive from before op 0; each layer's output from its own op to the
    last op that reads it: the next layer, and for V2 the ADD of the block it
    feeds (`Layer.residual`). The final output stays alive to the end."""
    net = layers(spec)
    index = {layer.name: k for k, layer in enumerate(net)}
    last_use = {k: k + 1 for k in range(len(net) - 1)}
    last_use[len(net) - 1] = len(net) - 1
    for k, layer in enumerate(net):
        if layer.residual is not None:
            src = index[layer.residual]
            last_use[src] = max(last_use[src], k)
    ranges = [(spec.resolution * spec.resolution * spec.channels, -1, 0)]
    ranges += [(_tensor_bytes(layer), k, last_use[k]) for k, layer in enumerate(net)]
    return tuple(ranges)


def activation_lower_bound(spec: MobileNetSpec) -> int:
    """The planner's lower bound (`plan.lifetimes.lower_bound`) over the analytic live ranges,
    shifted to TFLM's time (input at 0, op k at k + 1)."""
    from mncompile.plan.lifetimes import Buffer, lower_bound

    return lower_bound(tuple(Buffer(i, None, "", size, first + 1, last + 1)
                             for i, (size, first, last) in enumerate(live_ranges(spec))))


@dataclass(frozen=True)
class Estimate:
    spec: MobileNetSpec
    ops: int
    macs: int
    params: int
    quantized_channels: int  # output channels of every weighted layer (per-channel quantization)
    tensor_bytes: int  # exact: int8 weights + int32 biases + MEAN axes
    constants_bytes: int  # estimated .tflite size: tensor_bytes + flatbuffer overhead
    lower_bound_bytes: int  # activations, layer-wise lower bound
    persistent_bytes: int  # TFLM's persistent allocations, estimated
    io_bytes: int  # int8 input image + int8 output scores

    @property
    def arena_bytes(self) -> int:
        return self.lower_bound_bytes + self.persistent_bytes

    @property
    def total_bytes(self) -> int:
        return self.constants_bytes + self.arena_bytes + self.io_bytes

    def to_json(self) -> dict:
        s = self.spec
        return {"arch": s.arch, "alpha": s.alpha, "resolution": s.resolution, "channels": s.channels,
                "classes": s.classes, "ops": self.ops, "macs": self.macs, "params": self.params,
                "tensor_bytes": self.tensor_bytes, "constants_bytes": self.constants_bytes,
                "activation_lower_bound_bytes": self.lower_bound_bytes,
                "tflm_persistent_bytes": self.persistent_bytes, "arena_bytes": self.arena_bytes,
                "io_bytes": self.io_bytes, "total_bytes": self.total_bytes}


def estimate(spec: MobileNetSpec) -> Estimate:
    net = layers(spec)
    weighted = [layer for layer in net if layer_weights(layer) > 0]
    channels = sum(layer.out_ch for layer in weighted)
    means = sum(1 for layer in net if layer.kind == "avgpool")
    tensor_bytes = (sum(layer_weights(layer) + 4 * layer_biases(layer) for layer in net)
                    + MEAN_AXES_BYTES * means)
    ops = len(net)
    overhead = (FLATBUFFER_BYTES_PER_CHANNEL * channels + FLATBUFFER_BYTES_PER_ACTIVATION * (ops + 1)
                + FLATBUFFER_BYTES_PER_OP[spec.arch] * ops)
    summary = summarize(spec)
    return Estimate(
        spec=spec, ops=ops, macs=summary.macs, params=summary.params, quantized_channels=channels,
        tensor_bytes=tensor_bytes, constants_bytes=tensor_bytes + overhead,
        lower_bound_bytes=activation_lower_bound(spec),
        persistent_bytes=TFLM_PERSISTENT_BYTES_PER_CHANNEL * channels + TFLM_PERSISTENT_BYTES_PER_OP * ops,
        io_bytes=spec.resolution * spec.resolution * spec.channels + spec.classes)


def check_estimate(est: Estimate, target: Target, budget=None, ram=None, flash=None) -> BudgetReport:
    return check_budget(est.constants_bytes, est.arena_bytes, est.io_bytes, target,
                        budget=budget, ram=ram, flash=flash)


def check_aot_estimate(spec: MobileNetSpec, target: Target, budget=None, ram=None, flash=None,
                       mode: str = "balanced") -> BudgetReport:
    """`build --backend aot` before training: the AOT schedule `mode` picks for `spec`, from its
    layer list alone (`mncompile.aot.analytic`), within the limits (constants: `estimate`'s);
    BudgetError when it does not fit, naming the least RAM patch stages reach."""
    from mncompile.aot.analytic import aot_choice
    from mncompile.aot.budgeted import patch_note
    from mncompile.budget import enforce, ram_room

    constants = estimate(spec).constants_bytes
    choice = aot_choice(spec, mode, ram_room(constants, target, budget, ram, flash))
    arena = choice.memory.arena_bytes
    report = check_budget(constants, arena, choice.ram - arena, target, budget, ram, flash)
    if not report.fits:
        enforce(report, patch_note(choice if choice.mode != "speed" else aot_choice(spec, "min", None)))
    return report


# --- the search -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    estimate: Estimate
    report: BudgetReport
    accuracy: Published | None

    @property
    def rank_key(self) -> tuple:
        """Published top-1 first (higher is better, fewer MACs on a tie); unpublished after,
        by MACs (more is better: the accuracy of a MobileNet grows with its mult-adds)."""
        if self.accuracy is not None:
            return (0, -self.accuracy.top1, self.estimate.macs)
        return (1, 0.0, -self.estimate.macs)

    def to_json(self) -> dict:
        return {**self.estimate.to_json(), "fits": self.report.fits,
                "headroom_bytes": self.report.headroom, "limits": [r.to_json() for r in self.report.rows],
                "published": self.accuracy.to_json() if self.accuracy else None}


@dataclass(frozen=True)
class FitResult:
    arch: str
    target: Target
    budget: int | None
    ram: int | None
    flash: int | None
    fitting: tuple[Candidate, ...]  # ranked, the winner first
    not_fitting: tuple[Candidate, ...]  # smallest total first

    @property
    def winner(self) -> Candidate | None:
        return self.fitting[0] if self.fitting else None

    def to_json(self) -> dict:
        return {"arch": self.arch, "target": self.target.name,
                "limits": {"budget_bytes": self.budget,
                           "ram_bytes": self.ram if self.ram is not None else self.target.ram_bytes,
                           "flash_bytes": self.flash if self.flash is not None else self.target.flash_bytes},
                "winner": self.winner.to_json() if self.winner else None,
                "fitting": [c.to_json() for c in self.fitting],
                "not_fitting_count": len(self.not_fitting),
                "not_fitting": [c.to_json() for c in self.not_fitting],
                "searched": {"alphas": list(ALPHAS[self.arch]), "resolutions": list(RESOLUTIONS)}}


def _alpha(alpha: float) -> str:
    """0.25 -> '0.25', 1.0 -> '1.0' (not '1')."""
    text = f"{alpha:g}"
    return text if "." in text else f"{text}.0"


def _size(value: int | str | None) -> int | None:
    return parse_size(value) if isinstance(value, str) else value


def search(arch: str, target: Target, budget: int | str | None = None, ram: int | str | None = None,
           flash: int | str | None = None, channels: int = 3, classes: int = 1000) -> FitResult:
    """Every configuration of the grid, checked and ranked. Never raises for "nothing fits"."""
    budget, ram, flash = _size(budget), _size(ram), _size(flash)
    MobileNetSpec(arch, 1.0, 224, channels, classes)  # validates arch, channels, classes
    candidates = []
    for alpha in ALPHAS[arch]:
        for resolution in RESOLUTIONS:
            est = estimate(MobileNetSpec(arch, alpha, resolution, channels, classes))
            candidates.append(Candidate(est, check_estimate(est, target, budget, ram, flash),
                                        published(arch, alpha, resolution)))
    fitting = sorted((c for c in candidates if c.report.fits), key=lambda c: c.rank_key)
    rest = sorted((c for c in candidates if not c.report.fits),
                  key=lambda c: (c.estimate.total_bytes, c.estimate.spec.alpha, c.estimate.spec.resolution))
    return FitResult(arch, target, budget, ram, flash, tuple(fitting), tuple(rest))


def fit(arch: str, target: Target, budget: int | str | None = None, ram: int | str | None = None,
        flash: int | str | None = None, channels: int = 3, classes: int = 1000) -> FitResult:
    """`search`, raising `BudgetError` (exit 8) when no configuration fits."""
    result = search(arch, target, budget, ram, flash, channels, classes)
    check_fits(result)
    return result


def check_fits(result: FitResult, note: str | None = None) -> None:
    """BudgetError (exit 8) naming the smallest configuration when none fits; `note` is added (what
    the AOT backend reaches)."""
    if result.winner is not None:
        return
    arch, target = result.arch, result.target
    smallest = result.not_fitting[0]
    s = smallest.estimate.spec
    raise BudgetError(
        f"no MobileNet{arch.upper()} of alpha {'/'.join(map(_alpha, ALPHAS[arch]))} at "
        f"{'/'.join(map(str, RESOLUTIONS))} px fits {target.name}; the smallest, alpha {_alpha(s.alpha)} "
        f"at {s.resolution} px, needs {smallest.estimate.total_bytes:,} B in all: "
        f"{describe_excess(smallest.report)}" + (f"; {note}" if note else ""),
        hint="raise a limit with --ram, --flash or --budget if the part has more memory "
             "(KB and MB are 1024-based), or try the other --arch")


def suggestion(spec: MobileNetSpec, target: Target, budget: int | str | None = None,
               ram: int | str | None = None, flash: int | str | None = None) -> str | None:
    """What would fit instead of `spec`: the widest alpha at its resolution, the largest
    resolution at its alpha, else the best-ranked configuration; None when nothing fits.
    For example "--alpha 0.5 at 224 or --resolution 128 at alpha 1.0 fits"."""
    result = search(spec.arch, target, budget, ram, flash, spec.channels, spec.classes)
    fits = {(c.estimate.spec.alpha, c.estimate.spec.resolution) for c in result.fitting}
    options = []
    alphas = [a for a in ALPHAS[spec.arch] if (a, spec.resolution) in fits and a != spec.alpha]
    if alphas:
        options.append(f"--alpha {_alpha(max(alphas))} at {spec.resolution}")
    sides = [r for r in RESOLUTIONS if (spec.alpha, r) in fits and r != spec.resolution]
    if sides:
        options.append(f"--resolution {max(sides)} at alpha {_alpha(spec.alpha)}")
    if not options and result.winner is not None:
        w = result.winner.estimate.spec
        options.append(f"--alpha {_alpha(w.alpha)} --resolution {w.resolution}")
    return " or ".join(options) + " fits" if options else None


# --- --confirm: build and convert the winner, measure it exactly ----------------------------

def graph_lower_bound(graph) -> int:
    """The exact activation lower bound of a converted graph, as the plan stage computes it."""
    from mncompile.plan.lifetimes import lifetimes, lower_bound

    return lower_bound(lifetimes(graph))


@dataclass(frozen=True)
class Confirmation:
    estimate: Estimate
    tflite_bytes: int  # exact size of the converted .tflite
    tensor_bytes: int  # exact: sum of the constant tensors' bytes
    lower_bound_bytes: int  # exact: from the converted graph's tensor lifetimes
    ops: int

    def to_json(self) -> dict:
        e = self.estimate
        return {"model": e.spec.name,
                "constants_bytes": {"estimate": e.constants_bytes, "exact": self.tflite_bytes},
                "tensor_bytes": {"estimate": e.tensor_bytes, "exact": self.tensor_bytes},
                "activation_lower_bound_bytes": {"estimate": e.lower_bound_bytes,
                                                 "exact": self.lower_bound_bytes},
                "ops": {"estimate": e.ops, "exact": self.ops}}


def confirm_fit(choice: Candidate | Estimate, reporter: Reporter = NullReporter(), seed: int = 0) -> Confirmation:
    """Build the chosen configuration, convert it to int8 and measure it exactly.

    The model is untrained: its batch-norm statistics are estimated from random
    images (training-mode passes with momentum 0), as an untrained MobileNet's
    activations would otherwise collapse, and the classifier gets a small random
    bias (a trained one has one; the converter drops an all-zero bias). The
    weights' values do not change any size or shape, so the memory is that of
    the trained model. Conversion is `mncompile quantize`'s own
    (`quantize.convert.to_int8_tflite`), calibrated on random images."""
    import numpy as np

    from mncompile.graph.verified import verify_model
    from mncompile.model.builder import build_keras
    from mncompile.model.loader import LoadedModel
    from mncompile.quantize.convert import to_int8_tflite
    from mncompile.tfenv import keras_module

    est = choice.estimate if isinstance(choice, Candidate) else choice
    spec = est.spec
    reporter.stage("confirm", f"building {spec.name} and converting it to int8")
    keras = keras_module()
    keras.utils.set_random_seed(seed)
    model = build_keras(spec, batch_size=1, bn_momentum=0.0)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (4, *spec.input_shape)).astype("float32")
    with reporter.task("estimating batch-norm statistics", 2 * len(x)) as task:
        for _ in range(2):  # momentum 0: each pass sets every layer's statistics in turn
            for i in range(len(x)):
                model(x[i:i + 1], training=True)
                task.advance(1)
    classifier = model.get_layer("classifier")
    kernel, bias = classifier.get_weights()
    classifier.set_weights([kernel, rng.normal(0.0, 0.01, bias.shape).astype("float32")])
    loaded = LoadedModel(Path(f"{spec.name}.keras"), "keras", model, spec.input_shape, spec.classes, None)
    calibration = rng.uniform(-1, 1, (8, *spec.input_shape)).astype("float32")
    data = to_int8_tflite(loaded, calibration, reporter)
    graph = verify_model(data, f"{spec.name}.tflite").graph
    return Confirmation(est, len(data), sum(t.nbytes for t in graph.tensors if t.is_constant),
                        graph_lower_bound(graph), len(graph.ops))
