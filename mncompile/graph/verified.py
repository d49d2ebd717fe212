"""The front door: a .tflite is read and verified once, and the verified model is what flows.

    read_model(path) -> VerifiedModel        # a file: pre-flight, read, verify
    verify_model(data, name) -> VerifiedModel  # bytes (a converter's output, Vela's)

Verification is, in order: the flatbuffer's structure (`mncompile.graph.flatbuffer`: every
offset, vtable, vector and string inside the file), the IR's indices and names
(`mncompile.graph.reader`), and the model's validity (`mncompile.graph.verify`: schema version,
dataflow, tensors, quantization, each operator). Any failure is a `ModelError` (exit 4).

A `VerifiedModel` holds the file's bytes and its `Graph` (constants included). Every stage takes
it: plan, npu, AOT, golden vectors, eval, emit. None of them opens the file again; where a tool
needs a file (the TFLM host interpreter, Vela), it gets these verified bytes, written by the
stage to a file of its own.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from mncompile.errors import ModelError
from mncompile.files import check_input_file, read_input_bytes
from mncompile.graph.ir import Graph

MAX_FILE_BYTES = 2**31 - 1


@dataclass(frozen=True, eq=False)
class VerifiedModel:
    name: str  # the file name, e.g. "model_int8.tflite" (messages, project files, Vela's outputs)
    data: bytes
    graph: Graph
    path: Path | None = None  # where it was read from, when it was a file

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def source(self) -> str:
        """How messages name the model: its path, else its name."""
        return str(self.path) if self.path is not None else self.name

    @property
    def input_dtype(self) -> str:
        return self.graph.tensors[self.graph.inputs[0]].dtype

    def tree(self):
        """A fresh, mutable flatbuffer object tree (`ModelT`) of the verified bytes, for stages that
        write a changed model (the offline plan, one-op models)."""
        from mncompile.graph.reader import parse_model

        return parse_model(self.data, self.name)

    def write_to(self, folder: Path) -> Path:
        """The verified bytes as `folder/<name>`, for a tool that reads files."""
        path = Path(folder) / self.name
        path.write_bytes(self.data)
        return path


def verify_model(data: bytes, name: str, path: Path | None = None, source: str | None = None) -> VerifiedModel:
    """Verify `data` as a .tflite and return the model; ModelError names what is wrong."""
    from mncompile.graph.flatbuffer import verify_flatbuffer
    from mncompile.graph.reader import graph_from_model, parse_model
    from mncompile.graph.verify import verify_graph

    source = source or (str(path) if path is not None else name)
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise ModelError(f"{source} is {len(data):,} bytes; a .tflite for a 32-bit device must stay under 2 GiB")
    verify_flatbuffer(data, source)
    tree = parse_model(data, source)
    graph = graph_from_model(tree, source, data)
    verify_graph(tree, graph, source)
    return VerifiedModel(name, data, graph, path)


TFLITE_HINT = "pass an int8 .tflite (from `mncompile quantize`)"


def read_model(path: str | Path) -> VerifiedModel:
    """Read and verify the .tflite at `path`: a missing, unreadable or non-regular file, a folder
    and an invalid model are all ModelError (exit 4)."""
    path = check_input_file(path, "model", hint=TFLITE_HINT)
    return verify_model(read_input_bytes(path), path.name, path)
