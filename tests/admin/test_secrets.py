"""The admin web never sends a stored secret somewhere new: a change of host, port, TLS or endpoint made
without typing the secret again clears it, and the page says it must be entered again."""

from __future__ import annotations

from otppi.store import settings
from otppi.store.models import EmailAccount, Modem

from .lists_helpers import SMTP_PASSWORD, field_block, seed, submit
from .test_settings_pages import _submit
from .test_tools import flashes

BROKER_PASSWORD = "Broker-S3cret-pw"


def _followed(client, response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_subscriber_moved_to_another_broker_loses_its_password(admin_client):
    settings.set_text("feeder_amqp.password", BROKER_PASSWORD)
    page = _followed(admin_client, _submit(admin_client, "feeder_amqp", host="broker.attacker.example"))
    assert "Password was cleared because the change moves where it is sent: enter it again." in flashes(page)
    assert (settings.get("feeder_amqp.host"), settings.get("feeder_amqp.password")) == ("broker.attacker.example", "")
    assert "(not set)" in field_block(page, "password")
    assert BROKER_PASSWORD not in page


def test_a_password_typed_with_the_move_is_kept_and_tls_flags_count_as_a_move(admin_client):
    settings.set_text("feeder_mqtt.password", BROKER_PASSWORD)
    page = _followed(admin_client, _submit(admin_client, "feeder_mqtt", host="mqtt2.example", password="typed-pw"))
    assert not [m for m in flashes(page) if "cleared" in m]
    assert settings.get("feeder_mqtt.password") == "typed-pw"
    page = _followed(admin_client, _submit(admin_client, "feeder_mqtt", allow_plain_login=True))
    assert "Password was cleared because the change moves where it is sent: enter it again." in flashes(page)
    assert settings.get("feeder_mqtt.password") == ""
    # A change that moves nothing keeps it.
    settings.set_text("feeder_mqtt.password", BROKER_PASSWORD)
    _followed(admin_client, _submit(admin_client, "feeder_mqtt", topic="otp/other", timeout="7"))
    assert settings.get("feeder_mqtt.password") == BROKER_PASSWORD


def test_a_ddns_account_with_another_endpoint_loses_its_keys(admin_client):
    settings.set_many("cloudflare", {"api_key": "cf-key", "token": "cf-token"})
    page = _followed(admin_client, _submit(admin_client, "cloudflare", endpoint="https://api.attacker.example/v4"))
    assert "API key and Token were cleared because the change moves where they are sent: enter them again." \
        in flashes(page)
    assert (settings.get("cloudflare.api_key"), settings.get("cloudflare.token")) == ("", "")
    refused = _submit(admin_client, "cloudflare", endpoint="http://api.cloudflare.com/client/v4")
    assert refused.status_code == 400 and "must be an https:// address" in refused.get_data(as_text=True)


def test_an_email_account_pointed_at_another_server_loses_its_password(admin_client):
    ids = seed()
    edit = f"/lists/email-accounts/{ids.email}"
    page = _followed(admin_client, submit(admin_client, edit, smtp_host="smtp.attacker.example"))
    assert ("The sender password was cleared because the change moves where it is sent: enter it again (it is "
            "never sent to a server it was not entered for).") in flashes(page)
    row = EmailAccount.get_by_id(ids.email)
    assert (row.smtp_host, row.sender_password) == ("smtp.attacker.example", "")
    assert SMTP_PASSWORD not in page

    _followed(admin_client, submit(admin_client, edit, smtp_port="2525", sender_password="typed-pw"))
    assert EmailAccount.get_by_id(ids.email).sender_password == "typed-pw"
    _followed(admin_client, submit(admin_client, edit, daily_quota="10"))
    assert EmailAccount.get_by_id(ids.email).sender_password == "typed-pw"


def test_a_plain_account_says_the_mailer_will_not_send_its_password(admin_client):
    ids = seed()
    edit = f"/lists/email-accounts/{ids.email}"
    page = _followed(admin_client, submit(admin_client, edit, starttls=False, sender_password="typed-pw"))
    assert "none: the mailer will not send the password" in page
    assert 'name="allow_plain_login"' in page
    _followed(admin_client, submit(admin_client, edit, allow_plain_login=True, sender_password="typed-pw"))
    row = EmailAccount.get_by_id(ids.email)
    assert (row.allow_plain_login, row.sender_password) == (True, "typed-pw")


def test_a_modem_on_another_port_loses_its_pin_and_apn_password(admin_client):
    seed()
    page = _followed(admin_client, submit(admin_client, "/lists/modems/m1", port="/dev/ttyUSB5"))
    assert ("SIM card PIN and APN password were cleared because the change moves where they are sent: enter them "
            "again.") in flashes(page)
    row = Modem.get(Modem.name == "m1")
    assert (row.port, row.sim_pin, row.apn_password) == ("/dev/ttyUSB5", "", "")
