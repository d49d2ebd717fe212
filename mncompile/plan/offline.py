"""Writing a memory plan into a .tflite as TFLM's ``OfflineMemoryAllocation`` metadata.

TFLM reads it in `AllocationInfoBuilder::GetOfflinePlannedOffsets`
(`micro_allocation_info.cc`; format in `docs/memory_management.md`): a buffer of
int32 ``[version 0, number of subgraphs 1, n = number of tensors, offset of
tensor 0, ..., offset of tensor n-1]``, where -1 leaves a tensor to TFLM's own
planner (constants have no arena offset and get -1). TFLM places offline
buffers first, at their offsets, so stock TFLM then uses exactly our arena.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mncompile.graph.reader import schema
from mncompile.graph.verified import VerifiedModel
from mncompile.plan.lifetimes import Buffer
from mncompile.plan.planners import MemoryPlan

METADATA_NAME = b"OfflineMemoryAllocation"
DATA_ALIGNMENT = 16  # TFLM reads the buffer as uint32: keep it aligned


def offline_offsets(num_tensors: int, buffers: Sequence[Buffer], plan: MemoryPlan) -> np.ndarray:
    offsets = np.full(num_tensors, -1, dtype=np.int32)
    for b, o in zip(buffers, plan.offsets, strict=True):
        if b.tensor is not None:
            offsets[b.tensor] = o
    return offsets


def aligned_buffer_class():
    s = schema()

    class AlignedBufferT(s.BufferT):
        """A BufferT whose data vector starts on a 16-byte boundary."""

        def Pack(self, builder):  # noqa: N802 - flatbuffers' name
            payload = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), DATA_ALIGNMENT)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
            s.BufferStart(builder)
            s.BufferAddData(builder, data)
            return s.BufferEnd(builder)

    return AlignedBufferT


def embed_plan(verified: VerifiedModel, buffers: Sequence[Buffer], plan: MemoryPlan) -> bytes:
    """The model's bytes with `plan` as OfflineMemoryAllocation metadata (replacing any old one)."""
    import flatbuffers

    s = schema()
    model = verified.tree()
    n = len(model.subgraphs[0].tensors)
    table = np.concatenate([np.array([0, 1, n], dtype=np.int32), offline_offsets(n, buffers, plan)])
    buf = aligned_buffer_class()()
    buf.data = table.astype("<i4").view(np.uint8)
    model.buffers.append(buf)
    meta = s.MetadataT()
    meta.name = METADATA_NAME
    meta.buffer = len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if m.name != METADATA_NAME]
    model.metadata = kept + [meta]
    builder = flatbuffers.Builder(verified.size + 4 * len(table) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_offline_plan(verified: VerifiedModel) -> np.ndarray | None:
    """The offsets stored in a model's OfflineMemoryAllocation metadata, if any (verified: the
    table has one int32 per tensor)."""
    model = verified.tree()
    for m in model.metadata or []:
        if m.name == METADATA_NAME:
            data = np.asarray(model.buffers[m.buffer].data, dtype=np.uint8).tobytes()
            table = np.frombuffer(data, dtype="<i4")
            return table[3:3 + int(table[2])].copy()
    return None
