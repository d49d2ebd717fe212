"""Render a project tree from Jinja templates and write it atomically.

A template tree holds ``*.j2`` files, rendered with the context and written
without the suffix, and plain files copied as they are. The whole project is
first built in memory as ``{relative path: bytes}``, then written to a
temporary folder next to the destination and renamed into place, so an
interrupted run leaves either the old tree or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mncompile.errors import InvalidOptionError, OutputExistsError

TEMPLATE_SUFFIX = ".j2"


def render_tree(template_root: Path, context: dict, prefix: str = "",
                exclude: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `template_root` (sorted) as the project holds it, less those whose
    relative path starts with one of `exclude` (e.g. ``"npu/"``, a variant's own templates)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_root)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
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


def check_destination(out: Path, force: bool, marker: str) -> Path:
    """Refuse an existing `out` without `force`; with `force`, replace only a folder that an
    earlier run wrote (it holds `marker`) or an empty one, never some other folder."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise InvalidOptionError(f"{out} exists and is not a folder", hint="choose another -o path")
        if not force:
            raise OutputExistsError(f"{out} exists", hint="pass --force to replace it")
        if any(out.iterdir()) and not (out / marker).is_file():
            raise InvalidOptionError(f"{out} is not empty and has no {marker}: it was not written by "
                                     "mncompile, and --force will not delete it",
                                     hint="choose a new or empty folder for -o")
    elif not out.parent.is_dir():
        raise InvalidOptionError(f"folder {out.parent} does not exist",
                                 hint="create it first or choose another -o path")
    return out


def write_tree(files: dict[str, bytes], out: Path) -> None:
    """Write `files` under `out` atomically: build in a sibling temporary folder, then swap."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for rel in sorted(files):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[rel])
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            os.replace(old, out)  # put the previous tree back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
