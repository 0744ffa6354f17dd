"""The doorbell: a datagram on a Unix socket that wakes a component.

The store is the truth; a ring only says "look now". A ring to a component
that is not listening is dropped silently, because every owner also sweeps
on a short period.
"""

from __future__ import annotations

import errno
import os
import select
import socket
from pathlib import Path

_DROPPED = {errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN, errno.ENOBUFS, errno.ENOTSOCK}


def _send(path: Path, payload: bytes) -> int:
    """Send one datagram; 0 when delivered, else the errno of a dropped ring."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.sendto(payload, str(path))
        return 0
    except OSError as exc:
        if exc.errno in _DROPPED:
            return exc.errno
        raise
    finally:
        sock.close()


def ring(path: Path, payload: bytes = b"!") -> bool:
    """Ring the bell at *path*; False when nobody listens (the ring is dropped)."""
    return _send(path, payload) == 0


def ring_all(directory: Path, payload: bytes = b"!") -> int:
    """Ring every bell in *directory*, removing sockets whose listener has died."""
    try:
        names = [n for n in os.listdir(directory) if n.endswith(".bell")]
    except FileNotFoundError:
        return 0
    rung = 0
    for name in names:
        path = directory / name
        result = _send(path, payload)
        if result == 0:
            rung += 1
        elif result == errno.ECONNREFUSED:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
    return rung


class Doorbell:
    """The listening side: bind at *path*, then :meth:`wait` for rings."""

    def __init__(self, path: Path):
        self.path = path
        if len(os.fsencode(path)) >= 108:
            raise OSError(f"socket path is longer than AF_UNIX allows (108 bytes): {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def wait(self, timeout: float | None) -> bool:
        """Block until rung or *timeout*; swallow every queued ring. True if rung."""
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if not ready:
            return False
        self.drain()
        return True

    def drain(self) -> int:
        count = 0
        while True:
            try:
                self._sock.recv(64)
            except BlockingIOError:
                return count
            count += 1

    def close(self) -> None:
        self._sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "Doorbell":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
