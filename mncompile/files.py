"""Files in and out: pre-flight checks before any slow work, and atomic writes.

Every command checks its inputs and outputs before it trains, converts or plans anything, so a
mistake costs a second, not an hour, and no half-written output is left behind:

- `check_input_file`: the path exists, is a regular file (not a folder, a FIFO or a device)
  and can be read; otherwise the caller's error type (ModelError, exit 4, for models);
- `check_new_output`: an output file: its suffix, `--force` for an existing one, its folder
  exists, is a folder and can be written (InvalidOptionError, exit 2; OutputExistsError, exit 5);
- `check_output_folder`: a folder a command creates (with its parents) or replaces: the
  nearest existing ancestor is a folder and can be written;
- `check_destination`: a project folder that `--force` may replace only when mncompile wrote it.

Writability is tested by creating (and removing) a file, because permission bits do not tell
the truth for root, read-only mounts or ACLs.

`write_bytes_atomic`, `write_text_atomic` and `write_tree` write to a temporary name next to
the destination and rename, so readers see the old content or the new, never half of it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from mncompile.errors import InvalidOptionError, MncompileError, ModelError, OutputExistsError


def check_input_file(path: str | Path, what: str = "model", error: type[MncompileError] = ModelError,
                     folder_ok: bool = False, hint: str | None = None) -> Path:
    """`path` if it is a readable regular file (or, with `folder_ok`, a folder); else `error`."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist", hint=hint) from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}", hint=hint) from None
    if stat.S_ISDIR(mode):
        if folder_ok:
            return path
        raise error(f"{what} {path} is a folder, not a file", hint=hint)
    if not stat.S_ISREG(mode):
        raise error(f"{what} {path} is not a regular file (a device, FIFO or socket)", hint=hint)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}", hint=hint) from None
    return path


def read_input_bytes(path: Path, what: str = "model", error: type[MncompileError] = ModelError) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None


def _probe_writable(folder: Path, path: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".mncompile-probe-", dir=folder)
    except OSError as exc:
        raise InvalidOptionError(f"cannot write {path}: folder {folder} is not writable ({exc.strerror})",
                                 hint="choose a folder you can write to for -o") from None
    os.close(fd)
    os.unlink(probe)


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _check_parent(path: Path) -> None:
    """The folder that will hold `path` exists, is a folder, and can be written."""
    parent = path.parent
    if not parent.exists():
        raise InvalidOptionError(f"folder {parent} does not exist", hint="create it first or choose another -o path")
    if not parent.is_dir():
        raise InvalidOptionError(f"cannot write {path}: {parent} is a file, not a folder",
                                 hint="choose another -o path")
    _probe_writable(parent, path)


def check_output_folder(path: str | Path) -> Path:
    """A folder the command creates (parents too) or writes into: refuse when a file is in the way
    or the place is not writable. Nothing is created here."""
    path = Path(path)
    found = _existing_ancestor(path)
    if not found.is_dir():
        raise InvalidOptionError(f"cannot create folder {path}: {found} is a file",
                                 hint="choose another -o path")
    _probe_writable(found, path)
    return path


def check_new_output(path: str | Path, suffix: str, force: bool, example: str) -> Path:
    """Refuse an output file with the wrong suffix, an existing one without `force`, a folder in
    its place, or a folder that is missing, not a folder or not writable."""
    path = Path(path)
    if path.suffix != suffix:
        raise InvalidOptionError(f"output {path} must end in {suffix}", hint=f"e.g. -o {example}")
    if path.is_dir():
        raise InvalidOptionError(f"output {path} is a folder", hint=f"name a file, e.g. -o {path / example}")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists", hint="pass --force to replace it")
    _check_parent(path)
    return path


def check_destination(out: str | Path, force: bool, marker: str) -> Path:
    """Refuse an existing `out` without `force`; with `force`, replace only a folder that an
    earlier run wrote (it holds `marker`) or an empty one, never some other folder. The parent
    must be a writable folder (the tree is written beside it and renamed)."""
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
    _check_parent(out)
    return out


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name and rename: readers never see a partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


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
