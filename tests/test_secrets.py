"""Stored secrets: sealed in the database and its WAL, unreadable without the device key, and cleared when a
change moves where they are sent (the store layer, and the CLI that uses it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from peewee import BooleanField, IntegerField

from otppi.paths import Paths
from otppi.store import email_accounts, modems, settings
from otppi.store.db import close_database, open_database
from otppi.store.models import (
    ALL_MODELS,
    EmailAccount,
    FeederAmqpSettings,
    FeederMqttSettings,
    KeystoreEntry,
    Modem,
)
from otppi.store.sealed import SecretError, secret_fields

from .helpers import otppi, store_bytes, stored_secret

#: Secrets used on the device itself, sent nowhere: nothing can move them.
SENT_NOWHERE = {("wlan", "ssid_password"), ("KeystoreEntry", "private_key")}


def _name(model) -> str:
    return getattr(model, "SECTION", "") or model.__name__


def test_every_secret_is_a_sealed_column_and_says_where_it_is_sent() -> None:
    for model in ALL_MODELS:
        secrets = getattr(model, "SECRETS", frozenset())
        assert {f.name for f in secret_fields(model)} == set(secrets), model.__name__
        destinations = getattr(model, "DESTINATIONS", {})
        assert set(destinations) <= set(secrets), model.__name__
        for secret in secrets:
            if (_name(model), secret) in SENT_NOWHERE:
                assert secret not in destinations
                continue
            assert destinations.get(secret), f"{_name(model)}.{secret} says nowhere where it is sent"
            assert destinations[secret] <= set(model._meta.fields), f"{_name(model)}.{secret}"


def _fill_every_secret() -> dict[str, str]:
    """A distinctive value in every secret of the store, written the way the CLI and admin write them."""
    written = {}
    for section, page in settings.PAGES.items():
        for name in sorted(page.SECRETS):
            written[f"{section}.{name}"] = value = f"Clear-{section}-{name}-7f3a"
            settings.set_text(f"{section}.{name}", value)
    Modem.create(name="m1", port="/dev/ttyUSB0", sim_pin="73915", apn_password="Clear-apn-pw-7f3a")
    written["modem.sim_pin"], written["modem.apn_password"] = "73915", "Clear-apn-pw-7f3a"
    email_accounts.add("otp@example.com", "smtp.example.com", sender_password="Clear-smtp-pw-7f3a")
    written["email.sender_password"] = "Clear-smtp-pw-7f3a"
    KeystoreEntry.create(name="site", certificate="-----BEGIN CERTIFICATE-----",
                         private_key="-----BEGIN PRIVATE KEY-----Clear-key-7f3a")
    written["keystore.private_key"] = "-----BEGIN PRIVATE KEY-----Clear-key-7f3a"
    return written


def _read_every_secret() -> dict[str, str]:
    read = {f"{section}.{name}": settings.get(f"{section}.{name}")
            for section, page in settings.PAGES.items() for name in sorted(page.SECRETS)}
    modem = Modem.get()
    read["modem.sim_pin"], read["modem.apn_password"] = modem.sim_pin, modem.apn_password
    read["email.sender_password"] = EmailAccount.get().sender_password
    read["keystore.private_key"] = KeystoreEntry.get().private_key
    return read


def test_the_database_and_its_wal_never_hold_a_clear_secret(paths: Paths) -> None:
    written = _fill_every_secret()
    raw = store_bytes(paths.database)
    assert [key for key, value in written.items() if value.encode() in raw] == []
    assert b"7f3a" not in raw
    assert _read_every_secret() == written, "every consumer reads the clear value back"
    # The scan itself works: the same kind of value in a field that is not secret is found.
    settings.set_text("general.device_name", "Clear-general-name-7f3a")
    assert b"Clear-general-name-7f3a" in store_bytes(paths.database)


def test_without_the_device_key_a_secret_is_neither_read_nor_written(paths: Paths) -> None:
    settings.set_text("feeder_amqp.password", "broker-pw")
    open_database(paths.database)  # as a process that was not given the key
    try:
        with pytest.raises(SecretError, match="feeder_amqp_settings.password is sealed with the device key"):
            FeederAmqpSettings.load()
        with pytest.raises(SecretError, match="modem.sim_pin"):
            Modem.create(name="m2", port="/dev/ttyUSB1", sim_pin="1234")
        # What holds no secret still works: "no password" needs no key.
        Modem.create(name="m3", port="/dev/ttyUSB2")
        assert Modem.get(Modem.name == "m3").sim_pin == ""
    finally:
        close_database()
    open_database(paths.database, sealing_key=bytes(32))  # another device's key
    try:
        with pytest.raises(SecretError, match="cannot be unsealed .*set the secret again"):
            FeederAmqpSettings.load()
    finally:
        close_database()


def test_a_sealed_value_copied_into_another_column_does_not_open(paths: Paths) -> None:
    settings.set_text("feeder_amqp.password", "broker-pw")
    with sqlite3.connect(paths.database) as con:
        (sealed,), = con.execute("select password from feeder_amqp_settings").fetchall()
        con.execute("insert into feeder_mqtt_settings (id, enabled, ssl, ca_file, host, username, password, topic,"
                    " timeout, reconnect_delay, refresh_connection, port, client_id, share_group,"
                    " allow_plain_login, allow_ussd) values (1, 0, 0, '', 'h', '', ?, 't', 1, 1, 0, 1883, 'c', '', 0, 0)",
                    (sealed,))
    con.close()
    with pytest.raises(SecretError, match="feeder_mqtt_settings.password cannot be unsealed"):
        FeederMqttSettings.load()


def test_the_cli_fails_in_one_line_on_a_secret_it_cannot_open_and_can_still_replace_it(short_tmp: Path) -> None:
    root = short_tmp / "r"
    otppi(root, "migrate")
    otppi(root, "settings", "set", "feeder_redis.password", "--value-stdin", stdin="redis-pw\n")
    (root / "var/lib/otppi/secrets/otp.key").write_bytes(bytes(range(32)))  # the key was replaced
    failed = otppi(root, "settings", "list", check=False)
    assert failed.returncode == 1
    assert failed.stderr == ("otppi: feeder_redis_settings.password cannot be unsealed (sealed body failed its "
                             "integrity check): the device key (otp.key) is not the one it was sealed with; set "
                             "the secret again\n")
    otppi(root, "settings", "set", "feeder_redis.password", "--value-stdin", stdin="new-redis-pw\n")
    assert "feeder_redis.password = (set)" in otppi(root, "settings", "list").stdout
    assert stored_secret(root, "feeder_redis_settings", "password", "id = 1") == "new-redis-pw"


# ---------------------------------------------------------------- where a secret is sent


def _other(model, name: str, value: Any) -> Any:
    field = model._meta.fields[name]
    if isinstance(field, BooleanField):
        return not value
    if isinstance(field, IntegerField):
        return value + 1
    return f"{value}2" if value else "/dev/ttyUSB9"


def _cases():
    for section, page in settings.PAGES.items():
        for secret, places in sorted(getattr(page, "DESTINATIONS", {}).items()):
            for place in sorted(places):
                yield pytest.param(page, secret, place, id=f"{section}.{secret}-{place}")
    for model in (Modem, EmailAccount):
        for secret, places in sorted(getattr(model, "DESTINATIONS", {}).items()):
            for place in sorted(places):
                yield pytest.param(model, secret, place, id=f"{model.__name__}.{secret}-{place}")


def _make(model) -> tuple[Any, Any]:
    """A row of *model* with every secret set, and the function that saves a change of it."""
    if model is Modem:
        Modem.create(name="m1", port="/dev/ttyUSB0", apn="internet", sim_pin="2468", apn_password="apn-pw")
        return Modem.get(), lambda values: modems.update("m1", values)
    if model is EmailAccount:
        row = email_accounts.add("otp@example.com", "smtp.example.com", sender_password="smtp-pw")
        return row, lambda values: email_accounts.update(str(row.id), values)
    settings.set_many(model.SECTION, {secret: f"{secret}-value" for secret in model.SECRETS})
    return model.load(), lambda values: settings.set_many(model.SECTION, values)


@pytest.mark.parametrize("model, secret, place", list(_cases()))
def test_moving_where_a_secret_is_sent_clears_it_unless_given_again(paths: Paths, model, secret, place) -> None:
    row, save = _make(model)
    kept = getattr(row, secret)
    moved = _other(model, place, getattr(row, place))
    assert secret in save({place: moved})
    row = model.get_by_id(row.id)
    assert (getattr(row, place), getattr(row, secret)) == (moved, "")
    others = set(model.SECRETS) - {s for s, places in model.DESTINATIONS.items() if place in places}
    assert all(getattr(row, s) for s in others), "a secret sent elsewhere is kept"

    save({secret: kept})
    assert save({place: getattr(row, place), secret: kept}) == [], "an unchanged destination clears nothing"
    back = _other(model, place, moved) if not isinstance(model._meta.fields[place], BooleanField) else not moved
    assert save({place: back, secret: "typed-for-the-new-place"}) == []
    assert getattr(model.get_by_id(row.id), secret) == "typed-for-the-new-place"


def test_a_change_elsewhere_keeps_the_secret(paths: Paths) -> None:
    settings.set_text("feeder_amqp.password", "broker-pw")
    assert settings.set_many("feeder_amqp", {"topic": "otp", "timeout": 3.0, "username": "someone-else"}) == []
    assert settings.get("feeder_amqp.password") == "broker-pw"


def test_the_cli_says_which_secret_a_change_cleared(short_tmp: Path) -> None:
    root = short_tmp / "r"
    otppi(root, "migrate")
    otppi(root, "settings", "set", "feeder_amqp.password", "--value-stdin", stdin="broker-pw\n")
    out = otppi(root, "settings", "set", "feeder_amqp.host", "broker.attacker.example").stdout
    assert out == ("feeder_amqp.host = broker.attacker.example; feeder_amqp.password was cleared because the "
                   "change moves where it is sent: enter it again with "
                   "'otppi settings set feeder_amqp.password --value-stdin'\n")
    assert otppi(root, "settings", "get", "feeder_amqp.password").stdout == "\n"
    assert otppi(root, "settings", "set", "feeder_amqp.topic", "otp").stdout == "feeder_amqp.topic = otp\n"

    otppi(root, "modem", "add", "m1", "--port", "/dev/ttyUSB0")
    otppi(root, "modem", "set", "m1", "sim_pin", "2468")
    out = otppi(root, "modem", "set", "m1", "port", "/dev/ttyUSB7").stdout
    assert out == ("modem 'm1': port = /dev/ttyUSB7; sim_pin was cleared because the change moves where it is "
                   "sent: enter it again with 'otppi modem set m1 sim_pin …'\n")
    assert "sim_pin = \n" in otppi(root, "modem", "show", "m1").stdout


def test_a_ddns_key_goes_only_to_an_https_endpoint(short_tmp: Path) -> None:
    root = short_tmp / "r"
    otppi(root, "migrate")
    for section in ("cloudflare", "noip", "dynu", "afraid"):
        result = otppi(root, "settings", "set", f"{section}.endpoint", "http://api.example.com/update", check=False)
        assert result.returncode == 1
        assert "must be an https:// address" in result.stderr, section
    otppi(root, "settings", "set", "noip.endpoint", "https://dynupdate.example.net:8443/nic/update")
