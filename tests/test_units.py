"""Tests for mncompile.units: parse_size and format_bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mncompile.errors import InvalidOptionError
from mncompile.units import format_bytes, parse_size


@pytest.mark.parametrize("text, expected", [
    ("6MB", 6 * 1024 * 1024),
    ("512KB", 524288),
    ("1.5MiB", 1572864),
    ("393216", 393216),
    ("  6MB  ", 6 * 1024 * 1024),
    ("6 MB", 6 * 1024 * 1024),
    ("\t512KB\n", 524288),
    ("6mb", 6 * 1024 * 1024),
    ("1.5mib", 1572864),
    ("512KiB", 524288),
    ("100B", 100),
    ("1GB", 1024**3),
    ("1.5KB", 1536),
    ("1", 1),
    # the forms `--budget`, `--ram` and `--flash` document
    ("6MiB", 6 * 1024 * 1024),
    ("512k", 524288),
    ("512K", 524288),
    ("1.5M", 1572864),
    ("2M", 2 * 1024 * 1024),
])
def test_parse_size_accepts(text, expected):
    value = parse_size(text)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize("text", [
    "kB", "1kB", "512kB", "", "   ", "abc", "MB", "-1MB", "-5", "0", "0KB", "0.0MB",
    "1.3B", "1.3", "0.1KB", "1.1MB", "6 TB", "6XB", "1e3", "1,024", "1.", ".5MB", "6M B",
])
def test_parse_size_rejects(text):
    with pytest.raises(InvalidOptionError) as info:
        parse_size(text)
    assert info.value.exit_code == 2
    assert info.value.message


def test_parse_size_rejection_message_names_input_and_hint():
    with pytest.raises(InvalidOptionError) as info:
        parse_size("abc")
    assert "'abc'" in info.value.message
    assert info.value.hint and "KB" in info.value.hint


@given(st.integers(min_value=1, max_value=2**40))
def test_parse_size_integers_property(n):
    assert parse_size(str(n)) == n
    assert parse_size(f"{n}KB") == n * 1024


def test_parse_size_huge_number_is_an_option_error():
    with pytest.raises(InvalidOptionError):
        parse_size("9" * 400)


def test_parse_size_exact_beyond_float_precision():
    assert parse_size(str(2**53 + 1)) == 2**53 + 1


@pytest.mark.parametrize("n, expected", [
    (0, "0 B"),
    (512, "512 B"),
    (1023, "1,023 B"),
    (1024, "1,024 B (1.00 KiB)"),
    (1536, "1,536 B (1.50 KiB)"),
    (393216, "393,216 B (384.00 KiB)"),
    (6 * 1024 * 1024, "6,291,456 B (6.00 MiB)"),
])
def test_format_bytes(n, expected):
    assert format_bytes(n) == expected
