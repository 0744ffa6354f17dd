"""systemd integration that does nothing outside systemd.

Wraps sdnotify: readiness, stopping, and the watchdog. The watchdog period
comes from ``WATCHDOG_USEC``; components ping at half of it from their main
loop, so a loop that hangs gets the unit restarted.
"""

from __future__ import annotations

import os
import time
from typing import Mapping

import sdnotify


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self._enabled = bool(env.get("NOTIFY_SOCKET"))
        self._notifier = sdnotify.SystemdNotifier() if self._enabled else None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_period: float | None = int(usec) / 1e6 if watched else None
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self._enabled

    def _notify(self, state: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(state)

    def ready(self, status: str = "") -> None:
        self._notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> None:
        self._notify(f"STATUS={status}")

    def stopping(self) -> None:
        self._notify("STOPPING=1")

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
