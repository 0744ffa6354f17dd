"""The admin password-reset code by email (the spec's Administrator Settings: "Password will be sent via email").

The admin web makes the code and keeps only what it needs to check it; this
queues the mail that carries it, sealed like every outbox body and erased
once sent, and wakes the mailer. The caller may wait for the row's outcome
with :class:`otppi.outcome.OutcomeWatcher`.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..contract import ContractError, validate
from ..paths import Paths
from ..store.models import EmailOutbox, GeneralSettings
from ..store.outbox import enqueue

#: How long a reset code is worth sending; a mail still queued after this is dropped.
DEFAULT_VALID_S = 15 * 60


def reset_text(device_name: str, code: str, valid_s: int) -> str:
    minutes = max(1, valid_s // 60)
    return (f"Your {device_name} password reset code is {code}.\n\n"
            f"It is valid for {minutes} minute{'s' if minutes != 1 else ''}. If you did not ask to reset your "
            "password, ignore this message: your password has not changed.")


def queue_reset_code(paths: Paths, otp_key: bytes, email: str, code: str, *, valid_s: int = DEFAULT_VALID_S,
                     now: float | None = None, inside: Callable[[Any], None] | None = None) -> int:
    """Queue the reset-code mail to *email*; return its EmailOutbox row id. ValueError for a bad address.

    *inside* runs in the row's transaction, as :func:`otppi.store.outbox.enqueue` says.
    """
    now = time.time() if now is None else now
    text = reset_text(GeneralSettings.load().device_name, code, valid_s)
    try:
        request = validate({"command": "send-email", "data": {"receiver": email, "message": text}})
    except ContractError as exc:
        raise ValueError(str(exc).replace("data.receiver", "the address")) from None
    return enqueue(paths, otp_key, EmailOutbox, text, inside=inside, kind="reset", source="admin",
                   receiver=request.data["receiver"], subject="", expires_at=now + valid_s).id
