"""Migration 8 on a store made at version 4, which kept every secret in clear: afterwards neither the
database file nor its WAL holds one, not even a value changed before the upgrade, and every secret reads back."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from otppi import keys
from otppi.paths import Paths
from otppi.store import settings
from otppi.store.db import close_database, db, open_database
from otppi.store.migrations import LATEST, current_version
from otppi.store.models import EmailAccount, FeederAmqpSettings, KeystoreEntry, Modem

from .helpers import otppi, store_bytes

SCHEMA_V4 = Path(__file__).resolve().parent / "data/schema_v4.sql"

#: table → the clear secrets a version-4 store holds in it.
CLEAR = {
    "feeder_ws_settings": {"password": "Clear-ws-pw-41"},
    "feeder_amqp_settings": {"password": "Clear-amqp-pw-41"},
    "feeder_redis_settings": {"password": "Clear-redis-pw-41"},
    "feeder_mqtt_settings": {"password": "Clear-mqtt-pw-41"},
    "cloudflare_account": {"api_key": "Clear-cf-key-41", "token": "Clear-cf-token-41"},
    "noip_account": {"password": "Clear-noip-pw-41"},
    "dynu_account": {"api_key": "Clear-dynu-key-41", "password": "Clear-dynu-pw-41"},
    "afraid_account": {"password": "Clear-afraid-pw-41"},
    "wlan_settings": {"ssid_password": "Clear-wlan-pw-41"},
    "modem": {"sim_pin": "864209", "apn_password": "Clear-apn-pw-41", "name": "m1", "port": "/dev/ttyUSB0"},
    "email_account": {"sender_password": "Clear-smtp-pw-41", "smtp_host": "smtp.example.com",
                      "sender_account": "otp@example.com", "starttls": 1, "authentication": 1},
    "keystore_entry": {"private_key": "-----BEGIN PRIVATE KEY-----Clear-key-41", "name": "site",
                       "certificate": "-----BEGIN CERTIFICATE-----"},
}
#: Changed before the upgrade: the old value lingers in a WAL frame, or in free space of the file.
REPLACED = "Clear-old-smtp-pw-41"
#: A key longer than a page, replaced before the upgrade: its overflow pages sit on the free list.
REPLACED_KEY = "-----BEGIN PRIVATE KEY-----Clear-old-key-41" + "K" * 6000


def _insert(con: sqlite3.Connection, table: str, values: dict) -> None:
    """A row with every NOT NULL column filled (the version-4 schema has no SQL defaults)."""
    row = {}
    for _, name, kind, notnull, _, pk in con.execute(f'PRAGMA table_info("{table}")'):
        if name in values:
            row[name] = values[name]
        elif pk:
            row[name] = 1
        elif notnull:
            row[name] = 0 if kind in ("INTEGER", "REAL") else ""
    columns = ", ".join(f'"{name}"' for name in row)
    con.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join("?" * len(row))})', list(row.values()))


def _version_4_store(root: Path) -> Paths:
    """A version-4 store as a power cut leaves it: its last writes still in the WAL, old frames and all."""
    paths = Paths(root)
    paths.database.parent.mkdir(parents=True)
    live = root / "live.db"
    con = sqlite3.connect(live)
    con.execute("PRAGMA journal_mode=wal")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("PRAGMA secure_delete=0")  # as SQLite builds without SQLITE_SECURE_DELETE write
    con.executescript(SCHEMA_V4.read_text())
    with con:
        for table, values in CLEAR.items():
            _insert(con, table, {**values, "private_key": REPLACED_KEY} if table == "keystore_entry" else values)
    with con:
        con.execute("UPDATE keystore_entry SET private_key = ? WHERE id = 1", (CLEAR["keystore_entry"]["private_key"],))
    con.execute("PRAGMA wal_checkpoint(PASSIVE)")  # some of it reached the file, the rest only the WAL
    with con:  # a password fixed once: its old value stays behind in a WAL frame and in free space
        con.execute("UPDATE email_account SET sender_password = ? WHERE id = 1", (REPLACED,))
    with con:
        con.execute("UPDATE email_account SET sender_password = ? WHERE id = 1",
                    (CLEAR["email_account"]["sender_password"],))
    con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    with con:  # and one more write that only the WAL has
        con.execute("UPDATE modem SET apn_password = ? WHERE id = 1", (CLEAR["modem"]["apn_password"],))
    shutil.copyfile(live, paths.database)
    shutil.copyfile(live.with_name("live.db-wal"), paths.database.with_name("otppi.db-wal"))
    con.close()
    live.unlink()
    return paths


def _clear_values() -> list[str]:
    secret_columns = {"password", "api_key", "token", "ssid_password", "sim_pin", "apn_password", "sender_password",
                      "private_key"}
    return [v for values in CLEAR.values() for k, v in values.items() if k in secret_columns] + [
        REPLACED, REPLACED_KEY[:40]]


def test_upgrade_from_version_4_seals_every_clear_secret(short_tmp: Path) -> None:
    paths = _version_4_store(short_tmp / "r")
    before = store_bytes(paths.database)
    assert all(value.encode() in before for value in _clear_values()), "the old store holds them in clear"

    # A process that keeps the store open (a component not stopped for the upgrade) keeps the WAL file
    # from being removed when the migration closes the store: the migration itself must empty it.
    holder = sqlite3.connect(paths.database)
    try:
        holder.execute("select count(*) from meta").fetchall()
        out = otppi(paths.root, "migrate").stdout
        assert out == f"schema migrated from version 4 to {LATEST} at {paths.database}\n"
        raw = store_bytes(paths.database)
    finally:
        holder.close()
    assert [value for value in _clear_values() if value.encode() in raw] == []
    assert b"-41" not in raw

    open_database(paths.database, sealing_key=keys.otp_key(paths))
    try:
        assert current_version(db) == LATEST
        assert settings.get("feeder_amqp.password") == "Clear-amqp-pw-41"
        assert settings.get("cloudflare.token") == "Clear-cf-token-41"
        assert settings.get("wlan.ssid_password") == "Clear-wlan-pw-41"
        modem = Modem.get()
        assert (modem.name, modem.sim_pin, modem.apn_password) == ("m1", "864209", "Clear-apn-pw-41")
        account = EmailAccount.get()
        assert (account.sender_password, account.allow_plain_login) == ("Clear-smtp-pw-41", False)
        assert KeystoreEntry.get().private_key == CLEAR["keystore_entry"]["private_key"]
        assert FeederAmqpSettings.load().allow_plain_login is False
    finally:
        close_database()
    assert otppi(paths.root, "migrate").stdout == f"schema is up to date (version {LATEST}) at {paths.database}\n"
    assert otppi(paths.root, "settings", "get", "feeder_amqp.password").stdout == "(set)\n"
