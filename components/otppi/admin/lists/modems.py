"""Modems: the list with each one's live state, add, edit every field of the spec's table, delete.

Fields are parsed by ``otppi.store.modems.parse_field`` and written by its
``set_field``, as ``otppi modem set`` does, so the web and the command line
accept the same values. The identity fields (manufacturer … SMS center) are read
from the modem by the modem component and shown read-only. The SIM PIN and the
APN password are write-only.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from peewee import IntegrityError

from ...store import modems
from ...store.db import db
from ...store.models import Modem, ModemStatus
from ...store.sealed import cleared_note
from ...store.settings import SettingError, bump_generation
from ..forms import Form
from .common import Spec, groups, message, parse_all, submitted_texts, when

bp = Blueprint("modems", __name__, url_prefix="/modems")

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")

CONNECTION = (
    Spec("port", "Port", help="a device path; /dev/serial/by-id/… keeps its name when modems are replugged"),
    Spec("baud_rate", "Baud rate", "select", tuple((str(b), str(b)) for b in modems.BAUD_RATES)),
    Spec("parity", "Parity bit", "select", (("N", "None"), ("E", "Even"), ("O", "Odd"), ("M", "Mark"),
                                            ("S", "Space"))),
    Spec("data_bits", "Data bits", "select", tuple((b, b) for b in ("5", "6", "7", "8"))),
    Spec("start_bits", "Start bits", "select", (("1", "1"),)),
    Spec("stop_bits", "Stop bits", "select", (("1", "1"), ("1.5", "1.5"), ("2", "2"))),
    Spec("sim_pin", "SIM card PIN", "password", help="4 to 8 digits, if the SIM card asks for one"),
)
ROUTING = (
    Spec("prefixes", "Recipient prefixes",
         help="comma separated, e.g. 0812, 0813: stored as MSISDN prefixes with the SMS country code"),
    Spec("is_default", "Default modem (takes numbers no other modem's prefixes match)", "checkbox"),
    Spec("send_from_api", "Send SMS from API (else manual SMS only)", "checkbox"),
    Spec("active", "Active", "checkbox"),
)
INTERNET = (
    Spec("internet_access", "Internet access through this modem", "checkbox"),
    Spec("apn", "APN"),
    Spec("apn_username", "APN username"),
    Spec("apn_password", "APN password", "password"),
    Spec("dial_number", "Dial number"),
    *(Spec(f"init_dial_{i}", f"Init dial {i}", help="one AT command, or empty" if i == 1 else "")
      for i in range(1, 6)),
    Spec("dial_command", "Dial command"),
)
LAYOUT = (("Connection", CONNECTION), ("Routing", ROUTING), ("Internet", INTERNET))
SPECS = CONNECTION + ROUTING + INTERNET

#: The identity fields in the spec's order, read from the modem.
IDENTITY = (("manufacturer", "Manufacturer"), ("model", "Model"), ("revision", "Revision"), ("imei", "IMEI"),
            ("imsi", "IMSI"), ("operator", "Operator"), ("msisdn", "MSISDN"), ("sms_center", "SMS center"))

ADD = (
    Spec("name", "Name", help="letters, digits, '.', '_' or '-'"),
    Spec("port", "Port", help="e.g. /dev/ttyUSB0 or /dev/serial/by-id/…"),
    Spec("prefixes", "Recipient prefixes", help="comma separated, e.g. 0812, 0813"),
)

GOOD_STATES = {"ready", "internet"}


def _modem(name: str) -> Modem:
    row = Modem.get_or_none(Modem.name == name)
    if row is None:
        abort(404)
    return row


def _statuses() -> dict[str, ModemStatus]:
    return {s.name: s for s in ModemStatus.select()}


@bp.route("", methods=["GET", "POST"])
def index():
    form = Form(request.form)
    if request.method == "POST":
        name = form.get("name").strip()
        if not _NAME.fullmatch(name):
            form.error("name", "1 to 64 letters, digits, '.', '_' or '-'")
        values = parse_all(form, {"port": form.get("port").strip(), "prefixes": form.get("prefixes")},
                           modems.parse_field)
        if form.ok:
            try:
                with db.atomic():
                    Modem.create(name=name, **values)
                    bump_generation()
            except IntegrityError:
                form.error("name", "a modem with this name exists")
            else:
                flash(f"Modem {name} added: check its settings below, the modem component opens it now.")
                return redirect(url_for("lists.modems.edit", name=name))
    rows = list(Modem.select().order_by(Modem.name))
    return render_template("lists/modems.html", rows=rows, status=_statuses(), add=groups((("", ADD),), None, form),
                           good=GOOD_STATES, when=when), (200 if form.ok else 400)


def _edit_page(row: Modem, form: Form, problem: str = "", status: int = 200):
    return render_template("lists/modem_edit.html", row=row, groups=groups(LAYOUT, row, form),
                           identity=[(label, getattr(row, name)) for name, label in IDENTITY],
                           status=ModemStatus.get_or_none(ModemStatus.name == row.name), presets=modems.APN_PRESETS,
                           preset_error=form.errors.get("preset", ""), problem=problem, when=when,
                           good=GOOD_STATES), status


@bp.route("/<name>", methods=["GET", "POST"])
def edit(name: str):
    row = _modem(name)
    form = Form(request.form)
    if request.method == "GET":
        return _edit_page(row, form)
    texts = submitted_texts(form, SPECS)
    values = parse_all(form, texts, modems.parse_field)
    if not form.ok:
        return _edit_page(row, form, status=400)
    changes = {field: value for field, value in values.items()
               if field in row.SECRETS or value != getattr(row, field)}
    try:
        cleared = modems.update(row.name, changes) if changes else []
    except SettingError as exc:  # deleted meanwhile
        return _edit_page(row, form, problem=str(exc), status=409)
    flash(f"Modem {row.name} saved; the modem component applies it now." if changes else "Nothing changed.")
    if cleared:
        labels = {spec.name: spec.label for spec in SPECS}
        flash(cleared_note([labels[name] for name in cleared]) + ".", "error")
    return redirect(url_for("lists.modems.edit", name=row.name))


@bp.route("/<name>/preset", methods=["POST"])
def preset(name: str):
    """Save the APN, its username and password and the dial number of one operator of the spec's table."""
    row = _modem(name)
    chosen = request.form.get("preset", "")
    if chosen not in modems.APN_PRESETS:
        shown = Form()  # the stored values, with the message beside the preset list
        shown.error("preset", "choose an operator from the list")
        return _edit_page(row, shown, status=400)
    apn, username, password, dial = modems.APN_PRESETS[chosen]
    try:
        modems.update(row.name, {field: modems.parse_field(field, text) for field, text in (
            ("apn", apn), ("apn_username", username), ("apn_password", password), ("dial_number", dial))})
    except SettingError as exc:
        return _edit_page(row, Form(), problem=message(exc, "apn"), status=409)
    flash(f"{chosen} preset saved on {row.name}: APN {apn}, dial number {dial}.")
    return redirect(url_for("lists.modems.edit", name=row.name))


@bp.route("/<name>/delete", methods=["POST"])
def delete(name: str):
    row = _modem(name)
    with db.atomic():
        Modem.delete().where(Modem.id == row.id).execute()
        bump_generation()
    flash(f"Modem {row.name} deleted.")
    return redirect(url_for("lists.modems.index"))
