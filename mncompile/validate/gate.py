"""The accuracy gate: how much top-1 accuracy int8 may lose against float.

`check_drop` turns an `EvalReport` into a verdict. With ``--max-drop PP`` a larger drop is an
`AccuracyError` (exit 12) whose message names the most likely culprit and the remedies; without
it, a drop over `WARN_DROP_PP` points is a warning (returned, for the summary and the JSON).

The culprit, with ``--blame``, is the top of the blame ranking (`mncompile.validate.blame`): the
layer whose keeping alone in float recovers the most accuracy end to end, measured rather than
inferred. Without it, the layer where the int8 network's end-to-end SQNR against float falls the
most from the layer before it (the first layer: from an ideal 8-bit quantizer's 49.9 dB): where
the error enters, rather than where it is largest (every layer after the culprit inherits its error).
"""

from __future__ import annotations

import math

from mncompile.errors import AccuracyError, InvalidOptionError

WARN_DROP_PP = 1.0
IDEAL_INT8_DB = 6.02 * 8 + 1.76  # SQNR of an ideal 8-bit quantizer on a full-scale signal: the first layer's "before"
REMEDIES = ("more or more varied calibration images (--calib-samples, a --dataset like the deployment's)",
            "a larger --alpha (wider layers quantize better)",
            "quantization-aware training")


def check_max_drop(max_drop: float | None) -> float | None:
    """The option's value, checked before any work: a number of points, 0 or more."""
    if max_drop is not None and not (math.isfinite(max_drop) and max_drop >= 0):
        raise InvalidOptionError(f"--max-drop {max_drop:g} is not a number of points of 0 or more",
                                 hint="e.g. --max-drop 1 fails when int8 is more than 1 point below float")
    return max_drop


def culprit(report) -> str | None:
    """The blame ranking's top layer when there is one that recovers anything, else the layer where
    end-to-end SQNR falls the most from the previous layer, in words."""
    blame = getattr(report, "blame", None)
    top = blame.top if blame is not None else None
    if top is not None:
        db = f"{top.sqnr_gain_db:+.1f} dB of output SQNR" if math.isfinite(top.sqnr_gain_db) else "an exact output"
        return (f"keeping {top.name} ({top.kind}, op {top.op}) alone in float recovers "
                f"{top.accuracy_gain_pp:+.2f} points / {db} (int8 with it in float: "
                f"{top.kept_float.accuracy:.2%})")
    layers = report.layers.layers if report.layers is not None else ()
    ordered = sorted(layers, key=lambda e: e.op)
    best, fall, previous = None, 0.0, math.inf
    for e in ordered:
        here = e.sqnr_end_to_end
        step = (previous if math.isfinite(previous) else IDEAL_INT8_DB) - here if math.isfinite(here) else 0.0
        if math.isfinite(here) and step > fall:
            best, fall = e, step
        previous = here
    if best is None:
        return None
    return (f"layer {best.name} ({best.kind}, op {best.op}): end-to-end SQNR falls {fall:.1f} dB there, to "
            f"{best.sqnr_end_to_end:.1f} dB")


def check_drop(report, max_drop: float | None) -> str | None:
    """None when the drop is fine; a warning when it is over `WARN_DROP_PP` and no gate is set;
    AccuracyError when it is over `max_drop`."""
    drop = report.accuracy_drop_pp
    if max_drop is None and drop <= WARN_DROP_PP:
        return None
    if max_drop is not None and drop <= max_drop:
        return None
    where = culprit(report)
    what = (f"int8 top-1 accuracy {report.int8_accuracy:.2%} is {drop:.2f} points below float "
            f"{report.float_accuracy:.2%} on {report.samples} {report.dataset} validation images")
    cause = (f"; most likely culprit: {where}" if where else
             " (per-layer SQNR skipped: --layer-samples 0)" if report.layers is None else "")
    if max_drop is None:
        return f"{what}{cause}; try {', '.join(REMEDIES)}"
    raise AccuracyError(f"{what}, more than --max-drop {max_drop:g}{cause}",
                        hint="try " + "; or ".join(REMEDIES), document=report.to_json())
