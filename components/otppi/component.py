"""What every long-running component shares: paths, logging, signals, systemd, the store.

A component's ``main()`` builds a :class:`Runtime`, opens the store, wires its
parts, calls :meth:`Runtime.ready`, and loops on :meth:`Runtime.sleep` until
asked to stop; systemd (or the dev launcher) stops it with SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable, Protocol

from . import journal
from . import keys
from .doorbell import Doorbell
from .paths import Paths
from .store import settings
from .store.db import close_database, db, open_database
from .store.migrations import require_current
from .systemd import Notifier


def setup_logging(name: str) -> None:
    """Journal lines carry their priority (``<4>``); a dev run's lines start with the component name."""
    journal.setup(f"{name}: %(levelname)s %(name)s: %(message)s")


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
        """Open the store with the device key, so stored secrets read as text (and are sealed when written)."""
        self.paths.make_dirs()
        open_database(self.paths.database, sealing_key=keys.otp_key(self.paths))
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


class OutboxOwner(Protocol):
    """An outbox's owner (the modem or the mailer dispatcher) as the shared loop drives it."""

    def requeue_in_flight(self) -> int: ...

    def reload(self) -> None: ...

    def turn(self) -> float: ...


def run_owner_loop(rt: Runtime, bell: Doorbell, owner: OutboxOwner, *, noun: str,
                   loaded: Callable[[], str], each_turn: Callable[[], None] | None = None) -> None:
    """The loop of a component that owns an outbox: wake on the doorbell or a sweep, apply settings, turn.

    Rows a crash left 'sending' are queued again first; *loaded* runs once the settings are read and
    returns the readiness status; *each_turn* runs after every turn.
    """
    requeued = owner.requeue_in_flight()
    if requeued:
        logging.getLogger(f"otppi.{rt.name}").warning(
            "%d %s were being sent when the component stopped: queued again", requeued, noun)
    rt.settings_changed()
    owner.reload()
    rt.ready(loaded())
    sleep = 0.0
    while not rt.stopped.is_set():
        rt.notifier.ping()
        bell.wait(rt.notifier.loop_timeout(sleep))
        if rt.stopped.is_set():
            break
        if rt.settings_changed():
            owner.reload()
        sleep = owner.turn()
        if each_turn is not None:
            each_turn()
