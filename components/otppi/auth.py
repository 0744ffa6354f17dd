"""Password hashes (argon2id), their cost bounded, and the short-lived memory of good API credentials.

Argon2 is slow on purpose, far too slow to run on every REST request, so a
verified credential is remembered for a few minutes under an HMAC of the
stored hash and the presented password, in memory only. Keying on the stored
hash means a changed password or a removed user stops working at once.

Each argon2 computation takes 19 MiB. Every hash and verification of a process
runs on ``ARGON2_THREADS`` threads of its own: a burst of logins on a dozen
server threads costs two computations' memory at a time, not twelve, and
glibc's per-thread arenas keep at most two such blocks instead of one per
server thread. An unknown user is verified against a fixed dummy hash of the
same parameters (:func:`check_password`), so the answer takes as long as a
wrong password for a real one and tells nobody which names exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's minimum for argon2id (19 MiB, t=2, p=1): affordable on a Pi 3.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

#: A hash of a random password nobody kept, with HASHER's parameters: what unknown users are verified against.
DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$/wBmkg+adVOq/7FZQ4qPqg$sOdvGJMttqMFDtGWRkycduHYA4kZ4j2Esiyyn0w1Cv0"

MAX_PASSWORD = 1024

#: Argon2 computations a process runs at once (each takes 19 MiB).
ARGON2_THREADS = 2

T = TypeVar("T")


class Argon2Pool:
    """The threads every argon2 computation of the process runs on; counts what ran, for tests and benchmarks."""

    def __init__(self, threads: int = ARGON2_THREADS):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self._lock = threading.Lock()
        self.runs = 0  # computations finished
        self.decoys = 0  # of which verifications against DUMMY_HASH
        self.peak = 0  # most computations seen running at once
        self._running = 0

    def run(self, work: Callable[[], T], *, decoy: bool = False) -> T:
        return self._pool.submit(self._counted, work, decoy).result()

    def _counted(self, work: Callable[[], T], decoy: bool) -> T:
        with self._lock:
            self._running += 1
            self.peak = max(self.peak, self._running)
        try:
            return work()
        finally:
            with self._lock:
                self._running -= 1
                self.runs += 1
                self.decoys += decoy


ARGON2 = Argon2Pool()


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("password must not be empty")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password is longer than {MAX_PASSWORD} characters")
    return ARGON2.run(lambda: HASHER.hash(password))


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether *password* matches *stored_hash*, on the argon2 threads."""
    if not password or len(password) > MAX_PASSWORD:
        return False
    return ARGON2.run(lambda: _verify(stored_hash, password))


def verify_decoy(password: str) -> bool:
    """What verifying a wrong password for a real user costs, for a user that does not exist: always False."""
    if not password or len(password) > MAX_PASSWORD:
        return False
    ARGON2.run(lambda: _verify(DUMMY_HASH, password), decoy=True)
    return False


def check_password(stored_hash: str | None, password: str) -> bool:
    """:func:`verify_password` for a known user (*stored_hash*), :func:`verify_decoy` when there is none."""
    return verify_decoy(password) if stored_hash is None else verify_password(stored_hash, password)


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
