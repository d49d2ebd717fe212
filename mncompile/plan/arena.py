"""The TFLM tensor arena, predicted to the byte: the planned part plus TFLM's persistent part.

Source paths below are relative to tensorflow/lite/micro/ of tflite-micro (read at
commit 90b983c2); CMSIS-NN at the commit TFLM pins (4ab83cc3).

An arena that TFLM's `MicroAllocator` manages is split in two ends
(`arena_allocator/single_arena_buffer_allocator.cc`):

- the **head** (non-persistent) grows up from the start of the arena. After
  `AllocateTensors()` it holds exactly the memory plan: every activation tensor
  and every kernel scratch buffer, at the offsets the memory planner chose.
  Its size is `MicroAllocator::CommitStaticMemoryPlan`'s
  `memory_planner_->GetMaximumMemorySize()`, i.e. ``planned_bytes``, the input
  of `predict_arena` (the planner is not this module's business; scratch buffers
  that kernels request are listed in `ArenaPrediction.scratch_requests` so the
  planner can place them).
- the **tail** (persistent) grows down from the end of the arena. Every
  allocation there is ``tail = AlignPointerDown(tail - size, alignment)``, so
  with the arena end 16-byte aligned, each allocation adds ``size`` plus the
  padding that rounds the running total up to its alignment. The order of the
  allocations therefore matters and is replayed here exactly.

``arena_used_bytes()`` (`MicroAllocator::used_bytes`) and the host
RecordingMicroAllocator's "Arena allocation total" are head + tail.

The persistent terms, in the order TFLM allocates them
------------------------------------------------------
1. ``allocator_objects``: the allocator objects live in the arena they manage.
   Device (`MicroInterpreter(model, resolver, arena, size)` ->
   `MicroAllocator::Create(arena, size, kGreedy)`): a `SingleArenaBufferAllocator`
   (`SingleArenaBufferAllocator::Create`), the `GreedyMemoryPlanner`
   (`CreateMemoryPlanner`), then the `MicroAllocator` object. Host (the
   tflite-micro PyPI interpreter, `python/tflite_micro/interpreter_wrapper.cc`,
   `InterpreterConfig.kAllocationRecording`): `RecordingMicroAllocator::Create`
   places a `RecordingSingleArenaBufferAllocator`, the `GreedyMemoryPlanner` and
   the `RecordingMicroAllocator` object. The recorder does not record these.
2. ``bookkeeping``: `MicroAllocator::StartModelAllocation` places the
   `MicroBuiltinDataAllocator` (a vtable pointer and one pointer) and one
   `SubgraphAllocations` per subgraph (two pointers, plus a third with
   `USE_TFLM_COMPRESSION`). Not recorded.
3. ``eval_tensors``: one `TfLiteEvalTensor` per tensor of the subgraph
   (`AllocateTfLiteEvalTensors`); the recorder's 'TfLiteEvalTensor data'.
4. ``node_and_registrations``: one `NodeAndRegistration` (a `TfLiteNode` and a
   registration pointer) per operator (`AllocateNodeAndRegistrations`); the
   recorder's 'NodeAndRegistration struct'.
5. ``builtin_data``: each operator's parsed builtin options (`TfLiteConvParams`,
   ...), allocated by `MicroInterpreter::PrepareNodeAndRegistrationDataFromFlatbuffer`
   through the `MicroBuiltinDataAllocator` with the struct's own alignment
   (`SafeBuiltinDataAllocator::Allocate<T>` in `core/api/flatbuffer_conversions.cc`).
   QUANTIZE and DEQUANTIZE parse no options. Not recorded.
6. ``op_data``: each kernel's `Init` (in operator order, before any `Prepare`)
   calls `context->AllocatePersistentBuffer(sizeof(OpData...))`, which is
   `MicroAllocator::AllocatePersistentBuffer`: 16-byte aligned
   (`MicroArenaBufferAlignment()`). Part of the recorder's 'Persistent buffer data'.
7. ``per_channel_quantization``: each CONV_2D, DEPTHWISE_CONV_2D and per-channel
   FULLY_CONNECTED `Prepare` allocates its output multipliers and shifts, two
   arrays of ``4 * channels`` bytes, each 16-byte aligned (`conv_common.cc`,
   `depthwise_conv_common.cc`, `fully_connected_common.cc`, and the same in
   `kernels/cmsis_nn/`). Part of 'Persistent buffer data'.
8. ``scratch_handles``: if any kernel called `RequestScratchBufferInArena`,
   `MicroAllocator::AllocateScratchBufferHandles` places one
   `ScratchBufferHandle` (one pointer) per request. Not recorded. (The scratch
   buffers themselves live in the head, inside ``planned_bytes``.)
9. ``io_tensor_tables``: `MicroInterpreter::AllocateTensors` allocates the
   `input_tensors_` pointer table (`AllocatePersistentBuffer`, 16-byte aligned),
   then for each input ``io_tensors`` (a persistent `TfLiteTensor`) and
   ``io_quantization`` (a `TfLiteAffineQuantization` and a `TfLiteIntArray` of
   zero points, one per scale; only for quantized tensors); then the same for
   the outputs (`MicroAllocator::AllocatePersistentTfLiteTensor`,
   `InitializeTfLiteTensorFromFlatbuffer`). The tables are part of 'Persistent
   buffer data'; the others are 'Persistent TfLiteTensor data' and 'Persistent
   TfLiteTensor quantization data'.
10. ``alignment_padding``: the bytes the tail skips to align the allocations
    above (the recorder counts each allocation's padding into its category's
    "used" bytes; here it is kept apart, and the ledger in
    `ArenaPrediction.allocations` says which allocation caused it).

``total = planned + sum of the terms 1..10``, where replaying the allocations
in order is ``used = align_up(used + size, alignment)`` per allocation.

Kernel specifics (``kernels``):
- "reference": OpData sizes of `kernels/*.h`; MEAN and SUM request three scratch
  buffers for int8/int16 (``4 * output elements``, ``4 * input rank``, ``4 * axes``,
  `reduce_common.cc`), two for float; REDUCE_MAX and REDUCE_MIN the last two; int4
  weights request an unpack buffer.
- "cmsis-nn" (`kernels/cmsis_nn/*.cc`, CMSIS-NN at the commit TFLM pins, built
  with arm-none-eabi-gcc for a core with the DSP extension and no MVE, e.g.
  Cortex-M4/M7/M33): CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, the pools,
  SOFTMAX and ADD use CMSIS-NN's larger OpData structs; CONV_2D requests an
  im2col buffer of ``4 * align4(kh * kw * cin)`` bytes unless it is a 1x1 (GCC
  builds get no 1x1 buffer; armclang builds would), DEPTHWISE_CONV_2D requests
  ``2 * cin * kh * kw`` bytes unless it is 3x3 with padding <= 1 (or has a depth
  multiplier), AVERAGE_POOL_2D requests ``4 * channels``. Other ops use the
  reference kernels.
- "cmsis-nn" with ``mve`` (CMSIS-NN built for a Helium core, Cortex-M55/M85,
  ``ARM_MATH_MVEI``): the ``_mve`` buffer sizes of `mncompile.graph.ops.cmsis_nn`
  (conv im2col ``4 * ceil16(kh * kw * cin)``, its 1xN edge column, no 1x1 buffer;
  depthwise ``4 * 124 * kh * kw``, or a one-input-channel layer run as a
  convolution; no average pool buffer), and FULLY_CONNECTED outside its 1x1
  path allocates its kernel sums (``4 * output depth``) as a persistent buffer
  in Prepare, after its per-channel arrays: the term ``kernel_sums``
  (`kernel_persistent_bytes`), part of 'Persistent buffer data'.

Struct sizes
------------
They are derived, not measured: `STRUCTS` lists each struct's members as data
(in declaration order, with the header they come from) and `_layout` applies
the C rules (each member at the next multiple of its alignment, the size
rounded up to the largest alignment) for an ABI:
- pointer_size 8: x86-64 System V (4-byte enums), the tflite-micro PyPI wheel,
  which is built with ``USE_TFLM_COMPRESSION`` and records allocations;
- pointer_size 4: 32-bit Arm (AAPCS) as arm-none-eabi-gcc compiles it, whose
  default is ``-fshort-enums`` (an enum takes the smallest integer that holds
  its values: one byte for every enum here), the default TFLM Makefile build
  (no compression, a plain `MicroAllocator`).
The layouts were checked against ``sizeof``/``alignof`` compiled from the TFLM
headers with g++ (x86-64, with and without ``USE_TFLM_COMPRESSION``) and
arm-none-eabi-g++ ``-mcpu=cortex-m7`` (with and without ``-fshort-enums``).

Exactness and assumptions
-------------------------
Host: the total, the head, the tail and every recorded category (used bytes,
requested bytes, count) equal the RecordingMicroAllocator's report exactly on
the MLPerf VWW model, on MobileNet V1 0.25@96, 0.25@224, 1.0@224 and V2 0.35@96,
1.0@224, and on a small model with float input/output (QUANTIZE, DEQUANTIZE,
MAX_POOL_2D, no I/O quantization data) (`tests/test_arena.py`), and on one-operator
models and chains of 16 of every other registered operator (`tests/test_arena_ops.py`). No residual.
32-bit: VWW gives 100,660 B (reference kernels) and 100,708 B (CMSIS-NN), the
values measured on a Cortex-M7. Neither -fno-short-enums (100,684 B) nor
USE_TFLM_COMPRESSION (100,692 B) reproduces the measurement, which is why those
are the 32-bit defaults. With CMSIS-NN the two scratch buffers it requests (112 B
and 1,024 B) leave the greedy plan at 73,728 B.
- The installed wheel is newer than the TFLM source this was read from: its
  `TfLiteFullyConnectedParams` has two more members after
  ``quantized_bias_type``, a pointer and an int (the new
  ``FullyConnectedOptions.quant_spec`` vector). This was seen in the wheel's
  `ParseFullyConnected`, which allocates 32 bytes, 8-aligned, and stores a
  pointer at +16 and a length at +24. Without them every host prediction is 16 B
  short (32 B on the V2 models). They are tagged "wheel" in `STRUCTS`: the host
  has them, a 32-bit build of the pinned commit does not. On the VWW model that
  makes no difference (the padding of the next 16-aligned allocation absorbs
  them); on tests/data/tiny_int8.tflite it is 16 B, and the firmware built from
  commit 90b983c2 for mps2-an500 prints arena_used_bytes() = 2,228 B, the
  prediction without them (with them: 2,244 B).
- The end of the arena must be 16-byte aligned (start 16-aligned and size a
  multiple of 16, as `measure_host_arena` uses); otherwise the first
  allocations pad differently, by up to 15 bytes.
- Only subgraph 0 and the operators whose registry entry has TFLM allocations
  (`modelled_ops()`: every registered operator) are modelled, with int8 (or float)
  activations; other operators, int16 SOFTMAX and int4 weights with CMSIS-NN raise
  `ModelError`. Not modelled:
  variable tensors, resource variables, compressed tensors, an offline plan,
  CMSIS-NN built with armclang.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from mncompile.errors import InvalidOptionError, ModelError
from mncompile.graph.ir import Graph, Op

ARENA_ALIGNMENT = 16  # MicroArenaBufferAlignment(), micro_arena_constants.h

KERNELS = ("reference", "cmsis-nn")

# ------------------------------------------------------------------------------------------
# C struct layout


@dataclass(frozen=True)
class Abi:
    """How a C compiler lays out the structs: pointer and enum sizes (8-byte scalars are
    8-aligned on both x86-64 System V and AAPCS)."""

    name: str
    pointer_size: int
    enum_size: int

    def scalar(self, kind: str) -> tuple[int, int]:
        if kind in ("ptr", "size_t", "intptr_t"):
            return self.pointer_size, self.pointer_size
        if kind == "enum":
            return self.enum_size, self.enum_size
        return _SCALARS[kind]


_SCALARS = {"bool": (1, 1), "int8": (1, 1), "uint8": (1, 1), "int16": (2, 2), "uint16": (2, 2), "int": (4, 4),
            "int32": (4, 4), "float": (4, 4), "int64": (8, 8), "double": (8, 8)}

X86_64 = Abi("x86-64 System V", 8, 4)
ARM32_GCC = Abi("32-bit Arm AAPCS, arm-none-eabi-gcc (-fshort-enums)", 4, 1)
ARM32_INT_ENUMS = Abi("32-bit Arm AAPCS with -fno-short-enums", 4, 4)

# Members of each struct, in declaration order: (member, type) or (member, type, "compression")
# for members that exist only with USE_TFLM_COMPRESSION. A type is a scalar of `Abi.scalar`,
# "name[n]" for an array, or another struct of this table. A C++ base class is written as a
# leading member (none of these bases has tail padding a derived member could reuse), a vtable
# pointer as a "ptr" member. Paths are under tensorflow/lite/ unless they start otherwise.
STRUCTS: dict[str, tuple[tuple[str, ...], ...]] = {
    # --- core/c/common.h (TF_LITE_STATIC_MEMORY variants, as TFLM builds them)
    "TfLiteIntArray": (("size", "int"),),  # + int data[size]: see _int_array_bytes
    "TfLiteQuantizationParams": (("scale", "float"), ("zero_point", "int32")),
    "TfLiteQuantization": (("type", "enum"), ("params", "ptr")),
    "TfLiteAffineQuantization": (("scale", "ptr"), ("zero_point", "ptr"), ("quantized_dimension", "int32")),
    "TfLiteEvalTensor": (("data", "ptr"), ("dims", "ptr"), ("type", "enum")),
    "TfLiteTensor": (("quantization", "TfLiteQuantization"), ("params", "TfLiteQuantizationParams"),
                     ("data", "ptr"), ("dims", "ptr"), ("bytes", "size_t"), ("type", "enum"),
                     ("allocation_type", "enum"), ("is_variable", "bool")),
    "TfLiteNode": (("inputs", "ptr"), ("outputs", "ptr"), ("intermediates", "ptr"), ("user_data", "ptr"),
                   ("builtin_data", "ptr"), ("custom_initial_data", "ptr"), ("custom_initial_data_size", "int")),
    # --- micro/micro_allocator.h
    "NodeAndRegistration": (("node", "TfLiteNode"), ("registration", "ptr")),
    "SubgraphAllocations": (("node_and_registrations", "ptr"), ("tensors", "ptr"),
                            ("compressed.tensors", "ptr", "compression")),  # CompressedTensorList
    "ScratchBufferHandle": (("data", "ptr"),),
    "MicroAllocator": (("vptr", "ptr"), ("non_persistent_buffer_allocator_", "ptr"),
                       ("persistent_buffer_allocator_", "ptr"), ("builtin_data_allocator_", "ptr"),
                       ("memory_planner_", "ptr"), ("model_is_allocating_", "bool"),
                       ("scratch_buffer_request_count_", "size_t"), ("scratch_buffer_head_", "ptr"),
                       ("max_head_buffer_usage_", "size_t")),
    # micro_allocator.cc, anonymous namespace: BuiltinDataAllocator (vtable) + one pointer
    "MicroBuiltinDataAllocator": (("vptr", "ptr"), ("persistent_allocator_", "ptr")),
    # --- micro/recording_micro_allocator.h
    "RecordedAllocation": (("requested_bytes", "size_t"), ("used_bytes", "size_t"), ("count", "size_t")),
    "RecordingMicroAllocator": (("base", "MicroAllocator"), ("recording_memory_allocator_", "ptr"),
                                ("recorded_tflite_eval_tensor_data_", "RecordedAllocation"),
                                ("recorded_persistent_tflite_tensor_data_", "RecordedAllocation"),
                                ("recorded_persistent_tflite_tensor_quantization_data_", "RecordedAllocation"),
                                ("recorded_persistent_buffer_data_", "RecordedAllocation"),
                                ("recorded_tflite_tensor_variable_buffer_data_", "RecordedAllocation"),
                                ("recorded_node_and_registration_array_data_", "RecordedAllocation"),
                                ("recorded_compression_data_", "RecordedAllocation", "compression"),
                                ("recorded_op_data_", "RecordedAllocation")),
    # --- micro/arena_allocator/single_arena_buffer_allocator.h: two interfaces, two vtables
    "SingleArenaBufferAllocator": (("vptr_non_persistent", "ptr"), ("vptr_persistent", "ptr"),
                                   ("buffer_head_", "ptr"), ("buffer_tail_", "ptr"), ("head_", "ptr"),
                                   ("tail_", "ptr"), ("temp_", "ptr"), ("temp_buffer_ptr_check_sum_", "intptr_t"),
                                   ("temp_buffer_count_", "int")),
    # --- micro/arena_allocator/recording_single_arena_buffer_allocator.h
    "RecordingSingleArenaBufferAllocator": (("base", "SingleArenaBufferAllocator"),
                                            ("requested_head_bytes_", "size_t"), ("requested_tail_bytes_", "size_t"),
                                            ("used_bytes_", "size_t"), ("alloc_count_", "size_t")),
    # --- micro/memory_planner/greedy_memory_planner.h (MicroMemoryPlanner: a vtable only)
    "GreedyMemoryPlanner": (("vptr", "ptr"), ("max_buffer_count_", "int"), ("buffer_count_", "int"),
                            ("requirements_", "ptr"), ("buffer_sizes_sorted_", "ptr"), ("buffer_ids_sorted_", "ptr"),
                            ("buffers_sorted_by_offset_", "ptr"), ("next_free_entry_", "int"),
                            ("first_entry_index_", "int"), ("buffer_offsets_", "ptr"),
                            ("need_to_calculate_offsets_", "bool")),
    # The builtin-options and OpData structs of each operator are declared with its entry in the op
    # registry (`mncompile.graph.ops`) and merged in by `_structs()`.
}


def _align_up(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


@cache
def _structs() -> dict[str, tuple[tuple[str, ...], ...]]:
    """The core structs above and those of every registered operator."""
    from mncompile.graph.ops import tflm_structs

    return {**STRUCTS, **tflm_structs()}


@cache
def _layout(name: str, abi: Abi, compression: bool, wheel: bool = False) -> tuple[int, int]:
    """(sizeof, alignof) of `name` (a struct of `_structs()` or a scalar type)."""
    match = re.fullmatch(r"(\w+)\[(\d+)\]", name)
    if match:
        size, alignment = _layout(match.group(1), abi, compression, wheel)
        return size * int(match.group(2)), alignment
    structs = _structs()
    if name not in structs:
        return abi.scalar(name)
    offset, alignment = 0, 1
    for member in structs[name]:
        if len(member) > 2 and ((member[2] == "compression" and not compression)
                                or (member[2] == "wheel" and not wheel)):
            continue
        size, member_alignment = _layout(member[1], abi, compression, wheel)
        offset = _align_up(offset, member_alignment) + size
        alignment = max(alignment, member_alignment)
    return _align_up(offset, alignment), alignment


def struct_layout(name: str, pointer_size: int = 8, compression: bool | None = None,
                  short_enums: bool | None = None) -> tuple[int, int]:
    """(sizeof, alignof) of a TFLM struct for a `predict_arena` configuration."""
    runtime = _runtime(pointer_size, "reference", compression, None, short_enums)
    return _layout(name, runtime.abi, runtime.compression, runtime.wheel)


def _int_array_bytes(n: int) -> int:
    """TfLiteIntArrayGetSizeInBytes(n): the size member and n ints."""
    return 4 + 4 * n


# ------------------------------------------------------------------------------------------
# The interpreter configurations


@dataclass(frozen=True)
class _Runtime:
    abi: Abi
    compression: bool  # USE_TFLM_COMPRESSION
    recording: bool  # RecordingMicroAllocator (the Python interpreter) or a plain MicroAllocator
    kernels: str
    # The installed tflite-micro wheel (host) is newer than the pinned TFLM commit a device
    # build uses: members tagged "wheel" exist only there.
    wheel: bool = False

    def describe(self) -> str:
        allocator = ("RecordingMicroAllocator (tflite-micro Python interpreter)" if self.recording
                     else "MicroAllocator::Create(arena, size) (MicroInterpreter with an arena)")
        return (f"{self.abi.name}; {allocator}; USE_TFLM_COMPRESSION {'on' if self.compression else 'off'}; "
                f"{self.kernels} kernels")


def _runtime(pointer_size: int, kernels: str, compression: bool | None, recording: bool | None,
             short_enums: bool | None, mve: bool = False) -> _Runtime:
    if pointer_size not in (4, 8):
        raise InvalidOptionError(f"pointer size {pointer_size} is not modelled",
                                 hint="use 8 (the host interpreter) or 4 (a 32-bit Cortex-M build)")
    if kernels not in KERNELS:
        raise InvalidOptionError(f"unknown kernel set {kernels!r}", hint=f"use one of {', '.join(KERNELS)}")
    host = pointer_size == 8
    if short_enums is None:
        short_enums = not host
    abi = Abi(X86_64.name if host else (ARM32_GCC.name if short_enums else ARM32_INT_ENUMS.name),
              pointer_size, 1 if short_enums else 4)
    return _Runtime(abi, host if compression is None else compression, host if recording is None else recording,
                    f"{kernels} (Helium/MVE)" if mve and kernels == "cmsis-nn" else kernels, wheel=host)


# ------------------------------------------------------------------------------------------
# Kernels: what each operator allocates


@dataclass(frozen=True)
class ScratchRequest:
    """A `RequestScratchBufferInArena` call: a buffer the memory plan (the head) must hold
    while operator `op_index` runs."""

    op_index: int
    op_kind: str
    bytes: int

    def to_json(self) -> dict:
        return {"op_index": self.op_index, "op_kind": self.op_kind, "bytes": self.bytes}


@dataclass(frozen=True)
class _OpAllocations:
    builtin: str | None  # the builtin-options struct its parser allocates
    init: str | None  # the OpData struct its Init allocates
    prepare: tuple[tuple[str, str, int], ...]  # (category, what, bytes) persistent buffers in Prepare
    scratch: tuple[int, ...]  # RequestScratchBufferInArena sizes


def modelled_ops() -> tuple[str, ...]:
    """The operators whose TFLM allocations the predictor replays (their registry entries say)."""
    from mncompile.graph.ops import REGISTRY

    return tuple(sorted(k for k, spec in REGISTRY.items() if spec.tflm is not None))


def _op_allocations(graph: Graph, op: Op, kernels: str, mve: bool = False) -> _OpAllocations:
    """What `op`'s kernel allocates, from its entry in the op registry (`mncompile.graph.ops`)."""
    from mncompile.graph.ops import spec_of

    spec = spec_of(op.kind)
    if spec is None or spec.tflm is None:
        raise ModelError(f"operator {op.index} ({op.kind}) is not modelled by the arena predictor",
                         hint=f"the predictor knows {', '.join(modelled_ops())}")
    tflm = spec.tflm
    cmsis = kernels == "cmsis-nn" and tflm.cmsis_op_data is not None
    found = tflm.allocate(graph, op, cmsis, mve)
    return _OpAllocations(tflm.builtin, tflm.cmsis_op_data if cmsis else tflm.op_data, found.prepare, found.scratch)


def kernel_scratch_requests(graph: Graph, kernels: str = "reference", mve: bool = False) -> tuple[ScratchRequest, ...]:
    """Every scratch buffer the kernels request in `Prepare`, in request order (`mve`: CMSIS-NN
    built for a Helium core)."""
    _runtime(8, kernels, None, None, None)
    return tuple(ScratchRequest(op.index, op.kind, size) for op in graph.ops
                 for size in _op_allocations(graph, op, kernels, mve).scratch)


def kernel_persistent_bytes(graph: Graph, kernels: str = "reference", mve: bool = False) -> int:
    """The persistent buffers the kernels' `Prepare` allocates besides the per-channel
    quantization (CMSIS-NN's MVE kernel sums), each rounded up to the arena alignment."""
    return sum(_align_up(nbytes, ARENA_ALIGNMENT) for op in graph.ops
               for category, _, nbytes in _op_allocations(graph, op, kernels, mve).prepare
               if category == "kernel_sums")


# ------------------------------------------------------------------------------------------
# The prediction

# The RecordingMicroAllocator's categories, and the terms each collects.
RECORDED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "TfLiteEvalTensor data": ("eval_tensors",),
    "Persistent TfLiteTensor data": ("io_tensors",),
    "Persistent TfLiteTensor quantization data": ("io_quantization",),
    "Persistent buffer data": ("op_data", "per_channel_quantization", "kernel_sums", "io_tensor_tables"),
    "NodeAndRegistration struct": ("node_and_registrations",),
}

TERMS = ("allocator_objects", "bookkeeping", "eval_tensors", "node_and_registrations", "builtin_data", "op_data",
         "per_channel_quantization", "kernel_sums", "scratch_handles", "io_tensor_tables", "io_tensors",
         "io_quantization")


@dataclass(frozen=True)
class Allocation:
    """One persistent (tail) allocation, in TFLM's order; `padding` is what aligning it cost."""

    category: str
    what: str
    size: int
    alignment: int
    padding: int
    op_index: int | None = None
    count: int = 1  # elements of an array allocation (eval tensors, nodes, scratch handles)

    def to_json(self) -> dict:
        return {"category": self.category, "what": self.what, "bytes": self.size, "alignment": self.alignment,
                "padding": self.padding, "op_index": self.op_index, "count": self.count}


@dataclass(frozen=True)
class ArenaPrediction:
    """The arena TFLM uses for one model, in bytes. Each persistent term is the requested bytes
    of its structs; `alignment_padding` is all the padding; `total` is what
    `arena_used_bytes()` / the recorder's "Arena allocation total" report."""

    planned: int  # head: the memory plan (activations and scratch buffers)
    allocator_objects: int
    bookkeeping: int
    eval_tensors: int
    node_and_registrations: int
    builtin_data: int
    op_data: int
    per_channel_quantization: int
    kernel_sums: int
    scratch_handles: int
    io_tensor_tables: int
    io_tensors: int
    io_quantization: int
    alignment_padding: int
    persistent: int  # tail: the terms above and the padding
    total: int
    pointer_size: int
    kernels: str
    runtime: str
    scratch_requests: tuple[ScratchRequest, ...]
    allocations: tuple[Allocation, ...]
    exact: bool = True  # False: measured on the host interpreter (an operator the predictor does not model)

    def recorded(self) -> dict[str, dict[str, int]]:
        """The categories a RecordingMicroAllocator prints for this model (used bytes include
        each allocation's padding), in `measure_host_arena`'s format."""
        out = {}
        for name, terms in RECORDED_CATEGORIES.items():
            rows = [a for a in self.allocations if a.category in terms]
            if not rows:
                continue
            used = sum(a.size + a.padding for a in rows)
            requested = sum(a.size for a in rows)
            count = sum(a.count for a in rows)  # arrays count their elements, as the recorder does
            out[name] = {"used": used, "requested": requested, "count": count}
        return out

    def to_json(self, allocations: bool = False) -> dict:
        document = {"planned_bytes": self.planned, **{f"{t}_bytes": getattr(self, t) for t in TERMS},
                    "alignment_padding_bytes": self.alignment_padding, "persistent_bytes": self.persistent,
                    "total_bytes": self.total, "pointer_size": self.pointer_size, "kernels": self.kernels,
                    "runtime": self.runtime, "scratch_requests": [s.to_json() for s in self.scratch_requests],
                    "exact": self.exact}
        if allocations:
            document["allocations"] = [a.to_json() for a in self.allocations]
        return document


def predict_arena(graph: Graph, planned_bytes: int, pointer_size: int = 8, kernels: str = "reference", *,
                  compression: bool | None = None, recording: bool | None = None,
                  short_enums: bool | None = None, mve: bool = False) -> ArenaPrediction:
    """The arena TFLM needs for `graph` when its memory plan takes `planned_bytes`.

    pointer_size 8 models the tflite-micro Python interpreter on x86-64 (recording allocator,
    compression built in); 4 models a 32-bit Cortex-M build (plain MicroAllocator, no
    compression, arm-none-eabi-gcc short enums). The keyword arguments override those defaults;
    `mve`: the "cmsis-nn" kernels as built for a Helium core (Cortex-M55/M85, ARM_MATH_MVEI).
    """
    if planned_bytes < 0:
        raise InvalidOptionError(f"planned bytes must be >= 0, got {planned_bytes}")
    rt = _runtime(pointer_size, kernels, compression, recording, short_enums, mve)
    ops = [_op_allocations(graph, op, kernels, mve) for op in graph.ops]

    def size(name: str) -> tuple[int, int]:
        return _layout(name, rt.abi, rt.compression, rt.wheel)

    ledger: list[Allocation] = []
    used = 0

    def allocate(category: str, what: str, nbytes: int, alignment: int, op_index: int | None = None,
                 count: int = 1) -> None:
        nonlocal used
        end = _align_up(used + nbytes, alignment)
        ledger.append(Allocation(category, what, nbytes, alignment, end - used - nbytes, op_index, count))
        used = end

    def allocate_struct(category: str, name: str, count: int = 1, op_index: int | None = None) -> None:
        nbytes, alignment = size(name)
        allocate(category, name if count == 1 else f"{name} x{count}", nbytes * count, alignment, op_index, count)

    # 1. the allocator, its memory planner and the MicroAllocator (MicroAllocator::Create, or
    #    RecordingMicroAllocator::Create for the Python interpreter)
    prefix = "Recording" if rt.recording else ""
    allocate_struct("allocator_objects", f"{prefix}SingleArenaBufferAllocator")
    allocate_struct("allocator_objects", "GreedyMemoryPlanner")
    allocate_struct("allocator_objects", f"{prefix}MicroAllocator")
    # 2. MicroAllocator::StartModelAllocation
    allocate_struct("bookkeeping", "MicroBuiltinDataAllocator")
    allocate_struct("bookkeeping", "SubgraphAllocations")  # one subgraph
    # 3-4.
    allocate_struct("eval_tensors", "TfLiteEvalTensor", len(graph.tensors))
    allocate_struct("node_and_registrations", "NodeAndRegistration", len(graph.ops))
    # 5. builtin options, in operator order
    for op, a in zip(graph.ops, ops, strict=True):
        if a.builtin:
            allocate_struct("builtin_data", a.builtin, op_index=op.index)
    # 6. every kernel's Init, then 7. every kernel's Prepare (16-byte aligned persistent buffers)
    for op, a in zip(graph.ops, ops, strict=True):
        if a.init:
            allocate("op_data", a.init, size(a.init)[0], ARENA_ALIGNMENT, op.index)
    for op, a in zip(graph.ops, ops, strict=True):
        for category, what, nbytes in a.prepare:
            allocate(category, what, nbytes, ARENA_ALIGNMENT, op.index)
    # 8. MicroAllocator::AllocateScratchBufferHandles
    requests = tuple(ScratchRequest(op.index, op.kind, s) for op, a in zip(graph.ops, ops, strict=True)
                     for s in a.scratch)
    if requests:
        allocate_struct("scratch_handles", "ScratchBufferHandle", len(requests))
    # 9. MicroInterpreter::AllocateTensors: input then output tables and tensors
    for direction, indices in (("input", graph.inputs), ("output", graph.outputs)):
        allocate("io_tensor_tables", f"{direction}_tensors_ (TfLiteTensor* x{len(indices)})",
                 rt.abi.pointer_size * len(indices), ARENA_ALIGNMENT)
        for index in indices:
            allocate_struct("io_tensors", "TfLiteTensor")
            quant = graph.tensors[index].quant
            if quant is not None:
                allocate_struct("io_quantization", "TfLiteAffineQuantization")
                allocate("io_quantization", f"TfLiteIntArray[{len(quant.scales)}] (zero points)",
                         _int_array_bytes(len(quant.scales)), 4)

    terms = {t: sum(a.size for a in ledger if a.category == t) for t in TERMS}
    padding = sum(a.padding for a in ledger)
    return ArenaPrediction(planned=planned_bytes, **terms, alignment_padding=padding, persistent=used,
                           total=planned_bytes + used, pointer_size=pointer_size, kernels=kernels,
                           runtime=rt.describe(), scratch_requests=requests, allocations=tuple(ledger))


def measured_arena(report: dict, pointer_size: int, kernels: str, unmodelled: tuple[str, ...],
                   extra_scratch: int = 0) -> ArenaPrediction:
    """The arena of a model with operators the predictor does not model (`unmodelled`), from the
    host interpreter's RecordingMicroAllocator report (`mncompile.validate.host_arena`): exact for
    the host (pointer_size 8); for a 32-bit device an upper bound (its pointers and structs are no
    larger), plus `extra_scratch` (CMSIS-NN's scratch buffers of the modelled operators, which the
    host's reference kernels do not request). Labelled: not predicted."""
    head = int(report["head"]) + extra_scratch
    tail = int(report["tail"])
    how = ("measured on the tflite-micro host interpreter" if pointer_size == 8
           else "an upper bound derived from the host interpreter's measurement (64-bit)")
    runtime = f"{how}, not predicted: {', '.join(unmodelled)} not modelled; {kernels} kernels"
    zero = dict.fromkeys(TERMS, 0)
    return ArenaPrediction(planned=head, **zero, alignment_padding=0, persistent=tail, total=head + tail,
                           pointer_size=pointer_size, kernels=kernels, runtime=runtime, scratch_requests=(),
                           allocations=(), exact=False)
