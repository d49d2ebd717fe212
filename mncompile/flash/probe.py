"""The debug probe, through pyOCD's Python API: the one module that talks to pyOCD's probe layer.

    choose_probe(unique_id, ft)  -> the attached probe (pyOCD's DebugProbe), or NoProbeError
    open_session(probe, ft)      -> a context manager: an open pyOCD Session for ft.pyocd_target
    program(session, elf)        -> pyOCD's FileProgrammer writes the ELF's loadable sections to flash
    reset_run(session)           -> reset the core and let it run
    halted_status(session)       -> the firmware's exit status once it halts in board_exit() (r0), else None

Why pyOCD: a maintained pure-Python package (pip, no vendor installer) that speaks CMSIS-DAP
(DAPLink, the Pico Debug Probe, MCU-Link), ST-LINK and J-Link, and programs flash with the
algorithms of CMSIS-Packs. Probes are enumerated with blocking=False: with none attached pyOCD
returns an empty list instead of waiting, and `choose_probe` turns that into a NoProbeError that
says what was looked for (`searched`: pyOCD's probe types and the USB vendor/product ids it
matches, read from pyOCD itself so the message follows the installed version).

The firmware's board_exit() (firmware/common/board_real.h) ends with `bkpt` and the status in r0
when a debugger is attached, as pyOCD is while this session is open: the core then halts, and
`halted_status` reads r0. That is a second witness to the "mncompile: exit status N" console line.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from mncompile.errors import FlashError, NoProbeError
from mncompile.flash.target import INSTALL_PYOCD, FlashTarget

FIX_NO_PROBE = ("connect the board's debug USB port (ST-LINK, DAPLink/CMSIS-DAP, J-Link) and check `pyocd list` "
                "shows it; on Linux, install the probes' udev rules (pyOCD's udev/ folder, e.g. "
                "https://github.com/pyocd/pyOCD/tree/main/udev, into /etc/udev/rules.d/, then replug) or run as a "
                "user in the plugdev group; inside a container, pass the USB device through")


def _pyocd():
    try:
        from pyocd.core.helpers import ConnectHelper
    except ImportError as exc:
        raise FlashError(f"pyOCD is not installed ({exc}): `mncompile flash` programs boards with it",
                         hint=INSTALL_PYOCD) from None
    return ConnectHelper


def searched() -> dict:
    """What pyOCD looks for when it enumerates probes: its probe types and the USB ids it matches."""
    found: dict = {"probe_types": [], "usb_ids": {}}
    try:
        from pyocd.probe.aggregator import PROBE_CLASSES
        found["probe_types"] = sorted(PROBE_CLASSES)
    except ImportError:
        return found
    ids = found["usb_ids"]
    try:
        from pyocd.probe.pydapaccess.interface.common import KNOWN_CMSIS_DAP_IDS
        ids["cmsisdap"] = ["any USB device whose product name contains 'CMSIS-DAP'",
                           *(f"{vid:04x}:{pid:04x}" for vid, pid in KNOWN_CMSIS_DAP_IDS)]
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    try:
        from pyocd.probe.stlink.usb import STLinkUSBInterface
        ids["stlink"] = [f"{STLinkUSBInterface.USB_VID:04x}:{pid:04x} (ST-LINK/{info.version_name})"
                         for pid, info in sorted(STLinkUSBInterface.USB_PID_EP_MAP.items())]
    except (ImportError, AttributeError, TypeError, ValueError):  # pyOCD internals: the message must not fail
        pass
    try:
        from pyocd.probe.picoprobe import FindPicoprobe
        vid, pid, _ = FindPicoprobe.VID_PID_CLASS
        ids["picoprobe"] = [f"{vid:04x}:{pid:04x}"]
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    return found


def searched_text(info: dict) -> str:
    """`searched()` in one sentence for the error message."""
    parts = []
    for kind, ids in info.get("usb_ids", {}).items():
        shown = ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")
        parts.append(f"{kind} ({shown})")
    types = ", ".join(info.get("probe_types", ())) or "none (pyOCD loaded no probe plugins)"
    text = f"pyOCD's probe types {types}; USB ids vendor:product " + ("; ".join(parts) if parts else "unknown")
    if "jlink" not in info.get("probe_types", ()):
        text += "; J-Link probes were not searched (pyOCD sees them only with SEGGER's J-Link software installed)"
    return text


def connected_probes(unique_id: str | None = None) -> list:
    """The probes attached now (pyOCD's DebugProbe objects), matching `unique_id` as pyOCD matches it
    (a substring of the probe's id); never waits for one."""
    helper = _pyocd()
    try:
        return list(helper.get_all_connected_probes(blocking=False, unique_id=unique_id))
    except Exception as exc:  # libusb missing or unusable, a probe that fails to answer
        raise FlashError(f"pyOCD could not enumerate the USB debug probes: {type(exc).__name__}: {exc}",
                         hint=FIX_NO_PROBE) from None


def choose_probe(unique_id: str | None, ft: FlashTarget, document: dict | None = None):
    """The one probe to use: the only one attached, or the one `unique_id` names. NoProbeError when
    none is attached (or none matches), FlashError when several are and no --probe says which."""
    probes = connected_probes(unique_id)
    if not probes:
        info = searched()
        asked = f" with an id containing {unique_id!r}" if unique_id else ""
        others = connected_probes(None) if unique_id else []
        seen = (" (attached: " + ", ".join(f"{p.unique_id} {p.description}" for p in others) + ")") if others else ""
        raise NoProbeError(
            f"no debug probe{asked} is attached{seen}: looked for {searched_text(info)}, to program target "
            f"{ft.pyocd_target} (board {ft.board})",
            hint=FIX_NO_PROBE + ("; or drop --probe / pass one of the ids above" if others else ""),
            document={**(document or {}), "searched": {**info, "unique_id": unique_id}})
    if len(probes) > 1:
        listing = "; ".join(f"{p.unique_id} ({p.description})" for p in probes)
        raise FlashError(f"{len(probes)} debug probes are attached: {listing}",
                         hint="pass --probe UID (a part of the id is enough when it is unique)",
                         document={**(document or {}), "probes": [probe_json(p) for p in probes]})
    return probes[0]


def probe_json(probe) -> dict:
    return {"unique_id": str(getattr(probe, "unique_id", "")), "description": str(getattr(probe, "description", "")),
            "vendor": str(getattr(probe, "vendor_name", "") or ""), "product": str(getattr(probe, "product_name", "")
                                                                                 or "")}


@contextmanager
def open_session(probe, ft: FlashTarget, pack_file: Path | None = None, document: dict | None = None):
    """An open pyOCD session on `probe` for target ft.pyocd_target (a pack file given with --pack added to
    the ones pyOCD's pack manager installed). pyOCD's own errors become FlashError."""
    from pyocd.core.session import Session

    options = {"target_override": ft.pyocd_target, "resume_on_disconnect": True}
    if pack_file is not None:
        options["pack"] = str(Path(pack_file).resolve())
    session = Session(probe, options=options)
    try:
        session.open()
    except Exception as exc:
        raise FlashError(f"pyOCD could not connect to {ft.pyocd_target} through probe {probe.unique_id}: "
                         f"{type(exc).__name__}: {exc}",
                         hint="is the board powered and its SWD lines free (jumpers on the debugger's side)? "
                              f"{'is the pack installed (`' + ft.pack_install_command + '`)? ' if ft.pack else ''}"
                              "`pyocd commander --target " + ft.pyocd_target + "` shows the same connection",
                         document=document) from None
    try:
        yield session
    finally:
        try:
            session.close()
        except Exception:  # the board was unplugged meanwhile: nothing left to close
            pass


def program(session, elf: Path, document: dict | None = None) -> None:
    """Write the ELF's loadable sections to flash with pyOCD's FileProgrammer (erasing the sectors it uses)."""
    from pyocd.flash.file_programmer import FileProgrammer

    try:
        FileProgrammer(session).program(str(elf), file_format="elf")
    except Exception as exc:
        raise FlashError(f"pyOCD failed to program {elf}: {type(exc).__name__}: {exc}",
                         hint="the log above names the step; try `pyocd erase --chip` and flash again",
                         document=document) from None


def reset_run(session) -> None:
    """Reset the core and let it run the new image from its reset vector."""
    session.board.target.reset()


def halted_status(session) -> int | None:
    """The exit status the firmware left in r0 when it halted at board_exit()'s bkpt; None while it runs."""
    target = session.board.target
    try:
        if not target.is_halted():
            return None
        value = int(target.read_core_register("r0"))
    except Exception:  # a probe hiccup is no verdict: the console line decides
        return None
    return value - (1 << 32) if value & 0x80000000 else value
