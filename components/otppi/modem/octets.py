"""Reading PDU octets safely: the one place where hostile input meets the codecs.

A modem hands us hex text from the air interface; a corrupt or malicious PDU must end as a
``PduError`` naming what was wrong, never as an ``IndexError`` deep in a decoder. Every decoder
reads through ``OctetReader``, which checks each length against what is really there.
"""

from __future__ import annotations

import re

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


class PduError(ValueError):
    """A malformed PDU: bad hex, truncated, or a length or value the spec does not allow."""


def parse_hex(pdu_hex: str) -> bytes:
    """Octets from a modem's hex PDU text; surrounding whitespace (the line's CR LF) is ignored."""
    if not isinstance(pdu_hex, str):
        raise PduError(f"a PDU is hex text, not {type(pdu_hex).__name__}")
    text = pdu_hex.strip()
    if len(text) % 2:
        raise PduError(f"odd number of hex digits ({len(text)})")
    if not _HEX.fullmatch(text):
        raise PduError("PDU contains characters that are not hex digits")
    return bytes.fromhex(text)


class OctetReader:
    """A cursor over PDU octets whose every read is bounds-checked."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def remaining(self) -> int:
        return len(self._data) - self._offset

    def take(self, count: int, what: str) -> bytes:
        """The next ``count`` octets, for the field named ``what`` (used in the error message)."""
        if count < 0 or count > self.remaining:
            raise PduError(
                f"truncated PDU: {what} needs {count} octets at offset {self._offset}, "
                f"{self.remaining} left"
            )
        chunk = self._data[self._offset:self._offset + count]
        self._offset += count
        return chunk

    def octet(self, what: str) -> int:
        """The next single octet."""
        return self.take(1, what)[0]

    def rest(self) -> bytes:
        """Everything not read yet."""
        return self.take(self.remaining, "rest")
