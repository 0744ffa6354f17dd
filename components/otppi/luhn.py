"""The Luhn check digit (IMEI per 3GPP TS 23.003 annex B, ICCID per ITU-T E.118)."""


def luhn_digit(digits: str) -> str:
    """The check digit to append to *digits*."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)
