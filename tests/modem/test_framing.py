"""The bottom layers: port settings and opening, line framing, and the reader thread on a pty."""

from __future__ import annotations

import os
import queue
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from otppi.modem.errors import ModemClosed
from otppi.modem.framing import PROMPT, FrameReader, LineFramer
from otppi.modem.port import (
    Port,
    PortSettings,
    PortSettingsError,
    open_port,
    stable_path,
)

# -- LineFramer -----------------------------------------------------------------------------------


def test_crlf_bare_cr_and_bare_lf_all_end_lines_and_empty_lines_go():
    framer = LineFramer()
    assert framer.feed(b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n") == ["AT+CSQ", "+CSQ: 20,99", "OK"]
    assert framer.feed(b"one\ntwo\rthree") == ["one", "two"]
    assert framer.feed(b"\r\n") == ["three"]


def test_the_prompt_has_no_line_end():
    framer = LineFramer()
    assert framer.feed(b"AT+CMGS=23\r\r\n> ") == ["AT+CMGS=23", PROMPT]


def test_a_prompt_split_over_two_reads_is_still_a_prompt():
    framer = LineFramer()
    assert framer.feed(b"\r\n>") == []
    assert framer.feed(b" ") == [PROMPT]


def test_a_line_that_starts_like_the_prompt_is_a_line():
    framer = LineFramer()
    assert framer.feed(b"> hello") == []
    assert framer.feed(b"\r\n") == ["> hello"]
    assert framer.feed(b"a> \r\n") == ["a>"]


def test_an_endless_line_is_cut():
    framer = LineFramer(max_line=16)
    frames = framer.feed(b"x" * 40)
    assert frames == ["x" * 16, "x" * 16]


def test_every_byte_decodes():
    assert LineFramer().feed(b"\xff\x80ok\r\n") == ["\xff\x80ok"]


STREAM = st.lists(st.sampled_from([b"OK", b'+CMTI: "SM",3', b"\r", b"\n", b"\r\n", b"AT", b" ",
                                   b"\x00", b"x"]), max_size=30).map(b"".join)


@given(STREAM, st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_lines_do_not_depend_on_how_the_bytes_were_split(data, cuts):
    whole = LineFramer().feed(data + b"\r\n")
    framer, pieces, start = LineFramer(), [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        pieces += framer.feed(data[start:cut])
        start = cut
    assert pieces + framer.feed(b"\r\n") == whole


# -- FrameReader on a pty, with pyserial --------------------------------------------------------

class QueueSink:
    def __init__(self) -> None:
        self.frames: queue.Queue[object] = queue.Queue()
        self.lost: queue.Queue[BaseException | None] = queue.Queue()

    def line_received(self, line: str) -> None:
        self.frames.put(line)

    def prompt_received(self) -> None:
        self.frames.put(PROMPT)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.put(exc)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    yield master, path
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_reader_delivers_lines_and_prompts_and_stops_cleanly(pty_pair):
    master, path = pty_pair
    port = serial.Serial(path, timeout=0.2)
    sink = QueueSink()
    reader = FrameReader(port, sink)
    reader.start()
    os.write(master, b"\r\nOK\r\n\r\n> ")
    assert sink.frames.get(timeout=2) == "OK"
    assert sink.frames.get(timeout=2) is PROMPT
    reader.stop()
    assert sink.lost.get(timeout=2) is None
    assert not reader.is_alive()
    port.close()


def test_reader_reports_a_vanished_device(pty_pair):
    master, path = pty_pair
    port = serial.Serial(path, timeout=0.2)
    sink = QueueSink()
    reader = FrameReader(port, sink)
    reader.start()
    os.close(master)
    assert sink.lost.get(timeout=3) is not None
    port.close()


# -- port settings and opening ---------------------------------------------------------------------

def test_port_settings_map_to_pyserial():
    settings = PortSettings("/dev/ttyUSB0", baudrate=9600, parity="even", bytesize=7,
                            stopbits="1.5")
    kwargs = settings.serial_kwargs()
    assert kwargs["baudrate"] == 9600
    assert kwargs["parity"] == serial.PARITY_EVEN
    assert kwargs["bytesize"] == serial.SEVENBITS
    assert kwargs["stopbits"] == serial.STOPBITS_ONE_POINT_FIVE


@pytest.mark.parametrize("field,value", [
    ("start_bits", 2), ("parity", "X"), ("stopbits", 3), ("bytesize", 9), ("baudrate", 0),
    ("port", ""),
])
def test_port_settings_refuse_what_a_uart_cannot_do(field, value):
    kwargs = {"port": "/dev/ttyUSB0", field: value}
    with pytest.raises(PortSettingsError):
        PortSettings(**kwargs)


def test_stable_path_prefers_a_by_id_link_to_the_same_device(tmp_path: Path, pty_pair):
    _master, path = pty_pair
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-other-if00").symlink_to("/dev/null")
    (by_id / "usb-SIMCOM_SIM800-if00").symlink_to(path)
    assert stable_path(path, str(by_id)) == str(by_id / "usb-SIMCOM_SIM800-if00")
    assert stable_path("/dev/zero", str(by_id)) == "/dev/zero"
    assert stable_path(path, str(tmp_path / "missing")) == path
    linked = str(by_id / "usb-other-if00")
    assert stable_path(linked, str(by_id)) == linked


def test_open_port_uses_the_link_and_locks_the_device(tmp_path: Path, pty_pair):
    _master, path = pty_pair
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Quectel_EC25-if02").symlink_to(path)
    port = open_port(PortSettings(path), by_id_dir=str(by_id))
    try:
        assert isinstance(port, Port)
        assert port.port == str(by_id / "usb-Quectel_EC25-if02")
        with pytest.raises(ModemClosed):
            open_port(PortSettings(path), by_id_dir=str(by_id))
    finally:
        port.close()


def test_open_port_on_a_missing_device_is_modem_closed(tmp_path: Path):
    with pytest.raises(ModemClosed):
        open_port(PortSettings(str(tmp_path / "ttyUSB9")))
