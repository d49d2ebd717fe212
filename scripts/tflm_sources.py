#!/usr/bin/env python3
"""Lay out the pinned TFLM sources offline, from archives or checkouts you already have.

    python3 scripts/tflm_sources.py SOURCES --tflm-root DIR [--force]
    python3 scripts/tflm_sources.py --digest ARCHIVE_OR_CHECKOUT ...

SOURCES is a folder holding, for each of tflite-micro, flatbuffers, gemmlowp, ruy, CMSIS_6 and CMSIS-NN,
either an archive (.zip, .tar, .tar.gz, .tgz: GitHub's archive/<commit>.zip or `git archive`) or a git
checkout (a folder with .git). An entry is recognised by its name: it starts with the project's name
(any case; `tflite-micro-90b983c2....zip`, `CMSIS-NN/`), its pinned commit (`719139ce....zip`, as wget
saves GitHub's archive) or, for flatbuffers, its tag (`v25.9.23.zip`).

Each is checked against its pin before anything is written:
- a checkout: `git rev-parse HEAD` must be the pinned commit and its tracked files unmodified; its files
  are taken from `git archive HEAD` (the same files as GitHub's archive);
- an archive: the sha256 "content digest" of its files (below) must equal the pin, or, for the five
  third-party archives, the archive's MD5 must equal the one TFLM's own download scripts pin for the
  GitHub URL (tools/make/third_party_downloads.inc, flatbuffers_download.sh, ext_libs/cmsis*_download.sh
  at the pinned tflite-micro commit). The content digest does not depend on how the archive was
  compressed: sha256 over the sorted lines "KIND\\0PATH\\0SHA256(CONTENT)\\n" of every file (KIND f, or x
  when executable) and symbolic link (KIND l, CONTENT its target), paths relative to the archive's single
  top folder, folders themselves not counted.

Then they are laid out as TFLM's Makefile downloads them (DIR/tensorflow/lite/micro/tools/make/
downloads/): flatbuffers/ (its BUILD and BUILD.bazel files deleted and TFLM's flatbuffers.patch
applied with `patch -p1`), gemmlowp/ and ruy/ (files named *BUILD deleted), cmsis/ (CMSIS_6) and
cmsis_nn/ (CMSIS-NN). Pigweed, kissfft, Cortex_DFP and the toolchain (which TFLM's
`third_party_downloads` also fetches) are not needed to build mncompile's TFLM projects.

--tflm-root DIR: when DIR does not exist, the tflite-micro entry of SOURCES is unpacked there; when it
exists it must be a git checkout of the pinned commit (or a tree this script made) and SOURCES needs no
tflite-micro. Everything is unpacked and patched in a temporary folder beside its destination and moved
into place only when all of it succeeded, so a failure leaves nothing half-written. A destination folder
that exists already is kept when this script wrote it from the same pin, an error otherwise (--force
replaces it). Exit status 0 on success, 1 on a missing or mismatched input (the message says which).
Standard library only (plus `git` for checkouts and `patch` for flatbuffers).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")
MARKER = Path("tensorflow/lite/micro/micro_interpreter.cc")
STAMP = ".tflm_sources.json"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class Pin:
    name: str
    commit: str
    digest: str  # content digest (module docstring) of the commit's `git archive`
    folder: str  # under downloads/ ("" for tflite-micro itself)
    md5: str = ""  # TFLM's pin of GitHub's archive bytes
    aliases: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()  # file names (a leading * : name suffixes) TFLM's scripts delete
    patch: str = ""  # a patch in the tflite-micro tree, applied with patch -p1
    url: str = ""  # where the archive is published (GitHub: owner/name/archive/COMMIT.zip)
    names: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(a.lower() for a in (self.name, self.commit, *self.aliases)))


TFLM = Pin("tflite-micro", "90b983c2b3f1480642e040bbd2ddb37b998f3424",
           digest="644e0cad32e174a1f6e3cdc7bdf1645186b92b55d168319c7200f41f72cf349d", folder="",
           url="https://github.com/tensorflow/tflite-micro/archive/90b983c2b3f1480642e040bbd2ddb37b998f3424.zip")
PINS = (
    TFLM,
    Pin("flatbuffers", "187240970746d00bbd26b0f5873ed54d2477f9f3",  # tag v25.9.23
        digest="9c8c622a7b5c4f8315aa83cc9733082ad2eb4e46bfe6ab9cabff4d8566b85566", folder="flatbuffers",
        md5="023eca1e211d64007124420cd6be29c7", aliases=("v25.9.23", "25.9.23"), delete=("BUILD", "BUILD.bazel"),
        patch="tensorflow/lite/micro/tools/make/flatbuffers.patch",
        url="https://github.com/google/flatbuffers/archive/refs/tags/v25.9.23.zip"),
    Pin("gemmlowp", "719139ce755a0f31cbf1c37f7f98adcc7fc9f425",
        digest="ed3adb01eab1d6a85f0acac5e846cd95778c3e174a136ce4026abf1bafe74e6e", folder="gemmlowp",
        md5="7e8191b24853d75de2af87622ad293ba", delete=("*BUILD",),
        url="https://github.com/google/gemmlowp/archive/719139ce755a0f31cbf1c37f7f98adcc7fc9f425.zip"),
    Pin("ruy", "d37128311b445e758136b8602d1bbd2a755e115d",
        digest="c838c46810fe767fc029158d575bce4bffdb4f49b3c2ac1c47e67b5f14a3eda8", folder="ruy",
        md5="abf7a91eb90d195f016ebe0be885bb6e", delete=("*BUILD",),
        url="https://github.com/google/ruy/archive/d37128311b445e758136b8602d1bbd2a755e115d.zip"),
    Pin("CMSIS_6", "5782d6f8057906d360f4b95ec08a2354afe5c9b9",
        digest="2e8389e6471806838b179874de6975534f36546dcf6d50477e1947a458c2eadc", folder="cmsis",
        md5="563e7c6465f63bdc034359e9b536b366",
        url="https://github.com/ARM-software/CMSIS_6/archive/5782d6f8057906d360f4b95ec08a2354afe5c9b9.zip"),
    Pin("CMSIS-NN", "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae",
        digest="c1ff49253ac3b5207ee524d472f5b3b2c4173bfefa79fcc8b3020b8d8370f5e2", folder="cmsis_nn",
        md5="c960031e7d10cf31c477fb34ef460106", aliases=("cmsis_nn",),
        url="https://github.com/ARM-software/CMSIS-NN/archive/4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae.zip"),
)


class SourceError(Exception):
    """A missing, ambiguous or mismatched input, or a destination in the way."""


# --- reading archives and checkouts ------------------------------------------------------------

Member = tuple[str, str, bytes]  # (path, kind "f" | "x" | "l", content or link target)


def _safe(path: str) -> str:
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise SourceError(f"unsafe path {path!r} in an archive")
    return str(p)


def _zip_members(data: bytes) -> Iterator[Member]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            mode = info.external_attr >> 16 if info.create_system == 3 else 0
            kind = "l" if stat.S_ISLNK(mode) else "x" if mode & 0o111 else "f"
            yield info.filename, kind, z.read(info)


def _tar_members(data: bytes) -> Iterator[Member]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for info in t:
            if info.issym():
                yield info.name, "l", info.linkname.encode()
            elif info.isfile():
                yield info.name, "x" if info.mode & 0o111 else "f", t.extractfile(info).read()


def _strip_top(members: list[Member]) -> list[Member]:
    """Drop the single top folder every path shares (GitHub's `repo-commit/`), as TFLM's scripts do."""
    tops = {PurePosixPath(p).parts[0] for p, _, _ in members}
    if len(tops) == 1 and all(len(PurePosixPath(p).parts) > 1 for p, _, _ in members):
        return [(str(PurePosixPath(*PurePosixPath(p).parts[1:])), k, c) for p, k, c in members]
    return members


def _git(path: Path, *args: str, binary: bool = False):
    proc = subprocess.run(["git", "-C", str(path), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        raise SourceError(f"git {' '.join(args)} failed in {path}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout if binary else proc.stdout.decode().strip()


def read_members(path: Path) -> list[Member]:
    """The files of an archive, or of a checkout's HEAD, paths relative to its top folder."""
    if path.is_dir():
        members = list(_tar_members(_git(path, "archive", "--format=tar", "HEAD", binary=True)))
    elif path.name.lower().endswith(".zip"):
        members = list(_zip_members(path.read_bytes()))
    else:
        members = list(_tar_members(path.read_bytes()))
    if not members:
        raise SourceError(f"{path} holds no files")
    return [(_safe(p), k, c) for p, k, c in _strip_top(members)]


def content_digest(members: list[Member]) -> str:
    h = hashlib.sha256()
    for path, kind, content in sorted(members, key=lambda m: m[0].encode()):
        h.update(f"{kind}\0{path}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return h.hexdigest()


# --- finding and checking the inputs -------------------------------------------------------------

def find_entry(pin: Pin, sources: Path) -> Path:
    found = []
    for entry in sorted(sources.iterdir()):
        name = entry.name.lower()
        if entry.is_dir() and not (entry / ".git").exists():
            continue
        if entry.is_file() and not name.endswith(ARCHIVE_SUFFIXES):
            continue
        if any(name.startswith(n) for n in pin.names):
            found.append(entry)
    if not found:
        raise SourceError(f"no {pin.name} in {sources}: put its archive there ({pin.url}) or a git checkout "
                          f"of {pin.commit}, named {pin.name}...")
    if len(found) > 1:
        raise SourceError(f"several {pin.name} entries in {sources}: {', '.join(f.name for f in found)}; keep one")
    return found[0]


def verified_members(pin: Pin, entry: Path) -> list[Member]:
    """The entry's files, after checking them against the pin (SourceError on a mismatch)."""
    if entry.is_dir():
        head = _git(entry, "rev-parse", "HEAD")
        if head != pin.commit:
            raise SourceError(f"{entry} is {pin.name} {head}, the pinned commit is {pin.commit} "
                              f"(git -C {entry} checkout {pin.commit})")
        if _git(entry, "status", "--porcelain", "--untracked-files=no"):
            raise SourceError(f"{entry} has modified tracked files; the pinned {pin.name} {pin.commit} is wanted")
        return read_members(entry)
    md5 = hashlib.md5(entry.read_bytes()).hexdigest()  # noqa: S324 - TFLM pins its downloads by MD5
    members = read_members(entry)
    if pin.md5 and md5 == pin.md5:
        return members
    digest = content_digest(members)
    if digest != pin.digest:
        raise SourceError(f"{entry} does not hold the pinned {pin.name} {pin.commit}: content digest {digest}, "
                          f"pinned {pin.digest}" + (f"; archive MD5 {md5}, TFLM pins {pin.md5}" if pin.md5 else ""))
    return members


def check_tflm_root(root: Path) -> None:
    if not (root / MARKER).is_file():
        raise SourceError(f"--tflm-root {root} exists and is no tflite-micro tree (no {MARKER})")
    stamp = root / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("commit") == TFLM.commit:
        return
    if not (root / ".git").exists():
        raise SourceError(f"--tflm-root {root} is no git checkout, and this script did not write it: "
                          f"give a folder that does not exist yet, or a checkout of {TFLM.commit}")
    head = _git(root, "rev-parse", "HEAD")
    if head != TFLM.commit:
        raise SourceError(f"--tflm-root {root} is tflite-micro {head}, the pinned commit is {TFLM.commit}")


# --- writing -------------------------------------------------------------------------------------

def write_members(members: list[Member], dest: Path, pin: Pin) -> None:
    dest.mkdir(parents=True)
    for path, kind, content in members:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "l":
            os.symlink(content.decode(), target)
        else:
            target.write_bytes(content)
            if kind == "x":
                target.chmod(0o755)
    (dest / STAMP).write_text(json.dumps({"name": pin.name, "commit": pin.commit}) + "\n")


def delete_build_files(dest: Path, names: tuple[str, ...]) -> None:
    for f in dest.rglob("*"):
        if f.is_file() and any(f.name.endswith(n[1:]) if n.startswith("*") else f.name == n for n in names):
            f.unlink()


def apply_patch(dest: Path, patch: Path) -> None:
    if shutil.which("patch") is None:
        raise SourceError("the `patch` program is needed to apply TFLM's flatbuffers.patch (apt-get install patch)")
    proc = subprocess.run(["patch", "-p1", "--batch", "--forward", "-d", str(dest), "-i", str(patch)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SourceError(f"applying {patch} to {dest} failed:\n{proc.stdout}{proc.stderr}")


def is_stamped(dest: Path, pin: Pin) -> bool:
    stamp = dest / STAMP
    return stamp.is_file() and json.loads(stamp.read_text()).get("commit") == pin.commit


def lay_out(sources: Path, tflm_root: Path, force: bool = False, log=print) -> Path:
    """Check every input, then lay the sources out; returns the downloads folder."""
    if not sources.is_dir():
        raise SourceError(f"{sources} is not a folder")
    new_root = not tflm_root.exists()
    if not new_root:
        check_tflm_root(tflm_root)
    downloads = tflm_root / DOWNLOADS
    todo = []
    for pin in PINS[1:]:
        dest = downloads / pin.folder
        if dest.exists() and is_stamped(dest, pin) and not force:
            log(f"{pin.name}: {dest} already holds {pin.commit[:12]}")
        elif dest.exists() and not force:
            raise SourceError(f"{dest} exists and was not laid out from the pinned {pin.name} {pin.commit} "
                              f"by this script: delete it, or pass --force to replace it")
        else:
            todo.append(pin)
    wanted = ([TFLM] if new_root else []) + todo
    checked = {}
    for pin in wanted:  # every input checked before anything is written
        entry = find_entry(pin, sources)
        log(f"{pin.name}: checking {entry}")
        checked[pin.name] = verified_members(pin, entry)
    if not wanted:
        return downloads

    parent = tflm_root.parent if new_root else downloads.parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".tflm_sources-", dir=parent))
    try:
        tree = stage / "tflite-micro" if new_root else tflm_root
        if new_root:
            write_members(checked[TFLM.name], tree, TFLM)
        for pin in todo:
            dest = stage / pin.folder
            write_members(checked[pin.name], dest, pin)
            delete_build_files(dest, pin.delete)
            if pin.patch:
                apply_patch(dest, tree / pin.patch)
            log(f"{pin.name}: unpacked")
        if new_root:
            (tree / DOWNLOADS).mkdir(parents=True, exist_ok=True)
            for pin in todo:
                (stage / pin.folder).rename(tree / DOWNLOADS / pin.folder)
            tree.rename(tflm_root)
        else:
            downloads.mkdir(parents=True, exist_ok=True)
            for pin in todo:
                if (downloads / pin.folder).exists():
                    shutil.rmtree(downloads / pin.folder)
                (stage / pin.folder).rename(downloads / pin.folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return downloads


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sources", nargs="?", type=Path, help="folder of archives and/or checkouts")
    p.add_argument("--tflm-root", type=Path, help="the tflite-micro tree to lay out (created when absent)")
    p.add_argument("--force", action="store_true", help="replace third-party folders this script did not write")
    p.add_argument("--digest", nargs="+", type=Path, metavar="PATH", help="print the content digest of archives")
    args = p.parse_args(argv)
    try:
        if args.digest:
            for path in args.digest:
                print(content_digest(read_members(path)), path)
            return 0
        if args.sources is None or args.tflm_root is None:
            p.error("give SOURCES and --tflm-root (or --digest)")
        root = args.tflm_root.resolve()
        downloads = lay_out(args.sources.resolve(), root, args.force,
                            log=lambda m: print(f"[tflm_sources] {m}", file=sys.stderr))
    except (SourceError, OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"TFLM_ROOT={root} CMSIS_NN_ROOT={downloads / 'cmsis_nn'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
