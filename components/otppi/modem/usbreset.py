"""Resetting the USB device behind a serial port, the last step of recovering a hung modem.

A hung modem keeps its tty but answers nothing; de-authorising and
re-authorising its USB device in sysfs re-enumerates it, as unplugging does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def usb_device_dir(tty: str, sys_root: Path = Path("/sys")) -> Path:
    """The sysfs folder of the USB device a tty belongs to; LookupError when it is not USB."""
    name = os.path.basename(os.path.realpath(tty))
    node = sys_root / "class/tty" / name / "device"
    if not node.exists():
        raise LookupError(f"{tty} is not a USB serial device")
    current = node.resolve()
    while current != current.parent:
        if (current / "authorized").exists() and (current / "idVendor").exists():
            return current
        current = current.parent
    raise LookupError(f"{tty} is not on a USB device")


def reset(tty: str, sys_root: Path = Path("/sys"), write: Callable[[Path, str], None] = _write) -> Path:
    """Re-enumerate the modem's USB device; needs write access to its ``authorized`` file."""
    device = usb_device_dir(tty, sys_root)
    write(device / "authorized", "0")
    write(device / "authorized", "1")
    return device
