"""The shared store: concurrent writers, migrations, settings."""

from __future__ import annotations

import multiprocessing
import sqlite3
import traceback
from pathlib import Path

import pytest
from peewee import IntegrityError

from otppi import keys
from otppi.contract import validate as build
from otppi.paths import Paths
from otppi.store import models, settings
from otppi.store.db import close_database, db, open_database
from otppi.store.migrations import LATEST, current_version, migrate, require_current
from otppi.store.models import BlockedNumber, Otp, SmsOutbox

WRITERS = 4
PER_WRITER = 150


def _writer(root: str, index: int, start: multiprocessing.Event, errors: multiprocessing.Queue) -> None:
    """One process hammering the store the way the api and feeders do."""
    from otppi.handler import Context, Handler

    paths = Paths(Path(root))
    open_database(paths.database)
    handler = Handler(Context(paths=paths, otp_key=keys.otp_key(paths)))
    start.wait()
    try:
        for i in range(PER_WRITER):
            kind = i % 3
            if kind == 0:
                req = {"command": "create-otp", "data": {"receiver": "0812345678", "reference": f"w{index}-{i}"}}
            elif kind == 1:
                req = {"command": "send-sms", "data": {"receiver": "0812345678", "id": f"{index}-{i}", "message": "m"}}
            else:
                req = {"command": "block-msisdn", "data": {"receiver": f"0813{index:02d}{i:05d}"}}
            answer = handler.handle(build(req), source=f"writer{index}")
            if answer["response_code"] not in ("000", "1111"):
                errors.put(f"writer {index}: {answer}")
            if i % 25 == 0:
                settings.set_text("sms.prefix_length", str(5 + index % 2))
    except Exception:  # report everything, the parent asserts on it
        errors.put(traceback.format_exc())


def test_four_processes_writing_at_once_never_see_a_locked_database(paths: Paths) -> None:
    ctx = multiprocessing.get_context("spawn")
    start, errors = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(paths.root), n, start, errors)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    per_kind = PER_WRITER // 3
    assert Otp.select().count() == WRITERS * per_kind
    assert SmsOutbox.select().count() == WRITERS * per_kind * 2
    assert BlockedNumber.select().count() == WRITERS * per_kind


def test_pragmas_are_what_durability_needs(paths: Paths) -> None:
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1


def test_migrate_is_idempotent_and_versioned(paths: Paths) -> None:
    assert current_version(db) == LATEST
    assert migrate(db) == (LATEST, LATEST)
    require_current(db)


def test_a_component_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    raw = tmp_path / "old.db"
    sqlite3.connect(raw).close()
    open_database(raw)
    try:
        with pytest.raises(RuntimeError, match="otppi migrate"):
            require_current(db)
    finally:
        db.close()


def test_settings_round_trip_and_generation(paths: Paths) -> None:
    g0 = settings.generation()
    assert settings.get("sms.country_code") == "62"
    settings.set_text("sms.country_code", "44")
    settings.set_text("api.http_enabled", "off")
    assert settings.get("sms.country_code") == "44"
    assert settings.get("api.http_enabled") is False
    assert settings.generation() == g0 + 2


@pytest.mark.parametrize(
    "key,value,why",
    [
        ("api.http_port", "0", "port"),
        ("api.http_port", "eighty", "whole number"),
        ("api.message_path", "api/sms", "path"),
        ("api.message_path", "/api sms", "path"),
        ("sms.country_code", "+62", "digits"),
        ("general.otp_message", "no slot", "%s"),
        ("general.drop_expire_otp", "maybe", "true or false"),
        ("wlan.netmask", "255.0.255.0", "netmask"),
        ("wlan.ip_address", "192.168.0.300", "IPv4"),
        ("wlan.ssid", "evil\nline", "control"),
        ("api.wait_timeout", "nan", "finite"),
        ("nosuch.key", "1", "unknown settings section"),
        ("api.nosuch", "1", "unknown setting"),
        ("api.id", "2", "unknown setting"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(paths: Paths, key: str, value: str, why: str) -> None:
    with pytest.raises(settings.SettingError, match=why):
        settings.set_text(key, value)


def test_secrets_are_hidden_in_listings(paths: Paths) -> None:
    settings.set_text("feeder_amqp.password", "hunter2")
    listed = dict(settings.items())
    assert listed["feeder_amqp.password"] == "(set)"
    assert "hunter2" not in str(listed)


def open_version_1(path: Path, *inserts: str) -> None:
    """A database as release 1 left it, with these rows, opened as the shared handle."""
    con = sqlite3.connect(path)
    con.executescript((Path(__file__).parent / "data/schema_v1.sql").read_text())
    for insert in inserts:
        con.execute(insert)
    con.commit()
    con.close()
    open_database(path)


def test_upgrade_from_version_1_keeps_data_and_adds_columns(short_tmp: Path) -> None:
    from otppi.store.models import SmsSettings

    open_version_1(short_tmp / "v1.db",
                   "insert into sms_settings (id, country_code, prefix_length, log_outgoing, monitor_traffic)"
                   " values (1, '44', 4, 1, 1)",
                   "insert into sms_outbox (kind, source, receiver, state, attempts, last_error, modem, created_at,"
                   " updated_at, parts, delivery_state) values ('sms', 't', '4477', 'queued', 0, '', '', 0, 0, 0, '')")
    try:
        assert current_version(db) == 1
        assert migrate(db) == (1, LATEST)
        page = SmsSettings.load()
        assert (page.country_code, page.prefix_length, page.queue_timeout) == ("44", 4, 300)
        assert SmsOutbox.get().tried == ""
    finally:
        db.close()


def test_migration_7_scopes_live_otps_to_their_source_and_drops_shared_reset_codes(short_tmp: Path) -> None:
    """A version-4 store (references unique across every source) keeps its live OTPs under their owner."""
    from otppi.store import migrations

    path = short_tmp / "old.db"
    open_database(path)
    try:
        db.create_tables([m for m in models.ALL_MODELS if m is not models.Otp])
        db.execute_sql('CREATE TABLE "otp" ("id" INTEGER NOT NULL PRIMARY KEY, "reference" VARCHAR(255) NOT NULL, '
                       '"mac" VARCHAR(255) NOT NULL, "channel" VARCHAR(255) NOT NULL, "state" VARCHAR(255) NOT NULL, '
                       '"attempts" INTEGER NOT NULL, "created_at" REAL NOT NULL, "expires_at" REAL NOT NULL, '
                       '"sms_id" INTEGER, "email_id" INTEGER)')
        db.execute_sql('CREATE UNIQUE INDEX "otp_reference" ON "otp" ("reference")')
        models.Meta.create(key="schema_version", value=4)
        sms = models.SmsOutbox.create(kind="otp", source="rest:alice", receiver="6281", body="x")
        mail = models.EmailOutbox.create(kind="otp", source="mqtt", receiver="a@b.c", body="x")
        reset = models.SmsOutbox.create(kind="reset", source="admin", receiver="6282", body="x")
        for reference, link in (("order-1", {"sms_id": sms.id}), ("order-2", {"email_id": mail.id}),
                                ("admin-reset:1", {"sms_id": reset.id})):
            db.execute_sql('INSERT INTO otp (reference, mac, channel, state, attempts, created_at, expires_at, '
                           f'{next(iter(link))}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                           (reference, "m", "sms", "live", 0, 1.0, 2e9, next(iter(link.values()))))

        assert migrations.migrate(db) == (4, migrations.LATEST)
        assert sorted((o.owner, o.reference) for o in models.Otp.select()) == [
            ("mqtt", "order-2"), ("rest:alice", "order-1")]
        models.Otp.create(owner="rest:bob", reference="order-1", mac="m", expires_at=2e9)  # another owner: fine
        with pytest.raises(IntegrityError):
            with db.atomic():
                models.Otp.create(owner="rest:alice", reference="order-1", mac="m", expires_at=2e9)
    finally:
        close_database()
