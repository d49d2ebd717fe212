"""C text generation: string literals, float literals and byte arrays, checked by compiling
them with real compilers and reading the values back from the compiled program."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from mncompile.ctext import byte_rows, c_comment_text, c_float, c_string_literal, int_rows

HOSTILE_LABELS = [
    'a"; system("x"); //',
    "back\\slash\\",
    "??/ trigraph ??= ??' ??(",
    "*/ comment end /* and // start",
    "line\nbreak\r\ttab\0nul",
    "héllo wörld",
    "日本語ラベル",
    "emoji 🐍",
    "\\x41 not a hex escape \\101",
    "#define X 1",
    "",
]

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="host g++ is not installed")


def _run_cpp(tmp_path, source: str) -> bytes:
    src = tmp_path / "prog.cc"
    src.write_text(source, encoding="ascii")  # the generated text must be pure ASCII
    exe = tmp_path / "prog"
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", "-pedantic",
                    "-ffp-contract=off", "-o", str(exe), str(src)], check=True, capture_output=True, text=True)
    return subprocess.run([str(exe)], check=True, capture_output=True).stdout


@needs_gxx
def test_hostile_labels_compile_and_read_back_byte_for_byte(tmp_path):
    entries = ",\n".join(f"    {{{c_string_literal(s)}, sizeof({c_string_literal(s)}) - 1}}" for s in HOSTILE_LABELS)
    source = f"""
#include <cstdio>
#include <cstddef>
struct Label {{ const char* text; size_t size; }};
static const Label kLabels[] = {{
{entries}
}};
int main() {{
  for (const Label& l : kLabels) {{
    for (size_t i = 0; i < l.size; ++i) std::printf("%02x", static_cast<unsigned char>(l.text[i]));
    std::printf("\\n");
  }}
  return 0;
}}
"""
    lines = _run_cpp(tmp_path, source).decode().splitlines()
    assert lines == [s.encode("utf-8").hex() for s in HOSTILE_LABELS]


def test_literals_are_plain_ascii_without_comment_or_quote_breaks():
    for s in HOSTILE_LABELS:
        lit = c_string_literal(s)
        assert lit.isascii() and lit.startswith('"') and lit.endswith('"')
        body = lit[1:-1]
        assert '"' not in body and "\n" not in body and "??" not in body
        text = c_comment_text(s)
        assert text.isascii() and "*/" not in text and "\n" not in text and not text.endswith("\\")


@needs_gxx
def test_float_literals_round_trip_float32(tmp_path):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(200).astype(np.float32) * np.float32(10) ** rng.integers(-9, 4, 200),
                             np.array([0.0, 1.0, -1.0, 1 / 127.5, 0.00390625, 3.4e38, 1.2e-38])]).astype(np.float32)
    body = ", ".join(c_float(v) for v in values)
    source = f"""
#include <cstdio>
#include <cstring>
#include <cstdint>
static const float kValues[] = {{ {body} }};
int main() {{
  for (float v : kValues) {{ uint32_t bits; std::memcpy(&bits, &v, 4); std::printf("%08x\\n", bits); }}
  return 0;
}}
"""
    lines = _run_cpp(tmp_path, source).decode().split()
    assert lines == [f"{int(bits):08x}" for bits in values.view(np.uint32)]


@needs_gxx
def test_byte_and_int_rows_read_back(tmp_path):
    data = bytes(range(256)) + bytes(np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8))
    ints = np.random.default_rng(2).integers(-128, 128, 777).astype(np.int8)
    source = f"""
#include <cstdio>
#include <cstdint>
static const unsigned char kBytes[] = {{
{byte_rows(data)}
}};
static const int8_t kInts[] = {{
{int_rows(ints)}
}};
int main() {{
  for (unsigned char b : kBytes) std::printf("%02x", b);
  std::printf("\\n");
  for (int8_t v : kInts) std::printf("%d ", v);
  return 0;
}}
"""
    out = _run_cpp(tmp_path, source).decode().split("\n")
    assert out[0] == data.hex()
    assert [int(v) for v in out[1].split()] == ints.astype(int).tolist()
