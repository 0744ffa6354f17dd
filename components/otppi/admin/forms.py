"""Small form helpers: read a field, validate it, keep the message beside it."""

from __future__ import annotations

import re
from typing import Any

from werkzeug.datastructures import MultiDict

from ..auth import MAX_PASSWORD
from ..contract import ContractError, _email, _phone

_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class Form:
    """The submitted values and the error of each field; re-rendered as they were when invalid."""

    def __init__(self, data: MultiDict | None = None):
        self.data = data if data is not None else MultiDict()
        self.errors: dict[str, str] = {}

    def get(self, name: str, default: str = "") -> str:
        return self.data.get(name, default)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @property
    def ok(self) -> bool:
        return not self.errors


def username_field(form: Form, name: str) -> str:
    value = form.get(name).strip()
    if not _USERNAME.fullmatch(value):
        form.error(name, "1 to 64 letters, digits, '.', '_', '@' or '-'")
    return value


def password_pair(form: Form, name: str, again: str) -> str:
    value = form.get(name)
    if len(value) < 8:
        form.error(name, "at least 8 characters")
    elif len(value) > MAX_PASSWORD:
        form.error(name, f"at most {MAX_PASSWORD} characters")
    elif value != form.get(again):
        form.error(again, "the two passwords differ")
    return value


def _optional(form: Form, name: str, check: Any, message: str) -> str:
    value = form.get(name).strip()
    if not value:
        return ""
    try:
        return check(name, value)
    except ContractError:
        form.error(name, message)
        return value


def phone_field(form: Form, name: str) -> str:
    return _optional(form, name, _phone, "a phone number such as 0812 3456 789 or +62 812 3456 789")


def email_field(form: Form, name: str) -> str:
    return _optional(form, name, _email, "an email address such as admin@example.com")
