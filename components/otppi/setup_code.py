"""The first-run setup code: who may create the first administrator.

While no administrator exists, the admin web's first-run page would let any
client on the network take the device. It asks for this code: a per-device
secret made by ``otppi migrate`` (first boot on the image) in the secrets
folder, mode 0600, for first boot to print on the console and copy to the
boot partition; ``otppi setup-code`` and the dev run print it. The admin web
(its own user, no access to the secrets folder) checks it against an HMAC
under the session key kept in the store, in constant time; creating the
first administrator deletes that row in the same transaction, so the code
works once. Once an administrator exists the code is gone: ``otppi migrate``,
``otppi setup-code`` and ``otppi admin add`` remove the file too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from . import keys
from .paths import Paths
from .store.db import db
from .store.models import Administrator, SetupCode

#: No 0/O, 1/I/L: read off a screen and typed on a phone.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 12  # about 59 bits


def normalize(text: str) -> str:
    """What was typed, without spaces and dashes, upper case."""
    return "".join(text.split()).replace("-", "").upper()


def shown(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _digest(session_key: bytes, code: str) -> str:
    return hmac.new(session_key, b"otppi-setup-code\0" + normalize(code).encode(), hashlib.sha256).hexdigest()


def ensure(paths: Paths) -> str | None:
    """With the store open: the setup code (shown form) while no administrator exists, made when missing;
    None once one exists (and the code is discarded)."""
    if Administrator.select().exists():
        discard(paths)
        return None
    path = keys.setup_code_file(paths)
    code = normalize(path.read_text()) if path.exists() else ""
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        keys.write_secret(path, shown(code) + "\n")
    digest = _digest(keys.session_key(paths), code)
    with db.atomic():
        SetupCode.insert(id=1, digest=digest).on_conflict_replace().execute()
    return shown(code)


def matches(session_key: bytes, typed: str) -> bool:
    """Whether *typed* is the setup code, compared in constant time; False when there is none."""
    row = SetupCode.get_or_none(SetupCode.id == 1)
    return row is not None and hmac.compare_digest(_digest(session_key, typed), row.digest)


def consume() -> bool:
    """Inside the transaction that creates the first administrator: use the code up; False if another
    request already did."""
    return bool(SetupCode.delete().execute())


def discard(paths: Paths) -> None:
    """The code is gone: its row, and its file when this process may remove it (the admin web's user may
    not; the next ``otppi migrate`` does)."""
    with db.atomic():
        SetupCode.delete().execute()
    try:
        keys.setup_code_file(paths).unlink(missing_ok=True)
    except PermissionError:
        pass  # the admin web's own user: the row is gone, so the file opens nothing any more
