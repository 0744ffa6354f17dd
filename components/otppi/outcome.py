"""Waiting, inside one process, for outbox rows to reach a final state.

The process binds one bell in the outcome directory; an owner that finishes a
row rings every bell there. One listener thread per process then reads the
state of every row anybody in the process waits for, in one query per table,
and tells the waiters whose rows are final. A slow poll covers a lost ring.

Waiters are either threads (:meth:`OutcomeWatcher.wait`) or coroutines
(:meth:`OutcomeWatcher.until_final`): a coroutine waiting holds no thread, so
the REST server can keep a thousand requests waiting for their SMS at the
cost of a future each. :func:`wait_for` is the one wait every producer uses:
a long-running process passes the watcher it keeps, a short-lived one binds
a bell for that one wait.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import threading
from typing import Callable

from .doorbell import Doorbell, ring
from .paths import Paths
from .store.db import db
from .store.outbox import FINAL, Outbox

log = logging.getLogger(__name__)

#: Told the row's final state, or None when none is known (the row is gone, or the watcher is released).
Done = Callable[[str | None], None]

#: Rows per ``id IN (...)`` query, under SQLite's default limit of host parameters.
CHUNK = 500


class OutcomeWatcher:
    def __init__(self, paths: Paths, name: str, poll: float = 0.5):
        self._poll = poll
        self._lock = threading.Lock()
        self._watches: dict[int, tuple[Outbox, int, Done]] = {}
        self._tokens = itertools.count(1)
        self._fresh = False  # a watch was added since the last look
        token = secrets.token_hex(3)
        self._bell = Doorbell(paths.outcome_bells() / f"{name}-{os.getpid()}-{token}.bell")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="outcome-bell", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- watching

    def watch(self, table: Outbox, row_id: int, done: Done) -> int:
        """Call *done* (on the listener thread) once the row is final; returns a token for :meth:`unwatch`.

        The row is looked at right after the watch is added, so a row that became final before is
        reported at once.
        """
        with self._lock:
            token = next(self._tokens)
            self._watches[token] = (table, row_id, done)
            wake = not self._fresh
            self._fresh = True
        if wake:
            ring(self._bell.path)
        return token

    def unwatch(self, token: int) -> None:
        with self._lock:
            self._watches.pop(token, None)

    def wait(self, table: Outbox, row_id: int, timeout: float) -> str:
        """The row's state once final, or its current state when *timeout* runs out (blocks the thread)."""
        done = threading.Event()
        seen: list[str | None] = []

        def final(state: str | None) -> None:
            seen.append(state)
            done.set()

        token = self.watch(table, row_id, final)
        try:
            done.wait(max(0.0, timeout))
        finally:
            self.unwatch(token)
        if seen:
            return seen[0]
        return table.select(table.state).where(table.id == row_id).scalar()

    async def until_final(self, table: Outbox, row_id: int, timeout: float) -> str | None:
        """The row's final state, or None when *timeout* runs out first (holds no thread)."""
        if timeout <= 0:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()

        def settle(state: str | None) -> None:
            if not future.done():
                future.set_result(state)

        def final(state: str | None) -> None:
            loop.call_soon_threadsafe(settle, state)

        token = self.watch(table, row_id, final)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            self.unwatch(token)

    # ---------------------------------------------------------------- the listener

    def _listen(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    idle = not self._watches
                self._bell.wait(1.0 if idle else self._poll)
                if self._stop.is_set():
                    break
                try:
                    self._look()
                except Exception:  # a database hiccup must not end every wait in the process
                    log.exception("could not read outcomes; trying again")
                    self._stop.wait(self._poll)
        finally:
            if not db.is_closed():
                db.close()

    def _look(self) -> None:
        with self._lock:
            self._fresh = False
            watches = list(self._watches.items())
        if not watches:
            return
        wanted: dict[Outbox, set[int]] = {}
        for _, (table, row_id, _) in watches:
            wanted.setdefault(table, set()).add(row_id)
        states: dict[tuple[Outbox, int], str] = {}
        for table, ids in wanted.items():
            ordered = sorted(ids)
            for at in range(0, len(ordered), CHUNK):
                chunk = ordered[at:at + CHUNK]
                for row_id, state in table.select(table.id, table.state).where(table.id.in_(chunk)).tuples():
                    states[(table, row_id)] = state
        for token, (table, row_id, done) in watches:
            state = states.get((table, row_id))
            if state is not None and state not in FINAL:
                continue
            with self._lock:
                if self._watches.pop(token, None) is None:
                    continue  # given up meanwhile
            try:
                done(state)
            except Exception:
                log.exception("an outcome waiter failed")

    def release(self) -> None:
        """Tell every waiter now that no outcome is known (the process is stopping): they answer 1111."""
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for _, _, done in watches:
            try:
                done(None)
            except Exception:
                log.exception("an outcome waiter failed")

    def close(self) -> None:
        self.release()
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
