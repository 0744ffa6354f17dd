"""How often a broker has delivered a message, for brokers that only flag a repeat.

RabbitMQ's classic queues mark a message delivered before with ``redelivered``
and MQTT marks a PUBLISH sent again with DUP; neither says how many times. A
message that kills the feeder process while it is being handled (not an
exception: the intake answers those) comes back on every restart, so the
feeder counts repeats itself, in a small file that survives the crash:
:meth:`DeliveryLedger.count` is written *before* the message is handled.
Only flagged messages are counted, and a message is forgotten once it is
acknowledged (in memory; the file follows at the next count).

The file is replaced without fsync: what it guards against is the process
dying, and the page cache outlives the process. A power cut may lose the
counts, which only starts the counting again. So a restart, after which
every message in flight comes flagged (mosquitto flags everything it
resends to a session, hundreds of messages when a queue had built up),
costs a page-cache write per message, not a card flush; the card
sees the last state when the kernel writes it back.

Messages are known by a keyed digest of their body (HMAC-SHA256 under a key
derived from the device's OTP key), never by the body: a request may carry a
text an app server made, code included, and a plain hash of a known template
could be searched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: Messages remembered at most; the oldest are dropped first (a repeat that old is long over).
LIMIT = 256


class DeliveryLedger:
    def __init__(self, path: Path, key: bytes):
        self.path = path
        self._key = hmac.new(key, b"otppi feeder delivery ledger", hashlib.sha256).digest()
        self._counts: dict[str, int] = self._load()

    def _load(self) -> dict[str, int]:
        try:
            counts = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("the delivery ledger %s cannot be read (%s); starting afresh", self.path, exc)
            return {}
        if not isinstance(counts, dict):
            return {}
        return {k: v for k, v in counts.items() if isinstance(k, str) and isinstance(v, int)}

    def _digest(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()[:32]

    def count(self, body: bytes) -> int:
        """One more delivery of a flagged repeat of *body*: how many so far, this one and the first included."""
        digest = self._digest(body)
        deliveries = self._counts.pop(digest, 1) + 1
        self._counts[digest] = deliveries  # now the newest
        while len(self._counts) > LIMIT:
            del self._counts[next(iter(self._counts))]
        self._save()
        return deliveries

    def forget(self, body: bytes) -> None:
        """*body* was acknowledged: a later repeat counts from the start again.

        Only in memory until the next :meth:`count` writes the file: a count left on disk by a crash
        right after this belongs to a message the broker has as acknowledged, and never comes back.
        """
        self._counts.pop(self._digest(body), None)

    def _save(self) -> None:
        """Replace the file whole (a reader never sees half of it); one feeder process writes it."""
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(self._counts).encode())
            os.replace(tmp, self.path)
        except OSError as exc:  # a full or read-only card: count in memory, which still bounds a loop of raises
            log.warning("the delivery ledger %s cannot be written: %s", self.path, exc)
