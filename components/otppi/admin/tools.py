"""The modem tools of the spec: USSD, Manual SMS, IMEI Tool, SIM Tool and Internet Mobile.

Each asks the modem component over its control socket with the checks and messages of the matching
``otppi`` command (``otppi.cli_modem``). A tool that changed something answers with a redirect and a
flashed message (a reload does not repeat it); a refusal is shown on the page beside its field.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from .. import doorbell
from ..cli_modem import _CME, _CME_MEANING, _IMEI, _PIN, _USSD, TOOL_TIMEOUT, _printable
from ..luhn import luhn_digit
from ..store import modems
from ..store.models import Modem
from ..store.settings import SettingError
from .forms import Form
from .toolkit import ToolError, active_modem, active_modems, app_paths, ask, component_error, queue_manual_sms

bp = Blueprint("tools", __name__, url_prefix="/tools")

MENU = ("Modem tools", [
    ("Manual SMS", "tools.sms", {}),
    ("USSD", "tools.ussd", {}),
    ("IMEI tool", "tools.imei", {}),
    ("SIM tool", "tools.sim", {}),
    ("Internet mobile", "tools.internet", {}),
])

USSD_TIMEOUT = 30.0
USSD_CODE_HELP = "a USSD code is digits, *, # and + (at most 64), such as *123# or a menu option 1"


def _failed(form: Form, exc: ToolError) -> None:
    form.error(exc.field or "_page", str(exc))


def _page(template: str, form: Form, **context):
    status = 400 if set(form.errors) - {"_page"} else 200  # a field to correct, not a refusal
    return render_template(template, form=form, modems=active_modems(), **context), status


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
        try:
            name = active_modem(form.get("modem").strip()).name
            if form.get("action") == "cancel":
                ask({"op": "ussd_cancel", "modem": name, "timeout": TOOL_TIMEOUT}, TOOL_TIMEOUT)
                result = {"modem": name, "reply": "", "session": False, "ended": True}
            else:
                code = form.get("code").strip()
                if not code:
                    raise ToolError("enter a USSD code such as *123#", "code")
                if not _USSD.fullmatch(code):
                    raise ToolError(USSD_CODE_HELP, "code")
                answer = ask({"op": "ussd", "modem": name, "code": code, "timeout": USSD_TIMEOUT}, USSD_TIMEOUT)
                result = {"modem": name, "reply": _printable(str(answer.get("reply", ""))),
                          "session": bool(answer.get("session")), "ended": False}
        except ToolError as exc:
            _failed(form, exc)
    return _page("tools/ussd.html", form, result=result)


# ---------------------------------------------------------------- IMEI tool


def _imei(form: Form) -> str:
    imei = form.get("imei").strip()
    if not _IMEI.fullmatch(imei):
        raise ToolError("an IMEI is 15 digits", "imei")
    check = luhn_digit(imei[:14])
    if imei[14] != check:
        raise ToolError(f"{imei} fails the Luhn check: with these first 14 digits the last one is {check}", "imei")
    return imei


@bp.route("/imei", methods=["GET", "POST"])
def imei():
    form = Form(request.form)
    if request.method == "POST":
        try:
            new = _imei(form)
            name = active_modem(form.get("modem").strip()).name
            try:
                ask({"op": "imei", "modem": name, "imei": new, "timeout": TOOL_TIMEOUT}, TOOL_TIMEOUT)
            except ToolError as exc:
                if "cannot change its IMEI" in str(exc):
                    raise ToolError(f"this modem cannot change its IMEI: {name} refused AT+EGMR") from None
                raise
        except ToolError as exc:
            _failed(form, exc)
        else:
            flash(f"IMEI of {name} is now {new} (restart the modem for the network to see it).")
            return redirect(url_for("tools.imei"))
    rows = Modem.select().where(Modem.active == True).order_by(Modem.name)  # noqa: E712
    return _page("tools/imei.html", form, rows=rows)


# ---------------------------------------------------------------- SIM tool

SIM_ACTIONS = {"enable": "Turn the PIN lock on", "disable": "Turn the PIN lock off", "change": "Change the PIN"}
SIM_DONE = {"enable": "SIM PIN lock enabled", "change": "SIM PIN changed", "disable": "SIM PIN lock disabled"}


def _pins(form: Form, action: str) -> tuple[str, str]:
    pin, new = form.get("pin"), form.get("new_pin") if action == "change" else ""
    if not _PIN.fullmatch(pin):
        form.error("pin", "the current SIM PIN must be 4 to 8 digits")
    if action == "change":
        if not _PIN.fullmatch(new):
            form.error("new_pin", "the new SIM PIN must be 4 to 8 digits")
        elif new != form.get("new_pin2"):
            form.error("new_pin2", "the two new PINs differ")
    return pin, new


def _sim_refusal(name: str, error: str, secrets: tuple[str, ...]) -> str:
    code = _CME.search(error)
    if code and int(code.group(1)) in _CME_MEANING:
        return f"{name}: {_CME_MEANING[int(code.group(1))]}"
    for secret in filter(None, secrets):
        error = error.replace(secret, "****")
    return error


def _change_pin(name: str, action: str, pin: str, new: str) -> str:
    """Ask the SIM, then keep the PIN the SIM now wants in the modem's settings, as ``otppi sim pin`` does."""
    try:
        ask({"op": "sim_pin", "modem": name, "action": action, "pin": pin, "new_pin": new, "timeout": TOOL_TIMEOUT},
            TOOL_TIMEOUT)
    except ToolError as exc:
        raise ToolError(_sim_refusal(name, str(exc), (pin, new))) from None
    # The modem component enters this PIN when it opens the modem after a power cycle;
    # saving it restarts the modem's worker, which finds the SIM already unlocked.
    saved = {"enable": pin, "change": new, "disable": ""}[action]
    try:
        modems.set_field(name, "sim_pin", saved)
    except SettingError as exc:
        raise ToolError(f"the SIM took it, but the PIN could not be saved: {exc}") from None
    doorbell.ring(app_paths().doorbell("modem"))
    where = "saved in" if saved else "removed from"
    return f"{SIM_DONE[action]} on {name}; the PIN is {where} its modem settings."


@bp.route("/sim", methods=["GET", "POST"])
def sim():
    form = Form(request.form)
    if request.method == "POST":
        action = form.get("action")
        if action not in SIM_ACTIONS:
            form.error("action", "choose what to do")
        pin, new = _pins(form, action)
        try:
            name = active_modem(form.get("modem").strip()).name
        except ToolError as exc:
            _failed(form, exc)
        if form.ok:
            try:
                flash(_change_pin(name, action, pin, new))
            except ToolError as exc:
                _failed(form, exc)
            else:
                return redirect(url_for("tools.sim"))
    rows = Modem.select().where(Modem.active == True).order_by(Modem.name)  # noqa: E712
    return _page("tools/sim.html", form, rows=rows, actions=SIM_ACTIONS)


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
            row = active_modem(form.get("modem").strip())
            if action not in ("up", "down"):
                raise ToolError("choose connect or disconnect")
            if not row.internet_access:
                raise ToolError(f"Internet Access is off for modem {row.name}: turn it on in its modem settings")
            answer = ask({"op": "internet", "modem": row.name, "action": action, "timeout": TOOL_TIMEOUT},
                         TOOL_TIMEOUT)
        except ToolError as exc:
            form.error("_page", str(exc))  # this page has no fields: every message goes on top
        else:
            error = str(answer.get("error") or "")
            flash(f"{row.name}: internet {answer.get('state', 'unknown')}" + (f" ({error})" if error else "") + ".")
            return redirect(url_for("tools.internet"))
    rows = _internet_rows()
    down = component_error() if rows else ""
    states = {}
    for row in rows:
        if down:
            states[row.name] = ("unknown", "")
            continue
        try:
            answer = ask({"op": "internet", "modem": row.name, "action": "state", "timeout": TOOL_TIMEOUT},
                         TOOL_TIMEOUT)
            states[row.name] = (str(answer.get("state", "unknown")), str(answer.get("error") or ""))
        except ToolError as exc:
            states[row.name] = ("unknown", str(exc))
    return render_template("tools/internet.html", form=form, rows=rows, states=states, down=down)
