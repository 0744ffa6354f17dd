"""Every settings page: all of its fields, messages beside the field, saves that apply, write-only secrets."""

from __future__ import annotations

import re
from html import unescape

import pytest
from peewee import BooleanField

from otppi.admin.settings_pages import TITLES
from otppi.store import settings
from otppi.store.models import ApiSettings, GeneralSettings

from .conftest import csrf, form_inputs, form_values

SECRET = "Sup3r-s3cret-value!"

SECRET_FIELDS = [(section, name) for section, page in settings.PAGES.items() for name in sorted(page.SECRETS)]


def _fields(section: str) -> list[str]:
    return [name for name in settings.PAGES[section]._meta.sorted_field_names if name != "id"]


def _page(client, section: str) -> str:
    response = client.get(f"/settings/{section}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _submit(client, section: str, **changes: str | bool | None):
    """Submit the page's form as a browser would, with *changes* typed in (True/False tick a box, None clears)."""
    html = _page(client, section)
    data = form_values(html)
    for name, value in changes.items():
        if value is True:
            data[name] = "on"
        elif value is False or value is None:
            data.pop(name, None)
        else:
            data[name] = value
    data["csrf_token"] = csrf(client, f"/settings/{section}")
    return client.post(f"/settings/{section}", data=data)


def _field_block(html: str, name: str) -> str:
    """The markup of one field's box: its label, input and message."""
    for block in re.split(r'(?=<div class="field)', html):
        if f'name="{name}"' in block:
            return block
    raise AssertionError(f"no field {name}")


def test_every_section_has_a_page_and_a_menu_entry(admin_client):
    menu = _page(admin_client, "general")
    for section in settings.PAGES:
        assert section in TITLES, f"{section} has no title"
        assert f'href="/settings/{section}"' in menu, f"{section} is not in the menu"


@pytest.mark.parametrize("section", sorted(settings.PAGES))
def test_a_page_renders_every_field_at_its_value(admin_client, section):
    html = _page(admin_client, section)
    assert f"<h1>{TITLES[section]}</h1>" in html
    page = settings.PAGES[section]
    row = page.load()
    inputs = {f["name"]: f for f in form_inputs(html) if f.get("name")}
    for name in _fields(section):
        assert name in inputs, f"{section}.{name} is not on the page"
        field = inputs[name]
        assert re.search(rf'<label[^>]*for="f-{name}"|<label><input[^>]*name="{name}"', html), f"{name} has no label"
        if name in page.SECRETS:
            assert field["type"] == "password" and "value" not in field
        elif isinstance(page._meta.fields[name], BooleanField):
            assert field["type"] == "checkbox" and ("checked" in field) == bool(getattr(row, name))
        else:
            assert field["value"] == str(getattr(row, name))


def test_an_untouched_form_saves_without_complaint(admin_client):
    for section in settings.PAGES:
        response = _submit(admin_client, section)
        assert response.status_code == 302, (section, response.get_data(as_text=True)[-2000:])


def test_unknown_section_is_404(admin_client):
    assert admin_client.get("/settings/nonsense").status_code == 404


@pytest.mark.parametrize("section, name, value, message", [
    ("api", "http_port", "70000", "must be a port number from 1 to 65535"),
    ("admin", "port", "0", "must be a port number from 1 to 65535"),
    ("admin", "bind_address", "300.1.2.3", "must be an IPv4 address"),
    ("wlan", "gateway", "192.168.0", "must be an IPv4 address"),
    ("dhcp", "netmask", "255.0.255.0", "must be a netmask such as 255.255.255.0"),
    ("ethernet", "netmask", "banana", "must be a netmask such as 255.255.255.0"),
    ("api", "otp_path", "api/otp", "must be a path starting with '/'"),
    ("api", "message_path", "/api//sms", "must be a path starting with '/'"),
    ("general", "otp_length", "six", "must be a whole number"),
    ("general", "otp_length", "3", "must be from 4 to 10"),
    ("api", "wait_timeout", "soon", "must be a number"),
    ("time", "update_timer", "-1", "must be from 0 to 525600"),
    ("sms", "country_code", "+62", "must be 1 to 3 digits"),
    ("general", "otp_message", "no code here", "must contain exactly one %s"),
    ("feeder_redis", "mode", "carrier-pigeon", "must be one of: pubsub, streams"),
])
def test_a_bad_value_is_explained_beside_its_field_and_nothing_is_saved(admin_client, section, name, value,
                                                                        message):
    before_row = settings.PAGES[section].load().__data__.copy()
    before_generation = settings.generation()
    response = _submit(admin_client, section, **{name: value})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    block = _field_block(html, name)
    assert f'value="{value}"' in block, "the value typed is shown again to correct"
    assert 'aria-invalid="true"' in block
    assert re.search(rf'<p class="error">[^<]*{re.escape(message)}', unescape(block)), block
    assert html.count('<p class="error">') == 1, "only the bad field complains"
    assert settings.PAGES[section].load().__data__ == before_row
    assert settings.generation() == before_generation


def test_several_bad_values_each_get_their_own_message(admin_client):
    response = _submit(admin_client, "api", http_port="0", https_port="65536", bind_address="1.2.3")
    html = response.get_data(as_text=True)
    assert "port number" in _field_block(html, "http_port")
    assert "port number" in _field_block(html, "https_port")
    assert "IPv4" in _field_block(html, "bind_address")
    assert '<p class="error">' not in _field_block(html, "otp_path")


def test_a_valid_save_lands_in_the_store_and_bumps_the_generation(admin_client):
    generation = settings.generation()
    response = _submit(admin_client, "general", otp_length="8", device_name="Gateway 7", drop_expire_otp=False)
    assert response.status_code == 302 and response.headers["Location"] == "/settings/general"
    row = GeneralSettings.load()
    assert (row.otp_length, row.device_name, row.drop_expire_otp) == (8, "Gateway 7", False)
    assert settings.generation() > generation
    html = _page(admin_client, "general")
    assert "General settings saved" in html
    assert 'value="Gateway 7"' in html


def test_a_checkbox_can_be_ticked_and_cleared(admin_client):
    assert _submit(admin_client, "api", https_enabled=True, http_enabled=False).status_code == 302
    row = ApiSettings.load()
    assert (row.https_enabled, row.http_enabled) == (True, False)
    assert _submit(admin_client, "api", https_enabled=False, http_enabled=True).status_code == 302
    row = ApiSettings.load()
    assert (row.https_enabled, row.http_enabled) == (False, True)


def test_text_is_escaped_on_the_page(admin_client):
    assert _submit(admin_client, "general", device_name='"><script>alert(1)</script>').status_code == 302
    html = _page(admin_client, "general")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;" in html or "&#34;&gt;&lt;script" in html


@pytest.mark.parametrize("section, name", SECRET_FIELDS)
def test_secrets_are_write_only(admin_client, section, name):
    key = f"{section}.{name}"
    response = _submit(admin_client, section, **{name: SECRET})
    assert response.status_code == 302
    assert SECRET not in response.get_data(as_text=True)
    assert settings.get(key) == SECRET
    html = _page(admin_client, section)
    assert SECRET not in html
    block = _field_block(html, name)
    assert "(set: leave empty to keep)" in block and f'name="clear_{name}"' in block

    # An empty field keeps it, even when the rest of the form changes.
    assert _submit(admin_client, section).status_code == 302
    assert settings.get(key) == SECRET

    # Nor is it echoed when the form comes back with a mistake in another field.
    other = next((n for n in _fields(section) if n not in settings.PAGES[section].SECRETS
                  and not isinstance(settings.PAGES[section]._meta.fields[n], BooleanField)), None)
    if other is not None:
        bad = _submit(admin_client, section, **{name: SECRET + "2", other: "x" * 2000})
        assert bad.status_code == 400
        assert SECRET not in bad.get_data(as_text=True)
        assert settings.get(key) == SECRET

    # "clear it" clears it.
    assert _submit(admin_client, section, **{f"clear_{name}": "on"}).status_code == 302
    assert settings.get(key) == ""
    assert "(not set)" in _field_block(_page(admin_client, section), name)


def test_secrets_are_not_in_any_page(admin_client):
    for section, name in SECRET_FIELDS:
        settings.set_text(f"{section}.{name}", f"{SECRET}-{section}-{name}")
    for section in settings.PAGES:
        assert SECRET not in _page(admin_client, section)


def test_subscriber_pages_show_the_live_connection_status(admin_client) -> None:
    from otppi.store import settings
    from otppi.store.models import Event

    assert "the subscriber is disabled" in admin_client.get("/settings/feeder_amqp").text
    settings.set_text("feeder_amqp.enabled", "true")
    assert "no connection recorded yet" in admin_client.get("/settings/feeder_amqp").text
    Event.create(kind="feeder", source="amqp", result="disconnected", cause="refused the password of otppi")
    page = admin_client.get("/settings/feeder_amqp").text
    assert "disconnected" in page and "refused the password of otppi" in page
    Event.create(kind="feeder", source="amqp", result="connected", cause="broker.example:5672")
    assert 'badge ok">connected' in admin_client.get("/settings/feeder_amqp").text
    assert 'id="connection"' not in admin_client.get("/settings/sms").text
