"""DDNS records: the names the ddns component keeps pointed at the device's public address.

The vendor accounts (Cloudflare, No-IP, Dynu, Afraid) are settings pages; a
record names its provider, and this page says when that provider's account is
not active yet. Records are checked here field by field with the store's
converters, so the ddns component only ever reads valid rows.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ...store import settings
from ...store.db import db
from ...store.models import DdnsRecord
from ...store.settings import SettingError, bump_generation
from ..forms import Form
from .common import Spec, inputs, parse_all, submitted_texts, when

bp = Blueprint("ddns", __name__, url_prefix="/ddns")

PROVIDERS = (("cloudflare", "Cloudflare"), ("noip", "No-IP"), ("dynu", "Dynu"), ("afraid", "Free DNS Afraid"))

FIELDS = (
    Spec("provider", "Provider", "select", PROVIDERS),
    Spec("record_type", "Type", "select", (("A", "A record"),), help="only A records (IPv4) for now"),
    Spec("zone", "Zone (domain name)", help="e.g. example.com"),
    Spec("record_name", "Record name", help="the subdomain, e.g. otp for otp.example.com; @ for the zone itself"),
    Spec("ttl", "TTL (s)", "number", help="1 means automatic on Cloudflare"),
    Spec("proxied", "Proxied (Cloudflare only)", "checkbox"),
    Spec("update_interval", "Update DNS every (minutes)", "number"),
    Spec("force_create_zone", "Force create zone (Cloudflare only)", "checkbox"),
    Spec("active", "Active", "checkbox"),
)

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ZONE = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_RECORD = re.compile(rf"@|(?:\*|{_LABEL})(?:\.{_LABEL})*")


def _one_of(*allowed: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in allowed:
            raise SettingError(f"must be one of: {', '.join(allowed)}")

    return check


def _pattern(pattern: re.Pattern, what: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if len(value) > 253 or not pattern.fullmatch(value):
            raise SettingError(f"must be {what}")

    return check


def _range(lo: int, hi: int, what: str) -> Callable[[int], None]:
    def check(value: int) -> None:
        if not lo <= value <= hi:
            raise SettingError(f"must be {what} from {lo} to {hi}")

    return check


VALIDATORS: dict[str, Callable[[Any], None]] = {
    "provider": _one_of(*(value for value, _ in PROVIDERS)),
    "record_type": _one_of("A"),
    "zone": _pattern(_ZONE, "a domain name such as example.com"),
    "record_name": _pattern(_RECORD, "a name such as otp or otp.example.com (letters, digits, '-'), or @"),
    "ttl": _range(1, 86_400, "seconds"),
    "update_interval": _range(1, 10_080, "minutes"),
}


def parse_field(name: str, text: str) -> Any:
    field = DdnsRecord._meta.fields[name]
    text = text.strip()
    if name in ("zone", "record_name"):
        text = text.lower().rstrip(".")
    return settings.check(VALIDATORS, name, settings.convert(field, name, text))


def _accounts() -> dict[str, bool]:
    """Whether each provider's account page is active."""
    return {provider: bool(settings.PAGES[provider].load().active) for provider, _ in PROVIDERS}


@bp.route("", methods=["GET", "POST"])
def index():
    form = Form(request.form)
    if request.method == "POST":
        values = parse_all(form, submitted_texts(form, FIELDS), parse_field)
        if form.ok:
            with db.atomic():
                row = DdnsRecord.create(**values)
                bump_generation()
            flash(f"DDNS record {row.record_name} in {row.zone} added.")
            return redirect(url_for("lists.ddns.index"))
    rows = list(DdnsRecord.select().order_by(DdnsRecord.zone, DdnsRecord.record_name))
    return render_template("lists/ddns.html", rows=rows, fields=inputs(FIELDS, DdnsRecord(), form),
                           providers=dict(PROVIDERS), accounts=_accounts(), when=when), (200 if form.ok else 400)


def _record(ident: int) -> DdnsRecord:
    row = DdnsRecord.get_or_none(DdnsRecord.id == ident)
    if row is None:
        abort(404)
    return row


@bp.route("/<int:ident>", methods=["GET", "POST"])
def edit(ident: int):
    row = _record(ident)
    form = Form(request.form)
    status = 200
    if request.method == "POST":
        values = parse_all(form, submitted_texts(form, FIELDS), parse_field)
        if form.ok:
            with db.atomic():
                DdnsRecord.update(**values).where(DdnsRecord.id == row.id).execute()
                bump_generation()
            flash(f"DDNS record {values['record_name']} in {values['zone']} saved.")
            return redirect(url_for("lists.ddns.edit", ident=row.id))
        status = 400
    return render_template("lists/record_edit.html", title=f"DDNS record {row.record_name} in {row.zone}",
                           fields=inputs(FIELDS, row, form), back=url_for("lists.ddns.index"),
                           back_label="DDNS records", action=url_for("lists.ddns.edit", ident=row.id),
                           delete=url_for("lists.ddns.delete", ident=row.id),
                           facts=[("Last address", row.last_address or "-"),
                                  ("Last update", when(row.last_update_at))]), status


@bp.route("/<int:ident>/delete", methods=["POST"])
def delete(ident: int):
    row = _record(ident)
    with db.atomic():
        DdnsRecord.delete().where(DdnsRecord.id == row.id).execute()
        bump_generation()
    flash(f"DDNS record {row.record_name} in {row.zone} deleted.")
    return redirect(url_for("lists.ddns.index"))
