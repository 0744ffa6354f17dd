"""The admin web's gate: first run, login and its throttle, sessions, CSRF, headers, password change and reset.

The route lists come from the app's own URL map, so pages added later are
checked by the same tests without touching them.
"""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import urlsplit

import pytest
from flask.sessions import SecureCookieSessionInterface

from otppi import keys, setup_code
from otppi.admin.auth import GENERIC_RESET
from otppi.admin.security import FORGET_SECONDS, FREE_FAILURES, MAX_DELAY, MAX_RECORDS, SESSION_HOURS, Throttle
from otppi.auth import ARGON2, ARGON2_THREADS, DUMMY_HASH, HASHER, check_password, verify_password
from otppi.seal import unseal
from otppi.store import settings
from otppi.store.db import db
from otppi.admin import reset
from otppi.contract import validate as build
from otppi.store import outbox
from otppi.store.models import AdminSession, Administrator, EmailOutbox, ResetCode, SmsOutbox

from .conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    create_admin,
    csrf,
    login,
    logout,
    post_form,
    protected_routes,
    routes,
    setup_code_of,
)

COOKIE = "otppi_admin"
NEW_PASSWORD = "a brand new passphrase"


def _location(response) -> str:
    return response.headers.get("Location", "")


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and urlsplit(_location(response)).path == "/login"


def _from(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def _logged_in(client) -> bool:
    return client.get("/password").status_code == 200


# ---------------------------------------------------------------- first run


@pytest.mark.parametrize("route", [r for r in routes() if r.method == "GET" and r.endpoint != "auth.setup"], ids=str)
def test_every_page_leads_to_setup_while_there_is_no_administrator(client, route):
    response = client.get(route.path)
    assert response.status_code == 302
    assert urlsplit(_location(response)).path == "/setup"


def test_setup_creates_the_administrator_and_logs_them_in(client):
    page = client.get("/setup").get_data(as_text=True)
    for name in ("username", "password", "password2", "phone", "email"):
        assert f'name="{name}"' in page
    response = create_admin(client, phone="0812 3456 7890", email="admin@example.com")
    assert response.status_code == 302
    admin = Administrator.get(Administrator.username == ADMIN_USER)
    assert admin.email == "admin@example.com" and admin.phone
    assert admin.password_hash != ADMIN_PASSWORD and verify_password(admin.password_hash, ADMIN_PASSWORD)
    assert _logged_in(client)


@pytest.mark.parametrize("field, form, message", [
    ("password", {"password": "short", "password2": "short"}, "at least 8 characters"),
    ("password2", {"password": "long enough 1", "password2": "long enough 2"}, "the two passwords differ"),
    ("username", {"username": "no spaces here"}, "letters, digits"),
    ("phone", {"phone": "call me"}, "a phone number"),
    ("email", {"email": "not-an-address"}, "an email address"),
])
def test_setup_explains_a_bad_field_beside_it_and_creates_nothing(client, field, form, message):
    data = {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "password2": ADMIN_PASSWORD, "phone": "",
            "email": "", **form}
    response = post_form(client, "/setup", data)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"[^>]*>\s*<p class="error" id="e-{field}">[^<]*'
                     rf'{re.escape(message)}', html), html
    assert Administrator.select().count() == 0


def test_setup_needs_the_devices_setup_code(admin_app, paths, client):
    """Any network client could create the first administrator before; now only one that has the code."""
    page = client.get("/setup").get_data(as_text=True)
    assert 'name="setup_code"' in page
    for wrong in ("", "AAAA-AAAA-AAAA", setup_code_of(client)[:-1]):
        response = create_admin(client, code=wrong)
        assert response.status_code == 200 and "wrong setup code" in response.get_data(as_text=True)
    assert Administrator.select().count() == 0
    typed = setup_code_of(client).lower().replace("-", " ")  # as read off a screen and typed on a phone
    assert create_admin(client, code=typed).status_code == 302
    assert Administrator.select().count() == 1


def test_the_setup_code_is_made_once_kept_private_and_gone_with_the_first_administrator(admin_app, paths, client):
    path = keys.setup_code_file(paths)
    code = path.read_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert path.stat().st_mode & 0o777 == 0o600
    assert setup_code.ensure(paths) == code, "never regenerated while present"
    assert code not in (paths.database.read_bytes() + paths.database.with_name("otppi.db-wal").read_bytes()
                        ).decode("latin-1"), "the store keeps only an HMAC of it"
    assert create_admin(client).status_code == 302
    assert not path.exists()
    assert setup_code.ensure(paths) is None
    # Were every administrator removed, the old code would not open the page again.
    with db.atomic():
        Administrator.delete().execute()
    assert create_admin(admin_app.test_client(), code=code).status_code == 200
    assert Administrator.select().count() == 0


def test_setup_code_guessing_is_throttled_like_logins(admin_app, client):
    now = [1000.0]
    admin_app.extensions["otppi_throttle"] = Throttle(clock=lambda: now[0])
    for _ in range(FREE_FAILURES + 1):
        assert create_admin(client, code="AAAA-AAAA-AAAA").status_code == 200
    held = create_admin(client)  # the right code, during the wait
    assert held.status_code == 429 and "too many wrong setup codes" in held.get_data(as_text=True)
    assert Administrator.select().count() == 0
    now[0] += 2.5
    assert create_admin(client).status_code == 302


def test_setup_is_gone_for_good_once_an_administrator_exists(admin_app, client):
    create_admin(client)
    logout(client)
    for c in (client, admin_app.test_client()):
        assert _is_login_redirect(c.get("/setup"))
    # A second administrator cannot be slipped in by posting to the old page, logged in or not.
    fresh = admin_app.test_client()
    response = post_form(fresh, "/setup", {"username": "intruder", "password": "p" * 12, "password2": "p" * 12},
                         page="/login")
    assert _is_login_redirect(response)
    login(client)
    response = client.post("/setup", data={"csrf_token": csrf(client, "/password"), "username": "second",
                                           "password": "p" * 12, "password2": "p" * 12})
    assert response.status_code == 302
    assert [a.username for a in Administrator.select()] == [ADMIN_USER]


# ---------------------------------------------------------------- login, logout, throttle


def test_login_and_logout(admin_app, client):
    create_admin(client)
    logout(client)
    assert not _logged_in(client)
    response = login(client)
    assert response.status_code == 302 and _location(response) == "/"
    assert _logged_in(client)
    assert Administrator.get().last_login_at is not None
    assert _is_login_redirect(logout(client))
    assert not _logged_in(client)


def test_a_wrong_password_is_refused_with_a_message(client):
    create_admin(client)
    logout(client)
    response = login(client, password="not the password")
    assert response.status_code == 200
    assert "wrong username or password" in response.get_data(as_text=True)
    assert not _logged_in(client)
    # An unknown name answers the same way.
    assert "wrong username or password" in login(client, username="nobody").get_data(as_text=True)


def test_login_is_throttled_with_a_growing_delay_even_for_the_right_password(admin_app, client):
    now = [1000.0]
    admin_app.extensions["otppi_throttle"] = Throttle(clock=lambda: now[0])
    create_admin(client)
    logout(client)
    for _ in range(4):  # the first few failures cost nothing; the fourth starts the wait
        assert login(client, password="guess").status_code == 200
    refused = login(client)  # the right password, during the wait
    assert refused.status_code == 429
    assert "too many failed attempts" in refused.get_data(as_text=True)
    assert not _logged_in(client)
    # From the same address, another name is held back too.
    assert login(client, username="other", password="guess").status_code == 429

    now[0] += 2.5  # the first wait is over; one more failure doubles it
    assert login(client, password="guess").status_code == 200
    now[0] += 2.5
    assert login(client).status_code == 429
    now[0] += 2.0
    assert login(client).status_code == 302
    assert _logged_in(client)


def test_parallel_wrong_logins_from_one_address_are_counted_before_they_are_checked(admin_app, client):
    """Twelve at once used to pass the throttle together, twelve argon2 checks of 19 MiB each at once."""
    create_admin(client)
    logout(client)
    clients = [admin_app.test_client() for _ in range(12)]
    tokens = [csrf(c, "/login") for c in clients]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []
    runs, peak_before = ARGON2.runs, ARGON2.peak

    def guess(c, token: str) -> None:
        start.wait()
        statuses.append(c.post("/login", data={"csrf_token": token, "username": ADMIN_USER,
                                               "password": "a wrong guess"}).status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(429) >= len(clients) - (FREE_FAILURES + 1), statuses
    assert ARGON2.runs - runs <= FREE_FAILURES + 1
    assert ARGON2.peak <= ARGON2_THREADS and peak_before <= ARGON2_THREADS


def test_an_unknown_user_costs_a_decoy_verification(client):
    create_admin(client)
    logout(client)
    runs, decoys = ARGON2.runs, ARGON2.decoys
    assert "wrong username or password" in login(client, username="nobody", password="a guess").get_data(
        as_text=True)
    assert (ARGON2.runs - runs, ARGON2.decoys - decoys) == (1, 1), "a decoy verification ran"
    login(client, password="a guess")
    assert (ARGON2.runs - runs, ARGON2.decoys - decoys) == (2, 1), "a real user's wrong password: no decoy"


def test_the_decoy_hash_costs_what_a_real_one_does():
    assert not HASHER.check_needs_rehash(DUMMY_HASH), "the dummy hash must have the hasher's parameters"
    assert check_password(None, DUMMY_HASH) is False and check_password(None, "") is False


def test_a_stranger_cannot_lock_the_administrator_out_from_a_fresh_address(admin_app, client):
    create_admin(client)
    logout(client)
    stranger = admin_app.test_client()
    answers = [login(stranger, password="guess", **_from("10.0.0.9")).status_code for _ in range(10)]
    assert answers[:FREE_FAILURES + 1] == [200] * (FREE_FAILURES + 1) and set(answers[FREE_FAILURES + 1:]) == {429}
    # Another stranger's address gets one try at the name under attack, then the name holds it back.
    other = admin_app.test_client()
    assert login(other, password="guess", **_from("10.0.0.8")).status_code == 200
    assert login(other, password="guess", **_from("10.0.0.8")).status_code == 429
    # The administrator, from an address that has not failed, gets in.
    assert login(admin_app.test_client(), **_from("10.0.0.1")).status_code == 302


def test_the_hosts_of_one_ipv6_network_share_a_throttle(admin_app, client):
    create_admin(client)
    logout(client)
    for i in range(FREE_FAILURES + 1):
        login(admin_app.test_client(), username=f"name{i}", password="guess", **_from(f"2001:db8:1:2::{i + 1}"))
    assert login(admin_app.test_client(), username="other", password="guess",
                 **_from("2001:db8:1:2:ffff::1")).status_code == 429
    assert login(admin_app.test_client(), username="other", password="guess",
                 **_from("2001:db8:1:3::1")).status_code == 200


def test_the_throttle_table_cannot_be_flushed_by_a_flood_of_names_and_addresses():
    now = [1000.0]
    throttle = Throttle(clock=lambda: now[0])
    for _ in range(FREE_FAILURES + 1):
        assert throttle.attempt("ip:10.0.0.9", "user:admin") == 0
    assert throttle.attempt("ip:10.0.0.9", "user:admin") > 0
    for i in range(MAX_RECORDS + 10):  # it used to clear every record past 10,000
        throttle.attempt(f"ip:10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"user:n{i}")
    assert throttle.attempt("ip:10.0.0.9", "user:admin") > 0, "the attacker is still held back"
    assert len(throttle) <= MAX_RECORDS + 2, "and the table stays bounded"
    now[0] += FORGET_SECONDS + MAX_DELAY  # records nobody renews are forgotten, freeing room
    assert throttle.attempt("ip:10.0.0.9", "user:admin") == 0
    assert throttle.attempt("ip:192.0.2.1", "user:someone") == 0


@pytest.mark.parametrize("target", ["//evil.example", "//evil.example/settings", "https://evil.example/",
                                    "/\\evil.example", "/\t/evil.example", "http:evil.example", "javascript:alert(1)"])
def test_login_never_redirects_off_the_device(client, target):
    create_admin(client)
    logout(client)
    response = login(client, next=target)
    assert response.status_code == 302
    location = _location(response)
    assert urlsplit(location).netloc == "" and urlsplit(location).scheme == ""
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert not re.search(r"[\x00-\x20]", location)


@pytest.mark.parametrize("query", ["/%09/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example",
                                   "%2F%2Fevil.example", "/%5Cevil.example", "/%20/evil.example", "https:/evil.example",
                                   "/%7f/evil.example"])
def test_login_refuses_a_next_that_browsers_may_read_as_another_host(client, query):
    """Browsers drop tabs and newlines from URLs: /<TAB>/evil.example became //evil.example, off-site."""
    create_admin(client)
    logout(client)
    response = post_form(client, f"/login?next={query}", {"username": ADMIN_USER, "password": ADMIN_PASSWORD},
                         page="/login")
    assert response.status_code == 302 and _location(response) == "/"


def test_login_returns_to_the_page_asked_for(client):
    create_admin(client)
    logout(client)
    asked = client.get("/settings/sms")
    assert _is_login_redirect(asked)
    response = login(client, next="/settings/sms")
    assert _location(response) == "/settings/sms"


# ---------------------------------------------------------------- the session cookie


def test_session_cookie_is_httponly_samesite_strict_and_signed(admin_app, client):
    create_admin(client)
    logout(client)
    response = login(client)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "="))
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    value = client.get_cookie(COOKIE).value
    assert ADMIN_USER not in value  # signed and compressed, not a readable name to copy

    tampered = value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB")
    client.set_cookie(COOKIE, tampered)
    assert _is_login_redirect(client.get("/password"))


def test_a_session_signed_with_another_key_is_not_a_session(admin_app, client):
    create_admin(client)
    logout(client)
    other = type(admin_app)(__name__)
    other.config.update(SECRET_KEY=b"0" * 32, SESSION_COOKIE_NAME=COOKIE)
    forged = SecureCookieSessionInterface().get_signing_serializer(other).dumps(
        {"admin": ADMIN_USER, "seen": time.time()})
    client.set_cookie(COOKIE, forged)
    assert _is_login_redirect(client.get("/password"))


def test_session_expires_after_the_idle_minutes(admin_client):
    settings.set_text("admin.session_minutes", "5")
    with admin_client.session_transaction() as session:
        session["seen"] = time.time() - 4 * 60
    assert _logged_in(admin_client)  # and being active starts the clock again
    with admin_client.session_transaction() as session:
        assert time.time() - session["seen"] < 60
        session["seen"] = time.time() - 5 * 60 - 5
    assert _is_login_redirect(admin_client.get("/settings/general"))
    assert not _logged_in(admin_client)


def test_logout_ends_the_session_on_the_server(admin_app, admin_client):
    """A copy of the cookie taken before logging out used to stay good until its idle time ran out."""
    copied = admin_client.get_cookie(COOKIE).value
    assert _is_login_redirect(logout(admin_client))
    thief = admin_app.test_client()
    thief.set_cookie(COOKIE, copied)
    assert _is_login_redirect(thief.get("/password"))
    assert AdminSession.select().count() == 0


def test_a_session_ends_after_its_absolute_lifetime_however_active(admin_client):
    assert _logged_in(admin_client)
    (row,) = AdminSession.select()
    assert row.expires_at - row.created_at == SESSION_HOURS * 3600
    with db.atomic():
        AdminSession.update(expires_at=time.time() - 1).execute()
    assert _logged_in(admin_client) is False  # active a moment ago, within the idle minutes


def test_the_store_keeps_no_session_token(admin_client):
    token = admin_client.get_cookie(COOKIE).value
    (row,) = AdminSession.select()
    assert row.token_hash not in token and len(row.token_hash) == 64


def test_a_deleted_administrators_session_dies(admin_client):
    assert _logged_in(admin_client)
    with db.atomic():
        Administrator.delete().execute()
    Administrator.create(username="someone-else", password_hash="x")
    assert _is_login_redirect(admin_client.get("/settings/general"))
    assert not _logged_in(admin_client)


# ---------------------------------------------------------------- protected paths and CSRF


@pytest.mark.parametrize("route", protected_routes("GET"), ids=str)
def test_anonymous_users_are_sent_to_login(client, route):
    create_admin(client)
    logout(client)
    response = client.get(route.path)
    assert _is_login_redirect(response), (response.status_code, _location(response))
    assert "evil" not in _location(response)


@pytest.mark.parametrize("route", protected_routes("POST"), ids=str)
def test_anonymous_posts_are_refused(client, route):
    create_admin(client)
    logout(client)
    before = settings.generation(), Administrator.select().count()
    assert client.post(route.path, data={}).status_code == 400  # no token: refused before anything else
    response = post_form(client, route.path, {}, page="/login")
    assert _is_login_redirect(response), (response.status_code, _location(response))
    assert (settings.generation(), Administrator.select().count()) == before


@pytest.mark.parametrize("route", [r for r in routes() if r.method == "POST"], ids=str)
def test_every_post_needs_the_csrf_token(admin_client, route):
    before = settings.generation()
    hash_before = Administrator.get().password_hash
    for data, headers in (({}, {}), ({"csrf_token": "forged"}, {}), ({}, {"X-CSRF-Token": "forged"})):
        response = admin_client.post(route.path, data=data, headers=headers)
        assert response.status_code == 400, response.status_code
        assert "reload it and try again" in response.get_data(as_text=True)
    assert settings.generation() == before
    assert Administrator.get().password_hash == hash_before
    assert _logged_in(admin_client)  # not even logout works without the token


def test_the_token_of_another_session_is_refused(admin_app, admin_client):
    stranger = admin_app.test_client()
    their_token = csrf(stranger, "/login")
    response = admin_client.post("/settings/general", data={"csrf_token": their_token, "otp_length": "8"})
    assert response.status_code == 400


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize("path", ["/login", "/setup", "/settings/general", "/static/style.css"])
def test_security_headers(admin_client, path):
    with admin_client.get(path, follow_redirects=True) as response:  # a file response must be closed
        assert response.status_code == 200
        headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


# ---------------------------------------------------------------- password change


def test_password_change_needs_the_current_password(admin_client):
    old_hash = Administrator.get().password_hash
    response = post_form(admin_client, "/password",
                         {"current": "not it at all", "password": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 200
    assert "this is not your current password" in response.get_data(as_text=True)
    assert Administrator.get().password_hash == old_hash


def test_password_change(admin_app, admin_client):
    mismatch = post_form(admin_client, "/password",
                         {"current": ADMIN_PASSWORD, "password": NEW_PASSWORD, "password2": NEW_PASSWORD + "!"})
    assert "the two passwords differ" in mismatch.get_data(as_text=True)
    response = post_form(admin_client, "/password",
                         {"current": ADMIN_PASSWORD, "password": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert "Password changed." in admin_client.get("/password").get_data(as_text=True)
    other = admin_app.test_client()
    assert login(other, password=ADMIN_PASSWORD).status_code == 200
    assert login(other, password=NEW_PASSWORD).status_code == 302


# ---------------------------------------------------------------- forgot and reset


def _reset(client, code: str, password: str = NEW_PASSWORD, username: str = ADMIN_USER, **kwargs):
    return post_form(client, "/reset", {"username": username, "code": code, "password": password,
                                        "password2": password}, **kwargs)


def _sms_code(paths) -> str:
    row = SmsOutbox.select().where(SmsOutbox.kind == "reset").order_by(SmsOutbox.id.desc()).get()
    return re.search(r"code: (\d+)", unseal(keys.otp_key(paths), row.body)).group(1)


def _forgot_page(client, username: str) -> str:
    response = post_form(client, "/forgot", {"username": username})
    assert response.status_code == 302 and urlsplit(_location(response)).path == "/reset"
    html = client.get("/reset").get_data(as_text=True)
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


def test_forgot_answers_the_same_for_known_and_unknown_names(client):
    create_admin(client)
    logout(client)
    known = _forgot_page(client, ADMIN_USER)
    unknown = _forgot_page(client, "nobody")
    assert GENERIC_RESET in known
    assert known == unknown
    assert SmsOutbox.select().where(SmsOutbox.kind == "reset").count() == 1


def test_a_reset_code_by_sms_sets_the_password_once(paths, admin_app, client):
    create_admin(client, phone="0812 3456 7890")
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER})
    row = SmsOutbox.get(SmsOutbox.kind == "reset")
    assert row.receiver == "6281234567890" and row.state == "queued"
    code = _sms_code(paths)
    assert ADMIN_PASSWORD not in unseal(keys.otp_key(paths), row.body)

    wrong = _reset(client, "1" * len(code) if code != "1" * len(code) else "2" * len(code))
    assert wrong.status_code == 200 and "wrong or expired code" in wrong.get_data(as_text=True)
    assert ResetCode.get().failures == 1  # the wrong guess counts
    assert _reset(client, code).status_code == 302
    assert login(admin_app.test_client(), password=NEW_PASSWORD).status_code == 302
    again = _reset(client, code, password="yet another passphrase")
    assert "wrong or expired code" in again.get_data(as_text=True)
    assert verify_password(Administrator.get().password_hash, NEW_PASSWORD)


def test_an_expired_reset_code_is_refused(paths, client):
    create_admin(client)
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER})
    code = _sms_code(paths)
    with db.atomic():
        ResetCode.update(expires_at=time.time() - 1).execute()
    response = _reset(client, code)
    assert "wrong or expired code" in response.get_data(as_text=True)
    assert verify_password(Administrator.get().password_hash, ADMIN_PASSWORD)


def _resets() -> int:
    return SmsOutbox.select().where(SmsOutbox.kind == "reset").count()


def test_a_flood_of_forgot_requests_sends_one_code(paths, client):
    """Unauthenticated and unlimited, /forgot was an SMS cannon aimed at the administrator's phone."""
    create_admin(client)
    logout(client)
    token = csrf(client, "/forgot")
    for i in range(200):  # one address, then many
        client.post("/forgot", data={"csrf_token": token, "username": ADMIN_USER}, **_from("10.0.0.9"))
        client.post("/forgot", data={"csrf_token": token, "username": ADMIN_USER}, **_from(f"10.1.{i}.1"))
    assert _resets() == 1
    assert _reset(client, _sms_code(paths)).status_code == 302, "and the code that went out still works"


def test_a_live_code_is_kept_and_a_new_one_waits_for_the_cooldown(paths, client):
    create_admin(client)
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER}, **_from("10.0.0.1"))
    first = _sms_code(paths)
    post_form(client, "/forgot", {"username": ADMIN_USER}, **_from("10.0.0.2"))
    assert _resets() == 1 and _sms_code(paths) == first, "the live code is kept, not replaced"
    # Its message failed: the code is dead, but a new one waits out the administrator's cooldown.
    row = SmsOutbox.get(SmsOutbox.kind == "reset")
    outbox.finish(paths, SmsOutbox, row.id, "failed", error="CMS 38")
    post_form(client, "/forgot", {"username": ADMIN_USER}, **_from("10.0.0.3"))
    assert _resets() == 1
    with db.atomic():
        ResetCode.update(sent_at=ResetCode.sent_at - reset.COOLDOWN_SECONDS).execute()
    post_form(client, "/forgot", {"username": ADMIN_USER}, **_from("10.0.0.4"))
    assert _resets() == 2
    second = _sms_code(paths)
    if first != second:
        assert "wrong or expired code" in _reset(client, first).get_data(as_text=True)
    assert _reset(client, second).status_code == 302


def test_wrong_codes_count_across_codes(paths, admin_app, client):
    create_admin(client)
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER})
    wrong = "1" * reset.MIN_DIGITS

    def guess(code: str, address: str):
        return _reset(admin_app.test_client(), code, **_from(address))  # fresh clients: the address throttle aside

    for i in range(3):
        guess(wrong if _sms_code(paths) != wrong else "2" * reset.MIN_DIGITS, f"10.2.0.{i}")
    with db.atomic():  # that code expires; the next one starts with the three wrong guesses still counted
        ResetCode.update(expires_at=time.time() - 1, sent_at=ResetCode.sent_at - reset.COOLDOWN_SECONDS).execute()
    post_form(client, "/forgot", {"username": ADMIN_USER}, **_from("10.0.0.7"))
    code = _sms_code(paths)
    wrong = "1" * len(code) if code != "1" * len(code) else "2" * len(code)
    assert ResetCode.get().failures == 3
    for i in range(reset.MAX_FAILURES - 3):
        guess(wrong, f"10.3.0.{i}")
    assert "wrong or expired code" in guess(code, "10.4.0.1").get_data(as_text=True), "the fifth voided it"
    with db.atomic():
        ResetCode.update(sent_at=ResetCode.sent_at - reset.COOLDOWN_SECONDS).execute()
    post_form(client, "/forgot", {"username": ADMIN_USER}, **_from("10.0.0.8"))
    assert _resets() == 2, "no new code during the lockout"
    with db.atomic():
        ResetCode.update(failed_at=ResetCode.failed_at - reset.LOCKOUT_SECONDS).execute()
    post_form(client, "/forgot", {"username": ADMIN_USER}, **_from("10.0.0.9"))
    assert _resets() == 3 and ResetCode.get().failures == 0
    assert guess(_sms_code(paths), "10.4.0.2").status_code == 302


@pytest.mark.parametrize("otp_length", ["4", "6", "10"])
def test_reset_codes_have_at_least_8_digits_whatever_the_otp_length(paths, client, otp_length):
    settings.set_text("general.otp_length", otp_length)
    create_admin(client)
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER})
    assert len(_sms_code(paths)) == max(8, int(otp_length))


def test_an_api_user_cannot_touch_a_pending_reset_code(paths, handler, client):
    create_admin(client)
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER})
    code = _sms_code(paths)
    admin = Administrator.get()
    for reference in (f"admin-reset:{admin.id}", "admin-reset"):
        for _ in range(6):
            answer = handler.handle(build({"command": "validate-otp", "data": {
                "receiver": "081234567890", "reference": reference, "otp": code}}), source="rest:app-server")
            assert answer["response_code"] == "1202"
    assert ResetCode.get().failures == 0
    assert _reset(client, code).status_code == 302


def test_a_reset_code_by_email_when_the_administrator_has_no_phone(paths, client):
    create_admin(client, phone="", email="admin@example.com")
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER})
    assert SmsOutbox.select().count() == 0
    row = EmailOutbox.get(EmailOutbox.kind == "reset")
    assert row.receiver == "admin@example.com"
    text = unseal(keys.otp_key(paths), row.body)
    code = re.search(r"reset code is (\d+)", text).group(1)
    assert _reset(client, code).status_code == 302
    assert verify_password(Administrator.get().password_hash, NEW_PASSWORD)


def test_reset_guessing_is_throttled(admin_app, client):
    now = [1000.0]
    admin_app.extensions["otppi_throttle"] = Throttle(clock=lambda: now[0])
    create_admin(client)
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER})
    for _ in range(4):
        assert _reset(client, "000000").status_code == 200
    assert _reset(client, "000000").status_code == 429


def test_reset_refuses_a_bad_new_password_without_spending_the_code(paths, client):
    create_admin(client)
    logout(client)
    post_form(client, "/forgot", {"username": ADMIN_USER})
    code = _sms_code(paths)
    response = _reset(client, code, password="short")
    assert "at least 8 characters" in response.get_data(as_text=True)
    assert ResetCode.get().failures == 0 and ResetCode.get().mac
    assert _reset(client, code).status_code == 302


@pytest.mark.parametrize("route", protected_routes("GET"), ids=str)
def test_every_page_works_within_the_content_security_policy(admin_client, route):
    """The CSP allows only the device's own files: no inline script or style, nothing from the network."""
    response = admin_client.get(route.path)
    try:
        assert response.status_code in (200, 302, 404), response.status_code
        if response.status_code != 200 or response.mimetype != "text/html":
            return  # a redirect, an example id that does not exist, or a live stream
        html = response.get_data(as_text=True)
    finally:
        response.close()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script (blocked by the CSP)"
    assert not re.search(r"<style\b|\sstyle=", html), "inline style (blocked by the CSP)"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler (blocked by the CSP)"
    assert not re.search(r'<(?:script|link|img)\b[^>]*(?:src|href)="(?:https?:)?//', html), "a network fetch"


def test_a_password_set_elsewhere_ends_the_admins_other_sessions(admin_app, admin_client) -> None:
    from otppi.auth import hash_password
    from otppi.store.models import Administrator

    assert admin_client.get("/settings/general").status_code == 200
    Administrator.update(password_hash=hash_password("another password")).execute()
    response = admin_client.get("/settings/general")
    assert response.status_code == 302 and "/login" in response.location


def test_the_admin_web_takes_its_keys_from_systemd_credentials_when_given(paths, short_tmp):
    """On the device the admin web runs as its own user, which cannot read the secrets folder: systemd hands
    it the two keys it needs (LoadCredential=, $CREDENTIALS_DIRECTORY)."""
    from otppi.admin.app import create_app
    from otppi.paths import Paths

    credentials = short_tmp / "credentials"
    credentials.mkdir()
    for name in ("session.key", "otp.key"):
        (credentials / name).write_bytes(bytes(reversed(keys.session_key(paths) if name == "session.key"
                                                        else keys.otp_key(paths))))
    given = Paths.from_env({"OTPPI_ROOT": str(paths.root), "CREDENTIALS_DIRECTORY": str(credentials)})
    app = create_app(given)
    assert app.config["SECRET_KEY"] == (credentials / "session.key").read_bytes() != keys.session_key(paths)
    assert app.config["OTPPI_OTP_KEY"] == (credentials / "otp.key").read_bytes()
