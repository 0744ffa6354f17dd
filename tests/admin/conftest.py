"""Fixtures for the admin web: the app on a migrated root, anonymous and logged-in test clients.

``csrf`` and ``post_form`` submit forms the way a browser does: the token is
read from the page the form is on, not from the session behind its back.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from werkzeug.routing import FloatConverter, IntegerConverter, PathConverter, UUIDConverter

from otppi import keys, setup_code
from otppi.admin.app import PUBLIC, create_app
from otppi.paths import Paths
from otppi.store import settings

from ..helpers import short_root

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


def setup_code_of(client: FlaskClient) -> str:
    """The setup code as the operator reads it (the console, the boot partition): the secrets folder's file."""
    path = keys.setup_code_file(client.application.config["OTPPI_PATHS"])
    return path.read_text().strip() if path.exists() else ""


def create_admin(client: FlaskClient, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD,
                 phone: str = ADMIN_PHONE, email: str = "", code: str | None = None, **kwargs):
    """The first-run form, filled in with the device's setup code (unless *code* is given); returns the
    response (a redirect home when it worked)."""
    return post_form(client, "/setup", {"username": username, "password": password, "password2": password,
                                        "phone": phone, "email": email,
                                        "setup_code": setup_code_of(client) if code is None else code}, **kwargs)


def login(client: FlaskClient, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD, next: str = "",
          **kwargs):
    path = "/login" + (f"?next={next}" if next else "")
    return post_form(client, path, {"username": username, "password": password}, page="/login", **kwargs)


def logout(client: FlaskClient):
    return post_form(client, "/logout", page="/password")


def _never_run(argv: list[str]) -> tuple[int, str]:
    raise AssertionError(f"a test reached a system command: {argv}")


@pytest.fixture
def admin_app(paths: Paths) -> Flask:
    # Restart and reboot run through OTPPI_RUN: a test that wants them records them with its own.
    app = create_app(paths, {"TESTING": True, "OTPPI_RUN": _never_run})
    setup_code.ensure(paths)  # as `otppi migrate` does while there is no administrator
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


# ---------------------------------------------------------------- the app's routes, for parametrizing


@dataclass(frozen=True)
class Route:
    """One concrete URL of the app, for one method."""

    endpoint: str
    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


#: Sample values for URL variables the menu does not name: a plausible id or name.
_SAMPLES = {"int": "1", "float": "1.0", "default": "x", "path": "x", "string": "x", "uuid": "0" * 32}


def _expand(app: Flask, rule) -> list[str]:
    """Concrete paths of *rule*: those the menu links to (every settings section, restart and reboot …),
    and one with sample values for the rest."""
    if not rule.arguments:
        return [rule.rule]
    with app.test_request_context():
        paths = {url_for(endpoint, **args) for _, items in app.jinja_env.globals["nav"]
                 for _, endpoint, args in items if endpoint == rule.endpoint and args}
        if rule.endpoint == "settings.page":
            paths.update(url_for(rule.endpoint, section=section) for section in settings.PAGES)
        values = {}
        for name in rule.arguments:
            converter = rule._converters[name]
            kind = {IntegerConverter: "int", FloatConverter: "float", PathConverter: "path",
                    UUIDConverter: "uuid"}.get(type(converter), "default")
            values[name] = _SAMPLES[kind]
        paths.add(url_for(rule.endpoint, **values))
    return sorted(paths)


@lru_cache(maxsize=None)
def routes() -> tuple[Route, ...]:
    """Every GET and POST route of a freshly built app, whatever blueprints it has today.

    Built on a throwaway root so it can run at collection time; pages that
    land later are enumerated without changing the tests.
    """
    root = short_root("adm")
    try:
        app = create_app(Paths(root))
        out = []
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            for method in ("GET", "POST"):
                if method in rule.methods:
                    out.extend(Route(rule.endpoint, method, path) for path in _expand(app, rule))
        return tuple(sorted(set(out), key=str))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def protected_routes(method: str) -> list[Route]:
    return [r for r in routes() if r.method == method and r.endpoint not in PUBLIC]


# ---------------------------------------------------------------- reading forms as a browser does


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("input", "select", "textarea"):
            self.fields.append({"tag": tag, **dict(attrs)})


def form_inputs(html: str) -> list[dict[str, str | None]]:
    """The attributes of every input, select and textarea on the page."""
    reader = _FormReader()
    reader.feed(html)
    return reader.fields


def form_values(html: str) -> dict[str, str]:
    """What a browser submits for the page's form untouched: values, checked boxes, empty passwords."""
    out = {}
    for f in form_inputs(html):
        name, kind = f.get("name"), f.get("type", "text")
        if not name or name == "csrf_token":
            continue
        if kind == "checkbox":
            if "checked" in f:
                out[name] = "on"
        elif kind == "password":
            out[name] = ""
        else:
            out[name] = f.get("value") or ""
    return out
