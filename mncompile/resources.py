"""Where the shipped `templates/` and `firmware/` trees are.

In a wheel they sit inside the package (``mncompile/templates``,
``mncompile/firmware``: see ``[tool.hatch.build.targets.wheel.force-include]``);
in a source checkout they are the repository's top-level folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _tree(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mncompile's {name}/ folder is missing from the installation "
                            f"(looked in {_PACKAGE} and {_PACKAGE.parent}); reinstall mncompile")


def templates_dir() -> Path:
    return _tree("templates")


def firmware_dir() -> Path:
    return _tree("firmware")


def jinja_environment(template_root: Path):
    """The Jinja environment every generated file is rendered with: undefined names are errors,
    block tags take their own line (trim_blocks, lstrip_blocks), files keep their last newline."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_root)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
