"""Helpers for the list pages' tests: one row in every list, a snapshot of them all, and forms read as a
browser submits them (the selected option of a select, ticked boxes, empty password inputs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser

from otppi.auth import hash_password
from otppi.store import settings
from otppi.store.db import db
from otppi.store.models import (
    LIST_MODELS,
    Administrator,
    ApiUser,
    BlockedNumber,
    DdnsRecord,
    EmailAccount,
    FirewallPort,
    Modem,
    ModemStatus,
)

from .conftest import csrf

API_PASSWORD = "Api-user-passw0rd"
SIM_PIN = "864213"
APN_PASSWORD = "Apn-S3cret-pw"
SMTP_PASSWORD = "Smtp-S3cret-pw"


@dataclass(frozen=True)
class Seeded:
    other_admin: int
    api_user: int
    modem: str
    blocked: int
    email: int
    ddns: int
    firewall: int


def seed() -> Seeded:
    """One row in every list, with a secret in every write-only field (the first administrator exists)."""
    with db.atomic():
        other = Administrator.create(username="other", password_hash=hash_password("other's password"),
                                     phone="0811111111", email="other@example.com")
        user = ApiUser.create(username="app-server", password_hash=hash_password(API_PASSWORD),
                              email="app@example.com", phone="0822222222")
        Modem.create(name="m1", port="/dev/ttyUSB0", prefixes="62812", sim_pin=SIM_PIN, apn="internet",
                     apn_password=APN_PASSWORD, manufacturer="SIMCOM", model="SIM800L", imei="356938035643809",
                     msisdn="6281200000001")
        ModemStatus.create(name="m1", state="ready", connected=True, signal_dbm=-71, operator="TELKOMSEL",
                           last_error="+CMS ERROR: 500")
        blocked = BlockedNumber.create(msisdn="6281299999999", source="cli")
        email = EmailAccount.create(smtp_host="smtp.example.com", sender_account="otp@example.com",
                                    sender_password=SMTP_PASSWORD, sent_today=7, daily_quota=500)
        ddns = DdnsRecord.create(provider="cloudflare", zone="example.com", record_name="otp")
        port = FirewallPort.create(port=8080, protocol="tcp", comment="REST API")
    return Seeded(other.id, user.id, "m1", blocked.id, email.id, ddns.id, port.id)


def snapshot() -> tuple[int, dict[str, list[dict]]]:
    """The settings generation and every row of every list."""
    tables = {m.__name__: list(m.select().order_by(m.id).dicts()) for m in LIST_MODELS + (ModemStatus,)}
    return settings.generation(), tables


def field_block(html: str, name: str) -> str:
    """The markup of one field's box: its label, input and message."""
    for block in re.split(r'(?=<div class="field)', html):
        if re.search(rf'name="{re.escape(name)}"', block):
            return unescape(block)
    raise AssertionError(f"no field {name}")


def error_beside(html: str, name: str) -> str:
    """The message shown in the box of field *name* ("" when none)."""
    found = re.search(r'<p class="error"[^>]*>([^<]*)</p>', field_block(html, name))
    return found.group(1) if found else ""


class _Forms(HTMLParser):
    """The fields of each form by action, as a browser would submit it untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._ids: dict[str, str] = {}
        self._action: str | None = None
        self._select: tuple[str, dict[str, str]] | None = None
        self._first: str | None = None

    def _target(self, attrs: dict) -> dict[str, str] | None:
        owner = self._ids.get(attrs["form"]) if attrs.get("form") else self._action
        return self.forms.get(owner) if owner is not None else None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._action = a.get("action", "")
            self.forms.setdefault(self._action, {})
            if a.get("id"):
                self._ids[a["id"]] = self._action
        elif tag == "input" and a.get("name") and a.get("name") != "csrf_token":
            target = self._target(a)
            if target is None:
                return
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    target[a["name"]] = "on"
            elif kind == "password":
                target[a["name"]] = ""
            elif "readonly" not in a:
                target[a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            target = self._target(a)
            self._select = (a["name"], target) if target is not None else None
            self._first = None
        elif tag == "option" and self._select is not None:
            name, target = self._select
            if self._first is None:
                self._first = a.get("value", "")
                target.setdefault(name, self._first)
            if "selected" in a:
                target[name] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._action = None
        elif tag == "select":
            self._select = None


def form_of(html: str, action: str) -> dict[str, str]:
    reader = _Forms()
    reader.feed(html)
    assert action in reader.forms, f"no form posting to {action}: {sorted(reader.forms)}"
    return dict(reader.forms[action])


def submit(client, page: str, action: str | None = None, **changes: str | bool | None):
    """Submit the form of *page* that posts to *action* as a browser would, with *changes* typed in.

    True ticks a box, False or None leaves a field out (an unticked box).
    """
    action = action or page
    data = form_of(client.get(page).get_data(as_text=True), action)
    for name, value in changes.items():
        if value is True:
            data[name] = "on"
        elif value is False or value is None:
            data.pop(name, None)
        else:
            data[name] = value
    data["csrf_token"] = csrf(client, page)
    return client.post(action, data=data)
