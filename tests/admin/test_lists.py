"""The list pages: the gate and CSRF on every route, write-only secrets, administrators, API users, the
blocking list and the firewall list. (Modems, email accounts and DDNS records: test_lists_records.py.)"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask import url_for

from otppi.admin.lists import MENU
from otppi.auth import verify_password
from otppi.store import settings
from otppi.store.models import Administrator, ApiUser, BlockedNumber, Event, FirewallPort

from .conftest import ADMIN_USER, create_admin, csrf, logout, post_form, routes
from .lists_helpers import API_PASSWORD, APN_PASSWORD, SIM_PIN, SMTP_PASSWORD, error_beside, seed, snapshot, submit

#: Each child blueprint's URL variable, filled from the seeded rows.
_IDENT = {"admins": "other_admin", "api_users": "api_user", "blocked": "blocked", "email": "email",
          "ddns": "ddns", "firewall": "firewall"}

LIST_ROUTES = sorted({(r.endpoint, r.method) for r in routes() if r.endpoint.startswith("lists.")})


def _path(app, endpoint: str, seeded) -> str:
    child = endpoint.split(".")[1]
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {}
    if "ident" in rule.arguments:
        values["ident"] = getattr(seeded, _IDENT[child])
    if "name" in rule.arguments:
        values["name"] = seeded.modem
    with app.test_request_context():
        return url_for(endpoint, **values)


def _to_login(response) -> bool:
    return response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


def test_the_lists_group_of_the_menu_has_every_page(admin_client):
    html = admin_client.get("/lists/admins").get_data(as_text=True)
    group, items = MENU
    assert group == "Lists" and len(items) == 7
    for title, endpoint, _ in items:
        response = admin_client.get(_path(admin_client.application, endpoint, None))
        assert response.status_code == 200, endpoint
        assert f">{title}</a>" in html


@pytest.mark.parametrize("endpoint, method", LIST_ROUTES, ids=lambda v: str(v))
def test_anonymous_users_are_refused_and_nothing_changes(admin_app, client, endpoint, method):
    create_admin(client)
    seeded = seed()
    logout(client)
    path = _path(admin_app, endpoint, seeded)
    before = snapshot()
    if method == "GET":
        assert _to_login(client.get(path))
    else:
        assert client.post(path, data={"number": "0812345678"}).status_code == 400  # no token
        token = csrf(client, "/login")
        response = client.post(path, data={"csrf_token": token, "number": "0812345678", "port": "9000",
                                           "preset": "XL", "username": "intruder", "password": "p" * 12,
                                           "password2": "p" * 12})
        assert _to_login(response)
    assert snapshot() == before


@pytest.mark.parametrize("endpoint", [e for e, m in LIST_ROUTES if m == "POST"])
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(admin_client, endpoint):
    seeded = seed()
    path = _path(admin_client.application, endpoint, seeded)
    before = snapshot()
    for data in ({}, {"csrf_token": "forged"}):
        data.update(number="0812345678", port="9000", preset="XL", phone="0899", password="p" * 12,
                    password2="p" * 12)
        assert admin_client.post(path, data=data).status_code == 400
    assert snapshot() == before


@pytest.mark.parametrize("endpoint", [e for e, m in LIST_ROUTES if m == "GET"])
def test_no_page_shows_a_secret_or_a_password_hash(admin_client, endpoint):
    seeded = seed()
    response = admin_client.get(_path(admin_client.application, endpoint, seeded))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    hashes = [row.password_hash for row in list(Administrator.select()) + list(ApiUser.select())]
    for secret in (SIM_PIN, APN_PASSWORD, SMTP_PASSWORD, API_PASSWORD, *hashes):
        assert secret not in html


# ---------------------------------------------------------------- administrators


@pytest.mark.parametrize("changes, field, message", [
    ({"username": ""}, "username", "1 to 64 letters"),
    ({"username": "two words"}, "username", "1 to 64 letters"),
    ({"email": "not-an-address"}, "email", "an email address"),
    ({"phone": "call me"}, "phone", "a phone number"),
    ({"password": "short", "password2": "short"}, "password", "at least 8 characters"),
    ({"password2": "something else"}, "password2", "the two passwords differ"),
    ({"username": ADMIN_USER}, "username", "that name is taken"),
])
def test_adding_an_administrator_explains_a_bad_field_beside_it(admin_client, changes, field, message):
    before = snapshot()
    data = {"username": "second", "password": "long enough pw", "password2": "long enough pw",
            "phone": "0812 3456 7890", "email": "second@example.com", **changes}
    response = post_form(admin_client, "/lists/admins", data)
    assert response.status_code == 400
    assert message in error_beside(response.get_data(as_text=True), field)
    assert snapshot() == before


def test_an_administrator_is_added_edited_given_a_password_and_deleted(admin_client):
    generation = settings.generation()
    response = post_form(admin_client, "/lists/admins", {"username": "second", "password": "long enough pw",
                                                         "password2": "long enough pw", "phone": "0812 3456 7890",
                                                         "email": "second@example.com"})
    assert response.status_code == 302
    second = Administrator.get(Administrator.username == "second")
    assert verify_password(second.password_hash, "long enough pw") and second.email == "second@example.com"
    assert settings.generation() > generation
    assert "second@example.com" in admin_client.get("/lists/admins").get_data(as_text=True)

    edit = f"/lists/admins/{second.id}"
    bad = submit(admin_client, edit, email="nope")
    assert bad.status_code == 400 and "an email address" in error_beside(bad.get_data(as_text=True), "email")
    assert submit(admin_client, edit, email="new@example.com", phone="").status_code == 302
    second = Administrator.get_by_id(second.id)
    assert (second.email, second.phone) == ("new@example.com", "")

    assert post_form(admin_client, f"{edit}/password", {"password": "x" * 12, "password2": "x" * 12},
                     page=edit).status_code == 302
    assert verify_password(Administrator.get_by_id(second.id).password_hash, "x" * 12)

    assert post_form(admin_client, f"{edit}/delete", page=edit).status_code == 302
    assert Administrator.get_or_none(Administrator.id == second.id) is None


def test_the_last_administrator_cannot_be_deleted(admin_client):
    me = Administrator.get(Administrator.username == ADMIN_USER)
    before = snapshot()
    response = post_form(admin_client, f"/lists/admins/{me.id}/delete", page=f"/lists/admins/{me.id}")
    assert response.status_code == 409
    assert "The last administrator cannot be deleted" in response.get_data(as_text=True)
    assert snapshot() == before


def test_an_administrator_cannot_delete_themselves_while_logged_in(admin_client):
    seed()
    me = Administrator.get(Administrator.username == ADMIN_USER)
    response = post_form(admin_client, f"/lists/admins/{me.id}/delete", page=f"/lists/admins/{me.id}")
    assert response.status_code == 409
    assert "You cannot delete yourself while logged in" in response.get_data(as_text=True)
    assert Administrator.get_or_none(Administrator.id == me.id) is not None


def test_ones_own_password_is_changed_on_the_password_page_only(admin_client):
    me = Administrator.get(Administrator.username == ADMIN_USER)
    page = admin_client.get(f"/lists/admins/{me.id}").get_data(as_text=True)
    assert f'action="/lists/admins/{me.id}/password"' not in page and 'href="/password"' in page
    response = post_form(admin_client, f"/lists/admins/{me.id}/password",
                         {"password": "y" * 12, "password2": "y" * 12}, page=f"/lists/admins/{me.id}")
    assert response.status_code == 409
    assert Administrator.get_by_id(me.id).password_hash == me.password_hash


# ---------------------------------------------------------------- API users


def test_an_api_user_is_added_listed_edited_reset_and_deleted(admin_client):
    bad = post_form(admin_client, "/lists/api-users", {"username": "", "password": "pw-long-enough",
                                                      "password2": "pw-long-enough", "email": "bad@"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "1 to 64 letters" in error_beside(html, "username")
    assert "an email address" in error_beside(html, "email")
    assert ApiUser.select().count() == 0

    generation = settings.generation()
    response = post_form(admin_client, "/lists/api-users", {
        "username": "shop", "password": "pw-long-enough", "password2": "pw-long-enough",
        "email": "shop@example.com", "phone": "+62 812 3456 7890", "active": "on"})
    assert response.status_code == 302 and settings.generation() > generation
    user = ApiUser.get(ApiUser.username == "shop")
    assert user.active and verify_password(user.password_hash, "pw-long-enough")
    assert not user.allow_ussd, "USSD codes can move credit: a new user may not run them unless ticked"
    listing = admin_client.get("/lists/api-users").get_data(as_text=True)
    for shown in ("shop", "shop@example.com", "+62 812 3456 7890", "active"):
        assert shown in listing
    assert "pw-long-enough" not in listing

    edit = f"/lists/api-users/{user.id}"
    assert submit(admin_client, edit, active=False, email="ops@example.com").status_code == 302
    user = ApiUser.get_by_id(user.id)
    assert not user.active and user.email == "ops@example.com"
    assert "inactive" in admin_client.get("/lists/api-users").get_data(as_text=True)
    assert submit(admin_client, edit, allow_ussd=True).status_code == 302
    assert ApiUser.get_by_id(user.id).allow_ussd
    assert '<span class="badge ok">allowed</span>' in admin_client.get("/lists/api-users").get_data(as_text=True)
    assert submit(admin_client, edit, allow_ussd=False).status_code == 302
    assert not ApiUser.get_by_id(user.id).allow_ussd
    response = post_form(admin_client, "/lists/api-users", {
        "username": "ops", "password": "pw-long-enough", "password2": "pw-long-enough", "active": "on",
        "allow_ussd": "on"})
    ops = ApiUser.get(ApiUser.username == "ops")
    assert response.status_code == 302 and ops.allow_ussd
    assert post_form(admin_client, f"/lists/api-users/{ops.id}/delete", page=f"/lists/api-users/{ops.id}").status_code == 302

    short = post_form(admin_client, f"{edit}/password", {"password": "short", "password2": "short"}, page=edit)
    assert short.status_code == 400 and "at least 8" in error_beside(short.get_data(as_text=True), "password")
    assert post_form(admin_client, f"{edit}/password", {"password": "new-api-secret", "password2": "new-api-secret"},
                     page=edit).status_code == 302
    assert verify_password(ApiUser.get_by_id(user.id).password_hash, "new-api-secret")
    assert "new-api-secret" not in admin_client.get(edit).get_data(as_text=True)

    assert post_form(admin_client, f"{edit}/delete", page=edit).status_code == 302
    assert ApiUser.select().count() == 0


# ---------------------------------------------------------------- blocking list


@pytest.mark.parametrize("number", ["12ab34", "call me", "081234567890123456789012", "+"])
def test_a_number_that_is_not_one_is_refused_beside_the_field(admin_client, number):
    before = snapshot()
    response = post_form(admin_client, "/lists/blocking", {"number": number})
    assert response.status_code == 400
    assert "a phone number" in error_beside(response.get_data(as_text=True), "number")
    assert snapshot() == before


def test_blocked_numbers_are_stored_with_the_sms_country_code(admin_client):
    assert post_form(admin_client, "/lists/blocking", {"number": "0812-3456-7890"}).status_code == 302
    assert [(e.kind, e.source, e.result) for e in Event.select()] == [("block", "admin", "blocked")]
    settings.set_text("sms.country_code", "60")
    post_form(admin_client, "/lists/blocking", {"number": "012 345 6789"})
    post_form(admin_client, "/lists/blocking", {"number": "+62 812 3456 7890"})  # the same phone again
    assert sorted(b.msisdn for b in BlockedNumber.select()) == ["60123456789", "6281234567890"]


def test_the_blocking_list_is_searched_paged_and_trimmed(admin_client):
    BlockedNumber.insert_many([{"msisdn": f"62812000{n:05d}"} for n in range(120)]
                              + [{"msisdn": "6285755550000"}]).execute()
    page = admin_client.get("/lists/blocking").get_data(as_text=True)
    assert "121 numbers" in page and "Page 1 of 3" in page and page.count("Remove</button>") == 50
    last = admin_client.get("/lists/blocking?page=3").get_data(as_text=True)
    assert last.count("Remove</button>") == 21 and "Page 3 of 3" in last
    found = admin_client.get("/lists/blocking?q=5555").get_data(as_text=True)
    assert "6285755550000" in found and "1 number matching" in found and "62812000" not in found
    local = admin_client.get("/lists/blocking?q=0857").get_data(as_text=True)
    assert "6285755550000" in local and "1 number matching" in local
    assert "0 numbers" in admin_client.get("/lists/blocking?q=999999").get_data(as_text=True)

    row = BlockedNumber.get(BlockedNumber.msisdn == "6285755550000")
    response = post_form(admin_client, f"/lists/blocking/{row.id}/delete", {"q": "5555"}, page="/lists/blocking")
    assert response.status_code == 302 and "q=5555" in response.headers["Location"]
    assert BlockedNumber.get_or_none(BlockedNumber.id == row.id) is None
    assert [(e.kind, e.result) for e in Event.select()] == [("block", "unblocked")]


# ---------------------------------------------------------------- firewall


@pytest.mark.parametrize("changes, field, message", [
    ({"port": "70000"}, "port", "from 1 to 65535"),
    ({"port": "0"}, "port", "from 1 to 65535"),
    ({"port": "http"}, "port", "a whole number"),
    ({"protocol": "icmp"}, "protocol", "tcp or udp"),
    ({"comment": "x" * 101}, "comment", "at most 100 characters"),
    ({"port": "8080"}, "port", "8080/tcp is already in the list"),
])
def test_a_bad_firewall_port_is_explained_beside_its_field(admin_client, changes, field, message):
    seed()
    before = snapshot()
    response = submit(admin_client, "/lists/firewall", **{"port": "443", "comment": "HTTPS", **changes})
    assert response.status_code == 400
    assert message in error_beside(response.get_data(as_text=True), field)
    assert snapshot() == before


def test_firewall_ports_are_added_toggled_and_removed_and_the_page_says_they_are_not_applied(admin_client):
    page = admin_client.get("/lists/firewall").get_data(as_text=True)
    assert "Not applied yet" in page and "8888/tcp" in page
    generation = settings.generation()
    assert submit(admin_client, "/lists/firewall", port="5672", protocol="tcp", is_open=False,
                  comment="<b>RabbitMQ</b>").status_code == 302
    row = FirewallPort.get()
    assert (row.port, row.protocol, row.is_open) == (5672, "tcp", False)
    assert "&lt;b&gt;RabbitMQ&lt;/b&gt;" in admin_client.get("/lists/firewall").get_data(as_text=True)
    assert post_form(admin_client, f"/lists/firewall/{row.id}/toggle", page="/lists/firewall").status_code == 302
    assert FirewallPort.get_by_id(row.id).is_open
    assert post_form(admin_client, f"/lists/firewall/{row.id}/delete", page="/lists/firewall").status_code == 302
    assert FirewallPort.select().count() == 0
    assert settings.generation() >= generation + 3
