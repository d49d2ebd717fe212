"""The build report: one self-contained HTML file, OUT/report.html.

`build` writes it at its end; `mncompile report OUT` renders it again from the files the build
left (`collect.read_inputs`). The page has inline CSS and its charts as SVG data URIs
(`figures`): no script, no network, it opens from ``file://``. Every key figure carries a
``data-key`` attribute naming the JSON value it shows ("build:eval.int8_accuracy",
"manifest:memory.arena_bytes") and a ``data-format`` saying how it is written, so a test (or a
user) can check the page against the JSON. The same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from mncompile.report.collect import BUILD_JSON, MANIFEST, ReportInputs, confusion_rows, read_inputs, timeline

REPORT_NAME = "report.html"
TEMPLATE = "report/report.html.j2"


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    sha256: str
    sections: tuple[str, ...]

    def to_json(self) -> dict:
        return {"report": str(self.path), "bytes": self.bytes, "sha256": self.sha256,
                "sections": list(self.sections)}


def write_report(out: Path) -> ReportResult:
    """Render OUT/report.html from OUT/build.json and the project's manifest (atomically)."""
    from mncompile.files import write_text_atomic

    inputs = read_inputs(Path(out))
    html, sections = render_html(inputs)
    path = inputs.out / REPORT_NAME
    write_text_atomic(path, html)
    data = html.encode("utf-8")
    return ReportResult(path, len(data), hashlib.sha256(data).hexdigest(), sections)


def render_html(inputs: ReportInputs) -> tuple[str, tuple[str, ...]]:
    from mncompile.report import figures

    build, manifest, ev, run = inputs.build, inputs.manifest, inputs.eval, inputs.run
    images: dict[str, str] = {}
    if ev and (ev.get("layers") or {}).get("layers"):
        images["layers"] = _data_uri(figures.layer_error_svg(ev["layers"]["layers"]))
    if ev and ev.get("blame") and ev["blame"].get("rows"):
        images["blame"] = _data_uri(figures.blame_svg(ev["blame"]["rows"]))
    memory = timeline(inputs)
    if memory is not None:
        images["timeline"] = _data_uri(figures.timeline_svg(memory["buffers"], memory["arena"], memory["lower"]))
    profile = (run or {}).get("profile")
    if profile and profile.get("layers"):
        what = "instructions" if profile.get("instructions_per_tick") is not None else profile.get("unit", "ticks")
        images["profile"] = _data_uri(figures.profile_svg(profile["layers"], what))
    sections = ["model", "accuracy" if ev else None, "layers" if "layers" in images else None,
                "memory" if memory else None, "budget", "firmware", "reproducibility"]
    context = {
        "build": build, "manifest": manifest, "eval": ev, "run": run, "profile": profile, "images": images,
        "title": _title(build, manifest), "card": _card(build, manifest),
        "confusion": {name: confusion_rows(m) for name, m in ((ev or {}).get("confusion") or {}).items()},
        "memory": memory, "limits": manifest["memory"]["limits"],
        "files_sha256": _files_digest(manifest.get("files", {})), "build_json": BUILD_JSON,
        "worst_layers": sorted(((ev or {}).get("layers") or {}).get("layers") or [],
                               key=lambda r: (_num(r["sqnr_end_to_end_db"]), r["op"]))[:8],
    }
    html = _environment().get_template(TEMPLATE).render(**context)
    return html, tuple(s for s in sections if s)


def _title(build: dict, manifest: dict) -> str:
    arch = build.get("architecture") or {}
    target = manifest["target"]["name"]
    if arch:
        return f'MobileNet {arch["arch"].upper()} α={arch["alpha"]:g} at {arch["resolution"]} px on {target}'
    return f'{manifest["model"]["file"]} on {target}'


def _card(build: dict, manifest: dict) -> list[tuple[str, str]]:
    """The model card's rows: what the model is, what it costs, what it expects."""
    arch = build.get("architecture") or {}
    totals = build.get("analytic") or {}
    prep = manifest.get("preprocessing") or {}
    classes = manifest["model"].get("classes") or []
    rows = [("architecture", f'MobileNet {arch["arch"].upper()}' if arch.get("arch") else "not a MobileNet we built"),
            ("width multiplier α", f'{arch["alpha"]:g}' if arch.get("alpha") is not None else "—"),
            ("input (ρ)", "×".join(str(d) for d in (build.get("model") or {}).get("input_shape", [])) or "—"),
            ("MACs", f'{totals["macs"]:,}' if totals.get("macs") is not None else "—"),
            ("parameters", f'{totals["params"]:,}' if totals.get("params") is not None else "—"),
            ("dataset", str((build.get("eval") or {}).get("dataset") or build.get("dataset") or "—")),
            ("preprocessing", f'{prep.get("formula", "—")}, scale {prep.get("scale", 0):.6g}, '
                              f'offset {prep.get("offset", 0):g}, {prep.get("color_mode", "")} '
                              f'{prep.get("resample", "")} ({prep.get("source", "")})' if prep else "—"),
            ("labels", ", ".join(str(c) for c in classes) or "—"),
            ("quantization", f'int8, {(build.get("quantize") or {}).get("method", "—")}')]
    return rows


def _files_digest(files: dict) -> str:
    """One SHA-256 over the project's file hashes (path and hash, sorted): the whole tree in one line."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(f"{path}\0{files[path]}\n".encode())
    return h.hexdigest()


def _num(value) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def figures_label(name: str) -> str:
    from mncompile.report.figures import tensor_label

    return tensor_label(name, limit=40)


def _environment():
    import jinja2

    from mncompile.resources import templates_dir

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), undefined=jinja2.StrictUndefined,
                             autoescape=True, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["bytes"] = lambda n: "—" if n is None else f"{int(n):,} B"
    env.filters["pct"] = lambda x: "—" if x is None else f"{100.0 * x:.2f} %"
    env.filters["int"] = lambda n: "—" if n is None else f"{int(n):,}"
    env.filters["value"] = lambda v: "—" if v is None else v
    env.filters["label"] = figures_label
    env.filters["db"] = lambda x: f"{x:.1f} dB" if isinstance(x, int | float) else str(x)
    return env


__all__ = ["BUILD_JSON", "MANIFEST", "REPORT_NAME", "ReportResult", "render_html", "write_report"]
