"""Administrators and API users: list, add, edit contact details, set a new password, delete.

An API user may also be allowed request-ussd (off for a new one): USSD codes can move credit.

Both are accounts with an argon2id password hash (never shown, never stored in
clear). An administrator cannot delete the last administrator (the device would
fall back to first-run setup, open to anyone on its network) nor themselves while
logged in; their own password is changed on the password page, which asks for
the current one.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from peewee import IntegrityError

from ...auth import hash_password
from ...store.db import db
from ...store.models import Administrator, ApiUser, BaseModel
from ...store.settings import bump_generation
from ..forms import Form, email_field, password_pair, phone_field, username_field
from .common import when

admins = Blueprint("admins", __name__, url_prefix="/admins")
api_users = Blueprint("api_users", __name__, url_prefix="/api-users")

LAST_ADMIN = ("The last administrator cannot be deleted: without one, anyone who joins the device's network "
              "could create a new administrator.")
YOURSELF = "You cannot delete yourself while logged in: log in as another administrator to do that."
OWN_PASSWORD = "Change your own password on the Change password page: it asks for your current one."


@dataclass(frozen=True)
class Kind:
    model: type[BaseModel]
    endpoint: str
    title: str
    one: str
    has_active: bool


ADMINS = Kind(Administrator, "lists.admins", "Administrators", "administrator", False)
API_USERS = Kind(ApiUser, "lists.api_users", "API users", "API user", True)


def _index(kind: Kind):
    form = Form(request.form)
    if request.method == "POST":
        username = username_field(form, "username")
        password = password_pair(form, "password", "password2")
        phone = phone_field(form, "phone")
        email = email_field(form, "email")
        if form.ok:
            extra = {}
            if kind.has_active:
                extra = {"active": "active" in form.data, "allow_ussd": "allow_ussd" in form.data}
            try:
                with db.atomic():
                    kind.model.create(username=username, password_hash=hash_password(password), phone=phone,
                                      email=email, **extra)
                    bump_generation()
            except IntegrityError:
                form.error("username", "that name is taken")
            else:
                flash(f"{kind.one.capitalize()} {username} added.")
                return redirect(url_for(f"{kind.endpoint}.index"))
    rows = list(kind.model.select().order_by(kind.model.username))
    return render_template("lists/accounts.html", kind=kind, rows=rows, form=form, when=when,
                           me=g.admin), (200 if form.ok else 400)


def _row(kind: Kind, ident: int) -> BaseModel:
    row = kind.model.get_or_none(kind.model.id == ident)
    if row is None:
        abort(404)
    return row


def _edit_page(kind: Kind, row: BaseModel, contact: Form | None = None, password: Form | None = None,
               problem: str = "", status: int = 200):
    return render_template("lists/account_edit.html", kind=kind, row=row, contact=contact or Form(),
                           password=password or Form(), problem=problem, when=when,
                           own=kind is ADMINS and row.username == g.admin), status


def _edit(kind: Kind, ident: int):
    row = _row(kind, ident)
    if request.method == "GET":
        return _edit_page(kind, row)
    form = Form(request.form)
    phone = phone_field(form, "phone")
    email = email_field(form, "email")
    if not form.ok:
        return _edit_page(kind, row, contact=form, status=400)
    values = {"phone": phone, "email": email}
    if kind.has_active:
        values["active"] = "active" in form.data
        values["allow_ussd"] = "allow_ussd" in form.data
    with db.atomic():
        kind.model.update(**values).where(kind.model.id == row.id).execute()
        bump_generation()
    flash(f"{kind.one.capitalize()} {row.username} saved.")
    return redirect(url_for(f"{kind.endpoint}.edit", ident=row.id))


def _password(kind: Kind, ident: int):
    row = _row(kind, ident)
    form = Form(request.form)
    if kind is ADMINS and row.username == g.admin:
        return _edit_page(kind, row, password=form, problem=OWN_PASSWORD, status=409)
    new = password_pair(form, "password", "password2")
    if not form.ok:
        return _edit_page(kind, row, password=form, status=400)
    with db.atomic():
        kind.model.update(password_hash=hash_password(new)).where(kind.model.id == row.id).execute()
        bump_generation()
    flash(f"New password set for {kind.one} {row.username}.")
    return redirect(url_for(f"{kind.endpoint}.edit", ident=row.id))


def _delete(kind: Kind, ident: int):
    row = _row(kind, ident)
    problem = ""
    with db.atomic():
        # Checked inside the write transaction: two administrators deleting each other queue here.
        if kind is ADMINS and Administrator.select().count() <= 1:
            problem = LAST_ADMIN
        elif kind is ADMINS and row.username == g.admin:
            problem = YOURSELF
        else:
            kind.model.delete().where(kind.model.id == row.id).execute()
            bump_generation()
    if problem:
        return _edit_page(kind, row, problem=problem, status=409)
    flash(f"{kind.one.capitalize()} {row.username} deleted.")
    return redirect(url_for(f"{kind.endpoint}.index"))


def _routes(bp: Blueprint, kind: Kind) -> None:
    bp.add_url_rule("", "index", lambda: _index(kind), methods=["GET", "POST"])
    bp.add_url_rule("/<int:ident>", "edit", lambda ident: _edit(kind, ident), methods=["GET", "POST"])
    bp.add_url_rule("/<int:ident>/password", "password", lambda ident: _password(kind, ident), methods=["POST"])
    bp.add_url_rule("/<int:ident>/delete", "delete", lambda ident: _delete(kind, ident), methods=["POST"])


_routes(admins, ADMINS)
_routes(api_users, API_USERS)
