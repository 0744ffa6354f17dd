"""Incoming SMS and status reports into the store.

A message is committed to the database before the modem is told to delete
it from the SIM. Parts of a multipart message wait in ``inbox_part`` (so a
restart between parts loses nothing) until the last one arrives; then the
whole text becomes one inbox message.
"""

from __future__ import annotations

import logging
import time

from ..msisdn import mask
from ..store.db import db
from ..store.models import InboxMessage, InboxPart, SmsOutbox
from ..store.outbox import record_event
from .pdu import Deliver, StatusReport

log = logging.getLogger(__name__)

REPORT_WINDOW = 3 * 86_400  # a status report older than this matches nothing


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
