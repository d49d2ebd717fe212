"""What the report shows, read from the files a build left in OUT.

- ``OUT/build.json``: the build's result (`BuildResult.to_json()`, what `build --json` prints);
- ``OUT/firmware/mncompile.json``: the project's manifest (plan buffers, budget, versions, hashes).

Nothing else is read, and nothing that changes from run to run (wall-clock times, absolute
paths) reaches the page: the same build gives the same report, byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import InvalidOptionError

BUILD_JSON = "build.json"
MANIFEST = Path("firmware") / "mncompile.json"


@dataclass(frozen=True)
class ReportInputs:
    out: Path
    build: dict  # OUT/build.json
    manifest: dict  # OUT/firmware/mncompile.json

    @property
    def eval(self) -> dict | None:
        return self.build.get("eval")

    @property
    def run(self) -> dict | None:
        return self.build.get("run") or (self.build.get("flash") or {}).get("run")


def read_inputs(out: Path) -> ReportInputs:
    """The build's documents in `out`; a typed error when `out` is not a finished build."""
    out = Path(out)
    if not out.is_dir():
        raise InvalidOptionError(f"{out} is not a folder", hint="pass the OUT folder of `mncompile build -o OUT`")
    docs = []
    for rel, made_by in ((Path(BUILD_JSON), "mncompile build"), (MANIFEST, "mncompile build (its emit stage)")):
        path = out / rel
        if not path.is_file():
            raise InvalidOptionError(f"{path} is missing: {out} is not the output of a finished build",
                                     hint=f"run `mncompile build -o {out}` first ({made_by} writes it)")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidOptionError(f"{path} cannot be read as JSON: {exc}",
                                     hint=f"build again with `mncompile build -o {out}`") from None
        if not isinstance(doc, dict):
            raise InvalidOptionError(f"{path} is not a JSON object",
                                     hint=f"build again with `mncompile build -o {out}`")
        docs.append(doc)
    return ReportInputs(out, *docs)


def lookup(doc: dict, path: str):
    """`doc["a"]["b"][0]` for the path "a.b.0" (the report's data-key attributes use these paths)."""
    node = doc
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def timeline(inputs: ReportInputs) -> dict | None:
    """The tensors of the arena the firmware runs with (TFLM's plan, or the AOT backend's static one) and the
    manifest paths of its figures; None when the manifest has no plan buffers."""
    plan = inputs.manifest.get("plan") or {}
    if not plan.get("buffers"):
        return None
    arena_key = "mncompile_bytes" if "mncompile_bytes" in plan else "arena_bytes"
    # the AOT plan's lower_bound_bytes counts its patch stages; the layer-by-layer bound is the one to show
    lower_key = "layerwise_lower_bound_bytes" if "layerwise_lower_bound_bytes" in plan else "lower_bound_bytes"
    tflm = plan if "tflm_greedy_bytes" in plan else plan.get("tflm") or {}
    return {"buffers": sorted(plan["buffers"], key=lambda b: b["id"]), "strategy": plan.get("strategy", "mncompile"),
            "arena": plan[arena_key], "arena_key": f"plan.{arena_key}", "lower": plan[lower_key],
            "lower_key": f"plan.{lower_key}",
            "greedy": tflm.get("tflm_greedy_bytes"),
            "greedy_key": "plan.tflm_greedy_bytes" if tflm is plan else "plan.tflm.tflm_greedy_bytes",
            "patch_stages": len(plan.get("patch_stages") or [])}


def confusion_rows(matrix: list[list[int]]) -> list[dict]:
    """A confusion matrix with each row's total and each cell's share of its row (for the shading)."""
    rows = []
    for counts in matrix:
        total = sum(counts)
        rows.append({"counts": counts, "total": total,
                     "shares": [c / total if total else 0.0 for c in counts]})
    return rows
