"""Render a project tree from Jinja templates, in memory.

A template tree holds ``*.j2`` files, rendered with the context and written
without the suffix, and plain files copied as they are. The whole project is
built in memory as ``{relative path: bytes}``; `mncompile.files.write_tree`
then writes it atomically.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_SUFFIX = ".j2"


def render_tree(template_root: Path, context: dict, prefix: str = "",
                exclude: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `template_root` (sorted) as the project holds it, less those whose
    relative path starts with one of `exclude` (e.g. ``"npu/"``, a variant's own templates)."""
    from mncompile.resources import jinja_environment

    env = jinja_environment(template_root)
    files: dict[str, bytes] = {}
    for path in sorted(p for p in template_root.rglob("*") if p.is_file()):
        rel = path.relative_to(template_root).as_posix()
        if rel.startswith(exclude):
            continue
        if rel.endswith(TEMPLATE_SUFFIX):
            text = env.get_template(rel).render(**context)
            files[prefix + rel[: -len(TEMPLATE_SUFFIX)]] = text.encode("utf-8")
        else:
            files[prefix + rel] = path.read_bytes()
    return files


def copy_tree(root: Path, prefix: str) -> dict[str, bytes]:
    """Every file under `root` (sorted), keyed `prefix` + its relative path."""
    return {prefix + p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def board_support_files(board: str) -> dict[str, bytes]:
    """The shared firmware/common/ and the board's own firmware/boards/<board>/, as a project holds them."""
    from mncompile.resources import firmware_dir

    return {**copy_tree(firmware_dir() / "common", "firmware/common/"),
            **copy_tree(firmware_dir() / "boards" / board, f"firmware/boards/{board}/")}


def camera_files(context: dict) -> dict[str, bytes]:
    """An image model's camera path, for either backend: ``src/model_input.{c,h}`` (the contract's
    lookup table, rendered from ``templates/common/``) and ``firmware/preprocess/`` (mncompile's
    preprocessing functions, copied). None for a model whose input is not an image."""
    from mncompile.resources import firmware_dir, templates_dir

    if not context.get("camera"):
        return {}
    return {**render_tree(templates_dir() / "common", context),
            **copy_tree(firmware_dir() / "preprocess", "firmware/preprocess/")}
