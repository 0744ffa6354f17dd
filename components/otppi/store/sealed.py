"""Secrets at rest: a column type that seals on write and unseals on read, and where each secret is sent.

Passwords, API keys, the SIM PIN and keystore private keys must never reach
the database file or its WAL in clear, yet every component reads them as
plain strings. :class:`SecretField` does the sealing inside peewee, with
:mod:`otppi.seal` (encrypt-then-MAC, as outbox bodies) under a key derived
from the device's OTP key and bound to the table and column, so a value
copied into another column does not open. Each process gives the store the
device key when it opens it (:func:`otppi.store.db.open_database`); a
process without it fails loudly on the first secret it touches instead of
handing ciphertext to a server as a password. Empty stays empty, so "no
password" needs no key.

A model that holds a secret sent somewhere names, in ``DESTINATIONS``, the
fields that say where (host, port, TLS, endpoint …). :func:`clear_moved`
clears a secret whose destination a change moves, unless the change gives
the secret again: a password is only ever sent where it was entered for.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from peewee import Model, SqliteDatabase, TextField

from ..seal import SealError, seal, unseal


class SecretError(RuntimeError):
    """A stored secret that cannot be read or written: the device key is missing or is another one."""


def column_key(master: bytes, table: str, column: str) -> bytes:
    """The key of one column, derived from the device key (each column seals under its own)."""
    return hmac.new(master, b"otppi-secret\0" + f"{table}.{column}".encode(), hashlib.sha256).digest()


def _master(database: Any, what: str) -> bytes:
    key = getattr(database, "sealing_key", None)
    if not key:
        raise SecretError(f"{what} is sealed with the device key, and this process opened the store without it")
    return key


class SecretField(TextField):
    """A text column whose non-empty values are sealed in the database."""

    def _key(self) -> bytes:
        meta = self.model._meta
        where = f"{meta.table_name}.{self.column_name}"
        return column_key(_master(meta.database, where), meta.table_name, self.column_name)

    def db_value(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        if not isinstance(value, str):
            raise TypeError(f"{self.model._meta.table_name}.{self.column_name} takes text")
        return seal(self._key(), value)

    def python_value(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        try:
            return unseal(self._key(), value)
        except SealError as exc:
            where = f"{self.model._meta.table_name}.{self.column_name}"
            raise SecretError(f"{where} cannot be unsealed ({exc}): the device key (otp.key) is not the one "
                              "it was sealed with; set the secret again") from None


def secret_fields(model: type[Model]) -> list[SecretField]:
    return [f for f in model._meta.sorted_fields if isinstance(f, SecretField)]


def clear_moved(model: type[Model], where: Any, changes: dict[str, Any]) -> list[str]:
    """Clear in *changes* each secret of the row at *where* whose destination *changes* moves.

    A secret given in *changes* itself stays (it was entered for the new
    destination); one already empty needs no clearing. Returns the names of
    the secrets cleared. Reads only the destination columns and whether each
    secret is set, never a secret itself.
    """
    destinations: dict[str, frozenset[str]] = getattr(model, "DESTINATIONS", {})
    wanted = sorted({name for places in destinations.values() for name in places})
    if not wanted:
        return []
    old = model.select(*(model._meta.fields[name] for name in wanted)).where(where).dicts().first()
    if old is None:
        return []
    moved = {name for name in wanted if name in changes and changes[name] != old[name]}
    cleared = []
    for secret, places in destinations.items():
        if secret in changes or not moved & places:
            continue
        if model.select().where(where & (getattr(model, secret) != "")).exists():
            changes[secret] = ""
            cleared.append(secret)
    return cleared


def cleared_note(names: list[str]) -> str:
    """What a surface tells the user when a change cleared the secrets *names* ("" when none)."""
    if not names:
        return ""
    one = len(names) == 1
    return (f"{' and '.join(names)} {'was' if one else 'were'} cleared because the change moves where "
            f"{'it is' if one else 'they are'} sent: enter {'it' if one else 'them'} again")


def seal_clear_values(database: SqliteDatabase, models: tuple[type[Model], ...]) -> int:
    """Seal every non-empty secret of *models* that an older store kept in clear; the number sealed.

    For the migration only: it reads the columns raw, so every value it finds
    is taken as clear text.
    """
    count = 0
    for model in models:
        table = model._meta.table_name
        pk = model._meta.primary_key.column_name
        for field in secret_fields(model):
            rows = database.execute_sql(
                f'SELECT "{pk}", "{field.column_name}" FROM "{table}" WHERE "{field.column_name}" != \'\'').fetchall()
            if not rows:
                continue
            key = column_key(_master(database, f"{table}.{field.column_name}"), table, field.column_name)
            for ident, clear in rows:
                database.execute_sql(f'UPDATE "{table}" SET "{field.column_name}" = ? WHERE "{pk}" = ?',
                                     (seal(key, str(clear)), ident))
                count += 1
    return count
