"""Editing email accounts field by field, validated (the CLI and the admin web share this).

An account is named by its id or its sender address. Every change bumps the
settings generation, so the mailer takes it on its next loop turn.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from peewee import DoesNotExist

from .db import db
from .models import EmailAccount
from .sealed import clear_moved
from .settings import SettingError, bump_generation, check, convert

#: Kept by the mailer, or set through their own command (the password: never on a command line).
INTERNAL = frozenset({"id", "created_at", "sent_today", "quota_day", "sender_password"})

# The same plain address the mailer's messages need (otppi.mailer.compose).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|\[?[0-9A-Fa-f:.]+\]?")


def _sender(value: str) -> None:
    if len(value) > 254 or not _ADDRESS.fullmatch(value):
        raise SettingError("must be a plain email address such as otp@example.com")


def _host(value: str) -> None:
    if len(value) > 253 or not _HOST.fullmatch(value):
        raise SettingError("must be a host name or an IP address")


def _port(value: int) -> None:
    if not 1 <= value <= 65535:
        raise SettingError("must be a port number from 1 to 65535")


def _quota(value: int) -> None:
    if not 0 <= value <= 1_000_000:
        raise SettingError("must be from 0 (no quota) to 1000000")


def _ca_file(value: str) -> None:
    if value and not value.startswith("/"):
        raise SettingError("must be empty or an absolute path")


def _password(value: str) -> None:
    if len(value) > 512:
        raise SettingError("must be at most 512 characters")


VALIDATORS: dict[str, Callable[[Any], None]] = {
    "sender_account": _sender,
    "smtp_host": _host,
    "smtp_port": _port,
    "daily_quota": _quota,
    "ca_file": _ca_file,
    "sender_password": _password,
}


def parse_field(name: str, text: str) -> Any:
    field = EmailAccount._meta.fields.get(name)
    if field is None or name in INTERNAL:
        editable = sorted(set(EmailAccount._meta.fields) - INTERNAL)
        raise SettingError(f"{name!r} is not an editable email account field (one of: {', '.join(editable)})")
    return check(VALIDATORS, name, convert(field, name, text.strip()))


def password(text: str) -> str:
    return check(VALIDATORS, "sender_password", convert(EmailAccount.sender_password, "the password", text))


def find(ident: str) -> EmailAccount:
    """The account whose id or sender address is *ident*."""
    try:
        if ident.isdigit():
            return EmailAccount.get_by_id(int(ident))
        return EmailAccount.get(EmailAccount.sender_account == ident.strip().lower())
    except DoesNotExist:
        raise SettingError(f"no email account {ident[:60]!r}") from None


def add(sender: str, host: str, **fields: Any) -> EmailAccount:
    """A new account; *fields* are already parsed values of other columns."""
    sender = parse_field("sender_account", sender).lower()
    host = parse_field("smtp_host", host)
    for name, value in fields.items():
        if isinstance(value, str):
            fields[name] = value = convert(EmailAccount._meta.fields[name], name, value)
        check(VALIDATORS, name, value)
    with db.atomic():
        if EmailAccount.select().where(EmailAccount.sender_account == sender).exists():
            raise SettingError(f"email account {sender!r} already exists")
        row = EmailAccount.create(sender_account=sender, smtp_host=host, **fields)
        bump_generation()
    return row


def update(ident: str, values: dict[str, Any]) -> list[str]:
    """Save parsed *values* of one account as one change; the secrets it cleared.

    Another server (host, port, SSL, STARTTLS, plain login) clears the
    password unless *values* gives it again: it is never sent to a server it
    was not entered for (``sealed.clear_moved``).
    """
    values = dict(values)
    if "sender_account" in values:
        values["sender_account"] = values["sender_account"].lower()
    with db.atomic():
        row = find(ident)
        sender = values.get("sender_account")
        if sender is not None and EmailAccount.select().where(
                (EmailAccount.sender_account == sender) & (EmailAccount.id != row.id)).exists():
            raise SettingError(f"email account {sender!r} already exists")
        cleared = clear_moved(EmailAccount, EmailAccount.id == row.id, values)
        if values:
            EmailAccount.update(**values).where(EmailAccount.id == row.id).execute()
        bump_generation()
    return cleared


def set_field(ident: str, name: str, text: str) -> Any:
    value = parse_field(name, text)
    if name == "sender_account":
        value = value.lower()
    update(ident, {name: value})
    return value


def set_password(ident: str, text: str) -> EmailAccount:
    value = password(text)
    with db.atomic():
        row = find(ident)
        EmailAccount.update(sender_password=value).where(EmailAccount.id == row.id).execute()
        bump_generation()
    return row


def remove(ident: str) -> EmailAccount:
    with db.atomic():
        row = find(ident)
        row.delete_instance()
        bump_generation()
    return row
