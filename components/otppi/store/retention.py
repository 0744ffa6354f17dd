"""Keeping the store small on an SD card: rows nobody needs any more are deleted.

OTPs go a day after they expire (validation answers 1202 for them either
way); finished outbox rows (their bodies are already erased) and events go
after 30 days. The inbox is the user's: only they delete it.
"""

from __future__ import annotations

from .db import db
from .models import EmailOutbox, Event, Otp, SmsOutbox
from .outbox import FINAL

OTP_KEEP = 86_400
ROW_KEEP = 30 * 86_400


def purge(now: float) -> dict[str, int]:
    with db.atomic():
        counts = {"otp": Otp.delete().where(Otp.expires_at < now - OTP_KEEP).execute()}
        for name, table in (("sms", SmsOutbox), ("email", EmailOutbox)):
            counts[name] = table.delete().where(
                table.state.in_(list(FINAL)) & (table.updated_at < now - ROW_KEEP)).execute()
        counts["event"] = Event.delete().where(Event.at < now - ROW_KEEP).execute()
    return counts
