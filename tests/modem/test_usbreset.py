"""USB reset through sysfs, on a sysfs-shaped tree in a temp dir (the real files are root-only)."""

from __future__ import annotations

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
    writes: list[tuple[Path, str]] = []
    found = usbreset.reset("/dev/ttyUSB0", sys_root=tmp_path, write=lambda path, text: writes.append((path, text)))
    assert found == device.resolve()
    assert writes == [(device.resolve() / "authorized", "0"), (device.resolve() / "authorized", "1")]


def test_reset_writes_the_sysfs_file(tmp_path: Path) -> None:
    device = make_sysfs(tmp_path)
    usbreset.reset("/dev/ttyUSB0", sys_root=tmp_path)
    assert (device / "authorized").read_text() == "1"


def test_a_pty_is_not_a_usb_device(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="not a USB serial device"):
        usbreset.reset("/dev/pts/7", sys_root=tmp_path)
