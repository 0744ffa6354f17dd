"""First-run setup, login, logout, password change and password reset by a one-time code."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from peewee import IntegrityError

from ..auth import check_password, hash_password, verify_password
from ..store.db import db
from ..store.models import Administrator
from .. import setup_code
from . import reset
from .forms import Form, email_field, password_pair, phone_field, username_field
from .security import client_key, end_other_sessions, end_session, fingerprint, start_session

bp = Blueprint("auth", __name__)

_SAFE_PATH = re.compile(r"/(?![/\\])[\x21-\x7e]*")

SETUP_CODE_HELP = "wrong setup code: the device prints it at first boot; on the device, 'otppi setup-code' shows it"

GENERIC_RESET = ("If that administrator exists and has a phone number or email address, a code is on its way. "
                 "A code stays valid for 15 minutes; asking again meanwhile sends nothing.")


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Create the first administrator; the page exists only while there is none, and asks for the setup
    code the device printed at first boot (throttled like logins, good once)."""
    form = Form(request.form)
    status = 200
    if request.method == "POST":
        username = username_field(form, "username")
        password = password_pair(form, "password", "password2")
        phone = phone_field(form, "phone")
        email = email_field(form, "email")
        throttle = current_app.extensions["otppi_throttle"]
        keys = (client_key(), "setup:code")
        wait = throttle.attempt(*keys) if form.ok else 0.0  # a mistake in another field spends no attempt
        if wait > 0:
            form.error("setup_code", f"too many wrong setup codes: try again in {wait:.0f} s")
            status = 429
        elif form.ok and not setup_code.matches(current_app.config["SECRET_KEY"], form.get("setup_code")):
            form.error("setup_code", SETUP_CODE_HELP)
        if form.ok:
            throttle.succeeded(*keys)
            try:
                with db.atomic():
                    if Administrator.select().exists() or not setup_code.consume():  # someone was quicker
                        return redirect(url_for("auth.login"))
                    admin = Administrator.create(username=username, password_hash=hash_password(password),
                                                 phone=phone, email=email)
            except IntegrityError:
                form.error("username", "that name is taken")
            else:
                setup_code.discard(current_app.config["OTPPI_PATHS"])
                start_session(admin)
                flash(f"Administrator {username} created. Welcome to OTP-Pi.")
                return redirect(url_for("index"))
    return render_template("setup.html", form=form), status


def local_path(target: str) -> str:
    """*target* when it is a path on this device (no scheme or host, no control characters, spaces or
    backslashes, which browsers may read as a host), else "/"."""
    if not _SAFE_PATH.fullmatch(target) or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = Form(request.form)
    throttle = current_app.extensions["otppi_throttle"]
    wait = 0.0
    if request.method == "POST":
        username = request.form.get("username", "")[:64]
        keys = (client_key(), f"user:{username.lower()}")
        wait = throttle.attempt(*keys)  # counted before the check: parallel guesses see each other
        if wait > 0:
            form.error("password", f"too many failed attempts: try again in {wait:.0f} s")
        else:
            admin = Administrator.get_or_none(Administrator.username == username)
            # An unknown name costs a decoy verification: as slow as a wrong password for a real one.
            if check_password(admin.password_hash if admin else None, request.form.get("password", "")):
                throttle.succeeded(*keys)
                start_session(admin)
                with db.atomic():
                    Administrator.update(last_login_at=time.time()).where(
                        Administrator.id == admin.id).execute()
                return redirect(local_path(request.args.get("next", "")))
            form.error("password", "wrong username or password")
    return render_template("login.html", form=form), (429 if wait > 0 else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    end_session()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def password():
    form = Form(request.form)
    if request.method == "POST":
        admin = Administrator.get(Administrator.username == g.admin)
        if not verify_password(admin.password_hash, request.form.get("current", "")):
            form.error("current", "this is not your current password")
        new = password_pair(form, "password", "password2")
        if form.ok:
            new_hash = hash_password(new)
            with db.atomic():
                Administrator.update(password_hash=new_hash).where(Administrator.id == admin.id).execute()
            session["pw"] = fingerprint(new_hash)  # this session stays; every other one of this admin ends
            end_other_sessions(admin)
            flash("Password changed.")
            return redirect(url_for("auth.password"))
    return render_template("password.html", form=form)


@bp.route("/forgot", methods=["GET", "POST"])
def forgot():
    form = Form(request.form)
    if request.method == "POST":
        # The same answer whether the name exists, a code went out, or a cooldown held it back.
        if current_app.extensions["otppi_forgot_cooldown"].allow(client_key()):
            admin = Administrator.get_or_none(Administrator.username == request.form.get("username", "")[:64])
            if admin is not None:
                reset.send_code(current_app.config["OTPPI_PATHS"], current_app.config["OTPPI_OTP_KEY"], admin)
        flash(GENERIC_RESET)
        return redirect(url_for("auth.reset"))
    return render_template("forgot.html", form=form)


@bp.route("/reset", endpoint="reset", methods=["GET", "POST"])
def reset_password():
    form = Form(request.form)
    if request.method == "POST":
        throttle = current_app.extensions["otppi_throttle"]
        username = request.form.get("username", "")[:64]
        password = password_pair(form, "password", "password2")
        if form.ok and throttle.attempt(client_key()) > 0:  # a bad new password spends no attempt
            form.error("code", "too many failed attempts: wait a little")
            return render_template("reset.html", form=form), 429
        if form.ok:
            admin = Administrator.get_or_none(Administrator.username == username)
            if admin is None or not reset.check_code(current_app.config["OTPPI_OTP_KEY"], admin,
                                                     request.form.get("code", "")):
                form.error("code", "wrong or expired code")
            else:
                throttle.succeeded(client_key())
                with db.atomic():
                    Administrator.update(password_hash=hash_password(password)).where(
                        Administrator.id == admin.id).execute()
                end_other_sessions(admin)
                flash("Password changed: log in with the new one.")
                return redirect(url_for("auth.login"))
    return render_template("reset.html", form=form)

