"""The pure-Python .tflite flatbuffer verifier, against the C++ flatbuffers verifier as the oracle.

The oracle is LiteRT: `Interpreter(model_content=...)` runs flatc's generated C++ verifier first and
raises ValueError("The model is not a valid Flatbuffer buffer") when it rejects the buffer; any other
outcome (built, or failed later: unresolved op, bad tensor index, ...) means the verifier accepted it.
All oracle buffers go through ONE subprocess (a corrupt model that passes the C++ verifier may crash
the interpreter builder; the parent then records a crash and resumes after that buffer).
"""

from __future__ import annotations

import inspect
import os
import pickle
import random
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mncompile.errors import ModelError
from mncompile.graph.flatbuffer import MAX_TABLES, verify_flatbuffer
from mncompile.graph.tflite_schema import TABLES, UNIONS

TINY = Path(__file__).parent / "data" / "tiny_int8.tflite"

# Where ours may reject while the C++ verifier accepts: each a pattern of our message and why.
STRICTER = {
    r"is not a \w+ member": "unknown union type (C++ accepts any type value, it only verifies known members)",
    r"lies outside its \w+ table": "field past the table's object size or over its vtable offset (C++ checks neither)",
    r"has object size": "object size < 4 (C++ never reads the object size)",
    r"has size [02]: must be even": "vtable of 0 or 2 bytes (C++ takes it as a table without fields)",
    r"8-byte elements .* not 8-byte aligned": "misaligned int64 vector elements (C++ checks the length only)",
    r"stored after the flatbuffer": "Buffer/Operator data offset+size past the file (TFLite checks it later)",
}

_ORACLE = r"""
import pickle, sys
from ai_edge_litert.interpreter import Interpreter
bufs = pickle.load(open(sys.argv[1], "rb"))
for i in range(int(sys.argv[2]), len(bufs)):
    try:
        Interpreter(model_content=bufs[i])
        verdict = "built"
    except ValueError as exc:
        verdict = "reject" if "not a valid Flatbuffer buffer" in str(exc) else "later"
    except Exception:
        verdict = "later"
    print(i, verdict, flush=True)
"""


def cpp_verdicts(bufs: list[bytes], tmp_path: Path) -> list[str]:
    """'reject' where the C++ verifier rejects, else 'built', 'later' or 'crash'."""
    pytest.importorskip("ai_edge_litert.interpreter", reason="LiteRT (the C++ verifier oracle) is not installed")
    src = tmp_path / "bufs.pkl"
    src.write_bytes(pickle.dumps(bufs))
    verdicts: list[str | None] = [None] * len(bufs)
    start = 0
    while start < len(bufs):
        proc = subprocess.run([sys.executable, "-c", _ORACLE, str(src), str(start)], capture_output=True,
                              text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        for line in proc.stdout.splitlines():
            i, verdict = line.split()
            verdicts[int(i)] = verdict
        done = [i for i, v in enumerate(verdicts) if v is not None]
        start = (max(done) + 1) if done else start
        if start < len(bufs) and proc.returncode != 0:
            assert "Traceback" not in proc.stderr, proc.stderr[-2000:]  # the oracle itself failed
            verdicts[start] = "crash"  # the builder died on this one: the verifier had accepted it
            start += 1
    return verdicts  # type: ignore[return-value]


def ours(data: bytes) -> str | None:
    """None if ours accepts, else its message. Anything but ModelError fails the test."""
    try:
        verify_flatbuffer(data, "m.tflite")
    except ModelError as exc:
        assert exc.exit_code == 4 and exc.hint
        return exc.message
    return None


# --- the layout of a valid file, to aim mutations at known positions ------------------------------------


def sites(buf: bytes) -> dict[str, list[tuple]]:
    """Positions of every table, vtable, field, offset, vector length and string end of a VALID file."""
    out: dict[str, list] = {k: [] for k in ("table", "vtable", "entry", "offset", "veclen", "strend", "utype")}
    seen = set()

    def u32(p):
        return struct.unpack_from("<I", buf, p)[0]

    def table(pos, name):
        if (pos, name) in seen:
            return
        seen.add((pos, name))
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        vsize, osize = struct.unpack_from("<HH", buf, vt)
        out["table"].append((pos, name))
        out["vtable"].append((vt, vsize, osize))
        utype = 0
        spec = TABLES[name].split()
        for slot, token in enumerate(spec):
            field, kind = token.split(":")
            e = struct.unpack_from("<H", buf, vt + 4 + 2 * slot)[0] if 4 + 2 * slot < vsize else 0
            if not e:
                continue
            fpos = pos + e
            out["entry"].append((vt + 4 + 2 * slot, e, osize))
            if kind.isdigit():
                union = spec[slot + 1].split(":")[1] if slot + 1 < len(spec) else ""
                if union.startswith("<"):
                    utype = buf[fpos]
                    out["utype"].append((fpos, len(UNIONS[union[1:-1]])))
                continue
            if kind == "-":
                continue
            target = fpos + u32(fpos)
            out["offset"].append((fpos, u32(fpos)))
            if kind == "str":
                out["veclen"].append((target, u32(target), 1, f"{name}.{field}"))
                out["strend"].append(target + 4 + u32(target))
            elif kind.startswith("["):
                inner = kind[1:-1]
                out["veclen"].append((target, u32(target), int(inner) if inner.isdigit() else 4, f"{name}.{field}"))
                if not inner.isdigit():
                    for i in range(u32(target)):
                        epos = target + 4 + 4 * i
                        out["offset"].append((epos, u32(epos)))
                        table(epos + u32(epos), inner)
            elif kind.startswith("<"):
                if utype:
                    table(target, UNIONS[kind[1:-1]][utype - 1])
            else:
                table(target, kind)

    table(u32(0), "Model")
    return out


def put(buf: bytes, pos: int, fmt: str, value: int) -> bytes:
    b = bytearray(buf)
    struct.pack_into(fmt, b, pos, value)
    return bytes(b)


def mutations(buf: bytes, seed: int = 20240601) -> list[tuple[str, bytes]]:
    """A few hundred derandomized corruptions of `buf`: random and aimed at known positions."""
    rng = random.Random(seed)
    n = len(buf)
    s = sites(buf)
    out = []
    for _ in range(90):
        p, bit = rng.randrange(n), rng.randrange(8)
        b = bytearray(buf)
        b[p] ^= 1 << bit
        out.append((f"flip bit {bit} of byte {p}", bytes(b)))
    for _ in range(50):
        p, v = rng.randrange(n), rng.choice([0, 0xFF, 0x80, 0x7F, 1, rng.randrange(256)])
        out.append((f"byte {p} = {v:#x}", buf[:p] + bytes([v]) + buf[p + 1:]))
    for _ in range(15):
        p = rng.randrange(8, n)
        out.append((f"4 random bytes at {p}", buf[:p] + rng.randbytes(4) + buf[p + 4:]))
    for _ in range(12):
        cut = rng.randrange(1, n)
        out.append((f"truncated to {cut}", buf[:cut]))
    aimed = []
    for pos, name in s["table"]:
        soff = struct.unpack_from("<i", buf, pos)[0]
        for v in (pos + 64, pos + 1, -n, soff + 2, soff + 1, soff - 4, 2**31 - 1, -(2**31)):
            aimed.append((f"{name} at {pos}: vtable soffset {soff} -> {v}", put(buf, pos, "<i", v)))
    for vt, vsize, osize in s["vtable"]:
        for v in (0, 2, 3, vsize + 1, vsize + 2, 0xFFFE):
            aimed.append((f"vtable at {vt}: size {vsize} -> {v}", put(buf, vt, "<H", v)))
        for v in (0, 2, osize - 4, osize + 4, 0xFFFF):
            aimed.append((f"vtable at {vt}: object size {osize} -> {v}", put(buf, vt + 2, "<H", v)))
    for epos, e, osize in s["entry"]:
        for v in (1, 2, e + 1, osize, 0xFFFF, 0):
            aimed.append((f"vtable entry at {epos}: {e} -> {v}", put(buf, epos, "<H", v)))
    for fpos, o in s["offset"]:
        for v in (0, 1, 2, o + 4, o - 4, n - fpos, n - fpos - 1, 2**31 - 1, 2**31, 0xFFFFFFFF):
            aimed.append((f"uoffset at {fpos}: {o} -> {v}", put(buf, fpos, "<I", v % 2**32)))
    for vpos, length, elem, _field in s["veclen"]:
        for v in (length + 1, length + 7, (n - vpos) // elem, 0x7FFFFFFF, 0xFFFFFFFF, 0x40000000):
            aimed.append((f"vector at {vpos}: length {length} -> {v}", put(buf, vpos, "<I", v)))
    for end in s["strend"]:
        aimed.append((f"string terminator at {end} -> 'x'", put(buf, end, "<B", ord("x"))))
    for upos, members in s["utype"]:
        for v in (0, 1, members, members + 1, 255):
            aimed.append((f"union type at {upos} -> {v}", put(buf, upos, "<B", v)))
    out += rng.sample(aimed, min(len(aimed), 260))
    return out


def hand_built(buf: bytes) -> list[tuple[str, bytes, bool]]:
    """(what, buffer, does the C++ verifier reject it)."""
    s = sites(buf)
    n = len(buf)
    root = struct.unpack_from("<I", buf, 0)[0]
    shape = next(v for v in s["veclen"] if v[3] == "Tensor.shape")[0]  # subgraph 0, tensor 0
    upos = s["utype"][0][0]
    cases = [
        ("negative vtable offset (vtable before the file)", put(buf, root, "<i", root + 8), True),
        ("vtable past the end", put(buf, root, "<i", root - n - 4), True),
        ("vector length 0x7fffffff", put(buf, shape, "<I", 0x7FFFFFFF), True),
        ("string without its terminator", put(buf, s["strend"][0], "<B", 0x41), True),
        ("union type 255", put(buf, upos, "<B", 255), False),
        ("no TFL3 identifier", buf[:4] + b"TFL2" + buf[8:], True),
    ]
    cases += [(f"truncated at {k}/8", buf[:n * k // 8], True) for k in range(1, 8)]
    return cases


# --- tests -----------------------------------------------------------------------------------------------


def test_valid_tiny_model_passes():
    assert verify_flatbuffer(TINY.read_bytes(), str(TINY)) is None
    assert verify_flatbuffer(bytearray(TINY.read_bytes())) is None


def test_valid_vww_model_passes(shared_data):
    vww = shared_data / "vww_96_int8.tflite"
    if not vww.is_file():
        pytest.skip(f"{vww} is absent")
    data = vww.read_bytes()
    t = time.perf_counter()
    verify_flatbuffer(data, str(vww))
    print(f"verified {vww.name} ({len(data)} bytes) in {1000 * (time.perf_counter() - t):.1f} ms")


def test_models_written_by_mncompile_pass():
    import numpy as np
    import tflite_writer as writer

    # RESHAPE has ReshapeOptions with a vector (an options union member with an offset)
    verify_flatbuffer(writer.reshape((1, 2, 3, 4), (0.5, 0), (1, 24)))
    w = np.ones((32, 3, 3, 1024), np.int8)  # a 300 KB weight buffer
    big = writer.conv2d((1, 8, 8, 1024), (0.5, 0), w, 0.01, None, (0.5, 0))
    t = time.perf_counter()
    verify_flatbuffer(big)
    print(f"verified a {len(big)}-byte model in {1000 * (time.perf_counter() - t):.1f} ms")


def _repacked(edit) -> bytes:
    """The tiny model through flatc's Python object API, after `edit(model)`."""
    import flatbuffers

    s = _schema_module()
    model = s.ModelT.InitFromPackedBuf(TINY.read_bytes(), 0)
    edit(model)
    builder = flatbuffers.Builder(8192)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_data_stored_after_the_flatbuffer_must_be_inside_the_file():
    def external(offset, size, where="buffer"):
        def edit(model):
            if where == "buffer":
                buf = next(b for b in model.buffers if b.data is not None and len(b.data))
                buf.data, buf.offset, buf.size = None, offset, size
            else:
                op = model.subgraphs[0].operators[0]
                op.largeCustomOptionsOffset, op.largeCustomOptionsSize = offset, size
        return _repacked(edit)

    assert ours(external(0, 0)) is None
    assert ours(external(1, 10**6)) is None  # offset 1 is the converter's placeholder: not used
    data = external(16, 64)
    assert ours(data) is None  # inside the file (where it points is the reader's business)
    assert "stored after the flatbuffer (offset 4000) run past the end" in ours(external(4000, len(data)))
    assert "64 bytes of data stored after" in ours(external(len(data) - 63, 64))
    assert "stored after the flatbuffer" in ours(external(10**12, 8, where="operator"))


def test_hand_built_cases_and_their_messages():
    buf = TINY.read_bytes()
    expect = {
        "negative vtable offset (vtable before the file)": "points outside the file",
        "vtable past the end": "points outside the file",
        "vector length 0x7fffffff": "subgraph 0, tensor 0: the shape vector (2147483647 x 4 bytes) runs past",
        "string without its terminator": "is not terminated by a 0 byte",
        "union type 255": "operator 0: the builtin_options_type 255 is not a BuiltinOptions member",
        "no TFL3 identifier": "no TFL3 file identifier",
    }
    for what, data, _ in hand_built(buf):
        message = ours(data)
        assert message is not None, what
        assert message.startswith("cannot read m.tflite as a .tflite flatbuffer: "), message
        if what in expect:
            assert expect[what] in message, (what, message)
    assert "too short" in ours(b"")
    assert "too short" in ours(buf[:7])
    with pytest.raises(ModelError):
        verify_flatbuffer("not bytes")  # type: ignore[arg-type]


def test_agrees_with_the_cpp_verifier(tmp_path):
    buf = TINY.read_bytes()
    cases = [(what, data) for what, data in mutations(buf)]
    hand = hand_built(buf)
    all_bufs = [buf] + [d for _, d in cases] + [d for _, d, _ in hand]
    verdicts = cpp_verdicts(all_bufs, tmp_path)
    assert verdicts[0] == "built", "the oracle must build the unmutated model"
    for (what, _data, cpp_rejects), verdict in zip(hand, verdicts[1 + len(cases):], strict=True):
        assert (verdict == "reject") == cpp_rejects, (what, verdict)
    counts = {"cpp rejects": 0, "ours rejects": 0, "both": 0, "ours only": 0}
    stricter: dict[str, int] = {}
    missed = []
    for (what, data), verdict in zip(cases + [(w, d) for w, d, _ in hand], verdicts[1:], strict=True):
        message = ours(data)
        cpp = verdict == "reject"
        counts["cpp rejects"] += cpp
        counts["ours rejects"] += message is not None
        counts["both"] += cpp and message is not None
        if cpp and message is None:
            missed.append(what)
        elif message is not None and not cpp:
            reason = next((why for pattern, why in STRICTER.items() if re.search(pattern, message)), None)
            assert reason, f"ours rejects what the C++ verifier accepts, for no listed reason: {what}: {message}"
            stricter[reason] = stricter.get(reason, 0) + 1
            counts["ours only"] += 1
    print(f"{len(cases) + len(hand)} corrupted buffers: {counts}; crashes after the verifier: "
          f"{verdicts.count('crash')}; ours stricter: {stricter}")
    assert not missed, f"the C++ verifier rejects, ours accepts: {missed}"
    assert counts["cpp rejects"] > len(cases) // 4, "the oracle rejects too little to be a real check"


def _minimal(subgraphs: int, tensors: int) -> bytes:
    """A Model whose `subgraphs` vector holds `subgraphs` offsets to ONE SubGraph, whose `tensors` vector
    holds `tensors` offsets to ONE empty Tensor: the C++ verifier counts 1 + subgraphs * (1 + tensors)
    tables."""
    b = bytearray(b"\0\0\0\0TFL3")
    b += struct.pack("<HHHHH", 10, 8, 0, 0, 4) + b"\0\0"  # Model vtable at 8: subgraphs at table offset 4
    b += struct.pack("<HHH", 6, 8, 4) + b"\0\0"  # SubGraph vtable at 20: tensors at table offset 4
    b += struct.pack("<HH", 4, 4)  # Tensor vtable at 28: no fields
    model = len(b)  # 32
    struct.pack_into("<I", b, 0, model)
    b += struct.pack("<iI", model - 8, 4)  # the subgraphs vector follows right after
    vec = len(b)
    sub = vec + 4 + 4 * subgraphs
    b += struct.pack("<I", subgraphs) + b"".join(struct.pack("<I", sub - (vec + 4 + 4 * i)) for i in range(subgraphs))
    b += struct.pack("<iI", sub - 20, 4)
    tvec = len(b)
    tensor = tvec + 4 + 4 * tensors
    b += struct.pack("<I", tensors) + b"".join(struct.pack("<I", tensor - (tvec + 4 + 4 * i)) for i in range(tensors))
    b += struct.pack("<i", tensor - 28)
    return bytes(b)


def test_table_count_limit_is_the_cpp_one(tmp_path):
    """Exactly at the C++ verifier's limit: a table reached twice counts twice (8 KB files)."""
    at_limit = _minimal(999, 1000)  # 1 + 999 * 1001 = 1,000,000 tables
    over = _minimal(1000, 999)  # 1 + 1000 * 1000 = 1,000,001 tables
    assert ours(at_limit) is None
    assert "more than 1000000 tables" in ours(over)
    assert MAX_TABLES == 1_000_000
    assert [v == "reject" for v in cpp_verdicts([at_limit, over], tmp_path)] == [False, True]


def test_random_corruption_never_raises_anything_but_model_error():
    buf = TINY.read_bytes()
    rng = random.Random(7)
    for _ in range(1500):
        b = bytearray(buf)
        for _ in range(rng.randrange(1, 6)):
            p = rng.randrange(len(b))
            b[p:p + 4] = rng.randbytes(4)
        ours(bytes(b[:rng.choice([len(b), rng.randrange(len(b))])]))
    for _ in range(300):
        ours(rng.randbytes(4) + b"TFL3" + rng.randbytes(rng.randrange(0, 200)))


def _schema_module():
    from mncompile.graph.reader import schema

    return schema()


_FLAGS = {"Bool": 1, "Int8": 1, "Uint8": 1, "Int16": 2, "Uint16": 2, "Int32": 4, "Uint32": 4, "Float32": 4,
          "Int64": 8, "Uint64": 8, "Float64": 8}


def test_schema_data_matches_flatc_python_output():
    """Every table's slots, names and kinds against flatc's generated Python module (tflite_micro)."""
    s = _schema_module()
    module = Path(inspect.getfile(s)).read_text()
    newer: set[str] = set()
    for name, spec in TABLES.items():
        src = re.search(rf"^class {name}\(object\):\n(.*?)(?=^\S)", module, re.S | re.M).group(1)
        methods = {}
        for m in re.finditer(r"    def (\w+)\(self[^)]*\):\n(.*?)(?=\n    (?:#|def|@)|\Z)", src, re.S):
            off = re.search(r"self\._tab\.Offset\((\d+)\)", m.group(2))
            if off and int(off.group(1)) not in methods:
                methods[int(off.group(1))] = (m.group(1), m.group(2))
        want = {}
        for slot, token in enumerate(spec.split()):
            field, kind = token.split(":")
            if kind != "-":
                want[4 + 2 * slot] = (field, kind)
        # flatc's module may come from a newer schema: fields are only ever appended, so it may have more
        # slots at the end, never different ones
        assert set(want) <= set(methods) and not any(v < max(want, default=0) for v in set(methods) - set(want)), name
        newer.update(f"{name}.{methods[v][0]}" for v in set(methods) - set(want))
        for voff, (field, kind) in want.items():
            method, body = methods[voff]
            assert method.lower() == field.replace("_", "").lower(), (name, field, method)
            flags = re.search(r"number_types\.(\w+)Flags, [ao]", body)
            if kind.isdigit():
                assert flags and _FLAGS[flags.group(1)] == int(kind), (name, field)
            elif kind == "str":
                assert "self._tab.String(" in body, (name, field)
            elif kind.startswith("<"):
                assert "self._tab.Union(" in body, (name, field)
            elif kind.startswith("["):
                inner = kind[1:-1]
                assert "self._tab.Vector(o)" in body, (name, field)
                if inner.isdigit():
                    assert flags and _FLAGS[flags.group(1)] == int(inner), (name, field)
                else:
                    assert f"obj = {inner}()" in body, (name, field)
            else:
                assert "self._tab.Indirect(o + self._tab.Pos)" in body and f"obj = {kind}()" in body, (name, field)
    for union, members in UNIONS.items():
        enum = getattr(s, union)
        assert [getattr(enum, m) for m in members] == list(range(1, len(members) + 1)), union
        newer.update(f"{union}.{k}" for k, v in vars(enum).items() if isinstance(v, int) and v > len(members))
    print(f"fields and union members of the installed schema module newer than ours: {sorted(newer)}")
