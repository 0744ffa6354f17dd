"""One-time passwords that the device itself cannot read back.

Only HMAC-SHA256(device OTP key, reference, receiver, param1..4, code) is
stored; the clear code exists in the outbox body until the message leaves,
then it is erased. Validation compares in constant time, allows one success,
and voids the OTP after too many wrong attempts.

A reference belongs to its *owner*, the source that created it (``rest:<API
user>`` or a feeder's name): another owner may use the same reference at the
same time, and cannot validate, probe or void the first one's OTP.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Sequence

from . import codes
from .store.db import db
from .store.models import EmailOutbox, Otp, SmsOutbox

FREED_STATES = {"failed", "expired"}


def generate_code(length: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


def compute_mac(key: bytes, reference: str, receiver: str, params: Sequence[str], code: str) -> str:
    """Length-prefixed fields, so ("ab", "c") and ("a", "bc") never collide."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in (reference, receiver, *params, code):
        raw = part.encode("utf-8")
        mac.update(len(raw).to_bytes(4, "big"))
        mac.update(raw)
    return mac.hexdigest()


def _is_live(row: Otp, now: float) -> bool:
    """Live: unused, not void, not expired, and its message did not fail."""
    if row.state != "live" or row.expires_at <= now:
        return False
    for outbox, key in ((SmsOutbox, row.sms_id), (EmailOutbox, row.email_id)):
        if key is not None:
            state = outbox.select(outbox.state).where(outbox.id == key).scalar()
            if state in FREED_STATES:
                return False
    return True


def _find(owner: str, reference: str) -> Otp | None:
    return Otp.get_or_none((Otp.owner == owner) & (Otp.reference == reference))


def reserve(owner: str, reference: str, now: float) -> bool:
    """Inside a write transaction: free *owner*'s *reference* for a new OTP, or False if one is live."""
    row = _find(owner, reference)
    if row is None:
        return True
    if _is_live(row, now):
        return False
    row.delete_instance()
    return True


def store(owner: str, reference: str, mac: str, channel: str, expires_at: float, *, sms=None, email=None) -> Otp:
    return Otp.create(
        owner=owner, reference=reference, mac=mac, channel=channel, expires_at=expires_at, sms=sms, email=email
    )


def validate(
    key: bytes,
    owner: str,
    reference: str,
    receiver: str,
    params: Sequence[str],
    code: str,
    *,
    now: float,
    max_attempts: int,
) -> str:
    """Check a code once and return its response code; the attempt counts in the same transaction.

    A wrong code and an unknown reference answer alike (1202), so the answer
    never tells a guesser which references exist; another owner's reference is
    an unknown one (its attempts and state are not touched).
    """
    with db.atomic():
        row = _find(owner, reference)
        if row is None or row.state == "used":
            return codes.OTP_INVALID
        if row.state == "void":
            return codes.OTP_VOID
        if row.expires_at <= now:
            return codes.OTP_EXPIRED
        expected = compute_mac(key, reference, receiver, params, code)
        if hmac.compare_digest(expected, row.mac):
            Otp.update(state="used").where(Otp.id == row.id).execute()
            return codes.SUCCESS
        attempts = row.attempts + 1
        void = attempts >= max_attempts
        Otp.update(attempts=attempts, state="void" if void else "live").where(Otp.id == row.id).execute()
        if void:
            return codes.OTP_VOID
        return codes.OTP_INVALID

