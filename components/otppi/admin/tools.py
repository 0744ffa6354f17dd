"""The modem tools of the spec: USSD, Manual SMS, IMEI Tool, SIM Tool and Internet Mobile.

Each page is one call of the shared modem tools (:mod:`otppi.modem_tools`, which the ``otppi``
commands call too) or, for a manual SMS, of :mod:`otppi.manual_sms`. A tool that changed something
answers with a redirect and a flashed message (a reload does not repeat it); a refusal is shown on the
page beside its field.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from .. import modem_tools
from ..modem_tools import ToolError, printable
from ..store.models import Modem
from .forms import Form
from .toolkit import active_modem, active_modems, app_paths, component_error, queue_manual_sms

bp = Blueprint("tools", __name__, url_prefix="/tools")

MENU = ("Modem tools", [
    ("Manual SMS", "tools.sms", {}),
    ("USSD", "tools.ussd", {}),
    ("IMEI tool", "tools.imei", {}),
    ("SIM tool", "tools.sim", {}),
    ("Internet mobile", "tools.internet", {}),
])


def _failed(form: Form, exc: ToolError) -> None:
    form.error(exc.field or "_page", str(exc))


def _page(template: str, form: Form, **context):
    status = 400 if set(form.errors) - {"_page"} else 200  # a field to correct, not a refusal
    return render_template(template, form=form, modems=active_modems(), **context), status


def _active_rows() -> list[Modem]:
    return list(Modem.select().where(Modem.active == True).order_by(Modem.name))  # noqa: E712


# ---------------------------------------------------------------- manual SMS


@bp.route("/sms", methods=["GET", "POST"])
def sms():
    form = Form(request.form if request.method == "POST" else request.args)
    if request.method == "POST":
        via = form.get("modem").strip()
        try:
            outcome = queue_manual_sms(form.get("receiver"), form.get("text"), via)
        except ToolError as exc:
            _failed(form, exc)
        else:
            if outcome.state in ("failed", "expired"):
                form.error("_page", outcome.describe(via))
            else:
                flash(outcome.describe(via))
                return redirect(url_for("tools.sms"))
    return _page("tools/sms.html", form)


# ---------------------------------------------------------------- USSD


@bp.route("/ussd", methods=["GET", "POST"])
def ussd():
    form = Form(request.form)
    result = None
    if request.method == "POST":
        name = form.get("modem").strip()
        try:
            if form.get("action") == "cancel":
                modem_tools.ussd_cancel(app_paths(), name)
                result = {"modem": name, "reply": "", "session": False, "ended": True}
            else:
                answer = modem_tools.ussd(app_paths(), name, form.get("code"))
                result = {"modem": answer.modem, "reply": printable(answer.reply), "session": answer.session,
                          "ended": False}
        except ToolError as exc:
            _failed(form, exc)
    return _page("tools/ussd.html", form, result=result)


# ---------------------------------------------------------------- IMEI tool


@bp.route("/imei", methods=["GET", "POST"])
def imei():
    form = Form(request.form)
    if request.method == "POST":
        try:
            done = modem_tools.set_imei(app_paths(), form.get("modem").strip(), form.get("imei"))
        except ToolError as exc:
            _failed(form, exc)
        else:
            flash(done + ".")
            return redirect(url_for("tools.imei"))
    return _page("tools/imei.html", form, rows=_active_rows())


# ---------------------------------------------------------------- SIM tool


def _check_sim_form(form: Form, action: str) -> None:
    """Every field's problem at once (the tool itself stops at the first)."""
    if action not in modem_tools.SIM_ACTIONS:
        form.error("action", "choose what to do")
    new = form.get("new_pin") if action == "change" else ""
    problems = modem_tools.pin_problems(action, form.get("pin"), new)
    for field, problem in problems.items():
        form.error(field, problem)
    if action == "change" and "new_pin" not in problems and new != form.get("new_pin2"):
        form.error("new_pin2", "the two new PINs differ")
    try:
        active_modem(form.get("modem").strip())
    except ToolError as exc:
        _failed(form, exc)


@bp.route("/sim", methods=["GET", "POST"])
def sim():
    form = Form(request.form)
    if request.method == "POST":
        action = form.get("action")
        _check_sim_form(form, action)
        if form.ok:
            try:
                done = modem_tools.change_sim_pin(app_paths(), form.get("modem").strip(), action, form.get("pin"),
                                                  form.get("new_pin") if action == "change" else "")
            except ToolError as exc:
                _failed(form, exc)
            else:
                flash(done + ".")
                return redirect(url_for("tools.sim"))
    return _page("tools/sim.html", form, rows=_active_rows(), actions=modem_tools.SIM_ACTIONS)


# ---------------------------------------------------------------- Internet mobile


def _internet_rows() -> list[Modem]:
    return list(Modem.select().where((Modem.active == True) & (Modem.internet_access == True))  # noqa: E712
                .order_by(Modem.name))


@bp.route("/internet", methods=["GET", "POST"])
def internet():
    form = Form(request.form)
    if request.method == "POST":
        action = form.get("action")
        try:
            if action not in ("up", "down"):
                raise ToolError("choose connect or disconnect")
            link = modem_tools.internet(app_paths(), form.get("modem").strip(), action)
        except ToolError as exc:
            form.error("_page", str(exc))  # this page has no fields: every message goes on top
        else:
            flash(link.describe() + ".")
            return redirect(url_for("tools.internet"))
    rows = _internet_rows()
    down = component_error() if rows else ""
    states = {}
    for row in rows:
        if down:
            states[row.name] = ("unknown", "")
            continue
        try:
            link = modem_tools.internet(app_paths(), row.name, "state")
            states[row.name] = (link.state, link.error)
        except ToolError as exc:
            states[row.name] = ("unknown", str(exc))
    return render_template("tools/internet.html", form=form, rows=rows, states=states, down=down)
