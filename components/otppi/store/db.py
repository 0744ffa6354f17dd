"""The one SQLite database every component shares, opened late in each process.

WAL lets readers run beside the single writer; ``synchronous=FULL`` makes a
committed request survive a power cut (a request acknowledged to a client or a
broker must not be lost); write transactions begin IMMEDIATE so concurrent
writers queue on the busy timeout instead of failing half way with
"database is locked".
"""

from __future__ import annotations

from pathlib import Path

from peewee import SqliteDatabase

#: Bound at import, initialised by :func:`open_database` in each process.
db = SqliteDatabase(None, lock_type="IMMEDIATE")

BUSY_TIMEOUT_S = 15.0

PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    # A Pi 3 shares 1 GB among every component: keep the page cache small.
    "cache_size": -2048,
    "temp_store": "memory",
}


def open_database(path: Path, *, timeout: float = BUSY_TIMEOUT_S) -> SqliteDatabase:
    """Point the shared handle at *path*; connections open per thread on demand."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db.init(str(path), pragmas=PRAGMAS, timeout=timeout)
    return db


def close_database() -> None:
    if not db.is_closed():
        db.close()
