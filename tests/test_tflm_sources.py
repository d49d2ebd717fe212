"""scripts/tflm_sources.py: lays out given TFLM sources offline, each checked against its pin first."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tflm_sources.py"
_spec = importlib.util.spec_from_file_location("tflm_sources", SCRIPT)
ts = importlib.util.module_from_spec(_spec)
sys.modules["tflm_sources"] = ts  # dataclasses look their module up
_spec.loader.exec_module(ts)

PATCH = """--- a/include/flatbuffers/base.h
+++ b/include/flatbuffers/base.h
@@ -1,1 +1,1 @@
-#define FB 1
+#define FB 2
"""

# name -> (archive top folder, files); the tflite-micro tree carries the patch TFLM applies to flatbuffers
TREES = {
    "tflite-micro": {str(ts.MARKER): b"// interpreter\n", "tensorflow/lite/micro/tools/make/flatbuffers.patch":
                     PATCH.encode()},
    "flatbuffers": {"include/flatbuffers/base.h": b"#define FB 1\n", "BUILD": b"x", "src/BUILD.bazel": b"x"},
    "gemmlowp": {"fixedpoint/fixedpoint.h": b"// gemmlowp\n", "fixedpoint/BUILD": b"x", "run.sh": b"#!/bin/sh\n"},
    "ruy": {"ruy/profiler/instrumentation.h": b"// ruy\n", "ruy/BUILD": b"x"},
    "CMSIS_6": {"CMSIS/Core/Include/cmsis_compiler.h": b"// cmsis\n"},
    "CMSIS-NN": {"Include/arm_nnfunctions.h": b"// nn\n"},
}


def make_zip(path: Path, top: str, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(f"{top}/{name}")
            info.create_system = 3
            info.external_attr = (0o100755 if name.endswith(".sh") else 0o100644) << 16
            z.writestr(info, data)


def members_of(files: dict[str, bytes]):
    return [(n, "x" if n.endswith(".sh") else "f", d) for n, d in files.items()]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A SOURCES folder of tiny archives, and PINS holding their digests."""
    sources = tmp_path / "sources"
    sources.mkdir()
    pins = []
    for pin in ts.PINS:
        files = TREES[pin.name]
        make_zip(sources / f"{pin.name}-{pin.commit}.zip", f"{pin.name}-{pin.commit}", files)
        digest = ts.content_digest(members_of(files))
        pins.append(ts.Pin(pin.name, pin.commit, digest, pin.folder, "0" * 32, pin.aliases[:1], pin.delete,
                           pin.patch))
    monkeypatch.setattr(ts, "PINS", tuple(pins))
    monkeypatch.setattr(ts, "TFLM", pins[0])
    return sources


def test_lays_out_the_downloads_as_tflm_does(fake, tmp_path):
    root = tmp_path / "out" / "tflite-micro"
    downloads = ts.lay_out(fake, root, log=lambda m: None)
    assert downloads == root / ts.DOWNLOADS
    assert sorted(p.name for p in downloads.iterdir()) == ["cmsis", "cmsis_nn", "flatbuffers", "gemmlowp", "ruy"]
    assert (downloads / "flatbuffers/include/flatbuffers/base.h").read_bytes() == b"#define FB 2\n"  # patched
    assert not (downloads / "flatbuffers/BUILD").exists() and not (downloads / "flatbuffers/src/BUILD.bazel").exists()
    assert not (downloads / "gemmlowp/fixedpoint/BUILD").exists() and not (downloads / "ruy/ruy/BUILD").exists()
    assert (downloads / "gemmlowp/run.sh").stat().st_mode & 0o111
    assert (downloads / "cmsis_nn/Include/arm_nnfunctions.h").is_file()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["tflite-micro"]  # no staging folder left
    # a second run finds everything in place and writes nothing
    assert ts.lay_out(fake, root, log=lambda m: None) == downloads


def test_a_mismatched_archive_is_refused_before_anything_is_written(fake, tmp_path):
    bad = fake / next(p.name for p in fake.iterdir() if p.name.startswith("ruy"))
    make_zip(bad, "ruy-x", {**TREES["ruy"], "ruy/extra.h": b"not pinned\n"})
    root = tmp_path / "out" / "tflite-micro"
    with pytest.raises(ts.SourceError, match=r"does not hold the pinned ruy .*content digest"):
        ts.lay_out(fake, root, log=lambda m: None)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # and through the command line: exit status 1 and the message on stderr
    assert ts.main([str(fake), "--tflm-root", str(root)]) == 1


def test_tflm_s_md5_pin_of_the_github_archive_is_accepted(fake, tmp_path, monkeypatch):
    archive = next(p for p in fake.iterdir() if p.name.startswith("CMSIS-NN"))
    make_zip(archive, "CMSIS-NN-y", {"Include/arm_nnfunctions.h": b"// another compression, another file\n"})
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    pins = tuple(p if p.name != "CMSIS-NN" else ts.Pin(p.name, p.commit, p.digest, p.folder, md5) for p in ts.PINS)
    monkeypatch.setattr(ts, "PINS", pins)
    downloads = ts.lay_out(fake, tmp_path / "t", log=lambda m: None)
    assert b"another" in (downloads / "cmsis_nn/Include/arm_nnfunctions.h").read_bytes()


def test_a_missing_input_is_named(fake, tmp_path):
    next(p for p in fake.iterdir() if p.name.startswith("gemmlowp")).unlink()
    with pytest.raises(ts.SourceError, match="no gemmlowp in"):
        ts.lay_out(fake, tmp_path / "t", log=lambda m: None)
    assert not (tmp_path / "t").exists()


def test_a_failed_patch_leaves_nothing_behind(fake, tmp_path, monkeypatch):
    archive = next(p for p in fake.iterdir() if p.name.startswith("flatbuffers"))
    files = {**TREES["flatbuffers"], "include/flatbuffers/base.h": b"#define FB 9\n"}
    make_zip(archive, "flatbuffers-z", files)
    pins = tuple(p if p.name != "flatbuffers" else ts.Pin(p.name, p.commit, ts.content_digest(members_of(files)),
                                                          p.folder, p.md5, p.aliases, p.delete, p.patch)
                 for p in ts.PINS)
    monkeypatch.setattr(ts, "PINS", pins)
    with pytest.raises(ts.SourceError, match="flatbuffers.patch"):
        ts.lay_out(fake, tmp_path / "out" / "tflite-micro", log=lambda m: None)
    assert not any((tmp_path / "out").iterdir())


def test_an_existing_folder_it_did_not_write_needs_force(fake, tmp_path):
    root = tmp_path / "t"
    downloads = ts.lay_out(fake, root, log=lambda m: None)
    (downloads / "ruy" / ts.STAMP).unlink()  # as if laid out by hand
    with pytest.raises(ts.SourceError, match="pass --force"):
        ts.lay_out(fake, root, log=lambda m: None)
    ts.lay_out(fake, root, force=True, log=lambda m: None)
    assert (downloads / "ruy" / ts.STAMP).is_file()


def test_a_checkout_must_be_the_pinned_commit(tmp_path):
    repo = tmp_path / "gemmlowp"
    repo.mkdir()
    (repo / "a.h").write_text("// a\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "a.h"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    pin = ts.Pin("gemmlowp", "1" * 40, "", "gemmlowp")
    with pytest.raises(ts.SourceError, match=f"is gemmlowp {head}, the pinned commit is 1111"):
        ts.verified_members(pin, repo)
    assert ts.verified_members(ts.Pin("gemmlowp", head, "", "gemmlowp"), repo) == [("a.h", "f", b"// a\n")]
    (repo / "a.h").write_text("// changed\n")
    with pytest.raises(ts.SourceError, match="modified tracked files"):
        ts.verified_members(ts.Pin("gemmlowp", head, "", "gemmlowp"), repo)


def test_the_digest_ignores_the_container(tmp_path):
    files = TREES["gemmlowp"]
    make_zip(tmp_path / "a.zip", "top", files)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(f"other-top/{name}")
            info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
            t.addfile(info, io.BytesIO(data))
    (tmp_path / "b.tar.gz").write_bytes(buf.getvalue())
    digests = {ts.content_digest(ts.read_members(tmp_path / n)) for n in ("a.zip", "b.tar.gz")}
    assert digests == {ts.content_digest(members_of(files))}
