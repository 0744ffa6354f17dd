"""The modem tools as one use-case layer: USSD, modem information, the inbox refresh, the IMEI and SIM
tools and mobile internet, for the ``otppi`` commands (``otppi.cli_modem``) and the admin web
(``otppi.admin.tools``, ``otppi.admin.inbox``) alike.

Only the modem component touches serial ports (docs/architecture.md, Processes), so each tool checks its
input here, asks the component over its control socket (:mod:`otppi.control`) and turns the typed answer
(``kind``, ``cme``) into one :class:`ToolError` with words a person can act on. The edges only translate
their input into a call and the result or the error into their own output, so both accept and refuse
exactly the same input with the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import control, doorbell, manual_sms
from .luhn import luhn_digit
from .paths import Paths
from .store import modems
from .store.models import Modem, ModemStatus
from .store.settings import SettingError

STATUS_TIMEOUT = 5.0
INFO_TIMEOUT = 60.0
TOOL_TIMEOUT = 30.0
USSD_TIMEOUT = 30.0

USSD_CODE = re.compile(r"[0-9*#+]{1,64}")  # the request contract's USSD check (otppi.contract)
USSD_CODE_HELP = "a USSD code is digits, *, # and + (at most 64), such as *123# or a menu option 1"
_IMEI = re.compile(r"[0-9]{15}")
_PIN = re.compile(r"[0-9]{4,8}")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

#: +CME ERROR codes (TS 27.007 clause 9.2) a SIM answers the PIN commands with, in a user's words.
CME_MEANING = {
    16: "the SIM refused the PIN (wrong PIN)",
    12: "the SIM now asks for its PUK: too many wrong PINs",
    11: "the SIM asks for its PIN first",
    3: "the SIM does not allow this now (a PIN can only be changed while the PIN lock is on)",
}
SIM_ACTIONS = {"enable": "Turn the PIN lock on", "disable": "Turn the PIN lock off", "change": "Change the PIN"}
SIM_DONE = {"enable": "SIM PIN lock enabled", "change": "SIM PIN changed", "disable": "SIM PIN lock disabled"}


class ToolError(Exception):
    """A refusal or failure to show the user; *field* names the input at fault when one is, *kind* is the
    control socket's (``otppi.control.KINDS``) when the modem component answered it."""

    def __init__(self, message: str, field: str | None = None, kind: str = "", cme: int | None = None):
        super().__init__(message)
        self.field = field
        self.kind = kind
        self.cme = cme


def printable(text: str) -> str:
    """Text from a modem or the network, safe to show: control characters escaped, newlines kept."""
    return _CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\r\n", "\n").replace("\r", "\n"))


def _ask(paths: Paths, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        return control.ask(paths, request, timeout)
    except control.ControlFailure as exc:
        raise ToolError(str(exc), kind=exc.kind, cme=exc.cme) from None


def active_modem(name: str, field: str = "modem") -> Modem:
    """The modem record *name*, which must be active: only active modems have a worker."""
    if not name:
        raise ToolError("choose a modem", field)
    try:
        return manual_sms.active_modem(name)
    except manual_sms.ManualSmsError as exc:
        raise ToolError(str(exc), field) from None


def component_error(paths: Paths) -> str:
    """Why the modem component cannot be asked right now, or "" when it answers."""
    answer = control.call(paths, {"op": "status"}, STATUS_TIMEOUT)
    return "" if answer.get("ok") else str(answer.get("error") or control.KINDS["no_answer"])


# ---------------------------------------------------------------- information and status


def info(paths: Paths, name: str) -> dict[str, Any]:
    """What the modem says of itself: identity, SIM, operator, signal, registration."""
    active_modem(name)
    return _ask(paths, {"op": "info", "modem": name}, INFO_TIMEOUT)["info"]


@dataclass(frozen=True)
class Status:
    live: bool  # from the running component; else the last recorded one
    error: str  # why it is not live
    modems: list[dict[str, Any]]  # name, state, connected, failures, quarantined_until, error (and as_of)


def status(paths: Paths) -> Status:
    """Each modem record's state: live from the component, else as it last recorded it."""
    answer = control.call(paths, {"op": "status"}, STATUS_TIMEOUT)
    live = bool(answer.get("ok"))
    if live:
        known = {m["name"]: m for m in answer["modems"]}
    else:
        known = {s.name: {"name": s.name, "state": s.state, "connected": s.connected, "failures": s.failures,
                          "quarantined_until": s.quarantined_until, "error": s.last_error, "as_of": s.updated_at}
                 for s in ModemStatus.select()}
    found = []
    for record in Modem.select().order_by(Modem.name):
        seen = known.pop(record.name, None)
        if seen is None or not record.active:
            state = "inactive" if not record.active else ("starting" if live else "unknown")
            seen = {"name": record.name, "state": state, "connected": False, "failures": 0, "error": ""}
        found.append(seen)
    found += sorted(known.values(), key=lambda m: m["name"])  # a record removed since
    return Status(live, "" if live else str(answer.get("error")), found)


# ---------------------------------------------------------------- USSD


@dataclass(frozen=True)
class UssdReply:
    modem: str
    reply: str  # as the network sent it: show it through printable()
    session: bool  # the network waits for an answer (a menu option)


def check_ussd_code(code: str) -> str:
    code = code.strip()
    if not code:
        raise ToolError("enter a USSD code such as *123#", "code")
    if not USSD_CODE.fullmatch(code):
        raise ToolError(USSD_CODE_HELP, "code")
    return code


def ussd(paths: Paths, name: str, code: str, timeout: float = USSD_TIMEOUT) -> UssdReply:
    """Run a USSD code (or answer the open menu with an option) within *timeout* seconds."""
    name = active_modem(name).name
    code = check_ussd_code(code)
    answer = _ask(paths, {"op": "ussd", "modem": name, "code": code}, timeout)
    return UssdReply(name, str(answer.get("reply", "")), bool(answer.get("session")))


def ussd_cancel(paths: Paths, name: str) -> None:
    """End the modem's open USSD session (AT+CUSD=2)."""
    _ask(paths, {"op": "ussd_cancel", "modem": active_modem(name).name}, TOOL_TIMEOUT)


# ---------------------------------------------------------------- inbox


def refresh_inbox(paths: Paths, name: str) -> int:
    """Move every SMS stored on the modem's SIM into the inbox; return how many."""
    return int(_ask(paths, {"op": "inbox_refresh", "modem": active_modem(name).name}, TOOL_TIMEOUT)["stored"])


# ---------------------------------------------------------------- IMEI tool


def check_imei(imei: str) -> str:
    imei = imei.strip()
    if not _IMEI.fullmatch(imei):
        raise ToolError("an IMEI is 15 digits", "imei")
    check = luhn_digit(imei[:14])
    if imei[14] != check:
        raise ToolError(f"{imei} fails the Luhn check: with these first 14 digits the last one is {check}", "imei")
    return imei


def set_imei(paths: Paths, name: str, imei: str) -> str:
    """Write a new IMEI into the modem (AT+EGMR); return what was done."""
    imei = check_imei(imei)
    name = active_modem(name).name
    try:
        _ask(paths, {"op": "imei", "modem": name, "imei": imei}, TOOL_TIMEOUT)
    except ToolError as exc:
        if exc.kind == "unsupported":
            raise ToolError(f"this modem cannot change its IMEI: {name} refused AT+EGMR", kind=exc.kind) from None
        raise
    return f"IMEI of {name} is now {imei} (restart the modem for the network to see it)"


# ---------------------------------------------------------------- SIM tool


def pin_problems(action: str, pin: str, new: str) -> dict[str, str]:
    """What is wrong with the PINs for *action*, by field (``pin``, ``new_pin``); empty when nothing."""
    problems = {}
    if not _PIN.fullmatch(pin):
        problems["pin"] = "the current SIM PIN must be 4 to 8 digits"
    if action == "change" and not _PIN.fullmatch(new):
        problems["new_pin"] = "the new SIM PIN must be 4 to 8 digits"
    return problems


def change_sim_pin(paths: Paths, name: str, action: str, pin: str, new: str = "") -> str:
    """Turn the SIM's PIN lock on or off or change its PIN, then keep the PIN the SIM now wants in the
    modem's settings (the component enters it after a power cycle); return what was done."""
    if action not in SIM_ACTIONS:
        raise ToolError("choose what to do", "action")
    problems = pin_problems(action, pin, new)
    if problems:
        field, problem = next(iter(problems.items()))
        raise ToolError(problem, field)
    name = active_modem(name).name
    try:
        _ask(paths, {"op": "sim_pin", "modem": name, "action": action, "pin": pin,
                     "new_pin": new if action == "change" else ""}, TOOL_TIMEOUT)
    except ToolError as exc:
        if exc.kind == "cme" and exc.cme in CME_MEANING:
            raise ToolError(f"{name}: {CME_MEANING[exc.cme]}", kind=exc.kind, cme=exc.cme) from None
        message = str(exc)
        for secret in filter(None, (pin, new)):
            message = message.replace(secret, "****")
        raise ToolError(message, kind=exc.kind, cme=exc.cme) from None
    # Saving it restarts the modem's worker, which finds the SIM already unlocked.
    saved = {"enable": pin, "change": new, "disable": ""}[action]
    try:
        modems.set_field(name, "sim_pin", saved)
    except SettingError as exc:
        raise ToolError(f"the SIM took it, but the PIN could not be saved: {exc}") from None
    doorbell.ring(paths.doorbell("modem"))
    where = "saved in" if saved else "removed from"
    return f"{SIM_DONE[action]} on {name}; the PIN is {where} its modem settings"


# ---------------------------------------------------------------- mobile internet


@dataclass(frozen=True)
class Link:
    modem: str
    state: str  # up | down | failed | unknown
    error: str  # why it failed, when it did

    def describe(self) -> str:
        return f"{self.modem}: internet {self.state}" + (f" ({self.error})" if self.error else "")


def internet(paths: Paths, name: str, action: str) -> Link:
    """Bring the modem's PPP link up or down, or only look (*action* ``state``)."""
    if action not in ("up", "down", "state"):
        raise ToolError("choose connect or disconnect", "action")
    row = active_modem(name)
    if action == "up" and not row.internet_access:
        raise ToolError(f"Internet Access is off for modem {row.name}: turn it on in its modem settings")
    answer = _ask(paths, {"op": "internet", "modem": row.name, "action": action}, TOOL_TIMEOUT)
    return Link(row.name, str(answer.get("state", "unknown")), str(answer.get("error") or ""))
