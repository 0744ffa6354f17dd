"""The list pages with many fields: modems (every field of the spec's table, live state, APN presets),
email accounts and DDNS records. Messages beside the field, saves in the store, write-only secrets."""

from __future__ import annotations

import re

import pytest

from otppi.store.modems import APN_PRESETS
from otppi.store import modems, settings
from otppi.store.models import DdnsRecord, EmailAccount, Modem

from .conftest import post_form
from .lists_helpers import (
    APN_PASSWORD,
    SIM_PIN,
    SMTP_PASSWORD,
    error_beside,
    field_block,
    form_of,
    seed,
    snapshot,
    submit,
)

EDIT = "/lists/modems/m1"


# ---------------------------------------------------------------- modems


def test_the_modem_form_has_every_editable_field_and_shows_identity_read_only(admin_client):
    seed()
    html = admin_client.get(EDIT).get_data(as_text=True)
    names = set(form_of(html, EDIT)) | {"sim_pin", "apn_password", "is_default", "send_from_api", "active",
                                        "internet_access"}
    assert names == set(Modem._meta.fields) - modems.INTERNAL
    for group in ("Connection", "Routing", "Internet", "Identity (read from the modem)"):
        assert f">{group}</h2>" in html
    for name in modems.IDENTITY:
        assert f'name="{name}"' not in html
    for shown in ("SIMCOM", "SIM800L", "356938035643809", "6281200000001"):
        assert shown in html


def test_the_modem_list_shows_live_state_and_identity(admin_client):
    seed()
    html = admin_client.get("/lists/modems").get_data(as_text=True)
    for shown in ("m1", "/dev/ttyUSB0", "62812", "ready", "-71 dBm", "TELKOMSEL", "+CMS ERROR: 500", "SIMCOM SIM800L",
                  "IMEI 356938035643809"):
        assert shown in html, shown


@pytest.mark.parametrize("changes, field, message", [
    ({"name": ""}, "name", "1 to 64 letters"),
    ({"name": "m/1"}, "name", "1 to 64 letters"),
    ({"name": "m1"}, "name", "a modem with this name exists"),
    ({"port": "ttyUSB1"}, "port", "a device path such as /dev/ttyUSB0"),
    ({"port": "/dev/tty USB1"}, "port", "a device path such as /dev/ttyUSB0"),
    ({"prefixes": "0812, 08a1"}, "prefixes", "prefix '08a1' must be digits"),
    ({"prefixes": "0812345678901234567"}, "prefixes", "must be digits"),
])
def test_adding_a_modem_explains_a_bad_field_beside_it(admin_client, changes, field, message):
    seed()
    before = snapshot()
    response = post_form(admin_client, "/lists/modems",
                         {"name": "m2", "port": "/dev/ttyUSB1", "prefixes": "0813", **changes})
    assert response.status_code == 400
    assert message in error_beside(response.get_data(as_text=True), field)
    assert snapshot() == before


def test_a_modem_is_added_with_msisdn_prefixes_and_deleted(admin_client):
    generation = settings.generation()
    response = post_form(admin_client, "/lists/modems", {"name": "m2", "port": "/dev/serial/by-id/usb-SIMCOM-if00",
                                                         "prefixes": "0812, +62813, 0812"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/lists/modems/m2")
    row = Modem.get(Modem.name == "m2")
    assert (row.port, row.prefixes) == ("/dev/serial/by-id/usb-SIMCOM-if00", "62812,62813")
    assert settings.generation() > generation
    assert post_form(admin_client, "/lists/modems/m2/delete", page="/lists/modems/m2").status_code == 302
    assert Modem.get_or_none(Modem.name == "m2") is None
    assert admin_client.get("/lists/modems/m2").status_code == 404


def test_an_untouched_modem_form_saves_nothing(admin_client):
    seed()
    before = snapshot()
    response = submit(admin_client, EDIT)
    assert response.status_code == 302
    assert "Nothing changed" in admin_client.get(EDIT).get_data(as_text=True)
    assert snapshot() == before


@pytest.mark.parametrize("field, value, message", [
    ("port", "COM3", "a device path such as /dev/ttyUSB0"),
    ("baud_rate", "12345", "must be one of 1200"),
    ("parity", "X", "must be one of N, E, O, M, S"),
    ("data_bits", "9", "must be one of 5, 6, 7, 8"),
    ("stop_bits", "3", "must be one of 1.0, 1.5, 2.0"),
    ("sim_pin", "12", "empty or 4 to 8 digits"),
    ("prefixes", "62812,abc", "prefix 'abc' must be digits"),
    ("apn", "my apn", "letters, digits"),
    ("dial_number", "*99#x", "digits, * and #"),
    ("init_dial_3", "AT+CGDCONT=1,'IP'", "one AT command without '"),
    ("dial_command", "dial", "an AT dial command such as ATD"),
])
def test_a_bad_modem_field_is_explained_beside_it_and_nothing_is_saved(admin_client, field, value, message):
    seed()
    before = snapshot()
    response = submit(admin_client, EDIT, **{field: value})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in error_beside(html, field)
    assert html.count('<p class="error"') == 1, "only the bad field complains"
    assert snapshot() == before


def test_a_modem_is_saved_field_by_field_with_write_only_secrets(admin_client):
    seed()
    generation = settings.generation()
    response = submit(admin_client, EDIT, baud_rate="9600", parity="E", data_bits="7",
                      stop_bits="2", prefixes="0813, 0814", is_default=True, send_from_api=False,
                      internet_access=True, apn_username="3data", dial_number="*99***1#",
                      init_dial_1="ATZ", init_dial_5="AT+CGDCONT=1,\"IP\",\"3data\"", dial_command="ATDT")
    assert response.status_code == 302, response.get_data(as_text=True)
    row = Modem.get(Modem.name == "m1")
    assert (row.port, row.baud_rate, row.parity, row.data_bits, row.stop_bits) == ("/dev/ttyUSB0", 9600, "E", 7, 2.0)
    assert (row.prefixes, row.is_default, row.send_from_api, row.internet_access) == ("62813,62814", True, False, True)
    assert (row.apn, row.apn_username, row.dial_number, row.dial_command) == ("internet", "3data", "*99***1#", "ATDT")
    assert (row.init_dial_1, row.init_dial_5) == ("ATZ", 'AT+CGDCONT=1,"IP","3data"')
    assert (row.sim_pin, row.apn_password) == (SIM_PIN, APN_PASSWORD), "an empty secret keeps the stored one"
    assert settings.generation() > generation

    html = admin_client.get(EDIT).get_data(as_text=True)
    assert 'placeholder="(set: leave empty to keep)"' in field_block(html, "sim_pin")
    assert 'name="clear_apn_password"' in field_block(html, "apn_password")
    assert submit(admin_client, EDIT, sim_pin="2468").status_code == 302
    assert Modem.get(Modem.name == "m1").sim_pin == "2468"
    assert submit(admin_client, EDIT, clear_apn_password=True).status_code == 302
    assert Modem.get(Modem.name == "m1").apn_password == ""


def test_a_secret_typed_into_a_form_with_a_mistake_is_not_shown_again(admin_client):
    seed()
    response = submit(admin_client, EDIT, port="nowhere", sim_pin="97531", apn_password="Typed-Apn-Secret")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "97531" not in html and "Typed-Apn-Secret" not in html
    assert 'value="nowhere"' in html, "the other values typed are shown again to correct"


@pytest.mark.parametrize("operator", sorted(APN_PRESETS))
def test_an_apn_preset_saves_the_operators_apn_username_password_and_dial_number(admin_client, operator):
    seed()
    generation = settings.generation()
    response = post_form(admin_client, f"{EDIT}/preset", {"preset": operator}, page=EDIT)
    assert response.status_code == 302
    row = Modem.get(Modem.name == "m1")
    assert (row.apn, row.apn_username, row.apn_password, row.dial_number) == APN_PRESETS[operator]
    assert row.sim_pin == SIM_PIN and row.port == "/dev/ttyUSB0"
    assert settings.generation() > generation


def test_the_preset_list_fills_the_form_by_script_and_refuses_an_unknown_operator(admin_client):
    seed()
    html = admin_client.get(EDIT).get_data(as_text=True)
    assert re.search(r'<option value="Smartfren" data-apn="smart" data-apn_username="smart"\s+'
                     r'data-apn_password="smart" data-dial_number="#777">', html)
    assert '<select id="f-preset" name="preset" form="preset-form">' in html
    script = admin_client.get("/static/js/apn-preset.js")
    try:
        assert script.status_code == 200 and b"data-" in script.get_data()
    finally:
        script.close()
    assert '<script src="/static/js/apn-preset.js"' in html
    before = snapshot()
    response = post_form(admin_client, f"{EDIT}/preset", {"preset": "Vodafone"}, page=EDIT)
    assert response.status_code == 400
    assert "choose an operator from the list" in response.get_data(as_text=True)
    assert snapshot() == before


# ---------------------------------------------------------------- email accounts


@pytest.mark.parametrize("changes, field, message", [
    ({"sender_account": "not-an-address"}, "sender_account", "a plain email address"),
    ({"sender_account": "otp@example.com"}, "sender_account", "already exists"),
    ({"smtp_host": "smtp example.com"}, "smtp_host", "a host name or an IP address"),
    ({"smtp_port": "70000"}, "smtp_port", "from 1 to 65535"),
    ({"smtp_port": "five"}, "smtp_port", "a whole number"),
    ({"daily_quota": "-1"}, "daily_quota", "from 0 (no quota)"),
    ({"ca_file": "certs/ca.pem"}, "ca_file", "an absolute path"),
    ({"sender_password": ""}, "sender_password", "needed when authentication is on"),
])
def test_adding_an_email_account_explains_a_bad_field_beside_it(admin_client, changes, field, message):
    seed()
    before = snapshot()
    response = submit(admin_client, "/lists/email-accounts", **{
        "sender_account": "news@example.com", "smtp_host": "smtp.gmail.com", "sender_password": "app-password",
        **changes})
    assert response.status_code == 400
    assert message in error_beside(response.get_data(as_text=True), field)
    assert snapshot() == before


def test_an_email_account_is_added_listed_edited_and_removed(admin_client):
    generation = settings.generation()
    response = submit(admin_client, "/lists/email-accounts", sender_account="News@Example.com",
                      smtp_host="smtp.gmail.com", smtp_port="465", ssl=True, sender_password="gmail-app-pw",
                      daily_quota="500")
    assert response.status_code == 302
    row = EmailAccount.get()
    assert (row.sender_account, row.smtp_port, row.ssl, row.sender_password, row.daily_quota) == (
        "news@example.com", 465, True, "gmail-app-pw", 500)
    assert settings.generation() > generation
    listing = admin_client.get("/lists/email-accounts").get_data(as_text=True)
    for shown in ("news@example.com", "smtp.gmail.com", "465", "SSL", "500", "active"):
        assert shown in listing
    assert "gmail-app-pw" not in listing

    edit = f"/lists/email-accounts/{row.id}"
    assert "gmail-app-pw" not in admin_client.get(edit).get_data(as_text=True)
    bad = submit(admin_client, edit, smtp_port="70000")
    assert bad.status_code == 400 and "from 1 to 65535" in error_beside(bad.get_data(as_text=True), "smtp_port")
    assert submit(admin_client, edit, daily_quota="400", active=False).status_code == 302
    row = EmailAccount.get_by_id(row.id)
    assert (row.daily_quota, row.active) == (400, False)
    assert row.sender_password == "gmail-app-pw", "an empty password keeps the stored one"
    assert submit(admin_client, edit, smtp_port="587", ssl=False, sender_password="gmail-app-pw").status_code == 302
    row = EmailAccount.get_by_id(row.id)
    assert (row.smtp_port, row.ssl, row.starttls, row.sender_password) == (587, False, True, "gmail-app-pw")
    assert submit(admin_client, edit, sender_password="rotated-pw").status_code == 302
    assert EmailAccount.get_by_id(row.id).sender_password == "rotated-pw"
    refused = submit(admin_client, edit, clear_sender_password=True)
    assert "needed when authentication is on" in error_beside(refused.get_data(as_text=True), "sender_password")
    assert post_form(admin_client, f"{edit}/delete", page=edit).status_code == 302
    assert EmailAccount.select().count() == 0


def test_an_email_account_cannot_take_another_accounts_sender(admin_client):
    seed()
    submit(admin_client, "/lists/email-accounts", sender_account="two@example.com", smtp_host="smtp.example.com",
           sender_password="pw2")
    two = EmailAccount.get(EmailAccount.sender_account == "two@example.com")
    before = snapshot()
    response = submit(admin_client, f"/lists/email-accounts/{two.id}", sender_account="otp@example.com",
                      smtp_port="2525")
    assert response.status_code == 400
    assert "already exists" in error_beside(response.get_data(as_text=True), "sender_account")
    assert snapshot() == before, "nothing of the form is saved"


def test_the_email_edit_page_never_shows_the_password(admin_client):
    seeded = seed()
    html = admin_client.get(f"/lists/email-accounts/{seeded.email}").get_data(as_text=True)
    assert SMTP_PASSWORD not in html and "(set: leave empty to keep)" in html and "Sent today: 7" in html


# ---------------------------------------------------------------- DDNS records


@pytest.mark.parametrize("changes, field, message", [
    ({"provider": "godaddy"}, "provider", "must be one of: cloudflare, noip, dynu, afraid"),
    ({"record_type": "AAAA"}, "record_type", "must be one of: A"),
    ({"zone": "localhost"}, "zone", "a domain name such as example.com"),
    ({"zone": "exa mple.com"}, "zone", "a domain name such as example.com"),
    ({"record_name": "otp_1"}, "record_name", "a name such as otp"),
    ({"ttl": "0"}, "ttl", "seconds from 1 to 86400"),
    ({"update_interval": "soon"}, "update_interval", "a whole number"),
])
def test_adding_a_ddns_record_explains_a_bad_field_beside_it(admin_client, changes, field, message):
    before = snapshot()
    response = submit(admin_client, "/lists/ddns", **{"provider": "noip", "zone": "example.com",
                                                      "record_name": "otp", **changes})
    assert response.status_code == 400
    assert message in error_beside(response.get_data(as_text=True), field)
    assert snapshot() == before


def test_a_ddns_record_is_added_listed_edited_and_deleted(admin_client):
    generation = settings.generation()
    response = submit(admin_client, "/lists/ddns", provider="cloudflare", zone="Example.COM.", record_name="OTP",
                      ttl="1", proxied=True, update_interval="15", force_create_zone=True)
    assert response.status_code == 302
    row = DdnsRecord.get()
    assert (row.provider, row.record_type, row.zone, row.record_name, row.ttl, row.proxied, row.update_interval,
            row.force_create_zone, row.active) == ("cloudflare", "A", "example.com", "otp", 1, True, 15, True, True)
    assert settings.generation() > generation
    listing = admin_client.get("/lists/ddns").get_data(as_text=True)
    assert "otp.example.com" in listing and "account not active" in listing
    settings.set_text("cloudflare.active", "true")
    assert "account not active" not in admin_client.get("/lists/ddns").get_data(as_text=True)

    edit = f"/lists/ddns/{row.id}"
    assert submit(admin_client, edit, provider="dynu", record_name="@", proxied=False, active=False).status_code == 302
    row = DdnsRecord.get_by_id(row.id)
    assert (row.provider, row.record_name, row.proxied, row.active) == ("dynu", "@", False, False)
    assert post_form(admin_client, f"{edit}/delete", page=edit).status_code == 302
    assert DdnsRecord.select().count() == 0
