"""systemd integration that does nothing outside systemd.

The sd_notify protocol is one datagram per message to ``NOTIFY_SOCKET``
(a path, or an abstract name written with a leading ``@``): readiness,
stopping, status, and the watchdog. The watchdog period comes from
``WATCHDOG_USEC``; components ping at half of it from their main loop, so a
loop that hangs gets the unit restarted.

The standard library does this in a few lines; the sdnotify package was
tried and dropped because it leaks its socket when the address is bad and
hides every send error behind a bare ``except``.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    """Reads ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` from the environment."""

    def __init__(self) -> None:
        env = os.environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        watched = bool(address) and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_period: float | None = int(usec) / 1e6 if watched else None
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def _notify(self, state: str) -> None:
        if not self._address:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(state.encode("utf-8"), self._address)
        except OSError as exc:
            # systemd went away or the unit is misconfigured: say so once per message, keep running.
            log.warning("sd_notify %r failed: %s", state.split("=", 1)[0], exc)

    def ready(self, status: str = "") -> None:
        self._notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> None:
        self._notify(f"STATUS={status}")

    def stopping(self) -> None:
        self._notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def ping(self) -> None:
        """Ping the watchdog, at most twice per period (cheap to call every loop turn)."""
        if self.watchdog_period is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_period / 2:
            self._last_ping = now
            self._notify("WATCHDOG=1")

    def loop_timeout(self, wanted: float) -> float:
        """How long a loop may block and still ping the watchdog in time."""
        if self.watchdog_period is None:
            return wanted
        return min(wanted, self.watchdog_period / 4)
