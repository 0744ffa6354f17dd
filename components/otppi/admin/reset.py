"""Password reset by a one-time code sent to the administrator's phone (SMS) or email.

The password itself is never stored, so it can never be sent. Reset codes live
apart from API OTPs (``ResetCode``, one row per administrator, only an HMAC of
the code), so no API request can name, probe or void one. Unauthenticated
requests must not turn the device into an SMS cannon, so:

- a live code is kept, not replaced: while it is valid (15 minutes) and its
  message has not failed, asking again sends nothing;
- a new message goes out at most every ``COOLDOWN_SECONDS`` per administrator
  (the admin web adds a cooldown per client address);
- wrong codes count across codes: the ``MAX_FAILURES``-th voids the live code
  and no new one is sent for ``LOCKOUT_SECONDS``; the count starts again once
  that long has passed since the last wrong code;
- codes have at least ``MIN_DIGITS`` digits, whatever the OTP length setting.
"""

from __future__ import annotations

import hmac
import time

from .. import otp
from ..msisdn import normalize
from ..paths import Paths
from ..store.db import db
from ..store.models import Administrator, EmailOutbox, GeneralSettings, ResetCode, SmsOutbox, SmsSettings
from ..store.outbox import enqueue

VALID_SECONDS = 900
COOLDOWN_SECONDS = 120
MAX_FAILURES = 5
LOCKOUT_SECONDS = 3600
MIN_DIGITS = 8
#: Longest code a form may submit (codes are MIN_DIGITS to the OTP length setting's maximum, 10).
MAX_DIGITS = 12

_FREED = ("failed", "expired")


class _NotNow(Exception):
    """Another request sent a code first, or the code is still live: nothing is queued."""


def reset_text(device_name: str, code: str, valid_s: int) -> str:
    """The email that carries a code (the SMS is one line)."""
    minutes = max(1, valid_s // 60)
    return (f"Your {device_name} password reset code is {code}.\n\n"
            f"It is valid for {minutes} minute{'s' if minutes != 1 else ''}. If you did not ask to reset your "
            "password, ignore this message: your password has not changed.")


def _mac(key: bytes, admin: Administrator, code: str) -> str:
    return otp.compute_mac(key, f"admin-reset:{admin.id}", admin.username, [], code)


def _live(row: ResetCode, now: float) -> bool:
    """A code that can still be used: set, not expired, and its message did not fail."""
    if not row.mac or row.expires_at <= now:
        return False
    for table, key in ((SmsOutbox, row.sms_id), (EmailOutbox, row.email_id)):
        if key is not None and table.select(table.state).where(table.id == key).scalar() in _FREED:
            return False
    return True


def _failures(row: ResetCode, now: float) -> int:
    """Wrong codes that still count: they are forgotten LOCKOUT_SECONDS after the last one."""
    return row.failures if now - row.failed_at < LOCKOUT_SECONDS else 0


def _may_send(row: ResetCode | None, now: float) -> bool:
    if row is None:
        return True
    return (not _live(row, now) and _failures(row, now) < MAX_FAILURES
            and now - row.sent_at >= COOLDOWN_SECONDS)


def send_code(paths: Paths, otp_key: bytes, admin: Administrator, *, now: float | None = None) -> str:
    """Queue a fresh code by SMS when the admin has a phone, else by email: the channel used, or '' when
    nothing was sent (no phone or email, a live code kept, the cooldown or the lockout)."""
    now = time.time() if now is None else now
    if not (admin.phone or admin.email) or not _may_send(ResetCode.get_or_none(ResetCode.admin == admin.id), now):
        return ""
    code = otp.generate_code(max(MIN_DIGITS, GeneralSettings.load().otp_length))
    expires = now + VALID_SECONDS
    channel = "sms" if admin.phone else "email"

    def keep_code(message) -> None:
        row = ResetCode.get_or_none(ResetCode.admin == admin.id)  # again, inside the write transaction
        if not _may_send(row, now):
            raise _NotNow
        fields = {"mac": _mac(otp_key, admin, code), "expires_at": expires, "sent_at": now, "sms": None,
                  "email": None, channel: message, "failures": _failures(row, now) if row else 0}
        ResetCode.insert(admin=admin.id, **fields).on_conflict(
            conflict_target=[ResetCode.admin], update={getattr(ResetCode, k): v for k, v in fields.items()}).execute()

    try:
        if channel == "sms":
            receiver = normalize(admin.phone, SmsSettings.load().country_code)
            enqueue(paths, otp_key, SmsOutbox, f"OTP-Pi password reset code: {code}", inside=keep_code,
                    kind="reset", source="admin", receiver=receiver, expires_at=expires)
        else:
            text = reset_text(GeneralSettings.load().device_name, code, VALID_SECONDS)
            enqueue(paths, otp_key, EmailOutbox, text, inside=keep_code, kind="reset", source="admin",
                    receiver=admin.email.strip(), subject="", expires_at=expires)
    except _NotNow:
        return ""
    return channel


def check_code(otp_key: bytes, admin: Administrator, code: str, *, now: float | None = None) -> bool:
    """Whether *code* is the admin's live code; a right one is used up, a wrong one counts."""
    now = time.time() if now is None else now
    code = code.strip()
    if not code.isdigit() or len(code) > MAX_DIGITS:
        return False
    with db.atomic():
        row = ResetCode.get_or_none(ResetCode.admin == admin.id)
        if row is None or not _live(row, now):
            return False
        if hmac.compare_digest(_mac(otp_key, admin, code), row.mac):
            row.delete_instance()  # used: the code and the count of wrong ones are gone
            return True
        failures = _failures(row, now) + 1
        ResetCode.update(failures=failures, failed_at=now, mac=row.mac if failures < MAX_FAILURES else "").where(
            ResetCode.id == row.id).execute()
    return False
