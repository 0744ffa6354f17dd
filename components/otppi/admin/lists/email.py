"""Email accounts: the pool of SMTP senders the mailer spreads messages over. List, add, edit, remove.

Values go through ``otppi.store.email_accounts`` (``add``, ``set_field``,
``update``, ``remove``), as ``otppi email-account`` does; each change bumps
the settings generation and the mailer takes it on its next turn. The sender
password is write-only; a change of server (host, port, SSL, STARTTLS,
plain login) without it clears it, and the page says to enter it again.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ...store import email_accounts
from ...store.models import EmailAccount
from ...store.sealed import cleared_note
from ...store.settings import SettingError
from ..forms import Form
from .common import Spec, inputs, parse_all, submitted_texts

bp = Blueprint("email", __name__, url_prefix="/email-accounts")

FIELDS = (
    Spec("sender_account", "Sender account (email address)"),
    Spec("smtp_host", "SMTP host", help="e.g. smtp.gmail.com"),
    Spec("smtp_port", "SMTP port", "number", help="587 with STARTTLS, 465 with SSL"),
    Spec("ssl", "SSL (TLS from the start, port 465)", "checkbox"),
    Spec("starttls", "Start TLS before send", "checkbox"),
    Spec("authentication", "Authentication", "checkbox"),
    Spec("sender_password", "Sender password", "password"),
    Spec("allow_plain_login", "Allow the password without TLS", "checkbox",
         help="only for a server that offers neither SSL nor STARTTLS: the password then crosses the network "
              "in clear"),
    Spec("daily_quota", "Daily quota (0: none)", "number", help="messages a day the server allows this account"),
    Spec("ca_file", "CA file (empty: the system's CAs)"),
    Spec("active", "Active", "checkbox"),
)

NEEDS_PASSWORD = "needed when authentication is on"


def _parse(name: str, text: str) -> Any:
    if name == "sender_password":
        return email_accounts.password(text)
    return email_accounts.parse_field(name, text)


def security(row: EmailAccount) -> str:
    """As the mailer connects: SSL wins over STARTTLS."""
    if row.ssl or row.starttls:
        return "SSL" if row.ssl else "STARTTLS"
    if row.authentication and not row.allow_plain_login:
        return "none: the mailer will not send the password (allow it without TLS, or turn on SSL or STARTTLS)"
    return "none"


def _duplicate(form: Form, exc: SettingError) -> bool:
    if "already exists" in str(exc):
        form.error("sender_account", str(exc))
        return True
    return False


@bp.route("", methods=["GET", "POST"])
def index():
    form = Form(request.form)
    if request.method == "POST":
        texts = submitted_texts(form, FIELDS)
        values = parse_all(form, texts, _parse)
        if form.ok and values["authentication"] and not values.get("sender_password"):
            form.error("sender_password", NEEDS_PASSWORD)
        if form.ok:
            sender, host = values.pop("sender_account"), values.pop("smtp_host")
            try:
                row = email_accounts.add(sender, host, **values)
            except SettingError as exc:
                if not _duplicate(form, exc):
                    raise
            else:
                flash(f"Email account {row.sender_account} added.")
                return redirect(url_for("lists.email.index"))
    rows = list(EmailAccount.select().order_by(EmailAccount.id))
    return render_template("lists/email.html", rows=rows, fields=inputs(FIELDS, EmailAccount(), form),
                           security=security), (200 if form.ok else 400)


def _account(ident: int) -> EmailAccount:
    row = EmailAccount.get_or_none(EmailAccount.id == ident)
    if row is None:
        abort(404)
    return row


def _edit_page(row: EmailAccount, form: Form, problem: str = "", status: int = 200):
    return render_template("lists/record_edit.html", title=f"Email account {row.sender_account}",
                           fields=inputs(FIELDS, row, form), problem=problem,
                           back=url_for("lists.email.index"), back_label="Email accounts",
                           action=url_for("lists.email.edit", ident=row.id),
                           delete=url_for("lists.email.delete", ident=row.id),
                           facts=[("Security", security(row)), ("Sent today", row.sent_today)]), status


@bp.route("/<int:ident>", methods=["GET", "POST"])
def edit(ident: int):
    row = _account(ident)
    form = Form(request.form)
    if request.method == "GET":
        return _edit_page(row, form)
    texts = submitted_texts(form, FIELDS)
    values = parse_all(form, texts, _parse)
    given = "sender_password" in values  # typed anew, or cleared with its box
    if form.ok and values["authentication"] and not (values["sender_password"] if given else row.sender_password):
        form.error("sender_password", NEEDS_PASSWORD)
    if not form.ok:
        return _edit_page(row, form, status=400)
    changes = {name: value for name, value in values.items() if given and name == "sender_password"
               or value != getattr(row, name)}
    try:
        cleared = email_accounts.update(str(row.id), changes) if changes else []
    except SettingError as exc:
        if not _duplicate(form, exc):
            return _edit_page(row, form, problem=str(exc), status=409)  # removed meanwhile
        return _edit_page(row, form, status=400)
    flash(f"Email account {row.sender_account} saved." if changes else "Nothing changed.")
    if cleared:
        flash(cleared_note(["The sender password"]) + " (it is never sent to a server it was not entered for).",
              "error")
    return redirect(url_for("lists.email.edit", ident=row.id))


@bp.route("/<int:ident>/delete", methods=["POST"])
def delete(ident: int):
    row = _account(ident)
    try:
        email_accounts.remove(str(row.id))
    except SettingError:
        abort(404)
    flash(f"Email account {row.sender_account} removed.")
    return redirect(url_for("lists.email.index"))
