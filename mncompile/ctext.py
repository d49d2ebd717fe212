"""C source text for data: byte arrays, int8 arrays, string literals, float constants.

Everything here is a pure function of its input, so generated files are
byte-identical from run to run.
"""

from __future__ import annotations

import re

import numpy as np

_HEX = tuple(f"0x{b:02x}" for b in range(256))
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BYTES_PER_LINE = 12
INTS_PER_LINE = 16


def check_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a C identifier")
    return name


def byte_rows(data: bytes, indent: str = "    ") -> str:
    """The body of a byte array initialiser: ``0x1c, 0x00, ...`` rows, each ending in a comma."""
    rows = []
    for start in range(0, len(data), BYTES_PER_LINE):
        rows.append(indent + ", ".join(_HEX[b] for b in data[start:start + BYTES_PER_LINE]) + ",")
    return "\n".join(rows)


def int_rows(values: np.ndarray, indent: str = "    ") -> str:
    """The body of an integer array initialiser, decimal, `INTS_PER_LINE` values a row."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    rows = []
    for start in range(0, len(flat), INTS_PER_LINE):
        rows.append(indent + ", ".join(flat[start:start + INTS_PER_LINE]) + ",")
    return "\n".join(rows)


def c_string_literal(text: str) -> str:
    """`text` as a C/C++ narrow string literal holding its UTF-8 bytes exactly.

    Only printable ASCII other than ``"``, ``\\`` and ``?`` is written as is.
    Every other byte (quotes, backslashes, control characters, every byte of a
    non-ASCII character) becomes a three-digit octal escape, which can never
    swallow the character after it (a hex escape can) and needs no
    source-charset support from the compiler. ``?`` is escaped so no trigraph
    (``??/``) can form. The result is inert: nothing in `text` can end the
    literal, start a comment or reach the preprocessor.
    """
    out = []
    for b in text.encode("utf-8"):
        if 0x20 <= b <= 0x7E and b not in (0x22, 0x5C, 0x3F):
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_comment_text(text: str) -> str:
    """`text` made safe inside a ``/* */`` or ``//`` comment: printable ASCII only, no ``*/``,
    no line breaks, no backslash at the end (which would continue a ``//`` comment)."""
    safe = "".join(c if 0x20 <= ord(c) <= 0x7E and c != "\\" else "?" for c in text)
    return safe.replace("*/", "*?")


def c_float(value: float) -> str:
    """A float32 value as a C literal that reads back to the same float32 (``%.9g``)."""
    v = float(np.float32(value))
    if not np.isfinite(v):
        raise ValueError(f"{value} has no C float literal")
    text = f"{v:.9g}"
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


FLOATS_PER_LINE = 6


def float_rows(values, indent: str = "    ") -> str:
    """The body of a float array initialiser: C float literals that read back to the same float32."""
    flat = [c_float(v) for v in np.asarray(values, dtype=np.float32).reshape(-1)]
    return "\n".join(indent + ", ".join(flat[i:i + FLOATS_PER_LINE]) + ","
                     for i in range(0, len(flat), FLOATS_PER_LINE))
