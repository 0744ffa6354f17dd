"""Fixtures for the AT layers: simulated modems on ptys, reached through real pyserial."""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otppi.modem.at import AtSession, Urc
from otppi.modem.port import PortSettings, open_port
from otppi.modem.simulator import SimulatedModem, Simulator

URC_WAIT = 3.0  # seconds; only reached when a test is failing


class UrcQueue:
    """The URCs a session delivered, with waits (never sleeps)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Urc] = queue.Queue()
        self.seen: list[Urc] = []

    def put(self, urc: Urc) -> None:
        self._queue.put(urc)

    def wait_for(self, prefix: str, timeout: float = URC_WAIT) -> Urc:
        """The next URC with this prefix; others before it are kept in `seen`."""
        while True:
            try:
                urc = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {prefix} URC within {timeout} s; seen {self.seen}") from None
            self.seen.append(urc)
            if urc.prefix == prefix:
                return urc


class Connection:
    """An AtSession on a simulated modem, with its URCs and a port-lost event."""

    def __init__(self, modem: SimulatedModem, **session_kwargs: Any) -> None:
        self.modem = modem
        self.urcs = UrcQueue()
        self.lost = threading.Event()
        self.lost_reason: BaseException | None = None
        port = open_port(PortSettings(modem.path, read_timeout=0.2, write_timeout=2.0))
        self.session = AtSession(port, urc_handler=self.urcs.put, closed_handler=self._lost,
                                 name=f"test-modem{modem.index}", **session_kwargs).start()

    def _lost(self, exc: BaseException) -> None:
        self.lost_reason = exc
        self.lost.set()

    def command(self, cmd: str, timeout: float = 2.0) -> list[str]:
        return self.session.command(cmd, timeout)

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: Unix socket paths must fit in 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="otppi-sim-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., Simulator]]:
    """Start simulators; each is stopped afterwards, and any internal error fails the test."""
    started: list[Simulator] = []

    def make(count: int = 1, profiles: Any = "sim800", **kwargs: Any) -> Simulator:
        simulator = Simulator(count, profiles, **kwargs).start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()
    errors = [error for simulator in started for modem in simulator for error in modem.errors]
    assert not errors, f"the simulator failed internally: {errors!r}"


@pytest.fixture
def connect() -> Iterator[Callable[..., Connection]]:
    opened: list[Connection] = []

    def open_connection(modem: SimulatedModem, **session_kwargs: Any) -> Connection:
        connection = Connection(modem, **session_kwargs)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()


@pytest.fixture
def simulator(make_simulator: Callable[..., Simulator]) -> Simulator:
    return make_simulator()


@pytest.fixture
def modem(simulator: Simulator) -> SimulatedModem:
    return simulator[0]


@pytest.fixture
def conn(modem: SimulatedModem, connect: Callable[..., Connection]) -> Connection:
    """A session on a SIM800 with numeric errors on and PDU mode."""
    connection = connect(modem)
    connection.command("AT+CMEE=1")
    connection.command("AT+CMGF=0")
    return connection
