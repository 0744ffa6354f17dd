"""Password hashes (argon2id) and the short-lived memory of good API credentials.

Argon2 is slow on purpose, far too slow to run on every REST request, so a
verified credential is remembered for a few minutes under an HMAC of the
stored hash and the presented password, in memory only. Keying on the stored
hash means a changed password or a removed user stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's minimum for argon2id (19 MiB, t=2, p=1): affordable on a Pi 3.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

MAX_PASSWORD = 1024


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("password must not be empty")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password is longer than {MAX_PASSWORD} characters")
    return HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    if not password or len(password) > MAX_PASSWORD:
        return False
    try:
        return HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class CredentialCache:
    """Remembers successful verifications (never failures) for *ttl* seconds."""

    def __init__(self, ttl: float = 300.0, size: int = 1024):
        self._key = secrets.token_bytes(32)
        self._ttl = ttl
        self._size = size
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        # One argon2 verification at a time: a burst of new connections with the same
        # credentials costs one hash (19 MiB, tens of ms) instead of one per thread.
        self._verifying = threading.Lock()

    def digest(self, stored_hash: str, password: str) -> bytes:
        """What the cache knows a credential by: an HMAC under a key of this process, never the password."""
        return hmac.new(self._key, f"{stored_hash}\0{password}".encode(), hashlib.sha256).digest()

    def _remembered(self, digest: bytes) -> bool:
        with self._lock:
            expiry = self._seen.get(digest)
            return expiry is not None and expiry > time.monotonic()

    def remembered(self, stored_hash: str, password: str) -> bool:
        """True when this credential was verified within the last *ttl* seconds (no argon2)."""
        return self._remembered(self.digest(stored_hash, password))

    def verify(self, stored_hash: str, password: str) -> bool:
        digest = self.digest(stored_hash, password)
        if self._remembered(digest):
            return True
        with self._verifying:
            if self._remembered(digest):  # verified by another thread while this one queued
                return True
            if not verify_password(stored_hash, password):
                return False
        now = time.monotonic()
        with self._lock:
            self._seen[digest] = now + self._ttl
            self._seen.move_to_end(digest)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
        return True
