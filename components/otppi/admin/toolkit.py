"""What the modem tool pages share: asking the modem component, the modems to choose from, queuing a manual
SMS, and times in the device's zone.

Only the modem component touches serial ports (docs/architecture.md, Processes): the pages ask it over its
control socket, as the ``otppi`` commands do (``otppi.cli_modem``), with the same checks, timeouts and
messages, so the web and the command line accept and refuse exactly the same input. A component that is
not running is a message on the page, never an error page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app

from .. import control, manual_sms
from ..cli_modem import MARGIN, STATUS_TIMEOUT
from ..paths import Paths
from ..store.models import Modem, TimeSettings

#: Seconds a manual SMS page waits for the outcome before it says "queued".
MANUAL_WAIT = 10.0
SOURCE = "admin"


class ToolError(Exception):
    """A failure shown on the page; beside the field *field* when it names one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def app_paths() -> Paths:
    return current_app.config["OTPPI_PATHS"]


def ask(request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One control request; its error (the component not running included) becomes a ToolError."""
    answer = control.call(app_paths(), request, timeout + MARGIN)
    if not answer.get("ok"):
        raise ToolError(str(answer.get("error") or "the modem component refused the request")[:500])
    return answer


def component_error() -> str:
    """Why the modem component cannot be asked right now, or "" when it answers."""
    answer = control.call(app_paths(), {"op": "status"}, STATUS_TIMEOUT)
    return "" if answer.get("ok") else str(answer.get("error") or "the modem component did not answer")


def active_modems() -> list[str]:
    """Names of the modems a tool can use: only active modems have a worker in the modem component."""
    return [m.name for m in Modem.select(Modem.name).where(Modem.active == True).order_by(Modem.name)]  # noqa: E712


def active_modem(name: str, field: str = "modem") -> Modem:
    if not name:
        raise ToolError("choose a modem", field)
    try:
        return manual_sms.active_modem(name)
    except manual_sms.ManualSmsError as exc:
        raise ToolError(str(exc), field) from None


# ---------------------------------------------------------------- manual SMS


@dataclass(frozen=True)
class Outcome:
    state: str  # sent | failed | expired | queued | sending
    receiver: str  # the MSISDN it went to
    modem: str
    error: str
    waited: float

    @property
    def final(self) -> bool:
        return self.state in ("sent", "failed", "expired")

    def describe(self, via: str) -> str:
        if self.state == "sent":
            return f"Sent to {self.receiver} via {self.modem}."
        if self.final:
            return f"Not sent to {self.receiver}{f' via {via}' if via else ''}: {self.error or self.state}"
        return (f"Queued for {self.receiver}: the outcome is not known after {self.waited:g} s; "
                "the monitor shows it when it comes.")


def queue_manual_sms(receiver: str, text: str, via: str = "", wait: float | None = None) -> Outcome:
    """Queue an SMS by hand through *via* (any modem when empty) and wait a little for its outcome,
    with the steps and messages of ``otppi sms send`` (:mod:`otppi.manual_sms`)."""
    wait = current_app.config.get("OTPPI_MANUAL_WAIT", MANUAL_WAIT) if wait is None else wait
    try:
        sent = manual_sms.queue(app_paths(), current_app.config["OTPPI_OTP_KEY"], receiver,
                                text.replace("\r\n", "\n"),  # browsers send a textarea's line breaks as CRLF
                                via=via, source=SOURCE, wait=wait)
    except manual_sms.ManualSmsError as exc:
        raise ToolError(str(exc), exc.field) from None
    return Outcome(sent.state, sent.receiver, sent.modem, sent.error, wait)


# ---------------------------------------------------------------- times


def device_zone() -> ZoneInfo:
    try:
        return ZoneInfo(TimeSettings.load().time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(seconds: float | None, zone: ZoneInfo | None = None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, zone or device_zone()).strftime("%Y-%m-%d %H:%M:%S")
