from __future__ import annotations

import time

from otppi.paths import Paths
from otppi.store import retention
from otppi.store.models import Event, InboxMessage, Otp, SmsOutbox


def test_old_rows_go_and_live_ones_stay(paths: Paths) -> None:
    now = time.time()
    old = now - retention.ROW_KEEP - 10
    Otp.create(reference="old", mac="x", expires_at=now - retention.OTP_KEEP - 1)
    Otp.create(reference="live", mac="x", expires_at=now + 60)
    SmsOutbox.create(receiver="1", state="sent", updated_at=old)
    SmsOutbox.create(receiver="2", state="queued", updated_at=old)  # still to send: never purged
    SmsOutbox.create(receiver="3", state="failed", updated_at=now)
    Event.create(kind="sms", at=old)
    Event.create(kind="sms", at=now)
    InboxMessage.create(modem="m", sender="s", body="keep me", received_at=old)
    assert retention.purge(now) == {"otp": 1, "sms": 1, "email": 0, "event": 1}
    assert [o.reference for o in Otp.select()] == ["live"]
    assert sorted(r.receiver for r in SmsOutbox.select()) == ["2", "3"]
    assert InboxMessage.select().count() == 1
