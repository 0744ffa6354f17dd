"""Schema migrations, run by ``otppi migrate`` and the oneshot migrate unit.

Each migration is a function of the database, applied in order inside one
transaction; the applied version lives in the ``meta`` table. Later releases
append migrations (``playhouse.migrate`` for column changes), never edit old ones.
"""

from __future__ import annotations

from typing import Callable

from peewee import SqliteDatabase

from . import models

Migration = Callable[[SqliteDatabase], None]


def _initial(database: SqliteDatabase) -> None:
    database.create_tables(models.ALL_MODELS, safe=True)


MIGRATIONS: tuple[tuple[int, Migration], ...] = ((1, _initial),)

LATEST = MIGRATIONS[-1][0]


def current_version(database: SqliteDatabase) -> int:
    if not database.table_exists(models.Meta._meta.table_name):
        return 0
    row = models.Meta.get_or_none(models.Meta.key == "schema_version")
    return row.value if row else 0


def migrate(database: SqliteDatabase) -> tuple[int, int]:
    """Bring the schema to the latest version; return (before, after)."""
    with database.atomic():
        before = current_version(database)
        for version, step in MIGRATIONS:
            if version > before:
                step(database)
        models.Meta.insert(key="schema_version", value=LATEST).on_conflict_replace().execute()
    return before, LATEST


def require_current(database: SqliteDatabase) -> None:
    """Components refuse to start on a schema they do not know (systemd sees the exit)."""
    found = current_version(database)
    if found != LATEST:
        raise RuntimeError(
            f"database schema is version {found}, this release needs {LATEST}: run 'otppi migrate'"
        )
