"""The systemd helper against a real AF_UNIX datagram socket, and a no-op outside systemd."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from otppi.systemd import Notifier


@pytest.fixture
def notify_socket(short_tmp: Path):
    path = short_tmp / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield path, sock
    sock.close()


def notifier(monkeypatch: pytest.MonkeyPatch, **env: str) -> Notifier:
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Notifier()


def test_ready_stopping_and_status_reach_the_socket(notify_socket, monkeypatch) -> None:
    path, sock = notify_socket
    n = notifier(monkeypatch, NOTIFY_SOCKET=str(path))
    n.ready("2 listeners")
    assert sock.recv(256) == b"READY=1\nSTATUS=2 listeners"
    n.status("busy")
    assert sock.recv(256) == b"STATUS=busy"
    n.stopping()
    assert sock.recv(256) == b"STOPPING=1"
    n.close()


def test_watchdog_period_and_pings(notify_socket, monkeypatch) -> None:
    path, sock = notify_socket
    n = notifier(monkeypatch, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="4000000", WATCHDOG_PID=str(os.getpid()))
    assert n.watchdog_period == 4.0
    assert n.loop_timeout(10) == 1.0
    n.ping()
    assert sock.recv(64) == b"WATCHDOG=1"
    n.ping()  # within half a period: not sent again
    sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        sock.recv(64)
    n.close()


def test_watchdog_for_another_pid_is_ignored(monkeypatch) -> None:
    n = notifier(monkeypatch, NOTIFY_SOCKET="/nonexistent", WATCHDOG_USEC="4000000", WATCHDOG_PID="1")
    assert n.watchdog_period is None
    n.close()


def test_abstract_socket_names(monkeypatch) -> None:
    name = f"otppi-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    n = notifier(monkeypatch, NOTIFY_SOCKET="@" + name)
    n.ready()
    assert sock.recv(64) == b"READY=1"
    n.close()
    sock.close()


def test_a_missing_socket_is_logged_not_raised(monkeypatch, caplog) -> None:
    n = notifier(monkeypatch, NOTIFY_SOCKET="/nonexistent/notify")
    n.ready()
    n.close()
    assert "sd_notify 'READY' failed" in caplog.text


def test_outside_systemd_everything_is_a_no_op(monkeypatch) -> None:
    n = notifier(monkeypatch)
    assert not n.enabled and n.watchdog_period is None
    n.ready(), n.ping(), n.stopping()
    assert n.loop_timeout(3) == 3
