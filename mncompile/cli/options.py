"""Options and option helpers shared by the `mncompile` commands (`mncompile.cli.app`)."""

from __future__ import annotations

from pathlib import Path

import typer

from mncompile.errors import InvalidOptionError

JSON_OPTION = typer.Option(False, "--json", help="Print exactly one JSON document on stdout.")
PROFILE_OPTION = typer.Option(False, "--profile", help="Per-layer profile: the firmware times every operator "
                              "(instructions on QEMU, cycles with DWT) and `mncompile run` prints the per-layer "
                              "table. Without it the firmware has no profiling code.")
BACKEND_OPTION = typer.Option("tflm", "--backend", help="tflm: a TensorFlow Lite Micro project (the "
                              "interpreter runs the model); aot: C code calling mncompile's int8 kernels, "
                              "compiled ahead of time (no TFLM, one static arena, bit-exact with TFLM).")
MEMORY_OPTION = typer.Option("balanced", "--memory", help="The AOT backend's schedule against the RAM limit "
                             "(--ram, or the target's): speed (layer by layer), balanced (layer by layer when "
                             "it fits, else the patch-based schedule with the fewest extra MACs that fits), min "
                             "(the least RAM: the first layers run tile by tile, overlaps computed again).")
VELA_SYSTEM_OPTION = typer.Option(None, "--vela-system-config", help="Ethos-U targets: Vela's system config "
                                   "(Arm/vela.ini), e.g. Ethos_U55_High_End_Embedded. [default: the target's]")
VELA_MEMORY_OPTION = typer.Option(None, "--vela-memory-mode", help="Ethos-U targets: Vela's memory mode: "
                                  "Shared_Sram, Sram_Only, Dedicated_Sram. [default: the target's]")
VELA_OPTIMISE_OPTION = typer.Option("Performance", "--vela-optimise", help="Ethos-U targets: Vela's strategy, "
                                    "Performance or Size (least SRAM).")
INPUT_RANGE_OPTION = typer.Option(None, "--input-range", help="How 0..255 pixels map onto the model's input: "
                                  "linearly onto [LO,HI], e.g. 0,1 or -1,1. [default: the sidecar's, else the "
                                  "range an int8 input's quantization covers, else -1,1 with a warning]")
MEAN_OPTION = typer.Option(None, "--mean", help="Per-channel mean R,G,B (with --std): x = (pixel - mean) / std, "
                           "on pixel/255 when every mean and std is at most 1 (torch), on 0..255 otherwise (caffe).")
STD_OPTION = typer.Option(None, "--std", help="Per-channel standard deviation R,G,B (with --mean).")
LABELS_OPTION = typer.Option(None, "--labels", help="Class labels, one a line, in the order of the model's "
                             "outputs. [default: the sidecar's]")
GOLDEN_IMAGES_OPTION = typer.Option(None, "--golden-images", help="A folder of your own pictures for the golden "
                                    "vectors (files, or class folders named after the labels). [default: the "
                                    "dataset's validation split, else random pixels with a warning]")
CAMERA_FORMAT_OPTION = typer.Option(None, "--camera-format", help="Pixel format(s) of the golden camera frames, "
                                    "comma-separated: rgb888, rgb565, rgb565be, gray8, yuv422 (YUYV); every golden "
                                    "image is carried in each. [default: rgb888, gray8 for a 1-channel model]")
CAMERA_SIZE_OPTION = typer.Option(None, "--camera-size", help="Size of the golden camera frames, WIDTHxHEIGHT, "
                                  "e.g. 160x120; the firmware resizes them to the model's side. [default: the "
                                  "model's side]")
RESIZE_OPTION = typer.Option(None, "--resize", help="How the firmware resizes a camera frame: nearest or bilinear. "
                             "[default: the preprocessing's, bilinear]")
WEIGHTS_OPTION = typer.Option(None, "--weights", help="Start from a pretrained base: imagenet (Keras "
                              "applications' weights, for the alphas and resolutions Keras publishes; downloaded "
                              "into Keras' cache when online) or a weights file of that base (model.save_weights). "
                              "The base is frozen while the new classifier trains for --epochs.")
FINE_TUNE_OPTION = typer.Option(0, "--fine-tune-epochs", help="With --weights: then unfreeze the top quarter of the "
                                "base (batch norms stay frozen) and train this many more epochs at a tenth of the "
                                "learning rate.")
QAT_OPTION = typer.Option(False, "--qat", help="Quantization-aware training instead of post-training calibration: "
                          "fine-tune the float model with fake int8 quantization (tensorflow-model-optimization) on "
                          "the dataset's training split, then convert it (--calib-samples is not used).")
QAT_EPOCHS_OPTION = typer.Option(3, "--qat-epochs", help="With --qat: epochs of quantization-aware fine-tuning.")
QAT_LR_OPTION = typer.Option(1e-4, "--qat-learning-rate", help="With --qat: Adam learning rate of the fine-tune.")
MAX_DROP_OPTION = typer.Option(None, "--max-drop", help="Accuracy gate: exit 12 when int8 top-1 accuracy is more "
                                "than this many points below float (the message names the likely culprit). "
                                "Without it, a drop over 1 point is a warning.")

def _pixels(input_range: str | None, mean: str | None, std: str | None, labels: Path | None):
    from mncompile.preprocess.contract import PixelOptions

    return PixelOptions(input_range, mean, std, labels)


def _qat(qat: bool, epochs: int, learning_rate: float):
    from mncompile.quantize.qat import QatConfig

    if qat:
        return QatConfig(epochs=epochs, learning_rate=learning_rate)
    default = QatConfig()
    if (epochs, learning_rate) != (default.epochs, default.learning_rate):
        raise InvalidOptionError("--qat-epochs and --qat-learning-rate tune quantization-aware training, and --qat "
                                 "was not given", hint="add --qat, or leave them out")
    return None


def _camera(formats: str | None, size: str | None, resize: str | None):
    from mncompile.preprocess.camera import CameraOptions

    return CameraOptions(formats, size, resize)


def _vela(system_config: str | None, memory_mode: str | None, optimise: str):
    from mncompile.npu import VelaOptions

    return VelaOptions(system_config, memory_mode, optimise)


def _resolution(resolution: int | None, rho: float | None, default: int) -> int:
    from mncompile.model.spec import resolution_from_rho

    if resolution is not None and rho is not None:
        raise InvalidOptionError("give --resolution or --rho, not both")
    if rho is not None:
        return resolution_from_rho(rho)
    return default if resolution is None else resolution


ARCH = typer.Option("v1", "--arch", help="MobileNet version: v1 or v2.")
ALPHA = typer.Option(0.25, "--alpha", help="Width multiplier alpha, in (0, 1.4].")
RESOLUTION = typer.Option(None, "--resolution", "-r",
                          help="Input side in pixels (32-1024). [default: 96; inspect: 224]")
RHO = typer.Option(None, "--rho", help="Resolution multiplier as in the paper: side = 224*rho.")
CHANNELS = typer.Option(None, "--channels", help="Input channels, 1 or 3. [default: the "
                                                  "dataset's own: digits 1, shapes 3, folders by image mode]")
DATASET = typer.Option("digits", "--dataset", "-d",
                       help="digits, shapes, or a folder DIR/<class_name>/*.{png,jpg,jpeg,bmp}.")
EPOCHS = typer.Option(15, "--epochs", help="Training epochs.")
BATCH = typer.Option(32, "--batch-size", help="Training batch size.")
LR = typer.Option(2e-3, "--learning-rate", help="Adam learning rate (cosine-decayed to 0).")
SEED = typer.Option(0, "--seed", help="Seed for the split, augmentation and initialisation.")
DROPOUT = typer.Option(0.1, "--dropout", help="Dropout rate before the classifier, in [0, 1); 0 turns it off.")
AUGMENT = typer.Option(0.1, "--augment", help="Random-shift augmentation, as a fraction of the side, in [0, 0.5); "
                       "0 turns it off.")
WORKERS_OPTION = typer.Option(None, "--workers", help="Train on a cluster (tf.distribute "
                              "MultiWorkerMirroredStrategy): HOST:PORT of every worker, comma-separated, the same "
                              "list on every machine; with --worker-index. Or set TF_CONFIG instead. --batch-size "
                              "is the global batch, split over the workers.")
WORKER_INDEX_OPTION = typer.Option(None, "--worker-index", help="With --workers: this machine's place in the list "
                                   "(0 is the chief).")
DEVICES_OPTION = typer.Option(None, "--devices", help="Mirror over N local devices in one process (tf.distribute "
                              "MirroredStrategy): N GPUs, or the CPU split into N logical devices when there is no "
                              "GPU. [default: every GPU when there are several, else one device]")
PEER_TIMEOUT_OPTION = typer.Option(300.0, "--peer-timeout", help="With a cluster: seconds to wait for every worker "
                                   "to connect before giving up.")

EMIT_BACKEND_OPTION = typer.Option(None, "--backend", help="tflm: a TensorFlow Lite Micro project (the "
                                   "interpreter runs the model); aot: C code calling mncompile's int8 kernels, "
                                   "compiled ahead of time (no TFLM, one static arena, bit-exact with TFLM). "
                                   "[default: tflm; aot with --layout library, the only backend it takes]")
LAYOUT_OPTION = typer.Option("firmware", "--layout", help="firmware: a project with a golden-vector main and board "
                             "support; library: a static library (CMake target mncompile::model, one header) to "
                             "link into your application, also a Zephyr module and an Arduino library "
                             "(--backend aot; --golden 0 allowed).")


PROBE_OPTION = typer.Option(None, "--probe", help="The debug probe's unique id (or a part of it), as `pyocd list` "
                            "shows it. [default: the only probe attached]")
PORT_OPTION = typer.Option(None, "--port", help="The serial port of the board's console. [default: the probe's own "
                           "virtual COM port, found by its USB serial number]")
BAUD_OPTION = typer.Option(115200, "--baud", help="The console's baud rate (the firmware's UART runs 115200 8N1).")
PACK_OPTION = typer.Option(None, "--pack", help="A CMSIS-Pack file (.pack) for a target pyOCD lacks, when "
                           "`pyocd pack install` cannot download it. [default: pyOCD's installed packs]")


def _flash_request(probe: str | None, port: str | None, baud: int, timeout: float, pack: Path | None):
    from mncompile.flash import FlashRequest

    return FlashRequest(probe=probe, port=port, baud=baud, timeout=timeout, pack=pack)
