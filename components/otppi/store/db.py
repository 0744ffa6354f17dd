"""The one SQLite database every component shares, opened late in each process.

WAL lets readers run beside the single writer; ``synchronous=FULL`` makes a
committed request survive a power cut (a request acknowledged to a client or a
broker must not be lost); write transactions begin IMMEDIATE so concurrent
writers queue on the busy timeout instead of failing half way with
"database is locked".
"""

from __future__ import annotations

import threading
from pathlib import Path

from peewee import SqliteDatabase


class OneWriterDatabase(SqliteDatabase):
    """Write transactions of one process queue on a lock before BEGIN IMMEDIATE.

    SQLite's busy handler makes a waiting writer sleep and retry with growing
    sleeps (up to 100 ms each), so under load some requests lose the race again
    and again and wait seconds while others pass. Queued on a lock, the threads
    of one process take turns; the busy timeout is left for other processes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: The device key stored secrets are sealed with (``otppi.store.sealed``); None: they cannot be read.
        self.sealing_key: bytes | None = None
        self._writer = threading.Lock()
        self._holder = threading.local()

    def begin(self, *args, **kwargs):
        self._writer.acquire()
        self._holder.holds = True
        try:
            return super().begin(*args, **kwargs)
        except BaseException:
            self._release_writer()
            raise

    def _release_writer(self) -> None:
        if getattr(self._holder, "holds", False):
            self._holder.holds = False
            self._writer.release()

    def commit(self):
        try:
            return super().commit()
        finally:
            self._release_writer()

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self._release_writer()


#: Bound at import, initialised by :func:`open_database` in each process.
db = OneWriterDatabase(None, lock_type="IMMEDIATE")

BUSY_TIMEOUT_S = 15.0

PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    # A Pi 3 shares 1 GB among every component: keep the page cache small.
    "cache_size": -2048,
    "temp_store": "memory",
}


def open_database(path: Path, *, timeout: float = BUSY_TIMEOUT_S,
                  sealing_key: bytes | None = None) -> SqliteDatabase:
    """Point the shared handle at *path*; connections open per thread on demand.

    *sealing_key* is the device's OTP key (``otppi.keys.otp_key``): without it,
    stored secrets can be neither read nor written, and trying says so.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db.init(str(path), pragmas=PRAGMAS, timeout=timeout)
    db.sealing_key = sealing_key
    return db


def close_database() -> None:
    if not db.is_closed():
        db.close()
