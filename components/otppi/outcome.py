"""Waiting, inside one process, for outbox rows to reach a final state.

The process binds one bell in the outcome directory; an owner that finishes a
row rings every bell there, and each waiter re-reads its row. A slow poll
covers a lost ring. :func:`wait_for` is the one wait every producer uses: a
long-running process passes the watcher it keeps, a short-lived one binds a
bell for that one wait.
"""

from __future__ import annotations

import os
import secrets
import threading
import time

from .doorbell import Doorbell, ring
from .paths import Paths
from .store.outbox import FINAL, Outbox


class OutcomeWatcher:
    def __init__(self, paths: Paths, name: str, poll: float = 0.5):
        self._poll = poll
        self._cond = threading.Condition()
        self._rings = 0
        token = secrets.token_hex(3)
        self._bell = Doorbell(paths.outcome_bells() / f"{name}-{os.getpid()}-{token}.bell")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="outcome-bell", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            if self._bell.wait(1.0):
                with self._cond:
                    self._rings += 1
                    self._cond.notify_all()

    def wait(self, table: Outbox, row_id: int, timeout: float) -> str:
        """The row's state once final, or its current state when *timeout* runs out."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._rings
            state = table.select(table.state).where(table.id == row_id).scalar()
            remaining = deadline - time.monotonic()
            if state in FINAL or state is None or remaining <= 0:
                return state
            with self._cond:
                if self._rings == seen:
                    self._cond.wait(min(remaining, self._poll))

    def close(self) -> None:
        self._stop.set()
        ring(self._bell.path)  # wake the listener so it sees the stop at once
        self._thread.join(timeout=2)
        self._bell.close()


def wait_for(paths: Paths, table: Outbox, row_id: int, timeout: float, *, watcher: OutcomeWatcher | None = None,
             name: str = "wait") -> str | None:
    """The row's state once final, else its state when *timeout* runs out (at once when it is 0).

    Without *watcher*, a bell named *name* is bound for this wait only; a ring that came before it was
    bound is not missed, because the row is read after the bell exists.
    """
    if timeout <= 0:
        return table.select(table.state).where(table.id == row_id).scalar()
    if watcher is not None:
        return watcher.wait(table, row_id, timeout)
    own = OutcomeWatcher(paths, name)
    try:
        return own.wait(table, row_id, timeout)
    finally:
        own.close()
