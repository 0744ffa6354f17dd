"""A manual SMS: checked as an API request would be, queued for the modem component, its outcome awaited.

``otppi sms send`` and the admin web (Manual SMS, inbox replies) share these steps, so both accept and
refuse exactly the same input. Any active modem may send a manual SMS, even one closed to API traffic;
the block list still applies. Nothing is queued while the modem component is not running.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import control
from .contract import ContractError
from .contract import validate as validate_request
from .msisdn import normalize
from .outcome import wait_for
from .paths import Paths
from .store.models import BlockedNumber, Modem, SmsOutbox, SmsSettings
from .store.outbox import enqueue

STATUS_TIMEOUT = 5.0


class ManualSmsError(Exception):
    """A refusal the user can act on; *field* names the input at fault (receiver, text, modem) when one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Outcome:
    state: str  # sent | failed | expired, or queued | sending when the wait ran out
    receiver: str  # the MSISDN it goes to
    modem: str
    error: str


def contract_text(exc: ContractError) -> str:
    return str(exc).replace("data.receiver", "the receiver").replace("data.message", "the text")


def active_modem(name: str) -> Modem:
    """The modem record *name*, which must be active: only active modems have a worker."""
    row = Modem.get_or_none(Modem.name == name)
    if row is None:
        raise ManualSmsError(f"no modem named {name[:40]!r}", "modem")
    if not row.active:
        raise ManualSmsError(f"modem {name[:40]!r} is inactive", "modem")
    return row


def queue(paths: Paths, key: bytes, receiver: str, text: str, *, via: str = "", source: str,
          wait: float) -> Outcome:
    """Queue the SMS (``kind="manual"``, through *via* when given), ring the modem component, wait for it."""
    try:
        request = validate_request({"command": "send-sms", "data": {"receiver": receiver, "message": text}})
    except ContractError as exc:
        raise ManualSmsError(contract_text(exc), "receiver" if "data.receiver" in str(exc) else "text") from None
    try:
        msisdn = normalize(request.data["receiver"], SmsSettings.load().country_code)
    except ValueError:
        raise ManualSmsError(f"{receiver!r} is not a phone number", "receiver") from None
    if BlockedNumber.select().where(BlockedNumber.msisdn == msisdn).exists():
        raise ManualSmsError(f"{msisdn} is on the block list", "receiver")
    via = active_modem(via).name if via else ""
    running = control.call(paths, {"op": "status"}, STATUS_TIMEOUT)
    if not running.get("ok"):
        raise ManualSmsError(f"{running.get('error')}: nothing queued")
    queued = enqueue(paths, key, SmsOutbox, request.data["message"], kind="manual", source=source,
                     receiver=msisdn, via=via)
    wait_for(paths, SmsOutbox, queued.id, wait, name=source)
    row = SmsOutbox.get_by_id(queued.id)
    return Outcome(row.state, msisdn, row.modem, row.last_error)
