"""Golden vectors: inputs, and the outputs the TFLM host interpreter gives for them.

The firmware runs the same inputs and must reproduce the outputs bit for bit
(`array_equal`, no tolerance): the host interpreter and the device run the same
TFLM kernels on the same int8 data.

For an image model every golden vector starts as a raw 8-bit camera frame
(`mncompile.preprocess.contract.Camera`: rgb888, rgb565, rgb565be, gray8 or
yuv422, at the camera's size). The firmware converts it with mncompile's own C
functions (``firmware/preprocess``: colour conversion, resize, the contract's
lookup table) and must get exactly the input tensor the host's reference of the
same integer arithmetic (`mncompile.preprocess.camera.preprocess`) gives; the
TFLM host interpreter's output for that tensor is the expected output. So a PASS
proves the path from the camera pixel, not only from the int8 tensor.

The images come from, in order:

1. ``--golden-images DIR``: image files in DIR and in DIR/<class>/ (a class folder
   named after a label gives the true class), taken round-robin over the folders;
2. the validation split of the model's dataset (named by its sidecar, or
   `dataset`), stratified: round-robin over the classes, so different classes appear;
3. only then seeded noise, with a warning in the output and in the manifest.

Each image is scaled to the camera's size (Pillow, bilinear: what the sensor
delivers) and encoded in every camera format, one vector per (image, format).

A model whose input is not an image (e.g. an audio feature vector) gets seeded
random tensors. An int8 model converted with float I/O (a float32 input that a
QUANTIZE op quantizes, a float32 output that a DEQUANTIZE op makes) takes float32
inputs and gives float32 outputs. Those are compared bit for bit too: the manifest
(`Golden.to_json`) and the firmware hold them as their IEEE-754 bit patterns
(uint32), so every consumer of ``expected_outputs`` keeps reading integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mncompile.errors import InvalidOptionError
from mncompile.graph.edges import image_input, io_quant  # noqa: F401  (io_quant re-exported: emit, validate)
from mncompile.graph.ir import Quant
from mncompile.graph.verified import VerifiedModel
from mncompile.model.info import ModelInfo
from mncompile.preprocess.camera import Camera, CameraOptions
from mncompile.preprocess.contract import Preprocessing
from mncompile.progress import NullReporter, Reporter

DEFAULT_GOLDEN = 4
MAX_GOLDEN = 256
RANDOM_SEED = 0
MAX_FRAME_BYTES = 8 * 1024 * 1024  # golden frames are compiled into the firmware


@dataclass(frozen=True, eq=False)
class Golden:
    source: str  # "<dataset> validation split", "images in DIR", "random ... , seed 0"
    indices: tuple[int, ...]  # positions in the validation split (empty otherwise)
    labels: tuple[int, ...]  # true classes (-1 when unknown)
    inputs: np.ndarray  # (N, H, W, C) int8 (float32 for a float input): the model's input tensors
    outputs: np.ndarray  # (N, classes) int8 (float32 for a float output), from the TFLM host interpreter
    frames: tuple[bytes, ...] = ()  # an image model: the raw camera frame of each vector
    formats: tuple[str, ...] = ()  # its pixel format
    camera: Camera | None = None
    lut: np.ndarray | None = None  # (channels, 256): pixel value -> input, the contract's table
    files: tuple[str, ...] = ()  # --golden-images: the image file of each vector
    warning: str | None = None  # noise instead of real images

    @property
    def count(self) -> int:
        return int(len(self.inputs))

    @property
    def float_input(self) -> bool:
        return self.inputs.dtype == np.float32

    @property
    def float_output(self) -> bool:
        return self.outputs.dtype == np.float32

    def output_bits(self) -> np.ndarray:
        """The float32 outputs as their bit patterns (uint32); int8 outputs as they are."""
        return self.outputs.view(np.uint32) if self.float_output else self.outputs

    def predictions(self) -> tuple[int, ...]:
        scores = self.outputs if self.float_output else self.outputs.astype(np.int32)
        return tuple(int(p) for p in np.argmax(scores.reshape(len(scores), -1), axis=1))

    def to_json(self) -> dict:
        doc = {"source": self.source, "count": self.count, "indices": list(self.indices),
               "labels": list(self.labels), "predictions": list(self.predictions()),
               "emulator": "tflm (tflite-micro host interpreter)",
               "expected_outputs": self.output_bits().reshape(self.count, -1).astype(int).tolist()}
        if self.camera is not None:
            doc["camera"] = {**self.camera.to_json(), "vector_formats": list(self.formats),
                             "frame_bytes": [len(f) for f in self.frames],
                             "reference": "mncompile.preprocess.camera.preprocess (NumPy, the C code's integer "
                                          "arithmetic); the firmware compares its input tensor with it bit for bit"}
        if self.files:
            doc["files"] = list(self.files)
        if self.warning:
            doc["warning"] = self.warning
        if self.float_input:
            doc["input_dtype"] = "float32"
        if self.float_output:
            doc["output_dtype"] = "float32"
            doc["expected_outputs_encoding"] = "float32 bit patterns as unsigned integers (compared bit for bit)"
            doc["expected_outputs_float"] = [[float(v) for v in row] for row in self.outputs.reshape(self.count, -1)]
        return doc


def golden_vectors(model: VerifiedModel, info: ModelInfo | None, count: int = DEFAULT_GOLDEN,
                   dataset: str | None = None, run_model: VerifiedModel | None = None,
                   reporter: Reporter = NullReporter(), *, preprocessing: Preprocessing | None = None,
                   camera: CameraOptions = CameraOptions(), images: Path | None = None,
                   class_names: tuple[str, ...] = ()) -> Golden:
    """`count` golden vectors (images) for `model` (`info`: its sidecar, for the dataset);
    `preprocessing`: the contract (default: the sidecar's, else the default mapping); `camera`:
    the frames' formats, size and resize; `images`: --golden-images; `class_names`: the labels a
    class folder of `images` is matched with. Outputs come from running `run_model` (the model
    the firmware carries, e.g. with the memory plan embedded; default `model`) on the TFLM host
    interpreter."""
    from mncompile.validate.emulate import Job, run_tflm

    if not 1 <= count <= MAX_GOLDEN:
        raise InvalidOptionError(f"--golden must be between 1 and {MAX_GOLDEN}, not {count}")
    camera.check()
    graph = model.graph
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    kind = "float32" if tin.dtype == "FLOAT32" else "int8"
    asked = images is not None or dataset is not None or camera != CameraOptions()
    if len(tin.shape) == 4 and (asked or image_input(graph)):
        extra = _image_vectors(model, info, count, dataset, preprocessing, camera, images, class_names, reporter)
    else:
        if asked:
            raise InvalidOptionError(f"{model.name} has a {list(tin.shape)} input, and golden images, datasets and "
                                     "camera frames are images",
                                     hint="leave out --golden-images, --dataset and --camera-*/--resize: the golden "
                                          "inputs are then random tensors")
        reporter.info(f"{model.name} takes a {list(tin.shape)} tensor, not an image: golden vectors are seeded "
                      f"random {kind} inputs")
        rng = np.random.default_rng(RANDOM_SEED)
        if tin.dtype == "FLOAT32":
            inputs = _random_float_inputs(rng, (count, *tin.shape[1:]), io_quant(graph)[0])
        else:
            inputs = rng.integers(-128, 128, size=(count, *tin.shape[1:]), dtype=np.int64).astype(np.int8)
        extra = {"inputs": inputs, "indices": (), "labels": (-1,) * count,
                 "source": f"random {kind} inputs, seed {RANDOM_SEED}"}
    outputs = run_tflm([Job(run_model or model, (extra["inputs"],))], reporter,
                       "golden vectors (TFLM)")[0]["output_0"]
    return Golden(outputs=outputs.astype(np.float32 if tout.dtype == "FLOAT32" else np.int8), **extra)


def _random_float_inputs(rng: np.random.Generator, shape: tuple[int, ...], q: Quant | None) -> np.ndarray:
    """float32 values spanning the int8 range of `q` (the QUANTIZE op's output) and 2 steps
    beyond on each side, so some saturate; [-1, 1] without a quantization."""
    if q is None:
        return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    levels = rng.uniform(-130.0, 130.0, size=shape)
    return (np.float64(np.float32(q.scale)) * (levels - q.zero_point)).astype(np.float32)


def _image_vectors(model: VerifiedModel, info: ModelInfo | None, count: int, dataset: str | None,
                   prep: Preprocessing | None, camera_options: CameraOptions, images: Path | None,
                   class_names: tuple[str, ...], reporter: Reporter) -> dict:
    """Golden frames and the input tensors the host's reference of the camera path makes of them."""
    from mncompile.preprocess import camera as cam
    from mncompile.preprocess.contract import lookup_table

    graph = model.graph
    tin = graph.tensors[graph.inputs[0]]
    _, side, width, channels = tin.shape
    if side != width:
        raise InvalidOptionError(f"{model.name} has a {side}x{width} input; golden frames need a square one")
    if prep is None:
        prep = info.preprocessing if info and info.preprocessing else Preprocessing.for_input(side, channels)
    camera = camera_options.camera(side, channels, prep)
    q = io_quant(graph)[0]
    lut = lookup_table(prep, None if tin.dtype == "FLOAT32" else (q.scale, q.zero_point))
    warning, indices, files = None, (), ()
    if images is not None:
        from mncompile.validate.golden_images import read_golden_images

        pictures, labels, files = read_golden_images(images, count, class_names, reporter)
        source = f"images in {images}"
    elif dataset is not None or (info is not None and info.dataset.get("name")):
        pictures, indices, labels, source = _from_dataset(model, info, count, dataset)
    else:
        warning = (f"{model.name} names no dataset and no --golden-images were given: the golden frames are seeded "
                   "random pixels, a weak check (pass --golden-images DIR or --dataset)")
        reporter.info(f"warning: {warning}")
        rng = np.random.default_rng(RANDOM_SEED)
        pictures = [rng.integers(0, 256, size=(camera.height, camera.width, 3), dtype=np.int64).astype(np.uint8)
                    for _ in range(count)]
        labels, source = (-1,) * count, f"random pixels, seed {RANDOM_SEED}"
    frame_bytes = len(pictures) * sum(cam.frame_bytes(f, camera.width, camera.height) for f in camera.formats)
    if frame_bytes > MAX_FRAME_BYTES:  # checked before any frame is made
        raise InvalidOptionError(f"the golden camera frames would take {frame_bytes:,} B of firmware, more than "
                                 f"{MAX_FRAME_BYTES:,} B", hint="use a smaller --camera-size, fewer --camera-format "
                                                                "values or fewer images (--golden)")
    frames, formats, inputs, vec_labels, vec_indices, vec_files = [], [], [], [], [], []
    for k, picture in enumerate(pictures):
        at_camera = _camera_image(picture, camera)
        for fmt in camera.formats:
            frame = cam.encode_frame(at_camera, fmt)
            x = cam.preprocess(frame, camera.width, camera.height, fmt, camera.resize, side, side, channels, lut)
            frames.append(bytes(frame))
            formats.append(fmt)
            inputs.append(x)
            vec_labels.append(labels[k])
            if indices:
                vec_indices.append(indices[k])
            if files:
                vec_files.append(files[k])
    if len(inputs) > MAX_GOLDEN:
        raise InvalidOptionError(f"{len(pictures)} images in {len(camera.formats)} camera formats make "
                                 f"{len(inputs)} golden vectors, more than {MAX_GOLDEN}",
                                 hint="use fewer images (--golden) or fewer --camera-format values")
    return {"inputs": np.stack(inputs), "indices": tuple(vec_indices), "labels": tuple(vec_labels),
            "source": f"{source}, as {'/'.join(camera.formats)} {camera.width}x{camera.height} camera frames",
            "frames": tuple(frames), "formats": tuple(formats), "camera": camera, "lut": lut,
            "files": tuple(vec_files), "warning": warning}


def _camera_image(picture: np.ndarray, camera: Camera) -> np.ndarray:
    """An 8-bit image (H, W, 1 or 3) as the camera delivers it: RGB (a gray image replicated),
    scaled to the camera's size with Pillow's bilinear filter when it differs."""
    from PIL import Image

    rgb = np.repeat(picture, 3, axis=-1) if picture.shape[-1] == 1 else picture
    if rgb.shape[:2] != (camera.height, camera.width):
        rgb = np.asarray(Image.fromarray(rgb, "RGB").resize((camera.width, camera.height),
                                                            Image.Resampling.BILINEAR))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def stratified_pick(labels: np.ndarray, count: int) -> np.ndarray:
    """`count` positions, round-robin over the classes in `labels` (each class's own images evenly
    spaced), so that as many classes as possible appear; sorted."""
    classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    per = [len(c) for c in classes]
    take = [0] * len(classes)
    for _ in range(min(count, len(labels))):
        order = [c for c in range(len(classes)) if take[c] < per[c]]
        c = min(order, key=lambda i: (take[i], i))
        take[c] += 1
    from mncompile.validate.accuracy import evenly_spaced

    return np.sort(np.concatenate([c[evenly_spaced(len(c), t)] for c, t in zip(classes, take, strict=True) if t]))


def _from_dataset(model: VerifiedModel, info: ModelInfo | None, count: int, dataset: str | None):
    from mncompile.model.loader import dataset_for

    graph = model.graph
    tin = graph.tensors[graph.inputs[0]]
    h, _, c = tin.shape[1:]
    data = dataset_for(info, (h, h, c), dataset, model.source)
    if count > len(data.y_val):
        raise InvalidOptionError(f"--golden {count} asks for more vectors than the {len(data.y_val)} "
                                 f"validation images of {data.name}", hint=f"use --golden {len(data.y_val)} or less")
    pick = stratified_pick(data.y_val, count)  # only these images are decoded (a folder's are read on demand)
    return (list(data.x_val[pick]), tuple(int(i) for i in pick), tuple(int(data.y_val[i]) for i in pick),
            f"{data.name} validation split")
