"""Outbox rows and their life: queued → sending → sent | failed | expired.

Every producer (the handler, manual SMS, the email CLI, reset codes) queues
through :func:`enqueue`: the body sealed, the row created in one short
transaction, the owner's doorbell rung. Owners (modem, mailer) claim and
finish rows. Finishing erases the body (it may hold a clear OTP),
frees a failed OTP's reference, writes an event, and rings every process
waiting for outcomes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Type

from .. import codes, doorbell
from ..msisdn import mask
from ..paths import Paths
from ..seal import seal
from .db import db
from .models import EmailOutbox, Event, Otp, SmsOutbox

FINAL = frozenset({"sent", "failed", "expired"})
Outbox = Type[SmsOutbox] | Type[EmailOutbox]

_OUTCOME = {
    SmsOutbox: {"sent": codes.SUCCESS, "failed": codes.NO_MODEM, "expired": codes.OTP_EXPIRED},
    EmailOutbox: {"sent": codes.SUCCESS, "failed": codes.FAILED, "expired": codes.OTP_EXPIRED},
}


#: The component that sends each table's rows, named as its doorbell is.
OWNER = {SmsOutbox: "modem", EmailOutbox: "mailer"}


@dataclass(frozen=True)
class Queued:
    table: Outbox
    id: int
    #: Whether the owner's doorbell answered: False when the owner is not running (the row waits for it).
    rung: bool


def enqueue(paths: Paths, key: bytes, table: Outbox, text: str, *,
            inside: Callable[[Any], None] | None = None, **fields: Any) -> Queued:
    """Seal *text* under *key*, create the *table* row with *fields*, then ring the row's owner.

    *inside*, when given, runs in the same transaction with the new row (to store the OTP or reset
    code the message carries, say); whatever it raises rolls the row back, and nothing is rung. The
    ring comes after the commit, so the owner always finds the row. Call it outside any transaction.
    """
    body = seal(key, text)
    with db.atomic():
        row = table.create(body=body, **fields)
        if inside is not None:
            inside(row)
    return Queued(table, row.id, doorbell.ring(paths.doorbell(OWNER[table])))


def outcome_code(table: Outbox, state: str) -> str:
    """The response code a row's state answers with; 1111 while it is still on its way."""
    return _OUTCOME[table].get(state, codes.QUEUED)


def record_event(kind: str, *, source: str = "", modem: str = "", receiver: str = "",
                 result: str = "", cause: str = "") -> None:
    Event.create(kind=kind, source=source[:64], modem=modem[:64], receiver=mask(receiver) if receiver else "",
                 result=result[:32], cause=cause[:255])


def claim(table: Outbox, row_id: int, **fields) -> bool:
    """queued → sending, only if still queued (two workers never take one row)."""
    with db.atomic():
        return bool(
            table.update(state="sending", attempts=table.attempts + 1, updated_at=time.time(), **fields)
            .where((table.id == row_id) & (table.state == "queued"))
            .execute()
        )


def finish(paths: Paths | None, table: Outbox, row_id: int, state: str, *, error: str = "",
           event_kind: str = "", event_source: str = "", modem: str = "", event: bool = True) -> None:
    """End a row in *state*, erase its body, record an event (unless *event* is off), tell every waiter."""
    assert state in FINAL
    now = time.time()
    with db.atomic():
        row = table.get_by_id(row_id)
        changes = {"state": state, "body": None, "last_error": error[:255], "updated_at": now}
        if state == "sent":
            changes["sent_at"] = now
        if table is SmsOutbox and modem:
            changes["modem"] = modem
        table.update(**changes).where(table.id == row_id).execute()
        if state != "sent":
            link = Otp.sms if table is SmsOutbox else Otp.email
            Otp.update(state="void").where((link == row_id) & (Otp.state == "live")).execute()
        if event:
            record_event(event_kind or ("sms" if table is SmsOutbox else "email"),
                         source=event_source or row.source, modem=modem, receiver=row.receiver, result=state,
                         cause=error)
    if paths is not None:
        doorbell.ring_all(paths.outcome_bells())
