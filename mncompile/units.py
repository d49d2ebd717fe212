"""Byte sizes as embedded engineers write them.

``KB``/``MB`` are binary (1024-based), as in microcontroller datasheets
("1 MB SRAM" on an STM32H7 is 1,048,576 bytes); ``KiB``/``MiB`` mean the
same; ``kB`` is not accepted to avoid the decimal/binary trap. A bare number
is bytes.
"""

from __future__ import annotations

import re
from fractions import Fraction

from mncompile.errors import InvalidOptionError

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2,
          "MIB": 1024**2, "G": 1024**3, "GB": 1024**3, "GIB": 1024**3}
MAX_BYTES = (1 << 63) - 1  # what a signed 64-bit size holds
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    match = _SIZE.match(str(text))
    unit = match.group(2) if match else ""
    if not match or unit.upper() not in _UNITS or unit == "kB":
        raise InvalidOptionError(f"cannot read size {text!r}",
                                 hint="write it like 6MB, 512KB, 1.5MiB or 393216 (bytes); "
                                      "KB and MB are 1024-based")
    value = Fraction(match.group(1)) * _UNITS[unit.upper()]  # exact: no float rounding
    if value.denominator != 1 or value <= 0 or value > MAX_BYTES:
        raise InvalidOptionError(f"size {text!r} must be a positive whole number of bytes below 2**63")
    return int(value)


def format_bytes(n: int) -> str:
    for unit, size in (("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n:,} B ({n / size:.2f} {unit})"
    return f"{n:,} B"
