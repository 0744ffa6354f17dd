"""Sessions, CSRF tokens and login throttling for the admin web.

Sessions are Flask's signed cookies under the per-device session key,
HttpOnly and SameSite=Strict. Every POST carries a CSRF token bound to the
session. Failed logins are throttled per client address and per username
with a delay that doubles after a few failures.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from flask import abort, request, session

FREE_FAILURES = 3
MAX_DELAY = 300.0


def fingerprint(password_hash: str) -> str:
    """Kept in the session: a changed password (or a removed admin) ends every session of that admin."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse a state-changing request without the session's token (form field or header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="the form expired or did not come from this page; reload it and try again")


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0


class Throttle:
    """Growing delay after failed logins, by client address and by username."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, *keys: str) -> float:
        now = self._clock()
        with self._lock:
            return max((max(r.blocked_until - now, 0.0) for k in keys if (r := self._records.get(k))), default=0.0)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                record = self._records.setdefault(key, _Record())
                record.failures += 1
                if record.failures > FREE_FAILURES:
                    delay = min(2.0 ** (record.failures - FREE_FAILURES), MAX_DELAY)
                    record.blocked_until = now + delay
            if len(self._records) > 10_000:  # bounded memory under a flood of names
                self._records.clear()

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._records.pop(key, None)
