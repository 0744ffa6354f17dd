"""What every long-running component shares: paths, logging, signals, systemd, the store.

A component's ``main()`` builds a :class:`Runtime`, opens the store, wires its
parts, calls :meth:`Runtime.ready`, and loops on :meth:`Runtime.sleep` until
asked to stop; systemd (or the dev launcher) stops it with SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from .paths import Paths
from .store import settings
from .store.db import close_database, db, open_database
from .store.migrations import require_current
from .systemd import Notifier


def setup_logging(name: str) -> None:
    # journald adds time and unit; a dev run prefixes the component name.
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"{name}: %(levelname)s %(name)s: %(message)s",
    )


class Runtime:
    def __init__(self, name: str, paths: Paths | None = None):
        self.name = name
        self.paths = paths or Paths.from_env()
        self.notifier = Notifier()
        self.stopped = threading.Event()
        self._generation = -1

    def install_signals(self, on_stop=None) -> None:
        """SIGTERM and SIGINT stop the loop; *on_stop* may wake a loop blocked elsewhere."""

        def stop(signum: int, frame: object) -> None:
            self.stopped.set()
            if on_stop is not None:
                on_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def open_store(self) -> None:
        self.paths.make_dirs()
        open_database(self.paths.database)
        require_current(db)

    def settings_changed(self) -> bool:
        """True on the first call and whenever any settings page or list was edited since."""
        current = settings.generation()
        changed = current != self._generation
        self._generation = current
        return changed

    def ready(self, status: str = "") -> None:
        self.notifier.ready(status)

    def sleep(self, seconds: float) -> bool:
        """Wait up to *seconds* (short enough for the watchdog); True while the component should run."""
        self.notifier.ping()
        return not self.stopped.wait(self.notifier.loop_timeout(seconds))

    def close(self) -> None:
        self.notifier.stopping()
        self.notifier.close()
        close_database()
