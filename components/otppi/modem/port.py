"""The bottom layer of the modem driver: the serial port, and the only code that opens one.

The layers above take any object that behaves like `Port` (pyserial's `serial.Serial` does), so the
same framing and AT code runs on a USB modem, the Pi's UART, or the simulator's pseudo-terminals.

USB modems come back under another /dev/ttyUSBn after a replug or a reboot, and their ports swap
places; the udev link in /dev/serial/by-id/ names the device itself, so that is the path we open
and report whenever one points at the configured device.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import serial

from .errors import ModemClosed

BY_ID_DIR = "/dev/serial/by-id"

_PARITY = {
    "N": serial.PARITY_NONE, "NONE": serial.PARITY_NONE,
    "E": serial.PARITY_EVEN, "EVEN": serial.PARITY_EVEN,
    "O": serial.PARITY_ODD, "ODD": serial.PARITY_ODD,
    "M": serial.PARITY_MARK, "MARK": serial.PARITY_MARK,
    "S": serial.PARITY_SPACE, "SPACE": serial.PARITY_SPACE,
}
_STOPBITS = {
    "1": serial.STOPBITS_ONE,
    "1.5": serial.STOPBITS_ONE_POINT_FIVE,
    "2": serial.STOPBITS_TWO,
}
_BYTESIZE = {5: serial.FIVEBITS, 6: serial.SIXBITS, 7: serial.SEVENBITS, 8: serial.EIGHTBITS}


@runtime_checkable
class Port(Protocol):
    """What the framing layer needs from a serial port (a subset of `serial.Serial`).

    `read(n)` returns at most n bytes and b"" when its timeout passes; it raises (pyserial's
    SerialException, or OSError) when the device is gone. `in_waiting` is the count of bytes that
    can be read without waiting.
    """

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


class PortSettingsError(ValueError):
    """A modem's serial settings cannot be applied (wrong parity letter, start bits not 1, ...)."""


@dataclass(frozen=True)
class PortSettings:
    """The serial fields of a modem's settings (SPEC "Modem Settings"), validated.

    `start_bits` is in the settings form because the original had it; a UART always sends exactly
    one start bit, so any other value is a configuration error rather than something to ignore.
    `read_timeout` bounds how long the reader thread blocks before it checks whether to stop;
    `write_timeout` keeps a modem that holds off flow control from hanging the session forever.
    """

    port: str
    baudrate: int = 115200
    parity: str = "N"
    bytesize: int = 8
    stopbits: float = 1
    start_bits: int = 1
    read_timeout: float = 0.5
    write_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not self.port:
            raise PortSettingsError("no serial port configured")
        if int(self.baudrate) <= 0:
            raise PortSettingsError(f"baud rate must be positive, not {self.baudrate!r}")
        if str(self.parity).strip().upper() not in _PARITY:
            raise PortSettingsError(f"parity must be one of N, E, O, M, S, not {self.parity!r}")
        if _stopbits_key(self.stopbits) not in _STOPBITS:
            raise PortSettingsError(f"stop bits must be 1, 1.5 or 2, not {self.stopbits!r}")
        if int(self.bytesize) not in _BYTESIZE:
            raise PortSettingsError(f"data bits must be 5 to 8, not {self.bytesize!r}")
        if int(self.start_bits) != 1:
            raise PortSettingsError(
                f"start bits must be 1 (a UART frame has exactly one), not {self.start_bits!r}")

    def serial_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `serial.Serial`, port excluded."""
        return {
            "baudrate": int(self.baudrate),
            "parity": _PARITY[str(self.parity).strip().upper()],
            "bytesize": _BYTESIZE[int(self.bytesize)],
            "stopbits": _STOPBITS[_stopbits_key(self.stopbits)],
            "timeout": self.read_timeout,
            "write_timeout": self.write_timeout,
        }


def _stopbits_key(value: object) -> str:
    try:
        number = float(str(value).strip())
    except ValueError:
        return ""
    return {1.0: "1", 1.5: "1.5", 2.0: "2"}.get(number, "")


def stable_path(device: str, by_id_dir: str = BY_ID_DIR) -> str:
    """The /dev/serial/by-id/ link that resolves to the same device as `device`, else `device`.

    A path already inside `by_id_dir` is returned as it is. Links are tried in name order so the
    answer is the same on every call.
    """
    if os.path.dirname(os.path.abspath(device)) == os.path.abspath(by_id_dir):
        return device
    try:
        names = sorted(os.listdir(by_id_dir))
    except OSError:
        return device
    target = os.path.realpath(device)
    for name in names:
        link = os.path.join(by_id_dir, name)
        if os.path.realpath(link) == target:
            return link
    return device


def open_port(settings: PortSettings, *, by_id_dir: str = BY_ID_DIR,
              serial_factory: Callable[..., Any] = serial.Serial) -> serial.Serial:
    """Open the modem's port with its settings; raises ModemClosed when it cannot be opened.

    `exclusive=True` takes an advisory lock so a second process (a stray ModemManager, a second
    copy of the service) fails loudly instead of stealing half of the modem's answers.
    """
    path = stable_path(settings.port, by_id_dir)
    try:
        return serial_factory(path, exclusive=True, **settings.serial_kwargs())
    except (serial.SerialException, OSError) as exc:
        raise ModemClosed(f"cannot open {path}: {exc}") from exc
