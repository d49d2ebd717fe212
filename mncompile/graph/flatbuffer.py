"""A structural verifier for .tflite flatbuffers, in pure Python: `verify_flatbuffer`.

It checks what flatc's C++ Verifier (flatbuffers/verifier.h) checks for the TFLite schema, before
any reader trusts an offset: the generated Python readers do not check bounds, and Python's
`struct.unpack_from` happily reads a negative offset from the end of the buffer. The schema is
data (`mncompile.graph.tflite_schema`, from tflite-micro's
tensorflow/compiler/mlir/lite/schema/schema.fbs at commit 90b983c2), walked from the root
`Model`:

- the file is at least 8 bytes, has the "TFL3" identifier at bytes 4..8, and its root offset
  points inside it;
- every table: 4-byte aligned; its *signed* offset to its vtable lands inside the file, on a
  2-byte boundary; the vtable size is even, >= 4 and fits in the file; the table's object size
  (second vtable entry) is >= 4 and fits in the file;
- every present field of the schema: inside its table's object (after the 4-byte vtable offset,
  within the object size), aligned to its size (as the C++ verifier requires);
- every offset field: 4-byte aligned, non-zero, below 2**31 (forward), pointing inside the file;
- vectors: 4-byte aligned length, length * element size inside the file, 8-byte elements 8-byte
  aligned; strings: bytes and the terminating 0 inside the file; vectors of tables: every element;
- unions: the type is NONE or a known member, and the table verifies as that member;
- Buffer.offset/size and Operator.large_custom_options_offset/size (data stored after the
  flatbuffer in models over 2 GB; used when offset > 1): offset + size inside the file;
- nesting depth <= 64 and tables visited <= 1,000,000, counted as the C++ verifier counts them
  (a table reached twice counts twice); a table or vector of tables already verified is not
  walked again (its count is added), so the work is O(file size) plus at most one cheap step
  per counted table: a malicious file cannot make it loop, recurse or take long.

Stricter than the C++ verifier (which the tests use as the oracle): unknown union types (C++
accepts them), vtables smaller than 4 bytes, fields outside the table's object size (C++ ignores
the object size), misaligned 8-byte vector elements (C++ checks the length field only), and the
>2 GB data offsets (TFLite checks those later, when it builds the interpreter). Not checked, like
the C++ verifier: slots the schema does not know (written by a newer schema), deprecated fields,
force_align of vectors (Buffer.data's 16 is a converter convention), overlapping objects, and
every semantic rule: required fields (a Model without subgraphs is structurally valid), indices
in range, shapes, enum values of scalar fields. Those are the readers' business.
"""

from __future__ import annotations

import struct

from mncompile.errors import ModelError
from mncompile.graph.tflite_schema import TABLES, UNIONS

MAX_DEPTH = 64
MAX_TABLES = 1_000_000
_MAX_SIZE = 2**31 - 1  # FLATBUFFERS_MAX_BUFFER_SIZE: vectors beyond it cannot exist
_HINT = "check the file is complete and was written by a TFLite converter"

_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U64 = struct.Struct("<Q").unpack_from

# Field kinds, compiled from the schema strings.
_SCALAR, _UTYPE, _STRING, _VECTOR, _STRINGS, _TABLES, _TABLE, _UNION = range(8)
_NOUN = {_STRING: "string", _VECTOR: "vector", _STRINGS: "vector", _TABLES: "vector", _TABLE: "table", _UNION: "table"}

# (offset field, size field) of tables that may point at data stored after the flatbuffer.
_EXTERNAL = {"Buffer": ("offset", "size"), "Operator": ("large_custom_options_offset", "large_custom_options_size")}


def _compile(spec: str) -> tuple[tuple[int, str, int, object], ...]:
    """'name:kind ...' -> ((vtable offset, name, kind, argument), ...), deprecated slots left out."""
    fields = []
    tokens = spec.split()
    for slot, token in enumerate(tokens):
        name, kind = token.split(":")
        voff = 4 + 2 * slot
        if kind == "-":
            continue
        if kind.isdigit():
            nxt = tokens[slot + 1].split(":")[1] if slot + 1 < len(tokens) else ""
            if nxt.startswith("<") and name == tokens[slot + 1].split(":")[0] + "_type":
                fields.append((voff, name, _UTYPE, nxt[1:-1]))
            else:
                fields.append((voff, name, _SCALAR, int(kind)))
        elif kind == "str":
            fields.append((voff, name, _STRING, None))
        elif kind.startswith("<"):
            fields.append((voff, name, _UNION, kind[1:-1]))
        elif kind.startswith("["):
            inner = kind[1:-1]
            if inner.isdigit():
                fields.append((voff, name, _VECTOR, int(inner)))
            elif inner == "str":
                fields.append((voff, name, _STRINGS, None))
            else:
                fields.append((voff, name, _TABLES, inner))
        else:
            fields.append((voff, name, _TABLE, kind))
    return tuple(fields)


_SCHEMA = {name: _compile(spec) for name, spec in TABLES.items()}


class _Bad(Exception):
    """What is wrong; `where` collects the path from the inside out while it propagates."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what
        self.where: list[str] = []


def _label(field: str) -> str:
    """'subgraphs' -> 'subgraph', the name of one element of a vector of tables."""
    return (field[:-1] if field.endswith("s") else field).replace("_", " ")


class _Verifier:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.n = len(buf)
        self.tables = 0
        self.depth = 0
        self.done: dict[tuple, int] = {}  # verified (position, type) -> tables counted inside it

    def _count(self, k: int) -> None:
        self.tables += k
        if self.tables > MAX_TABLES:
            raise _Bad(f"more than {MAX_TABLES} tables (the C++ verifier's limit): shared or overlapping objects?")

    def _past_end(self, what: str, pos: int, size: int) -> _Bad:
        return _Bad(f"{what} runs past the end of the file (offset {pos}, {size} bytes, file {self.n} bytes)")

    def offset(self, pos: int, what: str) -> int:
        """The target of the uoffset at `pos`, checked as VerifyOffset does."""
        if pos & 3:
            raise _Bad(f"the offset to {what} (at {pos}) is not 4-byte aligned")
        if pos + 4 > self.n:
            raise self._past_end(f"the offset to {what}", pos, 4)
        o = _U32(self.buf, pos)[0]
        if o == 0 or o > _MAX_SIZE:
            raise _Bad(f"the offset to {what} (at {pos}) is {o}: " + ("zero" if o == 0 else "negative as int32"))
        if pos + o >= self.n:
            raise _Bad(f"{what} starts past the end of the file (offset {pos + o}, file {self.n} bytes)")
        return pos + o

    def vector(self, pos: int, elem: int, what: str) -> int:
        """Checks the vector at `pos` of `elem`-byte elements; returns its length."""
        if pos & 3:
            raise _Bad(f"{what} (at {pos}) is not 4-byte aligned")
        if pos + 4 > self.n:
            raise self._past_end(f"the length of {what}", pos, 4)
        length = _U32(self.buf, pos)[0]
        if length >= _MAX_SIZE // elem or pos + 4 + length * elem > self.n:
            raise self._past_end(f"{what} ({length} x {elem} bytes)", pos, 4 + length * elem)
        if elem == 8 and length and (pos + 4) & 7:
            raise _Bad(f"the 8-byte elements of {what} (at {pos + 4}) are not 8-byte aligned")
        return length

    def string(self, pos: int, what: str) -> None:
        end = pos + 4 + self.vector(pos, 1, what)
        if end >= self.n:
            raise self._past_end(f"{what} (with its terminating 0)", pos, end + 1 - pos)
        if self.buf[end]:
            raise _Bad(f"{what} (at {pos}, {end - pos - 4} bytes) is not terminated by a 0 byte")

    def table_vector(self, pos: int, name: str, field: str) -> None:
        key = (pos, name, "vector")
        if key in self.done:
            return self._count(self.done[key])
        length = self.vector(pos, 4, f"the {field} vector")
        start = self.tables
        done = self.done
        for i, o in enumerate(struct.unpack_from(f"<{length}I", self.buf, pos + 4)):
            target = pos + 4 + 4 * i + o
            seen = done.get((target, name))
            if seen is not None:  # shared: counted again, as C++ does, but not walked again
                self.tables += seen
                continue
            try:
                self.table(target, name)
            except _Bad as bad:
                bad.where.append(f"{_label(field)} {i}")
                raise
        self._count(0)
        done[key] = self.tables - start

    def table(self, pos: int, name: str) -> None:
        key = (pos, name)
        if key in self.done:
            return self._count(self.done[key])
        start = self.tables
        self._count(1)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Bad(f"tables nested more than {MAX_DEPTH} deep")
        buf, n = self.buf, self.n
        if pos & 3:
            raise _Bad(f"the {name} table (at {pos}) is not 4-byte aligned")
        if pos + 4 > n:
            raise self._past_end(f"the {name} table", pos, 4)
        soff = _I32(buf, pos)[0]
        vt = pos - soff
        if vt < 0 or vt + 2 > n:
            raise _Bad(f"the vtable offset {soff} of the {name} table (at {pos}) points outside the file "
                       f"(to {vt}, file {n} bytes)")
        if vt & 1:
            raise _Bad(f"the vtable of the {name} table (at {vt}) is not 2-byte aligned")
        vsize = _U16(buf, vt)[0]
        if vsize & 1 or vsize < 4:
            raise _Bad(f"the vtable of the {name} table (at {vt}) has size {vsize}: must be even and at least 4")
        if vt + vsize > n:
            raise self._past_end(f"the vtable of the {name} table", vt, vsize)
        osize = _U16(buf, vt + 2)[0]
        if osize < 4 or pos + osize > n:
            raise _Bad(f"the {name} table (at {pos}) has object size {osize}: "
                       + ("less than 4" if osize < 4 else f"past the end of the file ({n} bytes)"))
        utype = 0
        for voff, field, kind, arg in _SCHEMA[name]:
            if voff >= vsize:
                break
            e = _U16(buf, vt + voff)[0]
            if not e:
                if kind == _UTYPE:
                    utype = 0
                continue
            size = arg if kind == _SCALAR else 1 if kind == _UTYPE else 4
            if e < 4 or e + size > osize:
                raise _Bad(f"the {field} field (at {e}, {size} bytes) lies outside its {name} table "
                           f"({osize} bytes at {pos})")
            fpos = pos + e
            if fpos % size:
                raise _Bad(f"the {field} field (at {fpos}) is not {size}-byte aligned")
            if kind == _SCALAR:
                continue
            if kind == _UTYPE:
                utype = buf[fpos]
                if utype > len(UNIONS[arg]):
                    raise _Bad(f"the {field} {utype} is not a {arg} member (0..{len(UNIONS[arg])})")
                continue
            target = self.offset(fpos, f"the {field} {_NOUN[kind]}")
            if kind == _STRING:
                self.string(target, f"the {field} string")
            elif kind == _VECTOR:
                self.vector(target, arg, f"the {field} vector")
            elif kind == _TABLES:
                self.table_vector(target, arg, field)
            elif kind == _STRINGS:
                for i in range(self.vector(target, 4, f"the {field} vector")):
                    epos = target + 4 + 4 * i
                    self.string(epos + _U32(buf, epos)[0], f"string {i} of {field}")
            elif kind == _TABLE or (kind == _UNION and utype):
                member = arg if kind == _TABLE else UNIONS[arg][utype - 1]
                try:
                    self.table(target, member)
                except _Bad as bad:
                    bad.where.append(field if kind == _TABLE else f"{field} ({member})")
                    raise
        if name in _EXTERNAL:
            self._external(pos, vt, vsize, name)
        self.depth -= 1
        self.done[key] = self.tables - start

    def _external(self, pos: int, vt: int, vsize: int, name: str) -> None:
        values = {}
        for voff, field, _kind, _arg in _SCHEMA[name]:
            if field in _EXTERNAL[name]:
                e = _U16(self.buf, vt + voff)[0] if voff < vsize else 0
                values[field] = _U64(self.buf, pos + e)[0] if e else 0
        where, size = (values[f] for f in _EXTERNAL[name])
        if where > 1 and where + size > self.n:
            raise _Bad(f"its {size} bytes of data stored after the flatbuffer ({_EXTERNAL[name][0]} {where}) "
                       f"run past the end of the file ({self.n} bytes)")

    def model(self) -> None:
        n = self.n
        if n < 8:
            raise _Bad(f"the file is {n} bytes, too short for a flatbuffer")
        if self.buf[4:8] != b"TFL3":
            raise _Bad(f"no TFL3 file identifier at bytes 4..8 (found {bytes(self.buf[4:8])!r})")
        self.table(self.offset(0, "the root table"), "Model")


def verify_flatbuffer(data: bytes, source: str = "model") -> None:
    """Raises ModelError unless `data` is a structurally valid TFLite flatbuffer (see the module)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ModelError(f"cannot read {source} as a .tflite flatbuffer: expected bytes, got {type(data).__name__}",
                         hint=_HINT)
    verifier = _Verifier(bytes(data))
    try:
        verifier.model()
    except _Bad as bad:
        where = ", ".join(reversed(bad.where))
        raise ModelError(f"cannot read {source} as a .tflite flatbuffer: {where + ': ' if where else ''}{bad.what}",
                         hint=_HINT) from None
