"""The README's operator table is the op registry's: it cannot drift from what mncompile supports."""

from __future__ import annotations

from conftest import REPO

from mncompile.graph.ops import REGISTRY, markdown_table

BEGIN, END = "<!-- ops:begin -->", "<!-- ops:end -->"


def test_readme_operator_table_is_generated_from_the_registry():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and text.index(BEGIN) < text.index(END), \
        f"README.md needs one {BEGIN} ... {END} block"
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip("\n") + "\n"
    assert block == markdown_table(), \
        "README.md's operator table differs from the op registry: run `.venv/bin/python bench/ops_table.py --write`"


def test_one_row_per_registered_operator():
    rows = markdown_table().splitlines()[2:]
    assert [row.split(" | ")[0].strip("| `") for row in rows] == sorted(REGISTRY)
    for kind, spec in REGISTRY.items():
        row = next(r for r in rows if r.startswith(f"| `{kind}` |"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[1] == ("predicted" if spec.tflm is not None else "measured")
        assert (cells[2] == "no") == (spec.lower is None)
        assert spec.summary, f"{kind} has no summary for the README"
