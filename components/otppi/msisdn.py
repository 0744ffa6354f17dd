"""Phone numbers: normalising to MSISDN, and masking them for logs and the monitor."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s().-]")
_PHONE = re.compile(r"\+?[0-9]{3,20}")


def looks_like_phone(text: str) -> bool:
    """What :func:`normalize` accepts: an optional +, 3 to 20 digits, spaces, dots, dashes, brackets."""
    return bool(_PHONE.fullmatch(_SEPARATORS.sub("", text)))


def normalize(number: str, country_code: str) -> str:
    """MSISDN digits as the seed routes them: ``+`` dropped, a leading 0 becomes the country code.

    ``08126666666`` with country code 62 → ``628126666666``; ``+628126666666`` →
    ``628126666666``. Raises ValueError for anything that is not a phone number.
    """
    compact = _SEPARATORS.sub("", number)
    if not _PHONE.fullmatch(compact):
        raise ValueError("not a phone number")
    if compact.startswith("+"):
        return compact[1:]
    if compact.startswith("00"):
        return compact[2:]
    if compact.startswith("0"):
        return country_code + compact[1:]
    return compact


def mask(receiver: str) -> str:
    """Keep enough to recognise a number or address in a log, hide the rest."""
    if "@" in receiver:
        local, _, domain = receiver.partition("@")
        return (local[:1] + "***@" + domain) if local else "***@" + domain
    if len(receiver) <= 6:
        return "*" * len(receiver)
    return receiver[:4] + "*" * (len(receiver) - 7) + receiver[-3:]
