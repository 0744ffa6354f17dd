"""USB reset through sysfs, on a sysfs-shaped tree in a temp dir (the real files are root-only)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from otppi.modem import usbreset


def make_sysfs(root: Path) -> Path:
    device = root / "devices/platform/soc/usb1/1-1/1-1.3"
    interface = device / "1-1.3:1.0/ttyUSB0"
    interface.mkdir(parents=True)
    (device / "authorized").write_text("1")
    (device / "idVendor").write_text("12d1")
    tty = root / "class/tty/ttyUSB0"
    tty.mkdir(parents=True)
    (tty / "device").symlink_to(interface)
    return device


def test_reset_toggles_authorized_of_the_usb_device(tmp_path: Path) -> None:
    device = make_sysfs(tmp_path)
    authorized = device / "authorized"
    authorized.unlink()
    os.mkfifo(authorized)  # sees each write separately, as sysfs does
    writes: list[str] = []

    def read_twice() -> None:
        for _ in range(2):
            with open(authorized) as fifo:
                writes.append(fifo.read())

    reader = threading.Thread(target=read_twice)
    reader.start()
    found = usbreset.reset("/dev/ttyUSB0", sys_root=tmp_path)
    reader.join(5)
    assert found == device.resolve()
    assert writes == ["0", "1"]


def test_a_pty_is_not_a_usb_device(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="not a USB serial device"):
        usbreset.reset("/dev/pts/7", sys_root=tmp_path)
