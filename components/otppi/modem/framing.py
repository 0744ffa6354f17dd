"""The framing layer: bytes from the port become lines, plus the "> " prompt.

A modem ends its lines with CR LF, echoes commands ending in a bare CR, and pads answers with empty
lines; all three are handled by treating CR and LF each as a line end and dropping empty lines. The
one frame with no line end is the "> " prompt that asks for the PDU after AT+CMGS (TS 27.005 clause
3.5.1), so it is recognised when the bytes since the last line end are exactly "> ".

`LineFramer` is pure (bytes in, frames out); `FrameReader` is the thread that reads the port in
chunks and hands frames to a sink, shaped after pyserial's `serial.threaded.ReaderThread`.
"""

from __future__ import annotations

import enum
import logging
import threading
from typing import Protocol

import serial

from .port import Port

log = logging.getLogger(__name__)

PROMPT_BYTES = b"> "
# Lines are decoded as Latin-1: every byte maps to one character and back, so a modem that answers
# in the GSM or 8-bit character set never makes decoding fail, and upper layers can recover bytes.
DEFAULT_ENCODING = "latin-1"
MAX_LINE = 8192


class Prompt(enum.Enum):
    """The "> " prompt: its own frame type, so no line can ever be mistaken for it."""

    PROMPT = "> "


PROMPT = Prompt.PROMPT
Frame = str | Prompt


class LineFramer:
    """Split a byte stream into stripped, non-empty lines and prompts."""

    def __init__(self, encoding: str = DEFAULT_ENCODING, max_line: int = MAX_LINE) -> None:
        self.encoding = encoding
        self.max_line = max_line
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by `data`, in order; an unfinished line stays buffered."""
        frames: list[Frame] = []
        for byte in data:
            if byte in (0x0D, 0x0A):
                self._finish_line(frames)
            else:
                self._buffer.append(byte)
                if len(self._buffer) >= self.max_line:
                    # A line this long is garbage (line noise at a wrong baud rate): hand it up
                    # rather than buffer without bound.
                    self._finish_line(frames)
        if bytes(self._buffer) == PROMPT_BYTES:
            self._buffer.clear()
            frames.append(PROMPT)
        return frames

    def reset(self) -> None:
        """Forget a half-received line (after the port was reopened)."""
        self._buffer.clear()

    def _finish_line(self, frames: list[Frame]) -> None:
        line = self._buffer.decode(self.encoding, "replace").strip(" \t\x00")
        self._buffer.clear()
        if line:
            frames.append(line)


class FrameSink(Protocol):
    """Where a FrameReader delivers; all three are called on the reader thread."""

    def line_received(self, line: str) -> None: ...

    def prompt_received(self) -> None: ...

    def connection_lost(self, exc: BaseException | None) -> None:
        """The reader stopped: exc is None after stop(), else why the port failed."""


class FrameReader(threading.Thread):
    """Read the port in chunks on a thread of its own and deliver frames to a sink.

    Reads `read(in_waiting or 1)`: whatever has arrived, else block (up to the port's timeout) for
    the next byte, so there is no polling and no sleeping. `stop()` interrupts a blocked read with
    `cancel_read()` where the port has it (pyserial on POSIX does), else waits out the timeout.
    """

    def __init__(self, port: Port, sink: FrameSink, *, framer: LineFramer | None = None,
                 name: str = "modem-reader") -> None:
        super().__init__(name=name, daemon=True)
        self.port = port
        self.sink = sink
        self.framer = framer or LineFramer()
        self._alive = threading.Event()
        self._alive.set()

    @property
    def alive(self) -> bool:
        return self._alive.is_set() and self.is_alive()

    def run(self) -> None:
        error: BaseException | None = None
        try:
            while self._alive.is_set():
                try:
                    data = self.port.read(self.port.in_waiting or 1)
                except (serial.SerialException, OSError, TypeError, ValueError) as exc:
                    # SerialException/OSError: the device went away. TypeError/ValueError: pyserial
                    # when the port was closed under a blocked read.
                    if self._alive.is_set():
                        error = exc
                    break
                if data:
                    self._deliver(data)
        except Exception as exc:  # a sink bug: stop reading, and say why through connection_lost
            log.exception("modem frame sink failed")
            error = exc
        finally:
            self._alive.clear()
            self.sink.connection_lost(error)

    def _deliver(self, data: bytes) -> None:
        for frame in self.framer.feed(data):
            if frame is PROMPT:
                self.sink.prompt_received()
            else:
                self.sink.line_received(frame)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading (the port stays open); safe to call from the sink itself."""
        self._alive.clear()
        cancel = getattr(self.port, "cancel_read", None)
        if cancel is not None:
            try:
                cancel()
            except (serial.SerialException, OSError) as exc:
                log.debug("cancel_read failed: %s", exc)
        if threading.current_thread() is not self and self.is_alive():
            self.join(timeout)
