"""The import layering of the package, so the pipeline stays a pipeline.

Packages sit in layers; a module may import from its own package and from lower layers only
(never sideways, never up). `pipeline` alone sequences the stages; the CLI only parses, calls
and renders. The test reads every `import` (top level and inside functions) with `ast`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "mncompile"
# lowest first; a package may import only from layers below its own (and from itself)
LAYERS = (
    ("errors",),
    ("units", "progress", "resources", "tfenv", "files", "ctext"),
    ("graph",),
    ("preprocess",),
    ("targets", "model"),
    ("quantize", "plan", "budget"),
    ("validate", "npu", "aot"),
    ("emit",),
    ("run", "fit", "report"),
    ("flash",),
    ("options",),
    ("pipeline",),
    ("cli",),
    ("__main__",),
)
RANK = {name: k for k, layer in enumerate(LAYERS) for name in layer}


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mncompile" and len(parts) > 1 and (PACKAGE / parts[1]).exists() or \
                    parts[0] == "mncompile" and len(parts) > 1 and (PACKAGE / f"{parts[1]}.py").exists():
                found.add(parts[1])
    return found


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert units <= set(RANK), f"put {sorted(units - set(RANK))} in a layer of tests/test_layering.py"


def test_imports_only_go_down():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        if unit == "__init__":
            continue
        for target in sorted(_imports(path) - {unit}):
            if target in RANK and RANK[target] >= RANK[unit]:
                wrong.append(f"{path.relative_to(REPO)} imports mncompile.{target} (layer {RANK[target]} >= "
                             f"{unit}'s {RANK[unit]})")
    assert not wrong, "\n".join(wrong)


def test_only_the_pipeline_sequences_stages():
    """The CLI calls one library function per command: the stage flows live in pipeline.py."""
    app = (PACKAGE / "cli" / "app.py").read_text(encoding="utf-8")
    for stage_call in ("plan_model(", "compile_for_npu(", "golden_vectors(", "render_project(", "generate("):
        assert stage_call not in app, stage_call
