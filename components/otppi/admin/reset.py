"""Password reset by a one-time code sent to the administrator's phone (SMS) or email.

The password itself is never stored, so it can never be sent: the code is an
OTP like any other (only its keyed hash is kept, single use, 5 tries, 15
minutes), under the reference ``admin-reset:<id>``.
"""

from __future__ import annotations

import time

from .. import otp
from ..mailer.reset import queue_reset_code
from ..msisdn import normalize
from ..paths import Paths
from ..store.models import Administrator, GeneralSettings, Otp, SmsOutbox, SmsSettings
from ..store.outbox import enqueue

VALID_SECONDS = 900
#: The owner of reset codes among OTPs: no API user or feeder has this source.
OWNER = "admin-reset"


def _reference(admin: Administrator) -> str:
    return f"admin-reset:{admin.id}"


def send_code(paths: Paths, otp_key: bytes, admin: Administrator) -> str:
    """Queue a fresh code by SMS when the admin has a phone, else by email; '' when neither is set."""
    code = otp.generate_code(GeneralSettings.load().otp_length)
    now = time.time()
    expires = now + VALID_SECONDS
    reference = _reference(admin)
    mac = otp.compute_mac(otp_key, reference, admin.username, [], code)
    channel = "sms" if admin.phone else "email"

    def replace_code(row) -> None:
        Otp.delete().where((Otp.owner == OWNER) & (Otp.reference == reference)).execute()  # a new code replaces the last one
        otp.store(OWNER, reference, mac, channel, expires, **{channel: row})

    if admin.phone:
        receiver = normalize(admin.phone, SmsSettings.load().country_code)
        enqueue(paths, otp_key, SmsOutbox, f"OTP-Pi password reset code: {code}", inside=replace_code,
                kind="reset", source="admin", receiver=receiver, expires_at=expires)
        return "sms"
    if admin.email:
        queue_reset_code(paths, otp_key, admin.email, code, valid_s=VALID_SECONDS, now=now, inside=replace_code)
        return "email"
    return ""


def check_code(otp_key: bytes, admin: Administrator, code: str) -> bool:
    code = code.strip()
    if not code.isdigit() or len(code) > 10:
        return False
    verdict = otp.validate(otp_key, OWNER, _reference(admin), admin.username, [], code, now=time.time(), max_attempts=5)
    return verdict == "000"
