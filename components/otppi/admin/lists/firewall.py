"""Firewall: the list of ports to open or close (port, protocol, open or closed, comment).

This page keeps the list in the store. Turning it into operating-system rules is
the netconfig component's job, and that component is not built yet: until it is,
nothing here opens or closes a port, and the page says so.
"""

from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from peewee import IntegrityError

from ...store import settings
from ...store.db import db
from ...store.models import AdminSettings, ApiSettings, FirewallPort
from ...store.settings import SettingError, bump_generation
from ..forms import Form
from .common import Spec, inputs, parse_all, submitted_texts

bp = Blueprint("firewall", __name__, url_prefix="/firewall")

FIELDS = (
    Spec("port", "Port", "number", help="1 to 65535"),
    Spec("protocol", "Protocol", "select", (("tcp", "TCP"), ("udp", "UDP"))),
    Spec("is_open", "Open (untick to close the port)", "checkbox"),
    Spec("comment", "Comment", help="what the port is for"),
)


def _port(value: int) -> None:
    if not 1 <= value <= 65535:
        raise SettingError("must be a port number from 1 to 65535")


def _protocol(value: str) -> None:
    if value not in ("tcp", "udp"):
        raise SettingError("must be tcp or udp")


def _comment(value: str) -> None:
    if len(value) > 100:
        raise SettingError("must be at most 100 characters")


VALIDATORS: dict[str, Callable[[Any], None]] = {"port": _port, "protocol": _protocol, "comment": _comment}


def parse_field(name: str, text: str) -> Any:
    text = text.strip()
    if name == "protocol":
        text = text.lower()
    return settings.check(VALIDATORS, name, settings.convert(FirewallPort._meta.fields[name], name, text))


def own_ports() -> list[tuple[str, str]]:
    """The device's own listeners: closing one of them cuts off what it serves."""
    admin, api = AdminSettings.load(), ApiSettings.load()
    ports = [(f"{admin.port}/tcp", "this admin web")]
    if api.http_enabled:
        ports.append((f"{api.http_port}/tcp", "REST API (HTTP)"))
    if api.https_enabled:
        ports.append((f"{api.https_port}/tcp", "REST API (HTTPS)"))
    return ports


@bp.route("", methods=["GET", "POST"])
def index():
    form = Form(request.form)
    if request.method == "POST":
        values = parse_all(form, submitted_texts(form, FIELDS), parse_field)
        if form.ok:
            try:
                with db.atomic():
                    FirewallPort.create(**values)
                    bump_generation()
            except IntegrityError:
                form.error("port", f"{values['port']}/{values['protocol']} is already in the list")
            else:
                flash(f"Port {values['port']}/{values['protocol']} added "
                      f"({'open' if values['is_open'] else 'closed'}).")
                return redirect(url_for("lists.firewall.index"))
    rows = list(FirewallPort.select().order_by(FirewallPort.port, FirewallPort.protocol))
    return render_template("lists/firewall.html", rows=rows, fields=inputs(FIELDS, FirewallPort(), form),
                           own=own_ports()), (200 if form.ok else 400)


def _change(ident: int, apply: Callable[[FirewallPort], str]):
    with db.atomic():
        row = FirewallPort.get_or_none(FirewallPort.id == ident)
        if row is None:
            abort(404)
        done = apply(row)
        bump_generation()
    flash(done)
    return redirect(url_for("lists.firewall.index"))


def _toggle(row: FirewallPort) -> str:
    FirewallPort.update(is_open=not row.is_open).where(FirewallPort.id == row.id).execute()
    return f"Port {row.port}/{row.protocol} is now {'closed' if row.is_open else 'open'} in the list."


def _remove(row: FirewallPort) -> str:
    row.delete_instance()
    return f"Port {row.port}/{row.protocol} removed from the list."


@bp.route("/<int:ident>/toggle", methods=["POST"])
def toggle(ident: int):
    return _change(ident, _toggle)


@bp.route("/<int:ident>/delete", methods=["POST"])
def delete(ident: int):
    return _change(ident, _remove)
