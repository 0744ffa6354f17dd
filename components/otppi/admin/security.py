"""Sessions, CSRF tokens and login throttling for the admin web.

Sessions are Flask's signed cookies under the per-device session key,
HttpOnly and SameSite=Strict, each also a row in the store (``AdminSession``,
the SHA-256 of a random token the cookie carries): logging out deletes the
row, so a copied cookie dies with it, and every session ends
``SESSION_HOURS`` after login however active it is. Every POST carries a CSRF
token bound to the session. Failed logins are throttled per client address and per username
with a delay that doubles after a few failures, counted before the password
is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from flask import abort, request, session

from ..store.db import db
from ..store.models import AdminSession, Administrator

FREE_FAILURES = 3
MAX_DELAY = 300.0
#: A key with no failure for this long is forgotten (longer than the longest delay).
FORGET_SECONDS = 3600.0


def client_key() -> str:
    """The throttle key of the request's client: its IPv4 address, or its IPv6 /64 (one host's share)."""
    raw = request.remote_addr or "?"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return f"ip:{raw[:64]}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


def fingerprint(password_hash: str) -> str:
    """Kept in the session: a changed password (or a removed admin) ends every session of that admin."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


#: The absolute lifetime of a session (``admin.session_minutes`` is the idle limit).
SESSION_HOURS = 12


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(admin: Administrator) -> None:
    """Log *admin* in: a fresh cookie and its row in the store (expired rows are cleared on the way)."""
    now = time.time()
    token = secrets.token_urlsafe(32)
    with db.atomic():
        AdminSession.delete().where(AdminSession.expires_at <= now).execute()
        AdminSession.create(token_hash=_token_hash(token), admin=admin.id, created_at=now,
                            expires_at=now + SESSION_HOURS * 3600)
    session.clear()
    session.update(admin=admin.username, seen=now, pw=fingerprint(admin.password_hash), sid=token)


def session_is_live(admin: Administrator) -> bool:
    """Whether this request's cookie names a session of *admin* the store still holds and that has not
    outlived SESSION_HOURS."""
    token = session.get("sid")
    if not isinstance(token, str):
        return False
    row = AdminSession.get_or_none(AdminSession.token_hash == _token_hash(token))
    return row is not None and row.admin_id == admin.id and row.expires_at > time.time()


def end_session() -> None:
    """Log out: the store forgets the session, so the cookie (or a copy of it) opens nothing any more."""
    token = session.get("sid")
    if isinstance(token, str):
        with db.atomic():
            AdminSession.delete().where(AdminSession.token_hash == _token_hash(token)).execute()
    session.clear()


def end_other_sessions(admin: Administrator) -> None:
    """Every session of *admin* but this request's (after a password change), or every one (after a reset)."""
    token = session.get("sid") if session.get("admin") == admin.username else None
    query = AdminSession.delete().where(AdminSession.admin == admin.id)
    if isinstance(token, str):
        query = query.where(AdminSession.token_hash != _token_hash(token))
    with db.atomic():
        query.execute()


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


R = TypeVar("R")

#: Records kept per table: a few MB at most, however many addresses or names a flood brings.
MAX_RECORDS = 10_000


class BoundedTable(Generic[R]):
    """Records by key that never grow past *size* and are never flushed wholesale.

    Records are kept in the order they were last touched; one is forgotten once *stale* says so. When the
    table is full of records that still matter, a new key shares one overflow record per kind (the part
    of the key before ':'), so a flood of fresh names or addresses holds back only itself and never pushes
    out the records that hold an attacker back. Not thread-safe: the owner holds its lock.
    """

    def __init__(self, make: Callable[[], R], stale: Callable[[R, float], bool], size: int = MAX_RECORDS):
        self._make, self._stale, self._size = make, stale, size
        self._records: OrderedDict[str, R] = OrderedDict()

    @staticmethod
    def _overflow(key: str) -> str:
        return key.partition(":")[0] + ":*"

    def get(self, key: str, now: float) -> R | None:
        """The record *key* counts against (its own, else its kind's overflow record), or None."""
        for name in (key, self._overflow(key)):
            record = self._records.get(name)
            if record is not None:
                if not self._stale(record, now):
                    return record
                del self._records[name]
        return None

    def touch(self, key: str, now: float) -> R:
        """The record *key* counts against, made when there is none, marked as the most recent."""
        own = self._records.get(key)
        if own is not None and self._stale(own, now):
            del self._records[key]
            own = None
        name = key
        if own is None and self.get(key, now) is not None:
            name = self._overflow(key)  # a live overflow record: fresh keys of this kind share it
        elif own is None:
            while len(self._records) >= self._size:
                oldest = next(iter(self._records))
                if not self._stale(self._records[oldest], now):
                    break
                del self._records[oldest]
            if len(self._records) >= self._size:
                name = self._overflow(key)
        record = self._records.get(name)
        if record is None:
            record = self._records[name] = self._make()
        self._records.move_to_end(name)
        return record

    def pop(self, key: str) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)


class Cooldown:
    """At most one action per key every *seconds* (the forgotten-password page, per client address)."""

    def __init__(self, seconds: float, clock=time.monotonic, size: int = MAX_RECORDS):
        self._seconds, self._clock = seconds, clock
        self._last: BoundedTable[list[float]] = BoundedTable(lambda: [float("-inf")],
                                                            lambda r, now: now - r[0] >= seconds, size)
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """True (and the cooldown starts) when *key* acted last more than *seconds* ago."""
        now = self._clock()
        with self._lock:
            if self._last.get(key, now) is not None:
                return False
            self._last.touch(key, now)[0] = now
            return True


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0
    last: float = 0.0  # the last failure


class Throttle:
    """Growing delay after failed attempts, by client address and by username, counted before the check.

    :meth:`attempt` counts an attempt as failed *before* the password is checked, so parallel attempts see
    each other (twelve at once from one address no longer all get through); :meth:`succeeded` clears it.
    After ``FREE_FAILURES`` failures the delay doubles with each one, up to ``MAX_DELAY``; a key with no
    failure for ``FORGET_SECONDS`` starts afresh. A username held back by failures holds back only the
    addresses that have failed themselves: a stranger can slow the guessing of the administrator's name,
    but cannot lock the administrator out, who gets a first try from any fresh address. The records are a
    :class:`BoundedTable`: a flood of names or addresses cannot flush them.
    """

    def __init__(self, clock=time.monotonic, size: int = MAX_RECORDS):
        self._clock = clock
        self._records: BoundedTable[_Record] = BoundedTable(
            _Record, lambda r, now: r.blocked_until <= now and now - r.last >= FORGET_SECONDS, size)
        self._lock = threading.Lock()

    def attempt(self, address: str, user: str = "") -> float:
        """0 when the attempt may go ahead (it now counts as failed until :meth:`succeeded`), else the
        seconds to wait (and nothing is counted)."""
        now = self._clock()
        with self._lock:
            own = self._records.get(address, now)
            held = [own, self._records.get(user, now) if user else None] if own is not None else []
            wait = max((r.blocked_until - now for r in held if r is not None), default=0.0)
            if wait > 0:
                return wait
            for key in filter(None, (address, user)):
                record = self._records.touch(key, now)
                record.failures += 1
                record.last = now
                if record.failures > FREE_FAILURES:
                    record.blocked_until = now + min(2.0 ** (record.failures - FREE_FAILURES), MAX_DELAY)
            return 0.0

    def succeeded(self, address: str, user: str = "") -> None:
        with self._lock:
            for key in filter(None, (address, user)):
                self._records.pop(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)
