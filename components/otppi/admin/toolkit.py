"""What the modem tool pages share: the modems to choose from, queuing a manual SMS, and times in the
device's zone.

The tools themselves are the shared modem tools (:mod:`otppi.modem_tools`), which the ``otppi`` commands
call too, so the web and the command line accept and refuse exactly the same input with the same words.
A component that is not running is a message on the page, never an error page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app

from .. import manual_sms, modem_tools
from ..modem_tools import ToolError
from ..paths import Paths
from ..store.models import Modem, TimeSettings

#: Seconds a manual SMS page waits for the outcome before it says "queued".
MANUAL_WAIT = 10.0
SOURCE = "admin"


def app_paths() -> Paths:
    return current_app.config["OTPPI_PATHS"]


def component_error() -> str:
    """Why the modem component cannot be asked right now, or "" when it answers."""
    return modem_tools.component_error(app_paths())


def active_modems() -> list[str]:
    """Names of the modems a tool can use: only active modems have a worker in the modem component."""
    return [m.name for m in Modem.select(Modem.name).where(Modem.active == True).order_by(Modem.name)]  # noqa: E712


def active_modem(name: str, field: str = "modem") -> Modem:
    return modem_tools.active_modem(name, field)


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
