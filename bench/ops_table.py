"""The README's table of supported operators, generated from the op registry.

    .venv/bin/python bench/ops_table.py            # print the table
    .venv/bin/python bench/ops_table.py --write    # put it in README.md between the markers

The table (`mncompile.graph.ops.markdown_table`) has one row per registered `OpSpec`. In
README.md it sits between `<!-- ops:begin -->` and `<!-- ops:end -->`; tests/test_ops_table.py
fails when the two differ, so run this with --write after adding or changing an operator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mncompile.graph.ops import markdown_table  # noqa: E402

README = ROOT / "README.md"
BEGIN, END = "<!-- ops:begin -->", "<!-- ops:end -->"


def readme_block(text: str) -> str:
    """What README.md holds between the markers (without them)."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{README} has no {BEGIN} ... {END} block")
    return text[start + len(BEGIN):end].strip("\n") + "\n"


def with_table(text: str, table: str) -> str:
    readme_block(text)  # the markers are there
    start, end = text.find(BEGIN) + len(BEGIN), text.find(END)
    return text[:start] + "\n" + table + text[end:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help=f"replace the table in {README.name}")
    args = p.parse_args(argv)
    table = markdown_table()
    if not args.write:
        print(table, end="")
        return 0
    text = README.read_text(encoding="utf-8")
    new = with_table(text, table)
    if new != text:
        README.write_text(new, encoding="utf-8")
        print(f"{README}: operator table updated", file=sys.stderr)
    else:
        print(f"{README}: operator table already up to date", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
