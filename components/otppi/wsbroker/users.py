"""The broker's users: a file of ``username:$argon2id$...`` lines, and checking a password against it.

The file is re-read when it changes on disk, so ``otppi-wsbroker passwd`` takes
effect without a restart. Verified credentials are remembered in memory by
:class:`otppi.auth.CredentialCache` (argon2 is slow on purpose); an unknown
user is checked against a throwaway hash, so a wrong user name costs the
same time as a wrong password and does not reveal which users exist.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from pathlib import Path

from ..auth import CredentialCache, hash_password
from ..fsutil import atomic_write

log = logging.getLogger(__name__)

# Basic auth splits "user:password" at the first colon, so a name can hold no colon.
_NAME = re.compile(r"[^:\s\x00-\x1f\x7f]{1,64}")


class UsersFileError(Exception):
    """A users file that cannot be read or a line that does not fit the format."""


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def parse(text: str, origin: str = "users file") -> dict[str, str]:
    """``name:hash`` lines; blank lines and ``#`` comments are skipped."""
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not valid_name(name) or not stored.startswith("$argon2"):
            raise UsersFileError(f"{origin} line {number}: expected 'username:$argon2id$...'")
        users[name] = stored
    return users


def read(path: Path) -> dict[str, str]:
    try:
        return parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"cannot read {path}: {exc}") from None


def write(path: Path, users: dict[str, str]) -> None:
    """Whole or not at all, readable by its owner only: it holds password hashes."""
    body = "".join(f"{name}:{stored}\n" for name, stored in sorted(users.items()))
    atomic_write(path, body.encode(), mode=0o600)


def set_password(path: Path, name: str, password: str) -> bool:
    """Add or replace *name*; True when the user was new."""
    if not valid_name(name):
        raise UsersFileError("a user name is 1 to 64 characters, with no colon, space or control character")
    users = read(path) if path.exists() else {}
    new = name not in users
    users[name] = hash_password(password)
    write(path, users)
    return new


def remove(path: Path, name: str) -> None:
    users = read(path)
    if users.pop(name, None) is None:
        raise UsersFileError(f"no user {name!r} in {path}")
    write(path, users)


class Users:
    """The users file as the server sees it: reloaded when it changes, checks cached."""

    def __init__(self, path: Path, cache: CredentialCache | None = None):
        self.path = path
        self._cache = cache or CredentialCache()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, str] = {}
        self._decoy = hash_password(secrets.token_urlsafe(16))
        self._reload(strict=True)

    def _read_if_changed(self) -> tuple[tuple[int, int, int], dict[str, str]] | None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise UsersFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)  # passwd replaces the file: a new inode
        return None if stamp == self._stamp else (stamp, read(self.path))

    def _reload(self, strict: bool = False) -> None:
        try:
            fresh = self._read_if_changed()
        except UsersFileError as exc:
            if strict:
                raise
            log.error("keeping the users read before: %s", exc)
            return
        if fresh is not None:
            with self._lock:
                self._stamp, self._users = fresh
            log.info("%d user(s) from %s", len(self._users), self.path)

    def __len__(self) -> int:
        return len(self._users)

    def verify(self, name: str, password: str) -> bool:
        """Blocking (argon2 on a miss): call it from a worker thread."""
        self._reload()
        with self._lock:
            stored = self._users.get(name)
        if stored is None:
            self._cache.verify(self._decoy, password)
            return False
        return self._cache.verify(stored, password)
