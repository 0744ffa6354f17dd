"""The admin web application: factory, login gate, CSRF, and the blueprints of every page."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flask import Flask, g, redirect, request, session, url_for

from .. import keys
from ..paths import Paths
from ..store.models import AdminSettings, Administrator
from . import auth, nav, settings_pages
from .security import Cooldown, Throttle, check_csrf, csrf_token, end_session, fingerprint, session_is_live

#: Reachable without logging in (the login gate lets them through).
PUBLIC = {"auth.login", "auth.setup", "auth.forgot", "auth.reset", "static"}

FORGOT_COOLDOWN_SECONDS = 60.0


def create_app(paths: Paths | None = None, test_config: dict | None = None) -> Flask:
    paths = paths or Paths.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=keys.session_key(paths),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="otppi_admin",
        MAX_CONTENT_LENGTH=256 * 1024,
        OTPPI_PATHS=paths,
        OTPPI_OTP_KEY=keys.otp_key(paths),
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["otppi_throttle"] = Throttle()
    # One forgotten-password request per client address a minute (reset.py limits each administrator).
    app.extensions["otppi_forgot_cooldown"] = Cooldown(FORGOT_COOLDOWN_SECONDS)
    # Set when the server stops: open event streams end instead of holding its threads.
    app.extensions["otppi_stopping"] = threading.Event()
    menu, blueprints = nav.build()
    app.jinja_env.globals.update(csrf_token=csrf_token, nav=menu)

    @app.before_request
    def gate():
        if request.endpoint == "static":
            return None
        check_csrf()
        if not Administrator.select().exists():
            return None if request.endpoint == "auth.setup" else redirect(url_for("auth.setup"))
        if request.endpoint == "auth.setup":
            return redirect(url_for("auth.login"))  # the first-run page is gone for good
        user = session.get("admin")
        minutes = AdminSettings.load().session_minutes
        if user and time.time() - session.get("seen", 0) > minutes * 60:
            end_session()
            user = None
        if user:
            row = Administrator.get_or_none(Administrator.username == user)
            if row is None or session.get("pw") != fingerprint(row.password_hash) or not session_is_live(row):
                end_session()
                user = None
        if user:
            session["seen"] = time.time()
            g.admin = user
            return None
        if request.endpoint in PUBLIC:
            return None
        return redirect(url_for("auth.login", next=request.path))

    @app.after_request
    def headers(response):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                    "script-src 'self'; frame-ancestors 'none'")
        return response

    app.register_blueprint(auth.bp)
    app.register_blueprint(settings_pages.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)

    @app.route("/")
    def index():
        return redirect(url_for(nav.HOME))

    return app


def template_dir() -> Path:
    return Path(__file__).parent / "templates"
