"""Schema migrations, run by ``otppi migrate`` and the oneshot migrate unit.

Each migration is a function of the database, applied in order inside one
transaction; the applied version lives in the ``meta`` table. Later releases
append migrations (``playhouse.migrate`` for column changes), never edit old ones.
"""

from __future__ import annotations

from typing import Callable

from peewee import Model, SqliteDatabase
from playhouse.migrate import SqliteMigrator, migrate as apply_operations

from . import models
from .sealed import seal_clear_values

Migration = Callable[[SqliteDatabase], None]


def _initial(database: SqliteDatabase) -> None:
    database.create_tables(models.ALL_MODELS, safe=True)


def _add_missing_columns(database: SqliteDatabase, model: type[Model], names: list[str]) -> list[str]:
    """Add *names* of *model* that the table lacks (a fresh database already has them); return those added."""
    table = model._meta.table_name
    present = {column.name for column in database.get_columns(table)}
    migrator = SqliteMigrator(database)
    missing = [name for name in names if model._meta.fields[name].column_name not in present]
    if missing:
        apply_operations(*[migrator.add_column(table, model._meta.fields[name].column_name,
                                               model._meta.fields[name]) for name in missing])
    return missing


def _modem_component(database: SqliteDatabase) -> None:
    """Pacing, quarantine and delivery-report settings; modem status; multipart inbox parts."""
    database.create_tables([models.ModemStatus, models.InboxPart], safe=True)
    _add_missing_columns(database, models.SmsSettings, [
        "min_interval_ms", "daily_cap", "failures_to_quarantine", "quarantine_seconds", "queue_timeout",
        "status_report", "send_timeout"])
    _add_missing_columns(database, models.SmsOutbox, ["message_refs", "tried", "via"])


def _mailer(database: SqliteDatabase) -> None:
    """Mail settings; a CA file per email account; the pool's failover and retry state per message."""
    database.create_tables([models.MailSettings], safe=True)
    _add_missing_columns(database, models.EmailAccount, ["ca_file"])
    _add_missing_columns(database, models.EmailOutbox, ["tried", "retryable", "rounds", "retry_at"])


def _admin(database: SqliteDatabase) -> None:
    """The admin web's settings page."""
    database.create_tables([models.AdminSettings], safe=True)


def _ussd_permission(database: SqliteDatabase) -> None:
    """request-ussd becomes a permission; multipart SMS that never complete are kept, marked incomplete.

    New API users and every broker start without USSD (its codes can move credit). API users that
    exist at the upgrade keep it: they could run USSD codes before, and taking it away silently would
    break their clients. Brokers do not: whoever may publish on their topic could.
    """
    if _add_missing_columns(database, models.ApiUser, ["allow_ussd"]):
        models.ApiUser.update(allow_ussd=True).execute()
    for page in (models.FeederWsSettings, models.FeederAmqpSettings, models.FeederRedisSettings,
                 models.FeederMqttSettings):
        _add_missing_columns(database, page, ["allow_ussd"])
    _add_missing_columns(database, models.InboxMessage, ["incomplete"])


def _admin_security(database: SqliteDatabase) -> None:
    """OTP references scoped to their owner (the source that made them): unique on (owner, reference);
    admin reset codes in a table of their own; admin sessions in the store; the first-run setup code.

    Live OTPs keep working: each takes its owner from its message's source. Pending admin reset codes
    (which shared the OTP namespace) are dropped; a new one is a click away.
    """
    database.create_tables([models.ResetCode, models.AdminSession, models.SetupCode], safe=True)
    table = models.Otp._meta.table_name
    _add_missing_columns(database, models.Otp, ["owner"])
    indexes = {index.name for index in database.get_indexes(table)}
    migrator = SqliteMigrator(database)
    if f"{table}_reference" in indexes:
        apply_operations(migrator.drop_index(table, f"{table}_reference"))
    if f"{table}_owner_reference" not in indexes:
        database.execute_sql(f'DELETE FROM "{table}" WHERE reference LIKE \'admin-reset:%\'')
        for outbox, link in ((models.SmsOutbox, "sms_id"), (models.EmailOutbox, "email_id")):
            database.execute_sql(
                f'UPDATE "{table}" SET owner = (SELECT source FROM "{outbox._meta.table_name}" o '
                f'WHERE o.id = "{table}".{link}) WHERE {link} IS NOT NULL AND owner = \'\'')
        apply_operations(migrator.add_index(table, ("owner", "reference"), True))


def _sealed_secrets(database: SqliteDatabase) -> None:
    """Plain-login flags (off); every stored secret sealed, as older stores kept them in clear.

    The clear values also linger in old WAL frames, in free space and on the
    free list: :func:`migrate` then rebuilds the file and empties the WAL
    (:data:`SCRUB_AFTER`).
    """
    _add_missing_columns(database, models.EmailAccount, ["allow_plain_login"])
    for page in (models.FeederWsSettings, models.FeederAmqpSettings, models.FeederRedisSettings,
                 models.FeederMqttSettings):
        _add_missing_columns(database, page, ["allow_plain_login"])
    seal_clear_values(database, models.ALL_MODELS)


MIGRATIONS: tuple[tuple[int, Migration], ...] = ((1, _initial), (2, _modem_component), (3, _mailer), (4, _admin),
                                                 (6, _ussd_permission), (7, _admin_security), (8, _sealed_secrets))

#: Migrations that rewrote clear secrets: after them the file is rebuilt and the WAL emptied, so no
#: free page, free cell or old WAL frame still holds what they rewrote.
SCRUB_AFTER = frozenset({8})
#: The ``meta`` key saying a scrub is still owed (set in the migration's transaction).
SCRUB_PENDING = "scrub_pending"

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
        if before and any(before < version <= LATEST for version in SCRUB_AFTER):
            models.Meta.insert(key=SCRUB_PENDING, value=1).on_conflict_replace().execute()
    if models.Meta.get_or_none(models.Meta.key == SCRUB_PENDING) is not None:
        scrub(database)
    return before, LATEST


def scrub(database: SqliteDatabase) -> None:
    """Rebuild the file (VACUUM copies only live rows) and empty the WAL into it.

    Pending in ``meta`` until it worked: a WAL another process kept from
    being emptied is emptied by the next ``otppi migrate``.
    """
    database.execute_sql("VACUUM")
    with database.atomic():
        models.Meta.delete().where(models.Meta.key == SCRUB_PENDING).execute()
    busy, _, _ = database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        with database.atomic():
            models.Meta.insert(key=SCRUB_PENDING, value=1).on_conflict_replace().execute()
        raise RuntimeError("the schema is migrated, but another process kept the WAL from being emptied, so it "
                           "may still hold old clear secrets: stop every OTP-Pi component and run 'otppi migrate' "
                           "again")


def require_current(database: SqliteDatabase) -> None:
    """Components refuse to start on a schema they do not know (systemd sees the exit)."""
    found = current_version(database)
    if found != LATEST:
        raise RuntimeError(
            f"database schema is version {found}, this release needs {LATEST}: run 'otppi migrate'"
        )
