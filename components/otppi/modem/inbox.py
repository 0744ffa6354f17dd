"""Incoming SMS and status reports into the store.

A message is committed to the database before the modem is told to delete
it from the SIM. Parts of a multipart message wait in ``inbox_part`` (so a
restart between parts loses nothing) until the last one arrives; then the
whole text becomes one inbox message. Parts that stay incomplete for
:data:`INCOMPLETE_AFTER` become an inbox message marked incomplete, with
each missing part shown where it belongs, rather than wait forever.
"""

from __future__ import annotations

import logging
import time

from peewee import fn

from ..msisdn import mask
from ..store.db import db
from ..store.models import InboxMessage, InboxPart, SmsOutbox
from ..store.outbox import record_event
from .pdu import Deliver, StatusReport

log = logging.getLogger(__name__)

REPORT_WINDOW = 3 * 86_400  # a status report older than this matches nothing

#: Seconds after its newest part arrived that a multipart SMS still missing parts is given up on.
#: Parts travel separately and an SMSC retries an undelivered one, with growing pauses, until its
#: validity period ends (TS 23.040 9.2.3.12): hours apart is normal, and SMSCs commonly keep a
#: message 1 to 3 days. Past three days of silence the missing parts are not coming.
INCOMPLETE_AFTER = 3 * 86_400
MISSING_PART = "[part {sequence} of {total} did not arrive]"


def store_deliver(modem: str, message: Deliver) -> InboxMessage | None:
    """Save one received SMS (or one part); return the inbox message once it is whole."""
    sent_at = message.timestamp.timestamp()
    with db.atomic():
        if message.concat is None or message.concat.total <= 1:
            return _complete(modem, message.sender, message.text, sent_at, parts=1)
        c = message.concat
        InboxPart.insert(modem=modem, sender=message.sender, reference=c.reference, total=c.total,
                         sequence=c.sequence, text=message.text, sent_at=sent_at).on_conflict_ignore().execute()
        parts = list(InboxPart.select().where(
            (InboxPart.modem == modem) & (InboxPart.sender == message.sender)
            & (InboxPart.reference == c.reference) & (InboxPart.total == c.total)
        ).order_by(InboxPart.sequence))
        if len(parts) < c.total:
            return None
        text = "".join(p.text for p in parts)
        first_sent = min((p.sent_at for p in parts if p.sent_at is not None), default=sent_at)
        InboxPart.delete().where(InboxPart.id.in_([p.id for p in parts])).execute()
        return _complete(modem, message.sender, text, first_sent, parts=c.total)


def _complete(modem: str, sender: str, text: str, sent_at: float, parts: int) -> InboxMessage:
    row = InboxMessage.create(modem=modem, sender=sender, body=text, sent_at=sent_at, parts=parts)
    record_event("inbox", modem=modem, receiver=sender, result="received", cause=f"{parts} part(s)")
    log.info("%s: SMS from %s stored (%d part(s))", modem, mask(sender), parts)
    return row


def purge_incomplete(now: float | None = None) -> int:
    """Multipart SMS whose newest part is older than :data:`INCOMPLETE_AFTER`: into the inbox as received,
    marked incomplete, a placeholder for each missing part; return how many."""
    cutoff = (time.time() if now is None else now) - INCOMPLETE_AFTER
    key = (InboxPart.modem, InboxPart.sender, InboxPart.reference, InboxPart.total)
    stale = list(InboxPart.select(*key).group_by(*key).having(fn.MAX(InboxPart.received_at) < cutoff).tuples())
    for modem, sender, reference, total in stale:
        with db.atomic():
            parts = list(InboxPart.select().where(
                (InboxPart.modem == modem) & (InboxPart.sender == sender) & (InboxPart.reference == reference)
                & (InboxPart.total == total)).order_by(InboxPart.sequence))
            by_sequence = {p.sequence: p.text for p in parts}
            text = "".join(by_sequence.get(n, MISSING_PART.format(sequence=n, total=total))
                           for n in range(1, total + 1))
            sent_at = min((p.sent_at for p in parts if p.sent_at is not None), default=None)
            InboxMessage.create(modem=modem, sender=sender, body=text, sent_at=sent_at, parts=len(parts),
                                incomplete=True, received_at=max(p.received_at for p in parts))
            InboxPart.delete().where(InboxPart.id.in_([p.id for p in parts])).execute()
            record_event("inbox", modem=modem, receiver=sender, result="incomplete",
                         cause=f"{len(parts)} of {total} part(s)")
        log.warning("%s: SMS from %s kept incomplete: %d of %d part(s) arrived", modem, mask(sender), len(parts),
                    total)
    return len(stale)


def apply_status_report(modem: str, report: StatusReport, now: float | None = None) -> bool:
    """Mark the sent message the report is about; False when nothing matches."""
    now = time.time() if now is None else now
    state = "delivered" if report.delivered else ("pending" if not report.final else "failed")
    ref = str(report.message_reference)
    with db.atomic():
        candidates = (SmsOutbox.select()
                      .where((SmsOutbox.modem == modem) & (SmsOutbox.state == "sent")
                             & (SmsOutbox.sent_at > now - REPORT_WINDOW))
                      .order_by(SmsOutbox.sent_at.desc()))
        for row in candidates:
            if ref in row.message_refs.split(","):
                # Reports come per part: once any part failed, the message stays failed.
                if row.delivery_state == "failed":
                    return True
                SmsOutbox.update(delivery_state=state).where(SmsOutbox.id == row.id).execute()
                return True
    log.info("%s: status report for unknown message reference %s", modem, ref)
    return False
