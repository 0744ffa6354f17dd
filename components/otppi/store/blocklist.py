"""The block list: numbers the device never sends to, whoever asks.

REST and the brokers (``block-msisdn``, ``unblock-msisdn``), the CLI and the
admin web all change it through these two functions, so each change is one
transaction with an event. Nothing caches the list (every send reads it), so
a change needs no settings generation: it applies to the next request.
"""

from __future__ import annotations

from .db import db
from .models import BlockedNumber
from .outbox import record_event


def block(msisdn: str, source: str) -> bool:
    """Put *msisdn* on the list; False when it was there already."""
    with db.atomic():  # IMMEDIATE: nobody adds it between the look and the insert
        if is_blocked(msisdn):
            return False
        BlockedNumber.create(msisdn=msisdn, source=source[:64])
        record_event("block", source=source, receiver=msisdn, result="blocked")
    return True


def unblock(msisdn: str, source: str) -> bool:
    """Take *msisdn* off the list; False when it was not on it."""
    with db.atomic():
        removed = BlockedNumber.delete().where(BlockedNumber.msisdn == msisdn).execute()
        if removed:
            record_event("block", source=source, receiver=msisdn, result="unblocked")
    return bool(removed)


def is_blocked(msisdn: str) -> bool:
    return BlockedNumber.select().where(BlockedNumber.msisdn == msisdn).exists()
