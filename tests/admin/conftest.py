"""Fixtures for the admin web: the app on a migrated root, anonymous and logged-in test clients.

``csrf`` and ``post_form`` submit forms the way a browser does: the token is
read from the page the form is on, not from the session behind its back.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from otppi.admin.app import create_app
from otppi.paths import Paths

ADMIN_USER = "admin"
ADMIN_PASSWORD = "correct horse battery"
ADMIN_PHONE = "081234567890"

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client: FlaskClient, path: str) -> str:
    """GET *path* (following redirects, as a browser would) and return the CSRF token of its form."""
    response = client.get(path, follow_redirects=True)
    found = _TOKEN.search(response.get_data(as_text=True))
    assert found, f"no CSRF token on {path} (status {response.status_code})"
    return found.group(1)


def post_form(client: FlaskClient, path: str, data: dict | None = None, *, page: str | None = None, **kwargs):
    """POST *data* to *path* with the token of the form on *page* (default: *path* itself)."""
    form = dict(data or {})
    form["csrf_token"] = csrf(client, page or path)
    return client.post(path, data=form, **kwargs)


def create_admin(client: FlaskClient, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD,
                 phone: str = ADMIN_PHONE, email: str = ""):
    """The first-run form, filled in; returns the response (a redirect home when it worked)."""
    return post_form(client, "/setup", {"username": username, "password": password, "password2": password,
                                        "phone": phone, "email": email})


def login(client: FlaskClient, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD, next: str = ""):
    path = "/login" + (f"?next={next}" if next else "")
    return post_form(client, path, {"username": username, "password": password}, page="/login")


def logout(client: FlaskClient):
    return post_form(client, "/logout", page="/password")


@pytest.fixture
def admin_app(paths: Paths) -> Flask:
    app = create_app(paths, {"TESTING": True})
    yield app


@pytest.fixture
def client(admin_app: Flask) -> FlaskClient:
    """Nobody logged in."""
    return admin_app.test_client()


@pytest.fixture
def admin_client(admin_app: Flask) -> FlaskClient:
    """The first administrator, created on /setup, logged out, then logged in on /login."""
    c = admin_app.test_client()
    created = create_admin(c)
    assert created.status_code == 302, created.get_data(as_text=True)
    assert logout(c).status_code == 302
    response = login(c)
    assert response.status_code == 302, response.get_data(as_text=True)
    return c
